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
from core.data.rows import REASON_TEXT
from core.errors import StudioError
from core.formatting import MISSING, format_duration, format_time
from core.languages import get_language
from core.text.bootstrap import worst_half_width
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

    @property
    def shown(self) -> str:
        """'prepared nb-tiny: train 240 rows (12.0 min), … → /home/…/datasets/nb-tiny' ('reused' when it was)."""
        counts = ", ".join(
            f"{s} {c['rows']} rows ({c['hours'] * 60:.1f} min)" for s, c in self.manifest["splits"].items()
        )
        return f"{'reused' if self.reused else 'prepared'} {self.name}: {counts} → {self.path}"

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


TEST_ROWS_ENOUGH = 30  # fewer test rows than this measure a WER to worse than about ±18 points (worst_half_width)


def dropped_rows_line(manifest: dict) -> str | None:
    """What prepare dropped and why, in words: '12 of 40 rows dropped: 12 audio longer than the model's window
    (train 9, test 3)'; None when it kept every row."""
    splits = manifest.get("splits") or {}
    per_reason: dict[str, dict[str, int]] = {}
    for split, counts in splits.items():
        for reason, n in (counts.get("filtered") or {}).items():
            if n:
                per_reason.setdefault(reason, {})[split] = n
    if not per_reason:
        return None
    dropped = sum(sum(per_split.values()) for per_split in per_reason.values())
    kept = sum(counts.get("rows", 0) for counts in splits.values())
    parts = []
    for reason, where in per_reason.items():
        splits_named = ", ".join(f"{split} {n}" for split, n in where.items())
        parts.append(f"{sum(where.values())} {REASON_TEXT.get(reason, reason)} ({splits_named})")
    return f"{dropped} of {kept + dropped} rows dropped: {'; '.join(parts)}"


def small_split_warnings(manifest: dict) -> list[str]:
    """A test split too small for its WER to mean much, with the width of the interval it would have."""
    rows = ((manifest.get("splits") or {}).get("test") or {}).get("rows", 0)
    if not 0 < rows < TEST_ROWS_ENOUGH:
        return []
    return [
        f"the test split has {rows} row{'s' * (rows != 1)}: a WER measured on it is uncertain by up to "
        f"±{100 * worst_half_width(rows):.0f} points (95% interval); {TEST_ROWS_ENOUGH} rows bring that to "
        f"±{100 * worst_half_width(TEST_ROWS_ENOUGH):.0f}, 100 to ±{100 * worst_half_width(100):.0f}"
    ]


def split_table(manifest: dict) -> list[dict]:
    """One row per split as a person reads it: rows kept, their audio's length, rows dropped and why."""
    table = []
    for split, counts in (manifest.get("splits") or {}).items():
        dropped = [f"{n} {REASON_TEXT.get(r, r)}" for r, n in (counts.get("filtered") or {}).items() if n]
        table.append(
            {
                "split": split,
                "rows": "streamed" if counts.get("streamed") else counts.get("rows", 0),
                "audio": format_duration(3600 * counts.get("hours", 0)),
                "dropped": "; ".join(dropped) or "none",
            }
        )
    return table


def made_from(manifest: dict) -> str:
    """Where a dataset came from, in a line: 'Made 2026-12-04 07:38:13 from folder …/my-voice with demo's processor
    (3 s window): Norwegian Bokmål, transcribe, split by text'."""
    source = manifest.get("source") or {}
    origin = source.get("path") or source.get("dataset") or source.get("id") or source.get("kind") or MISSING
    window = (manifest.get("features") or {}).get("window_seconds")
    try:
        language = get_language(manifest.get("language", "")).name
    except StudioError:
        language = manifest.get("language") or MISSING
    options = manifest.get("options") or {}
    return (
        f"Made {format_time(manifest.get('created'))} from {source.get('kind', 'source')} `{origin}` with "
        f"{manifest.get('model', MISSING)}'s processor"
        + (f" ({window:g} s window)" if window else "")
        + f": {language}, "
        f"{manifest.get('task', 'transcribe')}, test and validation split by {options.get('split_by', 'text')}"
    )


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
