"""Transcribe: upload or record into any checkpoint, or stream the microphone live (talking with an LLM is the
Conversation page)."""

import hashlib
from pathlib import Path

import pandas as pd
import streamlit as st

from app.microphone import live_session, microphone
from app.model_cache import model_choices, timed_transcript_of, transcript_of
from app.tab_state import action, follow, show_outcome, workspace
from app.widgets import language_picker, user_errors
from core.audio import AUDIO_EXTENSIONS, SAMPLE_RATE, load_audio
from core.data import keep_in_set
from core.languages import LANGUAGES
from core.speech import FORMATS, SURE_LANGUAGE, WRITERS, file_options, is_toy, language_guesses, language_line
from core.training import workspace_language

PLAYED_S = 30  # seconds played from a chosen word
LANGUAGE = "tr_language"

st.title("Transcribe")
choices = model_choices()
top = st.columns([3, 2, 1])
label = top[0].selectbox("Model", list(choices), key="tr_model", help="checkpoints of every run; ★ = best WER")
model = choices[label]
usual = workspace_language(workspace())  # the language of the newest run or dataset
with top[1]:
    whisper_language, _ = language_picker(LANGUAGE, default=usual)
task = top[2].selectbox("Task", ["transcribe", "translate"], key="tr_task")


def keep_take(audio, key: str, language: str | None) -> str:
    """The Keep button's action: the audio and the corrected text into the recording set named in the box."""
    name, text = st.session_state[f"{key}-set"], st.session_state[f"{key}-text"]
    take = keep_in_set(workspace(), name, audio, text, st.session_state[f"{key}-speaker"], language)
    return f"Kept {take.file_name} in **{name}** ({take.seconds:.1f} s): prepare it on the Data page"


def keep_box(audio, text: str, language: str | None, key: str) -> None:
    """Correct and keep: the audio with the corrected text into a recording set (the Data page's Record folders).
    The box holds the transcript shown above it: a new transcript (another language, model or option) replaces it."""
    with st.expander("Correct and keep in a dataset", icon=":material/edit_note:"):
        follow(f"{key}-text", text, text)
        st.text_area("Transcript (correct it)", key=f"{key}-text")
        name_column, speaker_column = st.columns(2)
        name = name_column.text_input("Keep in dataset", "my-voice", key=f"{key}-set", help="WORKSPACE/recordings/")
        speaker_column.text_input("Speaker", "me", key=f"{key}-speaker")
        st.button(
            f"Keep in dataset {name}",
            key=f"{key}-keep",
            icon=":material/save:",
            on_click=action(f"{key}-kept", keep_take, audio, key, language),
        )
        show_outcome(f"{key}-kept")


def language_advice(transcript, usual: str | None) -> None:
    """What the detection said in words; when it is unsure, buttons for the likely languages and for `usual` (the
    workspace's language, which a model that never heard it rarely ranks high)."""
    line = language_line(transcript)
    if line is None:
        return
    guesses = language_guesses(transcript)
    if guesses[0].probability >= SURE_LANGUAGE:
        st.caption(line)
        return
    st.warning(line, icon=":material/translate:")
    offered = {g.code: g.name for g in guesses}
    if usual in LANGUAGES and usual not in offered:
        offered = {usual: LANGUAGES[usual].name, **offered}
    for column, (code, name) in zip(st.columns(len(offered) + 1), offered.items()):
        column.button(name, key=f"tr-guess-{code}", on_click=st.session_state.__setitem__, args=(LANGUAGE, code))


def word_player(data: bytes, transcript, key: str) -> None:
    """The timed words; the audio plays from the chosen one (PLAYED_S of it)."""
    words = [w for s in transcript.segments for w in s.words]
    if not words:
        return
    chosen = st.selectbox(
        "Play from the word",
        range(len(words)),
        format_func=lambda i: f"{words[i].start:.2f} s · {words[i].word.strip()} ({100 * words[i].probability:.0f}%)",
        key=f"{key}-word",
    )
    # from the word itself: st.audio's start_time counts whole seconds, a word lasts a fraction of one
    start = int(words[chosen].start * SAMPLE_RATE)
    st.audio(load_audio(data, name=transcript.source)[start : start + PLAYED_S * SAMPLE_RATE], sample_rate=SAMPLE_RATE)


def show_transcript(transcript, key: str) -> None:
    st.write(transcript.text or "(nothing recognised)")
    if len(transcript.segments) > 1:
        rows = [{"from (s)": f"{s.start:.1f}", "to (s)": f"{s.end:.1f}", "text": s.text} for s in transcript.segments]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    stem = Path(transcript.source).stem or "transcript"
    st.caption("Download the transcript as")
    for column, name in zip(st.columns(len(FORMATS)), FORMATS):
        column.download_button(
            name.upper(), WRITERS[name](transcript), file_name=f"{stem}.{name}", key=f"{key}-{name}", width="stretch"
        )


file_tab, live_tab = st.tabs(["File or recording", "Live microphone"])

with file_tab:
    ab = st.toggle("A/B: the same audio through two models", key="tr_ab")
    label_b = st.selectbox("Model B", list(choices), key="tr_model_b") if ab else None
    upload = st.file_uploader(
        "Audio file", type=[extension.lstrip(".") for extension in AUDIO_EXTENSIONS], key="tr_upload"
    )
    recording = st.audio_input("…or record", key="tr_record")
    settings = st.columns(2)
    timed = settings[0].checkbox("Time every word", key="tr_words", help="and play the audio from a chosen word")
    follow("tr_accurate", model, not is_toy(model))  # each model starts at its own default: greedy for the toy
    accurate = settings[1].checkbox(
        "Beam search with temperature fallback",
        key="tr_accurate",
        help="faster-whisper's defaults for files: 5 beams, a window that loops or is unsure is decoded again at a "
        "higher temperature; off: greedy, one pass (faster; what the microphone uses and the demo model's default)",
    )
    audio = upload or recording
    if audio is not None:
        data, name = audio.getvalue(), getattr(audio, "name", "recording.wav")
        options = file_options(accurate)
        columns = st.columns(2 if ab else 1)
        for index, (column, shown) in enumerate(zip(columns, [label, label_b] if ab else [label])):
            with column, user_errors():
                st.caption(f"**{shown}**")
                made = timed_transcript_of if timed else transcript_of
                transcript = made(data, name, choices[shown], whisper_language, task, options)
                language_advice(transcript, usual)
                show_transcript(transcript, key=f"download-{index}")
                word_player(data, transcript, key=f"words-{index}")
                if index == 0:  # the first model's text is the one to correct
                    digest = hashlib.sha1(data).hexdigest()
                    keep_box(data, transcript.text, whisper_language or transcript.language, f"keep-{digest}")

with live_tab:
    st.caption(
        "Speak: utterances are cut at pauses; partial text appears while you speak. On localhost no ICE "
        "servers are needed. Off localhost the browser allows the microphone only over HTTPS."
    )
    with user_errors():
        session = live_session("live_session", model, whisper_language, task)
        streamer = microphone("live-mic", session)
        playing = bool(streamer and streamer.state.playing)  # a start or stop reruns the whole page
        listening = playing or session.working

        def live_text() -> None:
            if listening and not playing and not session.working:
                st.rerun()  # stopped and transcribed: the list below takes the last utterance, the polling stops
            snapshot = session.snapshot()
            st.caption(snapshot.shown_level)
            if snapshot.partial:
                st.markdown(f"_{snapshot.partial}_")
            for utterance in reversed(snapshot.utterances[-20:]):
                said = f"⚠ {utterance.error}" if utterance.error else f"**{utterance.text or '(nothing recognised)'}**"
                st.markdown(
                    f"{said}  \n"
                    f"<small>{utterance.start_s:.1f}–{utterance.end_s:.1f} s · final text "
                    f"{utterance.latency_s:.2f} s after speech ended</small>",
                    unsafe_allow_html=True,
                )

        # polled twice a second while the microphone streams or its last words are transcribed, never otherwise:
        # a timer on an idle page is a chance for Streamlit's frontend to draw at a stale position (a blank page)
        st.fragment(run_every=0.5 if listening else None)(live_text)()
        finished = [u for u in session.snapshot().utterances if u.text and len(u.audio)]
        if finished:  # as of this rerun: the list above grows while you speak
            chosen = st.selectbox(
                "Utterance to correct",
                range(len(finished)),
                len(finished) - 1,
                format_func=lambda i: f"{finished[i].start_s:.1f} s · {finished[i].text}",
                key="tr_live_pick",
            )
            keep_box(finished[chosen].audio, finished[chosen].text, whisper_language, f"keep-live-{chosen}")
