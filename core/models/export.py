"""Export a checkpoint to CTranslate2 (int8 or float16) for fast CPU/GPU inference, with a parity check.

The exported folder holds CTranslate2's `model.bin` plus the processor files, so core/inference.py (and with it the
Transcribe page, the live microphone and `evaluate`) can load it like any model. `core.evaluation.parity` then
evaluates the original and the export on the same split and flags a WER difference over PARITY_POINTS.

An export is standard Whisper: a checkpoint of a shortened run (`window_seconds`) is saved whole already
(core/models/window.py); a short folder written before that is converted from a restored copy, never changed itself.

An export writes EXPORT_MARKER into its folder: `--out` may name an earlier export (it is replaced) or a new or empty
folder, never a folder of anything else (refused, nothing removed).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from core.errors import StudioError
from core.models.resolve import PROCESSOR_FILES, damaged_model_error, is_ctranslate2, resolve_model
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
    _check_out(out, location)
    if is_ctranslate2(location):
        raise StudioError(f"{model} is already a CTranslate2 model; export its transformers folder instead")
    damaged = damaged_model_error(location)
    if damaged:
        raise damaged
    # here, not at the top: window.py imports torch, and the command line's parser reads QUANTIZATIONS on every start
    from core.models.window import is_short_window

    with (
        staged_folder(out, marker=EXPORT_MARKER) as staging,
        tempfile.TemporaryDirectory(dir=staging.parent) as scratch,
    ):
        source = _standard_copy(location, Path(scratch)) if is_short_window(location) else location
        files = [name for name in COPIED if (source / name).is_file()]
        _convert(TransformersConverter, source, staging, files, quantization)
        processor = read_json_if_intact(source / "processor_config.json")
        if isinstance(processor, dict) and "feature_extractor" in processor:
            # faster-whisper and older tools read the feature extractor from preprocessor_config.json
            write_json_atomic(staging / "preprocessor_config.json", processor["feature_extractor"])
        write_json_atomic(staging / EXPORT_MARKER, {"source": str(location), "quantization": quantization})
    return out


def _standard_copy(location: Path, scratch: Path) -> Path:
    """A copy of the short-window folder `location` under `scratch`, restored to the standard window."""
    from core.models.window import standardize_folder

    copy = scratch / location.name
    shutil.copytree(location, copy, ignore=shutil.ignore_patterns("optimizer.pt", "scheduler.pt", "rng_state*"))
    standardize_folder(copy)
    return copy


def _check_out(out: Path, location: Path) -> None:
    """Refuse an `--out` that is a file, or a folder holding anything but an earlier export (the way `synth`
    refuses a folder it did not make): replacing it would delete what is there."""
    if out.exists() and not out.is_dir():
        raise StudioError(f"{out} is a file; give a folder for the export (--out)")
    if out.resolve() == location.resolve() or out.resolve() in location.resolve().parents:
        raise StudioError(f"{out} holds the model being exported; give a new folder for the export (--out)")
    if out.is_dir() and not (out / EXPORT_MARKER).is_file() and any(out.iterdir()):
        raise StudioError(
            f"{out} exists and is no export of ours (no {EXPORT_MARKER}); choose another --out, or empty that folder"
        )


def _convert(converter_class, location: Path, staging: Path, files: list[str], quantization: str) -> None:
    """CTranslate2's converter, its failures on a model folder as one line (a damaged file named where one is)."""
    from safetensors import SafetensorError

    # The converter writes into a folder of its own; `force` lets it write into the staging folder.
    converter = converter_class(str(location), copy_files=files)
    try:
        converter.convert(str(staging), quantization=quantization, force=True)
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as err:  # UnicodeDecodeError: a ValueError
        damaged = damaged_model_error(location)
        if damaged:
            raise damaged from None
        text = str(err).splitlines()[0][:300] if str(err) else type(err).__name__
        raise StudioError(
            f"cannot convert {location} to CTranslate2 ({type(err).__name__}: {text}); "
            f"export a Whisper checkpoint folder (config.json, model.safetensors), or pick another checkpoint"
        ) from None
