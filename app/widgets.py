"""The widgets every page shares: errors as one line instead of a traceback, the language box, a progress bar for
core's progress callbacks, and the device line."""

from __future__ import annotations

import os
from contextlib import contextmanager

import streamlit as st

from core.errors import StudioError, os_error_line
from core.languages import LANGUAGES, Language
from core.option_fields import in_labels


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


def progress_callback(bar):
    """A core progress callback (label, done, total) drawing onto one st.progress bar."""

    def update(label, done: int, total: int | None = None) -> None:
        fraction = min(done / total, 1.0) if total else 0.0
        bar.progress(fraction, text=f"{label}: {done}" + (f"/{total}" if total else ""))

    return update


def device_summary() -> str:
    import torch

    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        return f"{torch.cuda.get_device_name(0)} · {free / 2**30:.1f} of {total / 2**30:.0f} GiB free"
    return f"CPU · {os.cpu_count()} cores"
