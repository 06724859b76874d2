"""Data: pick a source and a language, let the doctor look at it, clean the text, prepare features."""

from dataclasses import fields

import pandas as pd
import streamlit as st

from app.doctor_view import show_report
from app.review import review_section
from app.source_picker import SOURCE_KINDS, WAITING, pick_source
from app.tab_state import SELECTED_DATASET, workspace
from app.widgets import progress_callback, user_errors
from core.data import (
    SPLIT_RULES,
    TASKS,
    DoctorSample,
    MixedSource,
    Preparation,
    PrepareOptions,
    SourceSpec,
    examine,
    list_artifacts,
    list_recordings,
    open_artifact,
    open_source,
)
from core.errors import DamagedFile
from core.formatting import format_duration
from core.languages import LANGUAGES, PRESETS
from core.models import BASE_MODELS
from core.text import CleaningOptions

DOCTOR = "doctor"  # (what was examined, the report): shown only while that is what the page is set to

ws = workspace()
st.title("Data")
st.caption("Source → preview and doctor → cleaning → features on disk, reused by every run.")

# persist_state: the choices stay when the user comes back from another page
kind = (
    st.segmented_control("Source", SOURCE_KINDS, default=SOURCE_KINDS[0], key="data_kind", persist_state="session")
    or SOURCE_KINDS[0]
)
left, right = st.columns(2)
codes = [*PRESETS, *sorted((c for c in LANGUAGES if c not in PRESETS), key=lambda c: LANGUAGES[c].name)]
code = right.selectbox(
    "Language",
    codes,
    key="data_language",
    persist_state="session",
    format_func=lambda c: f"{LANGUAGES[c].name} ({c}) → Whisper {LANGUAGES[c].whisper_token}",
    help=f"the {len(PRESETS)} tested presets first, then all of Whisper's {len(LANGUAGES)} languages",
)
language = LANGUAGES[code]
model_label = right.selectbox(
    "Base model you will train",
    [*BASE_MODELS, "another Hub id or folder"],
    key="data_model",
    persist_state="session",
    help="its processor makes the features: mel bins, window length (30 s for Whisper, 3 s for demo), tokenizer",
)
model = BASE_MODELS.get(model_label) or right.text_input(
    "Model", placeholder="openai/whisper-medium or a folder", key="data_model_id", persist_state="session"
)
task = right.segmented_control(
    "Task",
    TASKS,
    default="transcribe",
    key="data_task",
    help="translate: speech in the language → English text",
    persist_state="session",
)
with left:
    source_args, stream_train = pick_source(kind, ws, language, model)
    interleave = st.text_input(
        "Interleave with (optional)", key="data_interleave", placeholder="another folder or Hub id, same language"
    )

st.subheader("Cleaning and limits")
c1, c2, c3, c4, c5 = st.columns(5)
cleaning = CleaningOptions(lowercase=c1.checkbox("Lowercase"), strip_punctuation=c2.checkbox("Strip punctuation"))
max_train = c3.number_input("Max train rows (0 = all)", 0, 10**7, 0, help="a seeded random subset")
fraction = c4.number_input("Train fraction", 0.01, 1.0, 1.0, step=0.05, help="a seeded random share of train")
max_eval = c5.number_input("Max eval rows (0 = all)", 0, 10**7, 0)
help_of = {f.name: f.metadata.get("help", "") for f in fields(PrepareOptions)}
s1, s2, s3, s4 = st.columns(4)
split_by = s1.segmented_control(
    "Split test and validation by", SPLIT_RULES, default="text", key="data_split_by", help=help_of["split_by"]
)
validation = s2.number_input(
    "Validation share", 0.0, 0.49, PrepareOptions.validation_fraction, 0.05, help=help_of["validation_fraction"]
)
no_speech = s3.number_input("No-speech rows (share of train)", 0.0, 0.45, 0.0, 0.05, help=help_of["no_speech_fraction"])
timestamped = s4.number_input("Timestamped labels (share)", 0.0, 1.0, 0.0, 0.1, help=help_of["timestamp_fraction"])
options = PrepareOptions(
    split_by=split_by or "text",
    validation_fraction=validation,
    max_train_samples=max_train or None,
    max_eval_samples=max_eval or None,
    cleaning=cleaning,
    stream_train=stream_train,
    task=task or "transcribe",
    train_fraction=fraction if fraction < 1 else None,
    no_speech_fraction=no_speech,
    timestamp_fraction=timestamped,
)


def chosen_source():
    spec = SourceSpec(**{k: v for k, v in source_args.items() if k != "source"})  # the picker's other fields
    first = open_source(source_args["source"], language, spec)
    return MixedSource([first, open_source(interleave, language)]) if interleave else first


if source_args:
    preview, prepare = st.tabs(["Preview and doctor", "Prepare features"])
    looked_at = repr((kind, source_args.get("source"), interleave, model, code, options))  # what a report is of
    with preview:
        if st.button("Examine the first rows", icon=":material/stethoscope:"):
            bar = st.progress(0.0)
            with user_errors():
                sample = DoctorSample(limit=100, progress=progress_callback(bar))
                report = examine(chosen_source(), language, model, ws, options, sample)
                st.session_state[DOCTOR] = (looked_at, report)
            bar.empty()  # done: the report below says what was read
        shown = st.session_state.get(DOCTOR)
        if shown and shown[0] == looked_at:  # a report of another source, model or language is not this one's
            show_report(shown[1])
    with prepare:
        name = st.text_input("Dataset name", f"{code}-{kind.split()[0].lower()}", key="data_name")
        overwrite = st.checkbox("Replace a dataset of this name made from other inputs")
        if st.button("Prepare features", type="primary", icon=":material/memory:"):
            bar = st.progress(0.0)
            with user_errors():
                preparation = Preparation(overwrite=overwrite, progress=progress_callback(bar))
                artifact = preparation.prepare(chosen_source(), language, model, name, ws, options)
                st.session_state[SELECTED_DATASET] = artifact.name
                st.success(f"{'Reused' if artifact.reused else 'Prepared'} **{artifact.name}**")
                dropped = artifact.manifest.dropped_rows_line()
                if dropped:
                    st.info(dropped, icon=":material/filter_alt:")
                for warning in artifact.manifest.warnings() + artifact.manifest.small_split_warnings():
                    st.warning(warning, icon=":material/warning:")
else:
    st.info(WAITING[kind], icon=":material/arrow_upward:")

st.subheader("Prepared datasets")
names = list_artifacts(ws)
if not names:
    st.caption("No dataset prepared yet.")
for name in names:
    try:
        manifest = open_artifact(ws, name).manifest
    except DamagedFile as err:
        st.error(f"**{name}** · damaged: {err}", icon=":material/broken_image:")
        continue
    splits = ", ".join(
        f"{s} {c.rows} row{'s' * (c.rows != 1)} ({format_duration(3600 * c.hours)})" for s, c in manifest.splits.items()
    )
    with st.expander(f"**{name}** · {manifest.language} · {manifest.model} · {splits}"):
        for warning in manifest.warnings():
            st.warning(warning, icon=":material/warning:")
        st.caption(manifest.made_from())
        st.dataframe(pd.DataFrame(manifest.split_table()), hide_index=True, width="stretch")
        if st.button("Use this dataset", key=f"use-{name}"):
            st.session_state[SELECTED_DATASET] = name

st.subheader("Recordings")
recordings = list_recordings(ws)
if not recordings:
    st.caption(
        "No recording set yet: record your voice (Record my voice), or keep a corrected transcript on Transcribe."
    )
for rec in recordings:
    if rec.damaged:
        st.error(f"**{rec.name}** · damaged: {rec.damaged}", icon=":material/broken_image:")
        continue
    takes = f"{rec.takes} take{'s' * (rec.takes != 1)} · {format_duration(rec.seconds)} of audio"
    speakers = f"{len(rec.speakers)} speaker{'s' * (len(rec.speakers) != 1)}"
    st.markdown(f"**{rec.name}** · {rec.language} · {takes} · {speakers} · {rec.bytes / 2**20:.1f} MiB")

review_section(ws)  # pseudo-labels a label run sent to a person (app/review.py)
