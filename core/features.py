"""The feature store: a source turned into a named, reusable artifact of log-mel features and label ids.

`prepare_features` decodes each example, filters what cannot train (audio longer than the model's window, labels
over `max_sequence_length`, empty text, undecodable audio), extracts log-mel features in batches with the model's
own feature-extractor settings (80 or 128 bins; the processor's window: 30 s for real Whisper, a few seconds for
the demo; core/melspec.py computes them only where there is sound) and tokenises labels with the language/task
prefix. Each split is an Arrow IPC file (memory-mapped when read, so a training run never holds the dataset in
memory); `manifest.json` records the inputs, counts and a fingerprint.
Same inputs → the artifact is reused. It is built in a temp folder and renamed: an interrupted prepare leaves
nothing that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import pyarrow as pa

from core.audio import SAMPLE_RATE
from core.errors import StudioError
from core.examples import Example, Source
from core.languages import Language
from core.melspec import log_mel
from core.models import MAX_TARGET_POSITIONS, load_processor, model_fingerprint
from core.text import CleaningOptions, clean_text
from core.workspace import Workspace, read_json, write_json_atomic

FORMAT_VERSION = 1
BATCH_SIZE = 32  # clips per log-mel call: the STFT is batched
DECODE_WORKERS = min(4, os.cpu_count() or 2)  # threads decoding and resampling audio ahead of the STFT
DECODE_AHEAD = 64  # rows decoded ahead at most: bounds memory on streaming sources
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

ProgressCallback = Callable[[str, int, int | None], None]  # (split, rows done, rows expected or None)


@dataclass(frozen=True)
class PrepareOptions:
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    max_sequence_length: int = 255  # label tokens, prefix and <|endoftext|> included
    cleaning: CleaningOptions = field(default_factory=CleaningOptions)
    # Keep the training split at its source and make its features while training (core/streaming.py): for sets too
    # big for the disk. Evaluation splits are always stored, so every evaluation sees the same rows.
    stream_train: bool = False

    def validate(self) -> None:
        if not 8 <= self.max_sequence_length <= MAX_TARGET_POSITIONS:
            raise StudioError(
                f"max_sequence_length {self.max_sequence_length}: choose 8–{MAX_TARGET_POSITIONS} "
                f"(Whisper's decoder has {MAX_TARGET_POSITIONS} positions)"
            )
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise StudioError(f"{name} {value}: give a positive number, or leave it out for all rows")


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


def open_artifact(workspace: Workspace, name: str) -> Artifact:
    path = workspace.dataset(name)
    manifest = read_json(path / "manifest.json")
    if manifest is None:
        have = ", ".join(list_artifacts(workspace)) or "none yet: run prepare"
        raise StudioError(f"no prepared dataset '{name}' in {workspace.datasets}; prepared datasets: {have}")
    return Artifact(path, manifest)


def list_artifacts(workspace: Workspace) -> list[str]:
    if not workspace.datasets.is_dir():
        return []
    return sorted(p.name for p in workspace.datasets.iterdir() if (p / "manifest.json").is_file())


def features_from_row(table: pa.Table, index: int, shape: tuple[int, int]) -> np.ndarray:
    raw = table.column("input_features")[index].as_buffer()
    return np.frombuffer(raw, dtype=FEATURE_DTYPE).reshape(shape)


def fingerprint(source: Source, language: Language, model: str, workspace: Workspace, options: PrepareOptions) -> str:
    payload = {
        "format": FORMAT_VERSION,
        "source": source.describe(),
        "language": language.code,
        "model": model_fingerprint(model, workspace),
        "options": asdict(options),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def prepare_features(
    source: Source,
    language: Language,
    model: str,
    name: str,
    workspace: Workspace,
    options: PrepareOptions | None = None,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> Artifact:
    """Build (or reuse) the artifact `name` from `source`, with `model`'s processor."""
    options = options or PrepareOptions()
    options.validate()
    if not name or "/" in name or name.startswith("."):
        raise StudioError(f"dataset name '{name}': use letters, digits, '-' and '_' (no '/', no leading '.')")
    fingerprint_ = fingerprint(source, language, model, workspace, options)
    final = workspace.dataset(name)
    existing = read_json(final / "manifest.json")
    if existing and existing.get("fingerprint") == fingerprint_:
        return Artifact(final, existing, reused=True)
    if existing and not overwrite:
        raise StudioError(f"dataset '{name}' exists, prepared from other inputs; choose another name or overwrite it")

    processor = load_processor(model, workspace)
    extractor, tokenizer = processor.feature_extractor, processor.tokenizer
    tokenizer.set_prefix_tokens(language=language.whisper, task="transcribe", predict_timestamps=False)
    window_samples = extractor.n_samples  # chunk_length s × 16 kHz: longer audio would be cut off silently
    shape = (extractor.feature_size, extractor.nb_max_frames)

    workspace.datasets.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_staging(workspace.datasets, name)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.{os.getpid()}.", dir=workspace.datasets))
    try:
        splits = {}
        for split in source.splits():
            if split == "train" and options.stream_train:
                splits[split] = {"rows": 0, "seen": 0, "hours": 0.0, "filtered": {}, "streamed": True}
                continue
            limit = options.max_train_samples if split == "train" else options.max_eval_samples
            rows = islice(source.examples(split), limit) if limit else source.examples(split)
            counts = _write_split(
                staging / f"{split}.arrow",
                split,
                rows,
                limit,
                language,
                options,
                extractor,
                tokenizer,
                window_samples,
                progress,
            )
            splits[split] = counts
        if not any(c["rows"] for c in splits.values()):
            raise StudioError(f"no usable rows in the source: {_filter_summary(splits)}")
        manifest = {
            "name": name,
            "fingerprint": fingerprint_,
            "format": FORMAT_VERSION,
            "created": time.time(),
            "source": source.describe(),
            "language": language.code,
            "whisper_language": language.whisper,
            "model": model,
            "cleaning": options.cleaning.to_dict(),
            "options": asdict(options),
            "features": {
                "shape": list(shape),
                "dtype": np.dtype(FEATURE_DTYPE).name,
                "window_seconds": window_samples / SAMPLE_RATE,
                "sampling_rate": SAMPLE_RATE,
            },
            "prefix": tokenizer.convert_ids_to_tokens(tokenizer.prefix_tokens),
            "splits": splits,
        }
        write_json_atomic(staging / "manifest.json", manifest)  # written last: its presence means complete
        if final.exists():
            trash = final.with_name(f".{name}.old-{os.getpid()}")
            os.replace(final, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Artifact(final, manifest)


def _remove_abandoned_staging(datasets: Path, name: str) -> None:
    """Delete staging folders of earlier prepares of `name` whose process is gone (killed, crashed)."""
    from core.runs import pid_alive

    for folder in datasets.glob(f".{name}.*.*"):
        pid = folder.name[len(name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _filter_summary(splits: dict) -> str:
    parts = []
    for split, counts in splits.items():
        dropped = ", ".join(f"{k} {v}" for k, v in counts["filtered"].items() if v)
        parts.append(f"{split}: {counts['rows']} kept" + (f" ({dropped} dropped)" if dropped else ""))
    return "; ".join(parts)


def _decoded(rows: Iterator[Example]) -> Iterator[tuple[Example, np.ndarray | None]]:
    """Examples with their decoded audio (None when undecodable), in order. Decoding runs in threads a bounded
    distance ahead (soundfile, PyAV and soxr release the GIL), overlapping the feature extraction; a streaming
    source is never read further ahead than DECODE_AHEAD rows."""

    def decode(example: Example) -> np.ndarray | None:
        try:
            return example.load_audio()
        except StudioError:
            return None

    with ThreadPoolExecutor(max_workers=DECODE_WORKERS) as pool:
        pending: deque = deque()
        for example in rows:
            pending.append((example, pool.submit(decode, example)))
            if len(pending) >= DECODE_AHEAD:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


def usable_rows(
    rows: Iterator[Example],
    language: Language,
    options: PrepareOptions,
    tokenizer,
    window_samples: int,
    filtered: Counter,
) -> Iterator[tuple[Example, np.ndarray, list[int]]]:
    """(example with cleaned text, 16 kHz audio, label ids) for each row that can train; the others are counted in
    `filtered` by reason. The one filter the prepared and the streamed training data share."""
    for example, audio in _decoded(rows):
        example.text = clean_text(example.text, options.cleaning, language)
        if not example.text:
            filtered["empty_text"] += 1
        elif audio is None:
            filtered["undecodable_audio"] += 1
        elif len(audio) > window_samples:
            filtered["audio_too_long"] += 1
        else:
            ids = tokenizer(example.text).input_ids
            if len(ids) > options.max_sequence_length:
                filtered["labels_too_long"] += 1
            else:
                yield example, audio, ids


def _write_split(
    path, split, rows: Iterator[Example], expected, language, options, extractor, tokenizer, window_samples, progress
) -> dict:
    filtered = Counter({"audio_too_long": 0, "labels_too_long": 0, "empty_text": 0, "undecodable_audio": 0})
    kept = 0
    seconds = 0.0
    seen = 0
    keep_audio = split in AUDIO_SPLITS
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, SCHEMA) as writer:
        batch: list[tuple[Example, np.ndarray, list[int]]] = []

        def flush() -> None:
            nonlocal kept, seconds
            if not batch:
                return
            mel = log_mel([a for _, a, _ in batch], extractor).astype(FEATURE_DTYPE)
            durations = [len(a) / SAMPLE_RATE for _, a, _ in batch]
            pcm = [(np.clip(a, -1, 1) * 32767).astype(np.int16).tobytes() if keep_audio else b"" for _, a, _ in batch]
            writer.write_batch(
                pa.record_batch(
                    [
                        pa.array([e.id for e, _, _ in batch]),
                        pa.array([e.text for e, _, _ in batch]),
                        pa.array(durations, pa.float32()),
                        pa.array([m.tobytes() for m in mel], pa.binary()),
                        pa.array([ids for _, _, ids in batch], pa.list_(pa.int32())),
                        pa.array(pcm, pa.binary()),
                    ],
                    schema=SCHEMA,
                )
            )
            kept += len(batch)
            seconds += sum(durations)
            batch.clear()

        def counted(rows_in):
            nonlocal seen
            for row in rows_in:
                seen += 1
                if progress and seen % 16 == 0:
                    progress(split, seen, expected)
                yield row

        for example, audio, ids in usable_rows(counted(rows), language, options, tokenizer, window_samples, filtered):
            batch.append((example, audio, ids))
            if len(batch) >= BATCH_SIZE:
                flush()
        flush()
    if progress:
        progress(split, seen, seen)
    return {"rows": kept, "seen": seen, "hours": round(seconds / 3600, 4), "filtered": dict(filtered)}
