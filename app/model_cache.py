"""Loaded models for the Transcribe and Conversation pages (at most two in memory, for A/B; the least recently used
released first) and the transcripts they made in this tab (each decode once per audio, model and options)."""

from __future__ import annotations

import gc
import hashlib
import json
import os

import streamlit as st

from app.tab_state import workspace
from core.evaluation import checkpoint_choices
from core.models import DEFAULT_MODEL, DEMO, load_processor
from core.speech import DecodingOptions, Transcriber, Transcript
from core.workspace import Workspace

ICE_SERVERS_ENV = "STUDIO_ICE_SERVERS"  # JSON list of RTCIceServer dicts; empty by default (localhost needs none)


TRANSCRIPTS = "transcripts"  # (audio digest, model, language, task, options[, "words"]) → Transcript, in this tab
KEPT_TRANSCRIPTS = 8  # a few files' worth, both models of an A/B, with and without timed words


@st.cache_resource(max_entries=2, show_spinner="Loading the model…")
def transcriber(model: str) -> Transcriber:
    gc.collect()  # an evicted model's tensors go now, not at some later collection
    return Transcriber(model, workspace())


@st.cache_data(show_spinner=False, max_entries=16)
def window_seconds(model: str, home: str) -> float:
    """How long `model` listens at a time, in seconds (30 for Whisper, 3 for the demo), from its processor (a second
    to load: kept)."""
    return float(load_processor(model, Workspace.open(home)).feature_extractor.chunk_length)


def model_choices() -> dict[str, str]:
    """Label → location: whisper-base first (the default), every run's checkpoints (best marked), each run's base
    model, and the demo."""
    choices = {"whisper-base · OpenAI, installed (CTranslate2 int8)": DEFAULT_MODEL}
    for label, location in checkpoint_choices(workspace()).items():
        if location not in choices.values():
            choices[label] = location
    choices.setdefault("base: demo (untrained)", DEMO)
    return choices


def ice_servers() -> list[dict]:
    """No STUN/TURN servers unless configured: on localhost the browser and server connect directly."""
    raw = os.environ.get(ICE_SERVERS_ENV, "")
    try:
        return json.loads(raw) if raw else []
    except json.JSONDecodeError:
        st.warning(f"{ICE_SERVERS_ENV} is not valid JSON; using no ICE servers")
        return []


def transcript_of(
    data: bytes, name: str, model: str, language: str | None, task: str, options: DecodingOptions | None = None
) -> Transcript:
    """The transcript of an audio file's bytes, decoded once per tab for this model, language, task and options:
    every later rerun (a download, another widget, a click) shows the same one instead of decoding again."""
    done = st.session_state.setdefault(TRANSCRIPTS, {})
    wanted = (hashlib.sha1(data).hexdigest(), model, language, task, options)
    if wanted not in done:
        with st.spinner("Transcribing…"):
            made = transcriber(model).transcribe_file(data, name=name, language=language, task=task, options=options)
            # kept before the spinner closes, Streamlit's first chance to stop this run for a newer one: the next run
            # finds the decode made instead of starting it again
            _keep(done, wanted, made)
    return done[wanted]


def timed_transcript_of(data: bytes, name: str, model: str, language: str | None, task: str, options) -> Transcript:
    """`transcript_of` with every word timed: the same text (the words are aligned, not decoded again)."""
    done = st.session_state.setdefault(TRANSCRIPTS, {})
    plain = transcript_of(data, name, model, language, task, options)
    wanted = (hashlib.sha1(data).hexdigest(), model, language, task, options, "words")
    if wanted not in done:
        with st.spinner("Timing the words…"):
            _keep(done, wanted, transcriber(model).time_words(data, plain, options, task))
    return done[wanted]


def _keep(done: dict, key, transcript: Transcript) -> None:
    done[key] = transcript
    while len(done) > KEPT_TRANSCRIPTS:  # the oldest goes: session state is per tab, in memory
        done.pop(next(iter(done)))
