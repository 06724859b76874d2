"""How numbers are shown to a person: one formatter per kind of number, used by the CLI, the pages and the model card.

A missing value is always MISSING ("–"), never `None`, `nan` or an empty cell.
"""

from __future__ import annotations

import math
import re
import time

MISSING = "–"


def _number(value) -> float | None:
    """A finite number, or None for anything that is not one (None, NaN, a string from a damaged file)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def percent(value: float | None, digits: int = 1) -> str:
    """0.1234 → '12.3%' (error rates are stored as fractions)."""
    number = _number(value)
    return MISSING if number is None else f"{100 * number:.{digits}f}%"


def points(before: float | None, after: float | None) -> str | None:
    """The change from `before` to `after` in percentage points ('-12.3 points'), None when either is missing."""
    a, b = _number(before), _number(after)
    return None if a is None or b is None else f"{100 * (b - a):+.1f} points"


def format_duration(seconds: float | None) -> str:
    """125 → '2m 05s'; 7300 → '2h 01m'."""
    number = _number(seconds)
    if number is None:
        return MISSING
    hours, rest = divmod(int(number), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def format_time(timestamp: float | None) -> str:
    """A Unix time as local date and time ('2026-12-01 22:14:58')."""
    number = _number(timestamp)
    return MISSING if number is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(number))


# Terminal escape sequences (colours, tqdm's cursor-up `ESC[A`) and other control characters never reach a page
_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def log_lines(text: str) -> list[str]:
    """A log as a person reads it: tqdm's carriage-return redraws reduced to their final state, terminal escapes and
    control characters removed, blank lines dropped."""
    lines = (_CONTROL.sub("", _ANSI.sub("", line.rstrip("\r").split("\r")[-1])) for line in text.split("\n"))
    return [line for line in lines if line.strip()]


# what libraries write to a log for their developers (deprecations, attention-mask notes, thread settings): kept in
# train.log, left out of what a person watching the run reads
LIBRARY_NOISE = re.compile(
    r"^\[[\w.]+\] "  # a library logger's line: "[transformers] …", "[transformers.generation.utils] WARNING: …"
    r"|^\S+:\d+: \w*Warning: "  # a Python warning: "FILE:LINE: FutureWarning: …"
    r"|^\s+warnings\.warn\("  # …and the source line Python prints under it
    r"|^(\[rank\d+\]:)?\[?W\d{4} "  # torch's C++ warnings: "W1204 07:56:02…", "[rank0]:[W1204 …"
    r"|^\[[\d\- :,]+\] \[WARNING\] "  # "[2026-12-04 07:57:19,828] [WARNING] [real_accelerator.py…]"
)


def readable_lines(lines: list[str]) -> list[str]:
    """Log lines without the libraries' warnings (LIBRARY_NOISE): the run's own progress, errors and tracebacks."""
    return [line for line in lines if not LIBRARY_NOISE.search(line)]
