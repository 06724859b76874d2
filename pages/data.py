"""Data: pick a source and a language, let the doctor look at it, clean the text, prepare features."""

from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from app.common import SELECTED_DATASET, progress_callback, secret, user_errors, workspace
from core.doctor import duration_histogram, examine
from core.features import PrepareOptions, list_artifacts, open_artifact, overlap_warnings, prepare_features
from core.folders import LAYOUTS, detect_layout
from core.hub import PRESETS
from core.languages import LANGUAGES
from core.models import BASE_MODELS
from core.sources import open_source
from core.synth import SynthSpec, synthesize_dataset
from core.text import CleaningOptions

ws = workspace()
st.title("Data")
st.caption("Source → preview and doctor → cleaning → features on disk, reused by every run.")

kind = (
    st.segmented_control(
        "Source", ["Synthetic speech", "Local folder", "Hugging Face Hub"], default="Synthetic speech", key="data_kind"
    )
    or "Synthetic speech"
)
left, right = st.columns(2)
code = right.selectbox(
    "Language",
    list(LANGUAGES),
    key="data_language",
    format_func=lambda c: f"{LANGUAGES[c].name} ({c}) → Whisper {LANGUAGES[c].whisper_token}",
)
language = LANGUAGES[code]
model_label = right.selectbox(
    "Base model you will train",
    [*BASE_MODELS, "another Hub id or folder"],
    key="data_model",
    help="its processor makes the features: mel bins, window length (30 s for Whisper, 3 s for demo), tokenizer",
)
model = BASE_MODELS.get(model_label) or right.text_input("Model", placeholder="openai/whisper-medium or a folder")
source_args: dict = {}
stream_train = False
with left:
    if kind == "Synthetic speech":
        n = st.number_input("Utterances", 10, 20000, 300, step=50, help="10% become the test split")
        seed = st.number_input("Seed", 0, 10**6, 0)
        folder = ws.synth / f"{code}-{n}-{seed}"
        if st.button("Generate with espeak-ng", icon=":material/record_voice_over:"):
            bar = st.progress(0.0)
            with user_errors():
                synthesize_dataset(
                    language,
                    folder,
                    SynthSpec(language=code, n=int(n), seed=int(seed)),
                    progress=lambda d, t: bar.progress(d / t, text=f"synthesizing {d}/{t}"),
                )
        if (folder / "synth.json").is_file():
            source_args = {"source": str(folder)}
            st.caption(f"Ready: `{folder}`")
    elif kind == "Local folder":
        path = st.text_input("Folder", placeholder="/data/cv-corpus-17.0/nb-NO", key="data_folder")
        if path:
            with user_errors():
                layout = detect_layout(Path(path).expanduser())
                st.success(f"Layout: **{layout}** — {LAYOUTS[layout]}")
                source_args = {"source": path}
    else:
        preset = st.selectbox(
            "Dataset",
            [*PRESETS, "other"],
            format_func=lambda p: PRESETS[p].description if p in PRESETS else "another Hub dataset id",
        )
        dataset_id = st.text_input("Dataset id", "google/fleurs") if preset == "other" else preset
        config = st.text_input("Config", placeholder="filled in from the language for presets")
        split_a, split_b = st.columns(2)
        train_split = split_a.text_input("Train split", "train")
        eval_split = split_b.text_input("Evaluation split", "test")
        streaming = st.checkbox(
            "Stream (for sets too big for the disk)", value=PRESETS[preset].streaming if preset in PRESETS else False
        )
        text_column = st.text_input("Text column", placeholder="detected")
        stream_train = st.checkbox(
            "Store no training features: training reads the source as it goes",
            help="for sets too big for the disk; evaluation splits are still stored",
        )
        st.caption(
            "HF_TOKEN found: gated datasets work."
            if secret("HF_TOKEN")
            else "No HF_TOKEN in the environment or secrets: public datasets only."
        )
        source_args = {
            "source": dataset_id,
            "config": config or None,
            "streaming": streaming,
            "text_column": text_column or None,
            "train_split": train_split,
            "eval_split": eval_split,
            "token": secret("HF_TOKEN"),
        }

st.subheader("Cleaning and limits")
c1, c2, c3, c4 = st.columns(4)
cleaning = CleaningOptions(lowercase=c1.checkbox("Lowercase"), strip_punctuation=c2.checkbox("Strip punctuation"))
max_train = c3.number_input("Max train rows (0 = all)", 0, 10**7, 0)
max_eval = c4.number_input("Max eval rows (0 = all)", 0, 10**7, 0)
options = PrepareOptions(
    max_train_samples=max_train or None, max_eval_samples=max_eval or None, cleaning=cleaning, stream_train=stream_train
)

if source_args:
    preview, prepare = st.tabs(["Preview and doctor", "Prepare features"])
    with preview:
        if st.button("Examine the first rows", icon=":material/stethoscope:"):
            bar = st.progress(0.0)
            with user_errors():
                source = open_source(language=language, **source_args)
                st.session_state["doctor"] = examine(
                    source, language, model, ws, options, limit=100, progress=progress_callback(bar)
                )
        report = st.session_state.get("doctor")
        if report:
            m1, m2, m3 = st.columns(3)
            m1.metric("Rows examined", len(report.rows))
            m2.metric("Audio", f"{report.seconds / 60:.1f} min")
            m3.metric("Problems", len(report.problems))
            for problem in report.problems:
                st.warning(
                    f"**{problem.name}**: {problem.rows} rows. {problem.advice}.  \ne.g. {'; '.join(problem.examples)}"
                )
            if not report.problems:
                st.success("No problems found in the rows examined.")
            histogram = pd.DataFrame(duration_histogram(report))
            if not histogram.empty:
                st.altair_chart(
                    alt.Chart(histogram, title="Durations")
                    .mark_bar()
                    .encode(x=alt.X("seconds:O", title="seconds (bin start)"), y=alt.Y("rows:Q", title="rows")),
                    width="stretch",
                )
            table = pd.DataFrame([{k: v for k, v in r.items() if k != "audio"} for r in report.rows])
            st.dataframe(table, width="stretch", hide_index=True, height=260)
            with st.expander("Listen to the first rows"):
                for row in report.rows[:8]:
                    st.caption(f"{row['split']} · {row['id']} · {row['text']}")
                    audio = row["audio"]
                    st.audio(audio if isinstance(audio, bytes) else str(audio))
    with prepare:
        name = st.text_input("Dataset name", f"{code}-{kind.split()[0].lower()}", key="data_name")
        overwrite = st.checkbox("Replace a dataset of this name made from other inputs")
        if st.button("Prepare features", type="primary", icon=":material/memory:"):
            bar = st.progress(0.0)
            with user_errors():
                artifact = prepare_features(
                    open_source(language=language, **source_args),
                    language,
                    model,
                    name,
                    ws,
                    options,
                    overwrite=overwrite,
                    progress=progress_callback(bar),
                )
                st.session_state[SELECTED_DATASET] = artifact.name
                st.success(f"{'Reused' if artifact.reused else 'Prepared'} **{artifact.name}**")
                for warning in overlap_warnings(artifact.manifest):
                    st.warning(warning, icon=":material/warning:")
else:
    st.info("Choose a source above to preview and prepare it.")

st.subheader("Prepared datasets")
names = list_artifacts(ws)
if not names:
    st.caption("None yet.")
for name in names:
    manifest = open_artifact(ws, name).manifest
    splits = ", ".join(f"{s} {c['rows']} rows ({c['hours'] * 60:.1f} min)" for s, c in manifest["splits"].items())
    with st.expander(f"**{name}** · {manifest['language']} · {manifest['model']} · {splits}"):
        for warning in overlap_warnings(manifest):
            st.warning(warning, icon=":material/warning:")
        st.json(manifest, expanded=False)
        if st.button("Use this dataset", key=f"use-{name}"):
            st.session_state[SELECTED_DATASET] = name
