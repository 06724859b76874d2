"""Parity in every runtime: each export transcribes the rows of a prepared split in its own runtime, and its WER is
set against the checkpoint's own WER on the same rows with the paired bootstrap's 95% interval (core/text/
bootstrap.py). A difference the interval says is real (it excludes 0, either way) fails the export: the export is
kept, `parity.json` in its folder says FAILED, and the summary line says so plainly.

The checkpoint's side is `evaluate_model` (greedy, transformers; saved and reused); the runtime's side hears the
rows' stored audio through its own front end, as a user's file would be heard. Load time and the seconds spent
transcribing are kept, so the benchmark reads the same records.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.audio.constants import INT16_SCALE, SAMPLE_RATE
from core.data.artifact import open_artifact
from core.errors import StudioError
from core.evaluation.evaluate import EvaluateOptions, EvaluationResult, evaluate_model
from core.evaluation.runtimes import check_runtime, open_runtime
from core.formatting import percent
from core.models.export import EXPORT_RUNTIMES as RUNTIME_NAMES
from core.models.export import PARITY_FILE, ExportedModel, export_model, parse_formats
from core.text.bootstrap import WerChange, paired_bootstrap
from core.text.wer import summarize
from core.workspace import Workspace, read_json_if_intact, write_json_atomic


@dataclass(frozen=True)
class RuntimeParity:
    """One export file run in its runtime on one split, against the checkpoint on the same rows."""

    format: str
    variant: str
    file: str
    size_bytes: int
    load_s: float
    transcribe_s: float
    wer: float
    checkpoint_wer: float
    change: WerChange  # export − checkpoint, with its 95% paired interval

    @property
    def failed(self) -> bool:
        return self.change.measurable

    @property
    def summary(self) -> str:
        """'ggml q8_0 in whisper.cpp (pywhispercpp): WER 12.0% vs the checkpoint's 11.5% (+0.5 points (95% CI …):
        no measurable difference): passed'"""
        verdict = "FAILED: the export is measurably different from the checkpoint" if self.failed else "passed"
        return (
            f"{self.format} {self.variant} in {RUNTIME_NAMES[self.format]}: WER {percent(self.wer)} vs the "
            f"checkpoint's {percent(self.checkpoint_wer)} ({self.change.shown}): {verdict}"
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "change": self.change.to_dict(), "failed": self.failed, "summary": self.summary}


def split_audio(workspace: Workspace, data: str, split: str, limit: int | None = None):
    """(ids, references, audio clips) of a prepared split's rows; refused when the split keeps no audio."""
    artifact = open_artifact(workspace, data)
    table = artifact.read_split(split)
    total = min(table.num_rows, limit or table.num_rows)
    if total == 0:
        raise StudioError(f"dataset '{data}' has no rows in its '{split}' split: nothing to check the export on")
    raw = table.column("audio").slice(0, total).to_pylist() if "audio" in table.column_names else []
    if len(raw) < total or not all(raw):
        raise StudioError(f"dataset '{data}/{split}' keeps no audio to play to the runtimes; prepare it again")
    clips = [np.frombuffer(r, dtype=np.int16).astype(np.float32) / INT16_SCALE for r in raw]
    ids = table.column("id").slice(0, total).to_pylist()
    return artifact, ids, table.column("text").slice(0, total).to_pylist(), clips


def runtime_parity(
    model: str, exported: ExportedModel, data: str, workspace: Workspace, split: str = "test", limit=None
) -> list[RuntimeParity]:
    """Every variant of `exported` transcribes `data/split` in its runtime; each against `model` on the same rows.
    The records are written to the export's PARITY_FILE."""
    check_runtime(exported.format)
    artifact, ids, references, clips = split_audio(workspace, data, split, limit)
    original = evaluate_model(model, data, workspace, EvaluateOptions(split=split, limit=limit))
    language, task = artifact.manifest.whisper_language, artifact.task
    window = _window_samples(exported.folder)
    results = []
    for variant, name in exported.variants.items():
        file = exported.folder / name
        runtime, load_s = open_runtime(exported.format, file, window, language)
        start = time.perf_counter()
        texts = [runtime.transcribe(clip, language, task).text for clip in clips]
        seconds = time.perf_counter() - start
        measured = EvaluationResult.from_dict(
            {"model": file.name, "data": data, "split": split, **summarize(ids, references, texts)}
        )
        results.append(
            RuntimeParity(
                format=exported.format,
                variant=variant,
                file=name,
                size_bytes=_size(file, exported.format),
                load_s=round(load_s, 3),
                transcribe_s=round(seconds, 3),
                wer=measured.wer,
                checkpoint_wer=original.wer,
                change=paired_bootstrap(original.rows, measured.rows),
            )
        )
    records = {"data": data, "split": split, "results": [r.to_dict() for r in results]}
    write_json_atomic(exported.folder / PARITY_FILE, records)
    return results


def _window_samples(folder: Path) -> int:
    """Samples per window of the exported model, from the processor files copied into its folder."""
    for name in ("preprocessor_config.json", "processor_config.json"):
        data = read_json_if_intact(folder / name)
        if isinstance(data, dict):
            extractor = data.get("feature_extractor", data)
            if "n_samples" in extractor:
                return int(extractor["n_samples"])
            if "chunk_length" in extractor:
                return int(extractor["chunk_length"]) * SAMPLE_RATE
    raise StudioError(f"{folder}: no processor settings beside the export; re-export it")


def _size(file: Path, fmt: str) -> int:
    """Bytes a runtime loads: the CTranslate2 folder's model.bin, an ONNX encoder with its decoder, else the file."""
    if fmt == "ct2":
        return (file / "model.bin").stat().st_size
    if fmt == "onnx":
        return file.stat().st_size + file.with_name(file.name.replace("encoder", "decoder")).stat().st_size
    return file.stat().st_size


@dataclass(frozen=True)
class ExportOptions:
    """What an export is asked for: the CTranslate2 quantization, the formats, the folder (None: beside the
    model), and the prepared dataset and split each export's WER parity is checked on (None: no check)."""

    quantization: str = "int8"
    data: str | None = None
    split: str = "test"
    out: Path | None = None
    formats: tuple[str, ...] | list[str] | str | None = ("ct2",)  # as parse_formats reads them (None: ct2)


def export_with_parity(
    model: str, workspace: Workspace, options: ExportOptions | None = None
) -> list[tuple[ExportedModel, list[RuntimeParity]]]:
    """Export to each format, then (given a prepared dataset) check each in its runtime: the one place the CLI and
    the Compare page both call. Runtimes are checked before anything is written."""
    options = options or ExportOptions()
    formats, data = parse_formats(options.formats), options.data
    if data:
        open_artifact(workspace, data)  # a missing dataset is said before the export, not after
        for fmt in formats:
            check_runtime(fmt)
    exports = export_model(model, workspace, formats, options.quantization, options.out)
    return [(e, runtime_parity(model, e, data, workspace, options.split) if data else []) for e in exports]


def parity_report(exports: list[tuple[ExportedModel, list[RuntimeParity]]]) -> tuple[list[str], int]:
    """(each export's summary line with its parity checks indented under it, how many files FAILED parity)."""
    lines, failed = [], 0
    for exported, checks in exports:
        lines.append(exported.summary)
        for check in checks:
            lines.append(f"  {check.summary}")
            failed += check.failed
    return lines, failed
