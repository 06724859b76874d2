"""Loaded models for the Transcribe page: at most two in memory (A/B), the least recently used released first."""

from __future__ import annotations

import gc
import json
import os

import streamlit as st

from app.common import workspace
from core.evaluation import checkpoint_choices
from core.models import DEFAULT_MODEL, DEMO
from core.speech import Transcriber

ICE_SERVERS_ENV = "STUDIO_ICE_SERVERS"  # JSON list of RTCIceServer dicts; empty by default (localhost needs none)


@st.cache_resource(max_entries=2, show_spinner="Loading the model…")
def transcriber(model: str) -> Transcriber:
    gc.collect()  # an evicted model's tensors go now, not at some later collection
    return Transcriber(model, workspace())


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
