"""CTranslate2 Whisper → transformers: a `WhisperSpec` model.bin as a `WhisperForConditionalGeneration`.

CTranslate2's converter (ctranslate2/converters/transformers.py, `WhisperLoader` over `BartLoader`) fuses what it
can: a self-attention's q, k and v projections become one `linear_0` of 3 × d_model rows; a cross-attention keeps q
as `linear_0` and fuses k and v into `linear_1` of 2 × d_model rows. Whisper's key projection has no bias, so the
fused bias holds zeros in the key's rows; this module splits the rows back, in that order, and checks that those
zeros are zeros. Layer norms are gamma/beta, the output projection is an alias of the token embedding (tied), and
the model's sizes are read from the variables' shapes, so tiny, base and small files all convert.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from core.errors import StudioError
from core.models.ct2_file import CT2Model

WHISPER_SPEC = "WhisperSpec"
_LAYER = re.compile(r"^(encoder|decoder)/layer_(\d+)/")


def split_rows(matrix: np.ndarray, parts: int) -> list[np.ndarray]:
    """A fused projection's rows, cut into `parts` equal blocks in the order they were concatenated (q, k, v)."""
    if matrix.shape[0] % parts:
        raise StudioError(f"a fused projection of {matrix.shape[0]} rows cannot split into {parts} equal parts")
    return np.split(matrix, parts, axis=0)


def _layers(model: CT2Model, side: str) -> int:
    found = {int(m.group(2)) for name in model.variables if (m := _LAYER.match(name)) and m.group(1) == side}
    if not found or found != set(range(len(found))):
        raise StudioError(f"the CTranslate2 model's {side} layers are incomplete ({sorted(found)})")
    return len(found)


def _scalar(model: CT2Model, name: str) -> int:
    return int(np.asarray(model.get(name)).reshape(-1)[0])


def model_sizes(model: CT2Model) -> dict:
    """The WhisperConfig fields a WhisperSpec file determines, read from its variables' shapes."""
    if model.spec != WHISPER_SPEC:
        raise StudioError(f"this CTranslate2 model is a {model.spec}, not a {WHISPER_SPEC}; it is no Whisper")
    vocab, d_model = model.get("decoder/embeddings/weight").shape
    return {
        "vocab_size": int(vocab),
        "d_model": int(d_model),
        "num_mel_bins": int(model.get("encoder/conv1/weight").shape[1]),
        "encoder_layers": _layers(model, "encoder"),
        "decoder_layers": _layers(model, "decoder"),
        "encoder_attention_heads": _scalar(model, "encoder/num_heads"),
        "decoder_attention_heads": _scalar(model, "decoder/num_heads"),
        "encoder_ffn_dim": int(model.get("encoder/layer_0/ffn/linear_0/weight").shape[0]),
        "decoder_ffn_dim": int(model.get("decoder/layer_0/ffn/linear_0/weight").shape[0]),
        "max_source_positions": int(model.get("encoder/position_encodings/encodings").shape[0]),
        "max_target_positions": int(model.get("decoder/position_encodings/encodings").shape[0]),
    }


def _key_bias_is_zero(bias: np.ndarray, where: str) -> None:
    if np.any(bias.astype(np.float32) != 0):
        raise StudioError(
            f"{where}: the key projection's bias is not zero; Whisper's key projection has none, so this file "
            f"is no Whisper conversion (or the rows are in another order)"
        )


def _attention(model: CT2Model, ct2: str, hf: str, fused: str) -> dict[str, np.ndarray]:
    """q/k/v/out of one attention block. `fused` is "qkv" (self-attention) or "q+kv" (cross-attention)."""
    out: dict[str, np.ndarray] = {}
    if fused == "qkv":
        q, k, v = split_rows(model.get(f"{ct2}/linear_0/weight"), 3)
        qb, kb, vb = split_rows(model.get(f"{ct2}/linear_0/bias"), 3)
        output = f"{ct2}/linear_1"
    else:
        q, qb = model.get(f"{ct2}/linear_0/weight"), model.get(f"{ct2}/linear_0/bias")
        k, v = split_rows(model.get(f"{ct2}/linear_1/weight"), 2)
        kb, vb = split_rows(model.get(f"{ct2}/linear_1/bias"), 2)
        output = f"{ct2}/linear_2"
    _key_bias_is_zero(kb, ct2)
    out.update(
        {
            f"{hf}.q_proj.weight": q,
            f"{hf}.q_proj.bias": qb,
            f"{hf}.k_proj.weight": k,  # no bias: Whisper's key projection has none
            f"{hf}.v_proj.weight": v,
            f"{hf}.v_proj.bias": vb,
            f"{hf}.out_proj.weight": model.get(f"{output}/weight"),
            f"{hf}.out_proj.bias": model.get(f"{output}/bias"),
            f"{hf}_layer_norm.weight": model.get(f"{ct2}/layer_norm/gamma"),
            f"{hf}_layer_norm.bias": model.get(f"{ct2}/layer_norm/beta"),
        }
    )
    return out


def _feed_forward(model: CT2Model, ct2: str, hf: str) -> dict[str, np.ndarray]:
    return {
        f"{hf}.fc1.weight": model.get(f"{ct2}/ffn/linear_0/weight"),
        f"{hf}.fc1.bias": model.get(f"{ct2}/ffn/linear_0/bias"),
        f"{hf}.fc2.weight": model.get(f"{ct2}/ffn/linear_1/weight"),
        f"{hf}.fc2.bias": model.get(f"{ct2}/ffn/linear_1/bias"),
        f"{hf}.final_layer_norm.weight": model.get(f"{ct2}/ffn/layer_norm/gamma"),
        f"{hf}.final_layer_norm.bias": model.get(f"{ct2}/ffn/layer_norm/beta"),
    }


def whisper_weights(model: CT2Model) -> dict[str, np.ndarray]:
    """transformers parameter name → array, for every weight of WhisperForConditionalGeneration."""
    sizes = model_sizes(model)
    weights = {
        "model.encoder.conv1.weight": model.get("encoder/conv1/weight"),
        "model.encoder.conv1.bias": model.get("encoder/conv1/bias"),
        "model.encoder.conv2.weight": model.get("encoder/conv2/weight"),
        "model.encoder.conv2.bias": model.get("encoder/conv2/bias"),
        "model.encoder.embed_positions.weight": model.get("encoder/position_encodings/encodings"),
        "model.encoder.layer_norm.weight": model.get("encoder/layer_norm/gamma"),
        "model.encoder.layer_norm.bias": model.get("encoder/layer_norm/beta"),
        "model.decoder.embed_tokens.weight": model.get("decoder/embeddings/weight"),
        "model.decoder.embed_positions.weight": model.get("decoder/position_encodings/encodings"),
        "model.decoder.layer_norm.weight": model.get("decoder/layer_norm/gamma"),
        "model.decoder.layer_norm.bias": model.get("decoder/layer_norm/beta"),
    }
    for i in range(sizes["encoder_layers"]):
        ct2, hf = f"encoder/layer_{i}", f"model.encoder.layers.{i}"
        weights.update(_attention(model, f"{ct2}/self_attention", f"{hf}.self_attn", "qkv"))
        weights.update(_feed_forward(model, ct2, hf))
    for i in range(sizes["decoder_layers"]):
        ct2, hf = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        weights.update(_attention(model, f"{ct2}/self_attention", f"{hf}.self_attn", "qkv"))
        weights.update(_attention(model, f"{ct2}/attention", f"{hf}.encoder_attn", "q+kv"))
        weights.update(_feed_forward(model, ct2, hf))
    projection = model.aliases.get("decoder/projection/weight")
    if projection != "decoder/embeddings/weight":
        raise StudioError(
            "the CTranslate2 model's output projection is not tied to its token embedding; "
            "every OpenAI Whisper ties them, so this file is no Whisper conversion this reader knows"
        )
    return weights


def load_weights(network, weights: dict[str, np.ndarray]) -> None:
    """Copy `weights` into `network` (float32), refusing any missing, unexpected or mis-shaped parameter."""
    state = network.state_dict()
    tied = {"proj_out.weight"}  # shares the embedding's storage
    missing = sorted(set(state) - set(weights) - tied)
    unexpected = sorted(set(weights) - set(state))
    if missing or unexpected:
        raise StudioError(f"conversion mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for name, array in weights.items():
        if tuple(state[name].shape) != tuple(array.shape):
            raise StudioError(
                f"conversion mismatch: {name} is {tuple(array.shape)}, expected {tuple(state[name].shape)}"
            )
    with torch.no_grad():
        for name, array in weights.items():
            state[name].copy_(torch.from_numpy(np.asarray(array, dtype=np.float32)))
