"""The Data page's Record source: choose prompts, then one at a time record, listen, keep, record again or skip.

Only widgets here: the prompt lists, the checks a take must pass and the folder it goes to are core's
(core/data/prompts.py, core/data/recordings.py). Returns the open_source arguments of the recording set once it
holds a take, so the doctor and Prepare below work on it as on any folder.
"""

from __future__ import annotations

import streamlit as st

from app.tab_state import action, show_outcome
from app.widgets import user_errors
from core.audio import load_audio
from core.data import (
    RecordingSet,
    check_take,
    error_prompts,
    evaluated_language,
    held_out_sentences,
    recordings_root,
    template_prompts,
    text_prompts,
)
from core.formatting import format_duration
from core.languages import Language
from core.workspace import Workspace

PROMPT_KINDS = ["Sentences for the language", "My own text", "Words the model gets wrong"]
TAKE_COUNTER = "rec_take_counter"  # a new key empties the recorder after a keep, a skip or a retry
SKIPPED = "rec_skipped"  # prompts skipped in this tab; a later session offers them again
KEPT = "rec_kept"  # the outcome of Keep or Delete


def record_source(ws: Workspace, language: Language) -> dict:
    name = st.text_input(
        "Recording set", "my-voice", key="rec_name", help="kept in WORKSPACE/recordings/NAME/", persist_state="session"
    )
    speaker = st.text_input(
        "Speaker", "me", key="rec_speaker", help="who reads: prepare can split by speaker", persist_state="session"
    )
    existing = (recordings_root(ws) / name / "recording.json").is_file()
    with st.expander("Prompts", expanded=not existing):
        prompts = _prompt_list(ws, language)
        if st.button("Add these prompts", icon=":material/playlist_add:", disabled=not prompts):
            with user_errors():
                added = RecordingSet.open(ws, name, language.code).add_prompts(prompts)
                st.success(f"{added} new prompts in **{name}**")
                existing = True
    if not existing:
        st.caption("Choose prompts and add them to start the set; an existing set resumes where it stopped.")
        return {}
    with user_errors():
        recordings = RecordingSet.open(ws, name)
        _record_next(recordings, speaker)
        if recordings.takes():
            return {"source": str(recordings.root)}
    return {}


def _prompt_list(ws: Workspace, language: Language) -> list[str]:
    kind = st.segmented_control("From", PROMPT_KINDS, default=PROMPT_KINDS[0], key="rec_prompt_kind")
    with user_errors():
        if kind == "My own text":
            pasted = st.text_area("One prompt a line", key="rec_text")
            upload = st.file_uploader("…or a text file", type=["txt"], key="rec_text_file")
            text = upload.getvalue().decode("utf-8", errors="replace") if upload else pasted
            return text_prompts(text) if text.strip() else []
        n = int(st.number_input("Prompts", 1, 1000, 20, key="rec_n"))
        held = held_out_sentences(ws, language)
        if kind == "Words the model gets wrong":
            # imported here: core.evaluation brings the models' engines (seconds), wanted only for this list
            from core.evaluation import list_evaluations, load_evaluation

            evaluations = list_evaluations(ws)
            if not evaluations:
                st.info("No evaluation yet: evaluate a model on Compare, then its missed words become prompts.")
                return []
            shown = [e.label for e in evaluations]
            index = st.selectbox("Evaluation", range(len(shown)), len(shown) - 1, format_func=shown.__getitem__)
            scored = load_evaluation(evaluations[index].path)
            return error_prompts(scored.rows, language, n, held, evaluated=evaluated_language(ws, scored.data))
        return template_prompts(language, n, held)
    return []


def _record_next(recordings: RecordingSet, speaker: str) -> None:
    takes = recordings.takes()
    skipped = st.session_state.setdefault(SKIPPED, set())
    left = recordings.prompts_left(speaker)
    speech = format_duration(sum(t.seconds for t in takes))
    counts = f"**{len(takes)}** take{'s' * (len(takes) != 1)} kept · **{speech}** of speech"
    st.markdown(f"{counts} · **{len(left)}** prompt{'s' * (len(left) != 1)} left")
    waiting = [p for p in left if p not in skipped]
    if not recordings.prompts:
        st.info("This set has no prompts yet: choose some under Prompts above and add them.")
    elif not waiting:
        st.success("Every prompt is read." if not left else "The prompts left were skipped.")
        if left and st.button("Offer the skipped prompts again"):
            skipped.clear()
            st.rerun()
    else:
        prompt = waiting[0]
        st.markdown(f"Read aloud:\n\n### {prompt}")
        counter = st.session_state.setdefault(TAKE_COUNTER, 0)
        take = st.audio_input("Take", key=f"rec_take_{counter}", help="record, listen, then keep it or try again")
        keep, again, skip = st.columns(3)
        problem = "record the prompt first"
        if take is not None:
            check = check_take(load_audio(take.getvalue(), name="the take"), prompt)
            problem = check.problem
            if problem:
                st.error(f"Not kept: {problem}", icon=":material/mic_off:")
            else:
                st.caption(f"Sounds fine: {check.summary}")
        keep.button(
            "Keep",
            type="primary",
            icon=":material/check:",
            disabled=problem is not None,
            on_click=action(KEPT, _keep, recordings, take, prompt, speaker),
        )
        if again.button("Record again", icon=":material/replay:"):
            st.session_state[TAKE_COUNTER] = counter + 1
            st.rerun()
        if skip.button("Skip", icon=":material/skip_next:"):
            skipped.add(prompt)
            st.session_state[TAKE_COUNTER] = counter + 1
            st.rerun()
    _kept_takes(recordings, takes)


def _keep(recordings: RecordingSet, take, prompt: str, speaker: str) -> str:
    """The Keep button's action (a callback: the click counts even while the page is busy)."""
    kept = recordings.keep(take.getvalue(), prompt, speaker)
    st.session_state[TAKE_COUNTER] = st.session_state.get(TAKE_COUNTER, 0) + 1  # the next prompt, an empty recorder
    return f"Kept {kept.file_name}"


def _delete(recordings: RecordingSet, file_name: str) -> str:
    recordings.delete(file_name)
    return f"Deleted {file_name}"


def _kept_takes(recordings: RecordingSet, takes) -> None:
    show_outcome(KEPT)
    if not takes:
        return
    with st.expander(f"Kept takes ({len(takes)})"):
        for take in reversed(takes[-20:]):
            text, audio, delete = st.columns([4, 6, 1], vertical_alignment="center")  # the player needs the room
            text.caption(f"{take.file_name} · {take.speaker} · {take.seconds:.1f} s  \n{take.text}")
            audio.audio(str(recordings.path_of(take)))  # checked: inside the set
            delete.button(
                "",  # the icon alone: a word would be cut to "D…" in a column this narrow
                icon=":material/delete:",  # as a label's Markdown it drew an empty button in Chromium
                key=f"rec_delete_{take.file_name}",
                help=f"Delete {take.file_name}",
                on_click=action(KEPT, _delete, recordings, take.file_name),
            )
