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

from core.data.examples import SPLITS
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
    manifest: dict
    reused: bool = False

    @property
    def name(self) -> str:
        return self.path.name

    def streams(self, split: str) -> bool:
        """Whether `split` is read from the source at training time instead of stored here."""
        return bool(self.manifest["splits"].get(split, {}).get("streamed"))

    def split_path(self, split: str) -> Path:
        if self.streams(split):
            raise StudioError(f"dataset '{self.name}' streams its '{split}' split from the source; nothing is stored")
        if split not in self.manifest["splits"]:
            raise StudioError(
                f"dataset '{self.name}' has no '{split}' split; it has {', '.join(self.manifest['splits'])}"
            )
        return self.path / f"{split}.arrow"

    def read_split(self, split: str) -> pa.Table:
        """The split as a memory-mapped Arrow table (no copy into memory)."""
        return pa.ipc.open_file(pa.memory_map(str(self.split_path(split)))).read_all()

    def feature_shape(self) -> tuple[int, int]:
        return tuple(self.manifest["features"]["shape"])

    @property
    def task(self) -> str:
        return self.manifest.get("task", "transcribe")

    def eval_splits(self) -> list[str]:
        return [s for s in self.manifest["splits"] if s != "train"]


MANIFEST_FILE = "manifest.json"  # written last: a dataset folder holding it is complete


def open_artifact(workspace: Workspace, name: str) -> Artifact:
    path = workspace.dataset(folder_name(name, "prepared dataset"))
    fix = f"prepare dataset '{name}' again (with --overwrite) or delete {path}"
    manifest = read_json(path / MANIFEST_FILE, fix=fix)
    if manifest is None:
        have = ", ".join(list_artifacts(workspace)) or "none yet: run prepare"
        raise StudioError(f"no prepared dataset '{name}' in {workspace.datasets}; prepared datasets: {have}")
    return Artifact(path, manifest)


REFERENCE_PREFIX = "english-reference-"  # the English guard and replay set a run makes itself (core/training/guards)


def newest_artifact(workspace: Workspace) -> str | None:
    """The dataset prepared last that a new run could train on (what it most likely trains on): not a set the
    product made for itself (the English reference) nor one with no training rows (a held-out test set)."""
    candidates = []
    for name in list_artifacts(workspace):
        manifest = read_json_if_intact(workspace.dataset(name) / MANIFEST_FILE) or {}
        train = (manifest.get("splits") or {}).get("train") or {}
        if not name.startswith(REFERENCE_PREFIX) and (train.get("rows") or train.get("streamed")):
            candidates.append(name)
    names = candidates or list_artifacts(workspace)
    return max(names, key=lambda name: workspace.dataset(name).stat().st_mtime) if names else None


def list_artifacts(workspace: Workspace) -> list[str]:
    if not workspace.datasets.is_dir():
        return []
    return sorted(p.name for p in workspace.datasets.iterdir() if (p / MANIFEST_FILE).is_file())


def empty_splits(manifest: dict) -> list[str]:
    """The splits a run needs (train, validation, test) that hold no rows or are missing (a streamed training split
    is counted as it goes: it is not empty here)."""
    splits = manifest.get("splits") or {}
    wanted = list(dict.fromkeys([*SPLITS, *splits]))
    return [s for s in wanted if not splits.get(s, {}).get("streamed") and not splits.get(s, {}).get("rows")]


def artifact_warnings(manifest: dict) -> list[str]:
    """Everything a person should hear after a prepare: empty splits (a run could not train or be measured on
    them), then evaluation sentences that also occur in train."""
    empty = empty_splits(manifest)
    splits = manifest.get("splits") or {}
    dropped = ", ".join(
        f"{split}: {reason} {n}"
        for split in empty
        for reason, n in splits.get(split, {}).get("filtered", {}).items()
        if n
    )
    warnings = (
        [
            f"the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'} empty"
            + (f" (rows dropped: {dropped})" if dropped else "")
            + ": a run needs rows in train, validation and test; add data, or prepare with a --validation-fraction "
            "and a source that has a test split"
        ]
        if empty
        else []
    )
    return warnings + overlap_warnings(manifest)


def overlap_warnings(manifest: dict) -> list[str]:
    """Plain sentences about evaluation splits whose sentences also occur in train (none for a clean artifact)."""
    warnings = []
    for split, found in (manifest.get("overlap") or {}).items():
        if found.get("checked") and found.get("sentences"):
            examples = "; ".join(f"'{e}'" for e in found.get("examples", []))
            warnings.append(
                f"{found['sentences']} {split} sentences also occur in train (e.g. {examples}): the {split} WER "
                f"flatters the model on them; split the source by sentence or speaker"
            )
    return warnings


def features_from_row(table: pa.Table, index: int, shape: tuple[int, int]) -> np.ndarray:
    raw = table.column("input_features")[index].as_buffer()
    return np.frombuffer(raw, dtype=FEATURE_DTYPE).reshape(shape)
