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


def read_json(path: Path, default: Any = None) -> Any:
    """Read a JSON file; `default` when it does not exist."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default


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
