"""An export of ours run by our own engine: the ggml and openai-whisper files read back into a transformers
Whisper, so `transcribe`, `serve` and the Transcribe page take those exports like a checkpoint (the CTranslate2
export runs on its own engine; an ONNX export runs in onnxruntime or sherpa-onnx, which our engine is not).
"""

from __future__ import annotations

from pathlib import Path

import torch

from core.errors import StudioError
from core.workspace import read_json_if_intact

EXPORT_MARKER = "studio_export.json"  # core/models/export.py's marker (imported there from here: one home)


def export_format(location: str | Path) -> str | None:
    """`ggml`, `openai`, `onnx` or `ct2` for a folder an export of ours wrote; None for anything else."""
    marker = read_json_if_intact(Path(location) / EXPORT_MARKER) if Path(location).is_dir() else None
    if not isinstance(marker, dict):
        return None
    return marker.get("format") or "ct2"  # an export from before the marker named its format was CTranslate2


def network_from_export(location: Path, fmt: str):
    """A WhisperForConditionalGeneration holding the export's weights (its most precise variant)."""
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    if fmt == "onnx":
        raise StudioError(
            f"{location} is an ONNX export: it runs in sherpa-onnx or onnxruntime (see its model card or the README), "
            f"not in this engine; transcribe or serve the checkpoint it came from, or its ct2, ggml or openai export"
        )
    marker = read_json_if_intact(location / EXPORT_MARKER) or {}
    file = location / next(iter(marker.get("variants", {}).values()), "")
    if not file.is_file():
        raise StudioError(f"{location}: the export's model file is missing; export the checkpoint again")
    if fmt == "openai":
        from core.models.export_openai import read_openai

        weights = read_openai(file)[1]
    else:
        from core.models.export_ggml import read_ggml

        weights = {name: torch.from_numpy(array.copy()) for name, array in read_ggml(file).tensors.items()}
    network = WhisperForConditionalGeneration(WhisperConfig.from_pretrained(str(location)))
    missing, unexpected = network.load_state_dict(weights, strict=False)
    if unexpected or set(missing) - {"proj_out.weight"}:
        raise StudioError(f"{file} does not fit its config.json ({(missing + unexpected)[:3]}); export it again")
    network.tie_weights()
    network.generation_config = GenerationConfig.from_pretrained(str(location))
    return network.eval()
