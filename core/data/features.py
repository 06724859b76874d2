"""Preparing the feature store: a source turned into a named, reusable artifact (core/artifact.py reads it).

`prepare_features` decodes each example, drops what cannot train (core/rows.py: the one row check), extracts
log-mel features in batches with the model's own feature-extractor settings (80 or 128 bins; the processor's
window: 30 s for real Whisper, 3 s for the demo; core/melspec.py computes them only where there is sound) and
tokenises labels with the language/task prefix, one Arrow IPC file per split; `manifest.json` records the inputs,
counts and a fingerprint.

Every artifact has a validation split: the source's own, or a stable slice of train chosen by transcript. Training
evaluates on it and picks its best checkpoint by it; the test split is kept for the final, held-out figure, and
the manifest counts test and validation sentences that also occur in train. Same inputs → the artifact is reused.
It is built in a temporary folder and renamed, under a lock on the name, so an interrupted or concurrent prepare
never leaves or replaces anything that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import pyarrow as pa

from core.audio.constants import INT16_SCALE, SAMPLE_RATE
from core.audio.melspec import log_mel
from core.data.artifact import AUDIO_SPLITS, FEATURE_DTYPE, SCHEMA, Artifact
from core.data.examples import SPLITS, Example, Source
from core.data.folders import with_split_rule
from core.data.labels import TrainingLabels
from core.data.manifest import MANIFEST_FILE, Manifest
from core.data.prepare_options import PrepareOptions
from core.data.rows import REASONS, RowLimits, in_carved_validation, in_slice, summarize_filtered, text_key, usable_rows
from core.errors import StudioError
from core.languages import Language
from core.models.resolve import load_processor, model_fingerprint
from core.workspace import (
    Workspace,
    check_new_name,
    name_held,
    pid_alive,
    read_json_if_intact,
    staged_folder,
    write_json_atomic,
)

FORMAT_VERSION = 2  # 2: a validation split in every artifact, task in the label prefix, overlap counts
BATCH_SIZE = 32  # clips per log-mel call: the STFT is batched
OVERLAP_EXAMPLES = 3
STREAMED_VALIDATION_ROWS = 500  # validation carved from a streamed training split stops here (no max_eval_samples)
LATER_OPTIONS = {"split_by": "text", "no_speech_fraction": 0.0, "timestamp_fraction": 0.0}  # option → default
ProgressCallback = Callable[[str, int, int | None], None]  # (split, rows done, rows expected or None)


def training_rows(source: Source, options: PrepareOptions) -> Iterator[Example]:
    """The source's training rows as prepare (and streamed training) take them: all of them in order, or a seeded
    random subset (train_fraction by id; max_train_samples in a seeded shuffled order where the source can shuffle)."""
    subsample = options.train_fraction or options.max_train_samples
    shuffled = getattr(source, "shuffled", None) if subsample else None
    rows = shuffled("train", options.seed) if shuffled else source.examples("train")
    if options.train_fraction:
        fraction, salt = options.train_fraction, f"train-{options.seed}"
        rows = (e for e in rows if in_slice(e.id, fraction, salt))
    return islice(rows, options.max_train_samples) if options.max_train_samples else rows


def fingerprint(source: Source, language: Language, model: str, workspace: Workspace, options: PrepareOptions) -> str:
    chosen = asdict(options)
    for name, default in LATER_OPTIONS.items():
        if chosen[name] == default:
            del chosen[name]  # added later: while it holds its default, earlier artifacts keep their fingerprint
    payload = {
        "format": FORMAT_VERSION,
        "source": source.describe(),
        "language": language.code,
        "model": model_fingerprint(model, workspace),
        "options": chosen,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


class SplitWriter:
    """One split's Arrow file: rows are buffered and written in batches, with log-mel computed per batch."""

    def __init__(self, path: Path, split: str, extractor):
        self.split, self.extractor = split, extractor
        self.keep_audio = split in AUDIO_SPLITS
        self.sink = pa.OSFile(str(path), "wb")
        self.writer = pa.ipc.new_file(self.sink, SCHEMA)
        self.batch: list[tuple[Example, np.ndarray, list[int]]] = []
        self.rows, self.seconds = 0, 0.0
        self.text_keys: set[str] = set()
        self.filtered: Counter = Counter({reason: 0 for reason in REASONS})
        self.extra: dict = {}  # the training split's timestamped and no-speech counts, for the manifest

    def add(self, example: Example, audio: np.ndarray, ids: list[int]) -> None:
        self.batch.append((example, audio, ids))
        if example.text:  # a no-speech row's empty transcript is no sentence another split could share
            self.text_keys.add(text_key(example.text))
        if len(self.batch) >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        mel = log_mel([a for _, a, _ in self.batch], self.extractor).astype(FEATURE_DTYPE)
        durations = [len(a) / SAMPLE_RATE for _, a, _ in self.batch]
        pcm = [
            (np.clip(a, -1, 1) * INT16_SCALE).astype(np.int16).tobytes() if self.keep_audio else b""
            for _, a, _ in self.batch
        ]
        columns = [
            pa.array([e.id for e, _, _ in self.batch]),
            pa.array([e.text for e, _, _ in self.batch]),
            pa.array(durations, pa.float32()),
            pa.array([m.tobytes() for m in mel], pa.binary()),
            pa.array([ids for _, _, ids in self.batch], pa.list_(pa.int32())),
            pa.array(pcm, pa.binary()),
        ]
        self.writer.write_batch(pa.record_batch(columns, schema=SCHEMA))
        self.rows += len(self.batch)
        self.seconds += sum(durations)
        self.batch.clear()

    def close(self, seen: int) -> dict:
        self.flush()
        self.writer.close()
        self.sink.close()
        hours = round(self.seconds / 3600, 4)
        return {"rows": self.rows, "seen": seen, "hours": hours, "filtered": dict(self.filtered), **self.extra}


def feature_processor(model: str, workspace: Workspace, language: Language, options: PrepareOptions):
    """(processor with the label prefix set, the row limits) that prepare and the doctor both use."""
    processor = load_processor(model, workspace)
    processor.tokenizer.set_prefix_tokens(language=language.whisper, task=options.task, predict_timestamps=False)
    return processor, RowLimits(processor.feature_extractor.n_samples, options.max_sequence_length)


@contextmanager
def claim_name(workspace: Workspace, name: str) -> Iterator[None]:
    """Hold the dataset name for the whole prepare: a second prepare of the same name at the same time is refused
    (as a finished one would be), instead of both succeeding and one silently replacing the other."""
    busy = f"dataset '{name}' is being prepared right now by another process; wait for it, or choose another name"
    with name_held(workspace.datasets / ".locks", name, busy):
        yield


def prepare_features(
    source: Source,
    language: Language,
    model: str,
    name: str,
    workspace: Workspace,
    options: PrepareOptions | None = None,
) -> Artifact:
    """Build (or reuse) the artifact `name` from `source`, with `model`'s processor. `Preparation` replaces an
    artifact made from other inputs, or follows the progress."""
    return Preparation().prepare(source, language, model, name, workspace, options)


@dataclass(frozen=True)
class Preparation:
    """How one prepare runs, beside what it makes (the `PrepareOptions`, which the manifest keeps): whether it may
    replace an artifact of the same name made from other inputs, and where its progress goes."""

    overwrite: bool = False
    progress: ProgressCallback | None = None

    def prepare(
        self,
        source: Source,
        language: Language,
        model: str,
        name: str,
        workspace: Workspace,
        options: PrepareOptions | None = None,
    ) -> Artifact:
        """Build (or reuse) the artifact `name` from `source`, with `model`'s processor."""
        # 1. Check the inputs and claim the name; the same inputs give the existing artifact back.
        options = options or PrepareOptions()
        options.validate()
        check_new_name(name, "dataset")
        source = with_split_rule(source, options.split_by)
        with claim_name(workspace, name):
            fingerprint_ = fingerprint(source, language, model, workspace, options)
            final = workspace.dataset(name)
            existing = self._existing(final, name, fingerprint_)
            if existing:
                return existing
            # 2. The model's processor fixes the features (bins, window) and the label prefix.
            processor, limits = feature_processor(model, workspace, language, options)
            extractor, tokenizer = processor.feature_extractor, processor.tokenizer
            _remove_abandoned_staging(workspace.datasets, name)
            with staged_folder(final, marker=MANIFEST_FILE, tag=str(os.getpid())) as staging:
                # 3. Each split of the source, through the one row check, into its Arrow file.
                context = PrepareContext(language, options, extractor, tokenizer, limits, self.progress)
                splits = _write_splits(source, staging, context)
                overlap = splits.pop("_overlap")
                if not any(c["rows"] for c in splits.values()):
                    raise StudioError(f"no usable rows in the source: {summarize_filtered(splits)}")
                # 4. The manifest, written last: its presence means complete.
                manifest = {
                    "name": name,
                    "fingerprint": fingerprint_,
                    "format": FORMAT_VERSION,
                    "created": time.time(),
                    "source": source.describe(),
                    "language": language.code,
                    "whisper_language": language.whisper,
                    "task": options.task,
                    "model": model,
                    "cleaning": options.cleaning.to_dict(),
                    "options": asdict(options),
                    "features": _feature_layout(context),
                    "prefix": tokenizer.convert_ids_to_tokens(tokenizer.prefix_tokens),
                    "splits": splits,
                    "overlap": overlap,
                }
                write_json_atomic(staging / MANIFEST_FILE, manifest)
        return Artifact(final, Manifest.from_dict(manifest))

    def _existing(self, final: Path, name: str, fingerprint_: str) -> Artifact | None:
        """The artifact already made from the same inputs; None where there is none, or where `overwrite` lets
        one made from other inputs be replaced (else that one is refused)."""
        existing = read_json_if_intact(final / MANIFEST_FILE)
        if existing and existing.get("fingerprint") == fingerprint_:
            return Artifact(final, Manifest.from_dict(existing), reused=True)
        if (final / MANIFEST_FILE).exists() and not self.overwrite:
            raise StudioError(
                f"dataset '{name}' exists, prepared from other inputs; choose another name or overwrite it"
            )
        return None


def _feature_layout(context: PrepareContext) -> dict:
    """The features' shape (bins × frames), dtype, window and sampling rate, as the manifest records them."""
    extractor = context.extractor
    return {
        "shape": [extractor.feature_size, extractor.nb_max_frames],
        "dtype": np.dtype(FEATURE_DTYPE).name,
        "window_seconds": context.limits.window_seconds,
        "sampling_rate": SAMPLE_RATE,
    }


@dataclass(frozen=True)
class PrepareContext:
    """What every split of one prepare is written with: the language, the options, the model's feature extractor
    and tokenizer, the row limits they imply, and where progress goes."""

    language: Language
    options: PrepareOptions
    extractor: object  # the model's WhisperFeatureExtractor
    tokenizer: object  # the model's WhisperTokenizer, prefix set for the language and task
    limits: RowLimits
    progress: ProgressCallback | None = None


def _write_splits(source: Source, staging: Path, context: PrepareContext) -> dict:
    """Write every split; a source without a validation split gives one, carved from train by transcript.
    Returns the split counts plus "_overlap": test/validation sentences that also occur in train."""
    options, extractor = context.options, context.extractor
    carve = "validation" not in source.splits() and "train" in source.splits() and options.validation_fraction > 0
    splits: dict = {}
    keys: dict[str, set[str]] = {}
    for split in source.splits():
        streamed = split == "train" and options.stream_train
        if streamed:  # nothing stored; only the carved validation rows are read, up to a cap
            splits[split] = {"rows": 0, "seen": 0, "hours": 0.0, "filtered": {}, "streamed": True}
        writers = {} if streamed else {split: SplitWriter(staging / f"{split}.arrow", split, extractor)}
        carving = carve and split == "train"
        if carving:
            writers["validation"] = SplitWriter(staging / "validation.arrow", "validation", extractor)
        if split == "train":
            rows = source.examples(split) if streamed else training_rows(source, options)
        else:
            limit = options.max_eval_samples
            rows = islice(source.examples(split), limit) if limit else source.examples(split)
        seen = _fill(rows, writers, context, split, carving) if writers else 0
        for name, writer in writers.items():
            splits[name] = writer.close(seen if name == split else writer.rows)
            keys[name] = writer.text_keys
            if name != split:
                splits[name]["carved_from_train"] = options.validation_fraction
    overlap = {}
    for name in keys:
        if name == "train":
            continue
        if "train" not in keys:
            overlap[name] = {"checked": False, "why": "the training split is streamed, not stored"}
        else:
            shared = sorted(keys[name] & keys["train"])
            overlap[name] = {"checked": True, "sentences": len(shared), "examples": shared[:OVERLAP_EXAMPLES]}
    ordered = {k: splits[k] for k in SPLITS if k in splits}
    return {**ordered, **{k: v for k, v in splits.items() if k not in ordered}, "_overlap": overlap}


def _fill(rows, writers: dict, context: PrepareContext, split: str, carve: bool) -> int:
    """Route each usable row of one source split into its writer, or into the carved validation writer; returns
    the number of source rows seen. Drop counts go to the split's own writer (the validation writer when the
    training split is streamed). A streamed training split is read only until the carved validation is full."""
    options, progress = context.options, context.progress
    seen = 0
    labels = TrainingLabels.of(context) if split == "train" and split in writers else None
    validation_cap = options.max_eval_samples or (STREAMED_VALIDATION_ROWS if split not in writers else None)

    def counted(rows_in):
        nonlocal seen
        for row in rows_in:
            seen += 1
            if progress and seen % 16 == 0:
                progress(split, seen, None)
            yield row
            if split not in writers and writers["validation"].rows + len(writers["validation"].batch) >= validation_cap:
                return

    counts = (writers.get(split) or writers["validation"]).filtered
    usable = usable_rows(counted(rows), context.language, options.cleaning, context.tokenizer, context.limits, counts)
    for example, audio, ids in usable:
        if carve and in_carved_validation(example.text, options.validation_fraction):
            writer = writers["validation"]
            if not validation_cap or writer.rows + len(writer.batch) < validation_cap:
                writer.add(example, audio, ids)
        elif labels:
            writers[split].add(example, audio, labels.ids(example, audio, ids))
            labels.after_row(writers[split])
        elif split in writers:
            writers[split].add(example, audio, ids)
    if labels:
        writers[split].extra.update(labels.counts())
    if progress:
        progress(split, seen, seen)
    return seen


def _remove_abandoned_staging(datasets: Path, name: str) -> None:
    """Delete staging folders of earlier prepares of `name` whose process is gone (killed, crashed)."""
    for folder in datasets.glob(f".{name}.*.*"):
        pid = folder.name[len(name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
