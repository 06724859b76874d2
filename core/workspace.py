"""The workspace: the one folder that holds everything Whisper Studio writes.

Resolved from `--home`, else the `STUDIO_HOME` environment variable, else `./workspace`. Inside it:
`datasets/<name>/` (prepared feature artifacts), `models/<name>/` (local models such as `demo`), `runs/<run>/`
(training runs), `synth/<name>/` (generated speech folders).

Outside it, in folders of the user's (transcripts, a prompt list), a file is written only where none stands or where
one we wrote stands unchanged: each such folder keeps a small record of the files we wrote there, with their sha256
(`write_owned`, LEDGER_FILE).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import DamagedFile, StudioError

DEFAULT_HOME = "workspace"


def resolve_home(home: str | os.PathLike | None = None) -> Path:
    """The workspace folder: the explicit argument, else $STUDIO_HOME, else ./workspace (absolute)."""
    chosen = home or os.environ.get("STUDIO_HOME") or DEFAULT_HOME
    return Path(chosen).expanduser().resolve()


@dataclass(frozen=True)
class Workspace:
    """Paths inside one workspace folder; creating the object creates nothing on disk."""

    home: Path

    @classmethod
    def open(cls, home: str | os.PathLike | None = None) -> Workspace:
        """The workspace at `home` (made on first write); a file there is refused at once, naming the fix."""
        path = resolve_home(home)
        for folder in (path, *path.parents):
            if folder.exists() and not folder.is_dir():
                raise StudioError(f"workspace {path}: {folder} is a file, not a folder; give --home a folder")
            if folder.exists():
                break
        return cls(path)

    @property
    def datasets(self) -> Path:
        return self.home / "datasets"

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def runs(self) -> Path:
        return self.home / "runs"

    @property
    def synth(self) -> Path:
        return self.home / "synth"

    @property
    def evaluations(self) -> Path:
        """`python -m core evaluate`'s per-utterance results (a run's own live in its folder)."""
        return self.home / "evaluations"

    @property
    def jobs(self) -> Path:
        """Records of command jobs the pages started (prepare, export, label …)."""
        return self.home / "jobs"

    @property
    def labels(self) -> Path:
        """Pseudo-label sets: audio nobody transcribed, with the model's transcripts and their confidence."""
        return self.home / "labels"

    @property
    def recordings(self) -> Path:
        """Voice recording sets made in the browser."""
        return self.home / "recordings"

    @property
    def publish(self) -> Path:
        """Folders staged for the Hub, one per repository."""
        return self.home / "publish"

    def dataset(self, name: str) -> Path:
        return self.datasets / name

    def run(self, name: str) -> Path:
        return self.runs / name


NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
MAX_NAME_LENGTH = 100  # characters: far below a file system's 255-byte limit, with room for suffixes
NAME_HELP = f"use letters, digits, '-' and '_', starting with a letter or digit, at most {MAX_NAME_LENGTH} characters"


def check_new_name(name: str, what: str) -> str:
    """The rule for every name a user gives a new thing (a run, a dataset, a recording set): safe as a folder name,
    in a table and pasted into a shell. Returns the name; StudioError naming the rule otherwise."""
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or not NAME_RULE.fullmatch(name):
        shown = name if isinstance(name, str) and len(name) <= 40 else f"{str(name)[:40]}…"
        raise StudioError(f"{what} name {shown!r}: {NAME_HELP}")
    return name


def folder_name(name: str, what: str) -> str:
    """A name that may already exist (made by an earlier version, or by hand) as one folder of the workspace: any
    single path component that stays inside it. Refuses '..', '/', a leading '.' (our temporary folders)."""
    if not name or "/" in name or "\\" in name or name.startswith(".") or "\0" in name:
        raise StudioError(f"no {what} {name!r}: a {what} name is one folder name ({NAME_HELP})")
    return name


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """`data` into a temporary sibling, then renamed to `path`: a reader sees the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the file replaces an ordinary one
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that a reader sees the old file or the new one, never half of one (temp file + rename)."""
    write_bytes_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, default=str).encode("utf-8"))


def read_json(path: Path, default: Any = None, fix: str = "", expect: type | None = dict) -> Any:
    """A JSON file (an object, unless `expect` says otherwise); `default` when it does not exist. A file that exists
    but cannot be read as one raises DamagedFile naming it, with `fix` as the advice."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return default
    except IsADirectoryError:
        raise DamagedFile(f"{path} is a folder, not a file; {fix or 'remove it'}") from None
    advice = fix or "delete it to have it made again"
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        why = "empty" if not raw.strip() else "not valid JSON: cut short?"
        raise DamagedFile(f"{path} is damaged ({why}); {advice}") from None
    if expect is not None and not isinstance(data, expect):
        raise DamagedFile(f"{path} is damaged (a {type(data).__name__}, not a JSON {expect.__name__}); {advice}")
    return data


def read_json_if_intact(path: Path) -> Any:
    """A JSON object, or None when the file is missing or damaged: for markers, caches and records that are made
    again when they cannot be read."""
    try:
        return read_json(path)
    except DamagedFile:
        return None


@contextmanager
def staged_folder(final: Path, marker: str, tag: str = "") -> Iterator[Path]:
    """Build a folder in a temporary sibling and rename it to `final` when the block succeeds, so a reader sees the
    old folder or the complete new one, never a half-written one. On any failure, kill -9 aside, the temporary
    folder is removed; `tag` (a pid) lets a later run find and clean what a killed one left (`.NAME.TAG.*`).

    An existing `final` is replaced only when it is empty or holds `marker`, the file the caller writes into every
    folder of its kind (a dataset's manifest.json, an export's studio_export.json). Anything else is refused with
    StudioError before the block runs: no command removes a folder it did not make."""
    _check_replaceable(final, marker)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.{tag}." if tag else f".{final.name}.", dir=final.parent))
    os.chmod(staging, 0o755)  # mkdtemp makes it private; the finished folder is an ordinary one
    try:
        yield staging
        if final.exists() or final.is_symlink():
            _check_replaceable(final, marker)  # again: someone may have written there while the block ran
            trash = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, trash)
            if trash.is_symlink():
                trash.unlink()  # a link to our folder: the link goes, what it points to stays
            else:
                shutil.rmtree(trash, ignore_errors=True)
        os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_replaceable(final: Path, marker: str) -> None:
    """Raise StudioError unless `final` is absent, an empty folder, or a folder holding `marker`."""
    if not (final.exists() or final.is_symlink()):
        return
    if not final.is_dir():
        raise StudioError(f"{final} is a file, not a folder; choose another place or move the file away")
    if (final / marker).is_file() or not any(final.iterdir()):
        return
    raise StudioError(
        f"{final} exists and holds files Whisper Studio did not write (no {marker}); "
        f"choose another folder, or empty that one yourself"
    )


@contextmanager
def name_held(locks: Path, name: str, busy: str) -> Iterator[None]:
    """Hold `name` against other processes while the block runs (an flock on LOCKS/NAME.lock, let go if the process
    dies); a second holder is refused at once with `busy`, one line that says what is going on and what to do."""
    import fcntl

    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StudioError(busy) from None
        yield


def flock_within(lock, seconds: float | None) -> bool:
    """Take an exclusive flock on the open file `lock`, waiting `seconds` at most (None: as long as it takes); False
    when it stayed held. A holder paused or frozen while it holds the lock would otherwise hang the caller for good."""
    import fcntl
    import time

    if seconds is None:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return True
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def flock_holder(stat: os.stat_result) -> int | None:
    """The pid that holds an flock on the file `stat` describes, from Linux's /proc/locks; None where there is none
    (or no /proc/locks): a message can then name the process to continue or kill."""
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    file_id = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    for line in lines:
        fields = line.split()  # "1: FLOCK  ADVISORY  WRITE 1451 fe:00:2392124 0 EOF"; a waiter's has "->" after "1:"
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == file_id and fields[4].isdigit():
            return int(fields[4])
    return None


def pid_alive(pid: int | None) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not alive.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


LEDGER_FILE = ".whisper-studio-files.json"  # in a folder of the user's: the files we wrote there, with their sha256
LEDGER_MARK = "Whisper Studio"  # a ledger holds {"written_by": LEDGER_MARK, "files": {name: sha256}}


def _ledger(folder: Path) -> dict[str, str]:
    """The files we wrote into `folder` (name → sha256 of what we wrote); StudioError when a file of that name is
    not our ledger (it is the user's: we neither read nor replace it)."""
    path = folder / LEDGER_FILE
    if not (path.exists() or path.is_symlink()):
        return {}
    data = read_json_if_intact(path) if path.is_file() and not path.is_symlink() else None
    if not isinstance(data, dict) or data.get("written_by") != LEDGER_MARK or not isinstance(data.get("files"), dict):
        raise StudioError(
            f"{path} is not Whisper Studio's record of the files it wrote; move it away, or write elsewhere"
        )
    return {str(k): str(v) for k, v in data["files"].items()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def written_by_us(path: Path) -> bool:
    """Whether `path` is a file we wrote (`write_owned`) that nobody has changed since: one we may replace. A file
    we wrote and the user then edited is theirs."""
    recorded = _ledger(path.parent).get(path.name)
    return recorded is not None and path.is_file() and not path.is_symlink() and _sha256(path) == recorded


def check_free(paths: list[Path], fix: str) -> None:
    """Refuse, in one line naming the first, when any of `paths` exists and is not a file we wrote: called before
    any long work, so nothing is decoded or generated for a write that would be refused."""
    foreign = [p for p in dict.fromkeys(paths) if (p.exists() or p.is_symlink()) and not written_by_us(p)]
    if foreign:
        more = f" (and {len(foreign) - 1} more like it)" if len(foreign) > 1 else ""
        raise StudioError(f"{foreign[0]} exists and Whisper Studio did not write it{more}; {fix}")


def write_owned(path: Path, data: bytes, fix: str = "choose another place, or move the file away") -> Path:
    """`data` to `path` atomically, recorded in the folder's ledger so that a later run may replace it, and only it.
    A file that stands there and is not ours is refused (checked again here: it may have appeared meanwhile)."""
    check_free([path], fix)
    ledger = _ledger(path.parent)
    write_bytes_atomic(path, data)
    ledger = {name: sha for name, sha in ledger.items() if (path.parent / name).is_file()}  # forget removed ones
    ledger[path.name] = hashlib.sha256(data).hexdigest()
    # two writers into one folder at once may lose each other's entry: the file is then refused later, never lost
    write_json_atomic(path.parent / LEDGER_FILE, {"written_by": LEDGER_MARK, "files": ledger})
    return path


def writable_folder(folder: Path, flag: str = "--out") -> Path:
    """`folder`, made when missing; StudioError in one line when it cannot be made or written (a file in the way, a
    read-only or virtual file system, no permission): checked before long work, not after it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StudioError(f"{flag} {folder}: a file stands there, not a folder; give {flag} a folder") from None
    except OSError as err:
        raise StudioError(
            f"{flag} {folder}: cannot make this folder ({err.strerror}); give {flag} a folder you can write to"
        ) from None
    if not folder.is_dir():
        raise StudioError(f"{flag} {folder}: a file stands there, not a folder; give {flag} a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StudioError(f"{flag} {folder}: cannot write there (read-only or not yours); give {flag} another folder")
    return folder


def remove_abandoned_staging(parent: Path, name: str) -> list[Path]:
    """Delete the staging folders `.NAME.PID.*` that `staged_folder(…, tag=PID)` left in `parent` for a process that
    is gone (killed, crashed); a live process's are left alone. Returns what was removed."""
    removed = []
    for folder in parent.glob(f".{name}.*.*") if parent.is_dir() else []:
        pid = folder.name[len(name) + 2 :].split(".", 1)[0]
        if folder.is_dir() and not folder.is_symlink() and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
