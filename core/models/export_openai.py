"""openai-whisper's checkpoint: `{"dims": …, "model_state_dict": …}` in one `.pt`, what `whisper.load_model(path)`
loads (and stable-ts, whisper-timestamped and WhisperLiveKit through it).

The names are openai/whisper's `model.py`: `encoder.blocks.N.attn.query`, `mlp.0`/`mlp.2`, `attn_ln`,
`cross_attn`, `encoder.ln_post`, `decoder.ln`, `decoder.token_embedding` (the output projection is that
embedding, transposed, so it is stored once). whisper.cpp's ggml file uses the same names (core/models/
export_ggml.py imports them from here). Weights are stored in float16, as OpenAI publishes its own checkpoints;
the model casts to float32 on a CPU. `load_model` restores no alignment heads from a file: the card shows the
`set_alignment_heads` line that gives them back.
"""

from __future__ import annotations

import base64
import gzip
import re
from pathlib import Path

import numpy as np
import torch

from core.errors import StudioError

OPENAI_FILE = "model.pt"
_LAYER = re.compile(r"^model\.(encoder|decoder)\.layers\.(\d+)\.(.+)$")
_BLOCK_PARTS = {
    "self_attn.q_proj": "attn.query",
    "self_attn.k_proj": "attn.key",
    "self_attn.v_proj": "attn.value",
    "self_attn.out_proj": "attn.out",
    "self_attn_layer_norm": "attn_ln",
    "encoder_attn.q_proj": "cross_attn.query",
    "encoder_attn.k_proj": "cross_attn.key",
    "encoder_attn.v_proj": "cross_attn.value",
    "encoder_attn.out_proj": "cross_attn.out",
    "encoder_attn_layer_norm": "cross_attn_ln",
    "fc1": "mlp.0",
    "fc2": "mlp.2",
    "final_layer_norm": "mlp_ln",
}
_TOP = {
    "model.encoder.conv1.weight": "encoder.conv1.weight",
    "model.encoder.conv1.bias": "encoder.conv1.bias",
    "model.encoder.conv2.weight": "encoder.conv2.weight",
    "model.encoder.conv2.bias": "encoder.conv2.bias",
    "model.encoder.embed_positions.weight": "encoder.positional_embedding",
    "model.encoder.layer_norm.weight": "encoder.ln_post.weight",
    "model.encoder.layer_norm.bias": "encoder.ln_post.bias",
    "model.decoder.embed_tokens.weight": "decoder.token_embedding.weight",
    "model.decoder.embed_positions.weight": "decoder.positional_embedding",
    "model.decoder.layer_norm.weight": "decoder.ln.weight",
    "model.decoder.layer_norm.bias": "decoder.ln.bias",
}


def openai_name(name: str) -> str:
    """A transformers parameter name as openai/whisper (and whisper.cpp) spell it."""
    if name in _TOP:
        return _TOP[name]
    match = _LAYER.match(name)
    if match:
        side, index, rest = match.groups()
        part, _, kind = rest.rpartition(".")
        if part in _BLOCK_PARTS:
            return f"{side}.blocks.{index}.{_BLOCK_PARTS[part]}.{kind}"
    raise StudioError(f"the parameter {name} has no place in openai/whisper's model; is this a Whisper checkpoint?")


def transformers_name(name: str) -> str:
    """The inverse of `openai_name`."""
    for ours, theirs in _TOP.items():
        if theirs == name:
            return ours
    side, _, index, rest = name.split(".", 3)
    part, _, kind = rest.rpartition(".")
    for ours, theirs in _BLOCK_PARTS.items():
        if theirs == part:
            return f"model.{side}.layers.{index}.{ours}.{kind}"
    raise StudioError(f"the parameter {name} is no openai/whisper parameter")


def openai_dims(config) -> dict[str, int]:
    """openai/whisper's ModelDimensions of a transformers WhisperConfig."""
    return {
        "n_mels": config.num_mel_bins,
        "n_audio_ctx": config.max_source_positions,
        "n_audio_state": config.d_model,
        "n_audio_head": config.encoder_attention_heads,
        "n_audio_layer": config.encoder_layers,
        "n_vocab": config.vocab_size,
        "n_text_ctx": config.max_target_positions,
        "n_text_state": config.d_model,
        "n_text_head": config.decoder_attention_heads,
        "n_text_layer": config.decoder_layers,
    }


def openai_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers tensors under openai/whisper's names."""
    return {openai_name(name): tensor for name, tensor in state.items()}


def alignment_heads_dump(heads: list[tuple[int, int]], layers: int, per_layer: int) -> str:
    """openai/whisper's `_ALIGNMENT_HEADS` form: a (layers × heads) boolean mask, gzipped, base85 — what
    `model.set_alignment_heads(dump)` reads."""
    mask = np.zeros((layers, per_layer), dtype=bool)
    for layer, head in heads:
        mask[layer, head] = True
    return base64.b85encode(gzip.compress(mask.tobytes(), mtime=0)).decode("ascii")


def write_openai(source, folder: Path) -> list[str]:
    """`folder/model.pt` for openai-whisper; returns the names written."""
    state = {name: tensor.half().contiguous() for name, tensor in openai_state(source.state()).items()}
    torch.save({"dims": openai_dims(source.config), "model_state_dict": state}, folder / OPENAI_FILE)
    return [OPENAI_FILE]


def read_openai(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(dims, transformers name → float32 tensor) of an openai-whisper `.pt`: how our own engine runs it."""
    try:
        checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
        dims, weights = checkpoint["dims"], checkpoint["model_state_dict"]
    except (OSError, RuntimeError, KeyError, TypeError, EOFError) as err:
        raise StudioError(
            f"{path} is no readable openai-whisper checkpoint ({type(err).__name__}); re-export it"
        ) from None
    return dims, {transformers_name(name): tensor.float() for name, tensor in weights.items()}
