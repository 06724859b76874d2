"""The one error type for user mistakes.

`StudioError` carries a message for a person: it names the problem and the fix (and lists valid choices where there
are some). The CLI prints it as one `error: …` line and exits 2; the pages show it with `st.error`. Anything else
that escapes is a bug in Whisper Studio, not a user mistake.
"""


class StudioError(Exception):
    """A problem the user can fix; `str(err)` is the one line to show them."""


class DamagedFile(StudioError):
    """A file Whisper Studio wrote that exists but cannot be read (cut short by a power cut or a full disk, emptied,
    edited by hand); the message names the file and what to do. Readers report it and never write over it."""
