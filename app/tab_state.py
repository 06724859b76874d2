"""What one browser tab keeps and reads: the workspace, the session-state keys (the selected dataset and run),
secrets, a success line shown after a rerun, widgets that follow their source, and the outcome of a button's action.

Session state holds only what one browser tab is looking at; everything else is read from the workspace, so a
refresh, a second tab or a restarted server sees the same runs.
"""

from __future__ import annotations

import os

import streamlit as st

from core.errors import StudioError, os_error_line
from core.workspace import Workspace

SELECTED_DATASET = "selected_dataset"
SELECTED_RUN = "selected_run"

DEMO_JOB = "demo"  # the offline demo as a background command job (the sidebar starts it)
FLASH = "flash_message"


def workspace() -> Workspace:
    """The workspace of this server: STUDIO_HOME or ./workspace (the same one the CLI uses)."""
    return Workspace.open(os.environ.get("STUDIO_HOME"))


def secret(name: str) -> str | None:
    """A key from the environment, else from Streamlit secrets; never shown, logged or written anywhere."""
    if os.environ.get(name):
        return os.environ[name]
    try:
        return st.secrets.get(name) or None
    except FileNotFoundError:  # no secrets.toml (StreamlitSecretNotFoundError): Streamlit raises, not returns None
        return None


def flash(message: str) -> None:
    """A success line to show after the st.rerun() that follows an action (shown once, by show_flash)."""
    st.session_state[FLASH] = message


def show_flash() -> None:
    message = st.session_state.pop(FLASH, None)
    if message:
        st.success(message, icon=":material/check_circle:")


def follow(key: str, source, value) -> None:
    """Give the widget `key` the value `value` whenever `source` (what that value is made from) changes: a box that
    holds a transcript is the transcript shown above it, a switch whose default depends on the model takes the new
    model's default. Call it before the widget, and create the widget without a value of its own."""
    made_for = f"{key}:made-for"
    if st.session_state.get(made_for) != source or key not in st.session_state:
        st.session_state[made_for] = source
        st.session_state[key] = value


def action(outcome_key: str, do, *args):
    """An on_click callback that runs `do(*args)` and keeps its outcome for `show_outcome(outcome_key)`: a success
    line (what `do` returns) or the error's one line. A callback runs as soon as the click reaches the server, before
    the page runs again, so no slow or interrupted rerun can lose the click."""

    def run() -> None:
        try:
            st.session_state[outcome_key] = ("success", do(*args))
        except StudioError as err:
            st.session_state[outcome_key] = ("error", str(err))
        except OSError as err:
            line = os_error_line(err)
            if line is None:
                raise
            st.session_state[outcome_key] = ("error", line)

    return run


def show_outcome(outcome_key: str, into=st) -> None:
    """The outcome an `action` kept, shown once."""
    kind, message = st.session_state.pop(outcome_key, (None, None))
    if kind == "success" and message:
        into.success(message, icon=":material/check_circle:")
    elif kind == "error":
        into.error(message, icon=":material/error:")
