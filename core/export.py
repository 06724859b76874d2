"""Export a checkpoint to CTranslate2 (int8 or float16) for fast CPU/GPU inference, with a parity check.

The exported folder holds CTranslate2's `model.bin` plus the processor files, so core/inference.py (and with it the
Transcribe page, the live microphone and `evaluate`) can load it like any model. The parity check evaluates the
original and the export on the same split: quantisation that moves WER by more than PARITY_POINTS is flagged.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from core.errors import StudioError
from core.models import PROCESSOR_FILES, is_ctranslate2, resolve_model  # noqa: F401
from core.workspace import Workspace, write_json_atomic

QUANTIZATIONS = ("int8", "float16", "int8_float16", "float32")
PARITY_POINTS = 0.5  # WER percentage points
EXPORT_MARKER = "studio_export.json"
COPIED = ("tokenizer.json", "tokenizer_config.json", "generation_config.json", *PROCESSOR_FILES)


def export_ctranslate2(model: str, workspace: Workspace, quantization: str = "int8", out: Path | None = None) -> Path:
    """Convert `model` (a checkpoint folder, a Hub id, or demo) to CTranslate2; returns the new folder."""
    if quantization not in QUANTIZATIONS:
        raise StudioError(f"quantization '{quantization}': choose one of {', '.join(QUANTIZATIONS)}")
    try:
        from ctranslate2.converters import TransformersConverter
    except ImportError:
        raise StudioError("ctranslate2 is not installed: run the README's command (it installs requirements)") from None
    location = Path(resolve_model(model, workspace))
    if not location.is_dir():
        raise StudioError(f"{model}: export needs a local model or checkpoint folder")
    out = Path(out) if out else location.with_name(f"{location.name}-ct2-{quantization}")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        files = [name for name in COPIED if (location / name).is_file()]
        TransformersConverter(str(location), copy_files=files).convert(
            str(staging / "model"), quantization=quantization, force=True
        )
        processor = (
            json.loads((location / "processor_config.json").read_text())
            if (location / "processor_config.json").is_file()
            else None
        )
        if processor and "feature_extractor" in processor:
            # faster-whisper and older tools read the feature extractor from preprocessor_config.json
            write_json_atomic(staging / "model" / "preprocessor_config.json", processor["feature_extractor"])
        write_json_atomic(staging / "model" / EXPORT_MARKER, {"source": str(location), "quantization": quantization})
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging / "model", out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def parity(model: str, exported: Path, data: str, workspace: Workspace, split: str = "test") -> dict:
    """WER of the original and the export on the same split, and whether they differ by more than allowed."""
    from core.evaluation import evaluate_model

    original = evaluate_model(model, data, workspace, split=split)
    converted = evaluate_model(str(exported), data, workspace, split=split)
    points = 100 * abs(original["wer"] - converted["wer"])
    return {
        "original_wer": original["wer"],
        "exported_wer": converted["wer"],
        "difference_points": points,
        "flagged": points > PARITY_POINTS,
    }
