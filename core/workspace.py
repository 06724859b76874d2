"""The workspace: the one folder that holds everything Whisper Studio writes.

Resolved from `--home`, else the `STUDIO_HOME` environment variable, else `./workspace`. Inside it:
`datasets/<name>/` (prepared feature artifacts), `models/<name>/` (local models such as `demo`), `runs/<run>/`
(training runs), `synth/<name>/` (generated speech folders).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import DamagedFile

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
        return cls(resolve_home(home))

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

    def dataset(self, name: str) -> Path:
        return self.datasets / name

    def run(self, name: str) -> Path:
        return self.runs / name


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that a reader sees the old file or the new one, never half of one (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the file replaces an ordinary one
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
def staged_folder(final: Path, tag: str = "") -> Iterator[Path]:
    """Build a folder in a temporary sibling and rename it to `final` when the block succeeds (replacing what was
    there), so a reader sees the old folder or the complete new one, never a half-written one. On any failure,
    kill -9 aside, the temporary folder is removed; `tag` (a pid) lets a later run find and clean what a killed one
    left (`.NAME.TAG.*`)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.{tag}." if tag else f".{final.name}.", dir=final.parent))
    os.chmod(staging, 0o755)  # mkdtemp makes it private; the finished folder is an ordinary one
    try:
        yield staging
        if final.exists():
            trash = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
