"""What every page shares: the workspace, the session-state keys, error and success display, secrets, formatting.

Session state holds only what one browser tab is looking at (the selected dataset and run); everything else is read
from the workspace, so a refresh, a second tab or a restarted server sees the same runs.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import streamlit as st

from core.errors import StudioError, os_error_line
from core.languages import LANGUAGES, Language
from core.option_fields import in_labels
from core.workspace import Workspace

SELECTED_DATASET = "selected_dataset"
SELECTED_RUN = "selected_run"


def workspace() -> Workspace:
    """The workspace of this server: STUDIO_HOME or ./workspace (the same one the CLI uses)."""
    return Workspace.open(os.environ.get("STUDIO_HOME"))


@contextmanager
def user_errors(labels: type | None = None):
    """Show a StudioError (or a file-system error a user can fix) as one st.error line instead of a traceback; with
    `labels` (an options dataclass), the fields it names read as the form's labels ('learning rate', not
    'learning_rate')."""
    try:
        yield
    except StudioError as err:
        st.error(in_labels(str(err), labels) if labels else str(err), icon=":material/error:")
    except OSError as err:
        line = os_error_line(err)
        if line is None:
            raise
        st.error(line, icon=":material/error:")


DEMO_JOB = "demo"  # the offline demo as a background command job (the sidebar starts it)
FLASH = "flash_message"


def flash(message: str) -> None:
    """A success line to show after the st.rerun() that follows an action (shown once, by show_flash)."""
    st.session_state[FLASH] = message


def show_flash() -> None:
    message = st.session_state.pop(FLASH, None)
    if message:
        st.success(message, icon=":material/check_circle:")


def device_summary() -> str:
    import torch

    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        return f"{torch.cuda.get_device_name(0)} · {free / 2**30:.1f} of {total / 2**30:.0f} GiB free"
    return f"CPU · {os.cpu_count()} cores"


def secret(name: str) -> str | None:
    """A key from the environment, else from Streamlit secrets; never shown, logged or written anywhere."""
    if os.environ.get(name):
        return os.environ[name]
    try:
        return st.secrets.get(name) or None
    except FileNotFoundError:  # no secrets.toml (StreamlitSecretNotFoundError): Streamlit raises, not returns None
        return None


def progress_callback(bar):
    """A core progress callback (label, done, total) drawing onto one st.progress bar."""

    def update(label, done: int, total: int | None = None) -> None:
        fraction = min(done / total, 1.0) if total else 0.0
        bar.progress(fraction, text=f"{label}: {done}" + (f"/{total}" if total else ""))

    return update


def language_picker(key: str, default: str | None = None) -> tuple[str | None, Language]:
    """A language select box with auto-detect first, at `default` (our code: the workspace's language) until the
    user chooses: (Whisper's code or None for auto, the Language for the rest of the page — English when auto, for
    espeak-ng and text cleaning). It keeps the choice across pages."""
    options = ["auto", *LANGUAGES]
    # a value already in session state (kept from another page, or set by a "this language" button) is the
    # widget's; a default beside it would be ignored, with a warning and its stack in the log
    chosen = key in st.session_state
    code = st.selectbox(
        "Language",
        options,
        index=None if chosen else options.index(default) if default in LANGUAGES else 0,
        key=key,
        format_func=lambda c: "auto-detect" if c == "auto" else f"{LANGUAGES[c].name} ({c})",
        persist_state="session",
    )
    return (None if code == "auto" else LANGUAGES[code].whisper), LANGUAGES.get(code, LANGUAGES["en"])


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
