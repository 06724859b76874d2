"""The Data page's source chooser: synthetic speech, your own voice (app/recorder.py), a local folder or a Hub
dataset, as arguments for `core.sources.open_source`. Only widgets here; every decision (layouts, presets, where
Common Voice went) is core's."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.model_cache import window_seconds
from app.recorder import record_source
from app.tab_state import secret
from app.widgets import user_errors
from core.audio import WINDOW_SECONDS
from core.data import (
    COMMON_VOICE_MOVED,
    LAYOUTS,
    PRESETS,
    SynthSpec,
    default_kind,
    detect_layout,
    kind_for_window,
    synthesize_dataset,
)
from core.errors import StudioError
from core.languages import Language
from core.workspace import Workspace

SOURCE_KINDS = ["Synthetic speech", "Record my voice", "Local folder", "Hugging Face Hub"]
# what to do above before there is anything to preview and prepare, for each kind of source
WAITING = {
    "Synthetic speech": "Generate the speech above (Generate with espeak-ng), then preview and prepare it here.",
    "Record my voice": "Add prompts above and keep a take, then preview and prepare the set here.",
    "Local folder": "Give a folder above, then preview and prepare it here.",
    "Hugging Face Hub": "Choose a dataset above, then preview and prepare it here.",
}
COMMON_VOICE = "common_voice"


def pick_source(kind: str, ws: Workspace, language: Language, model: str) -> tuple[dict, bool]:
    """(the source and its `SourceSpec` fields, or {} while none is chosen; whether to stream the training split).
    `model` is the base model the set is for: synthetic speech is made to fit its window."""
    if kind == "Synthetic speech":
        return _synthetic(ws, language, model), False
    if kind == "Record my voice":
        return record_source(ws, language), False
    if kind == "Local folder":
        return _folder(), False
    return _hub()


def _synthetic(ws: Workspace, language: Language, model: str) -> dict:
    try:
        window = window_seconds(model, str(ws.home))
    except StudioError:  # a model that cannot be loaded here (offline): Whisper's window; prepare says the rest
        window = WINDOW_SECONDS
    kind = kind_for_window(language, window)
    # persist_state: the set stays chosen while another source is looked at, and after a visit to another page
    n = st.number_input(
        "Utterances",
        10,
        20000,
        300,
        step=50,
        help="10% test and 10% validation, split by text",
        key="synth_n",
        persist_state="session",
    )
    seed = st.number_input("Seed", 0, 10**6, 0, key="synth_seed", persist_state="session")
    if kind == "sentences":
        st.caption("Everyday sentences from templates")
    elif kind == default_kind(language):
        st.caption("1–4 words from the language's word list")
    else:
        st.caption(
            f"1–4 words from the language's word list: the model listens {window:g} s at a time, too short "
            "for whole sentences"
        )
    spec = SynthSpec(language=language.code, n=int(n), seed=int(seed), kind=kind)
    folder = ws.synth / spec.folder_name()
    if st.button("Generate with espeak-ng", icon=":material/record_voice_over:"):
        bar = st.progress(0.0)
        with user_errors():
            synthesize_dataset(
                language, folder, spec, progress=lambda d, t: bar.progress(d / t, text=f"synthesizing {d}/{t}")
            )
    if (folder / "synth.json").is_file():
        st.caption(f"Ready: `{folder}`")
        return {"source": str(folder)}
    return {}


def _folder() -> dict:
    path = st.text_input("Folder", placeholder="/data/cv-corpus-23.0/nb-NO", key="data_folder", persist_state="session")
    combine = st.checkbox("Train on train + validation", key="data_folder_combine", help=_COMBINE_HELP)
    if not path:
        return {}
    with user_errors():
        layout = detect_layout(Path(path).expanduser())
        st.success(f"Layout: **{layout}** — {LAYOUTS[layout]}")
        return {"source": path, "train_split": "train+validation" if combine else "train"}
    return {}


_COMBINE_HELP = "more training rows; a validation slice is then carved from the combined rows by transcript"


def _hub() -> tuple[dict, bool]:
    names = {**{p: PRESETS[p].description for p in PRESETS}, COMMON_VOICE: "Common Voice", "other": "another id"}
    preset = st.selectbox("Dataset", list(names), format_func=names.get, key="data_hub_preset")
    if preset == COMMON_VOICE:
        st.info(COMMON_VOICE_MOVED, icon=":material/info:")
        return {}, False
    dataset_id = st.text_input("Dataset id", "google/fleurs") if preset == "other" else preset
    config = st.text_input("Config", placeholder="filled in from the language for presets")
    split_a, split_b = st.columns(2)
    train_split = split_a.text_input("Train split", "train", help="train+validation trains on both")
    eval_split = split_b.text_input("Test split", "test")
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
    return source_args, stream_train
