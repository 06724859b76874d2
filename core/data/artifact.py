"""The feature store, read side: a prepared dataset on disk (core/features.py writes it).

One Arrow IPC file per split, memory-mapped when read, so a training run never holds the dataset in memory; its
`manifest.json` says which splits exist, which one streams from its source at training time, the features' shape,
the task, and which evaluation sentences also occur in train.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from core.data.manifest import MANIFEST_FILE, Manifest
from core.errors import StudioError
from core.workspace import Workspace, folder_name, read_json, read_json_if_intact

FEATURE_DTYPE = np.float16  # log-mel values lie in about [-1, 2]; fp16 halves the disk and page cache
AUDIO_SPLITS = ("test", "validation")  # splits that also keep 16-bit audio, for listening and re-transcribing
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("duration", pa.float32()),
        ("input_features", pa.binary()),  # FEATURE_DTYPE bytes, shape (n_mels, frames) from the manifest
        ("labels", pa.list_(pa.int32())),
        ("audio", pa.binary()),  # int16 PCM at 16 kHz, empty outside AUDIO_SPLITS
    ]
)


@dataclass
class Artifact:
    """A prepared dataset on disk: its folder and manifest."""

    path: Path
    manifest: Manifest
    reused: bool = False

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def shown(self) -> str:
        """'prepared nb-tiny: train 240 rows (12.0 min), … → /home/…/datasets/nb-tiny' ('reused' when it was)."""
        counts = ", ".join(f"{s} {c.rows} rows ({c.hours * 60:.1f} min)" for s, c in self.manifest.splits.items())
        return f"{'reused' if self.reused else 'prepared'} {self.name}: {counts} → {self.path}"

    def streams(self, split: str) -> bool:
        """Whether `split` is read from the source at training time instead of stored here."""
        return self.manifest.streams(split)

    def split_path(self, split: str) -> Path:
        if self.streams(split):
            raise StudioError(f"dataset '{self.name}' streams its '{split}' split from the source; nothing is stored")
        if split not in self.manifest.splits:
            raise StudioError(f"dataset '{self.name}' has no '{split}' split; it has {', '.join(self.manifest.splits)}")
        return self.path / f"{split}.arrow"

    def read_split(self, split: str) -> pa.Table:
        """The split as a memory-mapped Arrow table (no copy into memory)."""
        return pa.ipc.open_file(pa.memory_map(str(self.split_path(split)))).read_all()

    def feature_shape(self) -> tuple[int, int]:
        return self.manifest.features.shape

    @property
    def task(self) -> str:
        return self.manifest.task

    def eval_splits(self) -> list[str]:
        return [s for s in self.manifest.splits if s != "train"]


def open_artifact(workspace: Workspace, name: str) -> Artifact:
    path = workspace.dataset(folder_name(name, "prepared dataset"))
    fix = f"prepare dataset '{name}' again (with --overwrite) or delete {path}"
    manifest = read_json(path / MANIFEST_FILE, fix=fix)
    if manifest is None:
        have = ", ".join(list_artifacts(workspace)) or "none yet: run prepare"
        raise StudioError(f"no prepared dataset '{name}' in {workspace.datasets}; prepared datasets: {have}")
    return Artifact(path, Manifest.from_dict(manifest))


REFERENCE_PREFIX = "english-reference-"  # the English guard and replay set a run makes itself (core/training/guards)


def newest_artifact(workspace: Workspace) -> str | None:
    """The dataset prepared last that a new run could train on (what it most likely trains on): not a set the
    product made for itself (the English reference) nor one with no training rows (a held-out test set)."""
    candidates = []
    for name in list_artifacts(workspace):
        manifest = Manifest.from_dict(read_json_if_intact(workspace.dataset(name) / MANIFEST_FILE) or {})
        if not name.startswith(REFERENCE_PREFIX) and (manifest.rows("train") or manifest.streams("train")):
            candidates.append(name)
    names = candidates or list_artifacts(workspace)
    return max(names, key=lambda name: workspace.dataset(name).stat().st_mtime) if names else None


def list_artifacts(workspace: Workspace) -> list[str]:
    if not workspace.datasets.is_dir():
        return []
    return sorted(p.name for p in workspace.datasets.iterdir() if (p / MANIFEST_FILE).is_file())


def features_from_row(table: pa.Table, index: int, shape: tuple[int, int]) -> np.ndarray:
    raw = table.column("input_features")[index].as_buffer()
    return np.frombuffer(raw, dtype=FEATURE_DTYPE).reshape(shape)
