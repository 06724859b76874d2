"""Export a checkpoint to CTranslate2 (int8 or float16) for fast CPU/GPU inference, with a parity check.

The exported folder holds CTranslate2's `model.bin` plus the processor files, so core/inference.py (and with it the
Transcribe page, the live microphone and `evaluate`) can load it like any model. `core.evaluation.parity` then
evaluates the original and the export on the same split and flags a WER difference over PARITY_POINTS.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import StudioError
from core.models.resolve import PROCESSOR_FILES, is_ctranslate2, resolve_model
from core.workspace import Workspace, read_json_if_intact, staged_folder, write_json_atomic

QUANTIZATIONS = ("int8", "float16", "int8_float16", "float32")
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
    if out.exists() and not out.is_dir():
        raise StudioError(f"{out} is a file; give a folder for the export (--out)")
    if is_ctranslate2(location):
        raise StudioError(f"{model} is already a CTranslate2 model; export its transformers folder instead")
    with staged_folder(out) as staging:
        files = [name for name in COPIED if (location / name).is_file()]
        # The converter writes into a folder of its own; `force` lets it write into the staging folder.
        converter = TransformersConverter(str(location), copy_files=files)
        converter.convert(str(staging), quantization=quantization, force=True)
        processor = read_json_if_intact(location / "processor_config.json")
        if isinstance(processor, dict) and "feature_extractor" in processor:
            # faster-whisper and older tools read the feature extractor from preprocessor_config.json
            write_json_atomic(staging / "preprocessor_config.json", processor["feature_extractor"])
        write_json_atomic(staging / EXPORT_MARKER, {"source": str(location), "quantization": quantization})
    return out
