"""The one error type for user mistakes.

`StudioError` carries a message for a person: it names the problem and the fix (and lists valid choices where there
are some). The CLI prints it as one `error: …` line and exits 2; the pages show it with `st.error`. Anything else
that escapes is a bug in Whisper Studio, not a user mistake; a file-system error a user can fix (a full disk, a
read-only folder) is told as one line too (`os_error_line`).
"""

import errno


class StudioError(Exception):
    """A problem the user can fix; `str(err)` is the one line to show them."""


class DamagedFile(StudioError):
    """A file Whisper Studio wrote that exists but cannot be read (cut short by a power cut or a full disk, emptied,
    edited by hand); the message names the file and what to do. Readers report it and never write over it."""


# What a person can do about the file-system errors they cause or meet (a full disk, a read-only mount, a file
# where a folder belongs): errno → the fix.
OS_ERROR_FIXES = {
    errno.ENOSPC: "the disk is full: free some space, or give --home a folder on another disk",
    errno.EDQUOT: "the disk quota is used up: free some space, or give --home a folder on another disk",
    errno.EROFS: "the file system is read-only: give --home (or --out) a writable folder",
    errno.EACCES: "permission denied: give --home (or --out) a folder you can write to",
    errno.EPERM: "permission denied: give --home (or --out) a folder you can write to",
    errno.ENOTDIR: "a file stands where a folder belongs: give --home (or --out) a folder",
    errno.EEXIST: "a file stands where a folder belongs: give --out a folder, or remove the file",
    errno.EISDIR: "a folder stands where a file belongs: give the path of a file",
    errno.ENAMETOOLONG: "the name is too long for the file system: choose a shorter name",
}


def os_error_line(err: OSError) -> str | None:
    """One line for a file-system error a user can fix (None for others, which are bugs to report as such)."""
    fix = OS_ERROR_FIXES.get(err.errno)
    if fix is None:
        return None
    where = f"{err.filename}: " if err.filename else ""
    return f"{where}{err.strerror or err}; {fix}"
