"""ONNX in the layout sherpa-onnx's Whisper recognizer loads (its offline-whisper-model.cc): an encoder, a decoder
with its self-attention cache, `tokens.txt`, and an int8 copy of both models.

    encoder.onnx   mel (batch, n_mels, T) → n_layer_cross_k, n_layer_cross_v (layers, batch, positions, width):
                   the encoder's output through every decoder layer's cross-attention key and value projections
    decoder.onnx   tokens (batch, n), in_n_layer_self_k_cache, in_n_layer_self_v_cache (layers, batch, 448, width),
                   n_layer_cross_k, n_layer_cross_v, offset (1,) → logits (batch, n, vocab),
                   out_n_layer_self_k_cache, out_n_layer_self_v_cache, cross_attention_weights (batch, alignment
                   heads, n, positions): the softmax of the alignment heads, for sherpa-onnx's token timestamps
    tokens.txt     one line per ordinary token: its bytes in base64 and its id

The encoder's metadata carries what the recognizer reads (sizes, special tokens, language ids and codes,
`n_alignment_heads`). sherpa-onnx hands the encoder its features plus up to 1,000 frames of padding, not a whole
window, and its padding frames are 0 where Whisper's are silence; our encoder turns frames of 0 into silence and pads
or cuts to the model's own window (3,000 frames for Whisper, 300 for the demo) inside the graph, so every runtime
feeds the network what the checkpoint was trained on, and the demo's 3 s toy runs too. The int8 copy is
onnxruntime's dynamic quantization of the MatMul weights, as sherpa-onnx's own export script makes it. Exported
with torch's TorchScript-based exporter (`dynamo=False`), which needs only the `onnx` package.
"""

from __future__ import annotations

import base64
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from core.errors import StudioError
from core.models.export_ggml import token_bytes

OPSET = 17
VARIANTS = {
    "float32": ("encoder.onnx", "decoder.onnx"),
    "int8": ("encoder.int8.onnx", "decoder.int8.onnx"),
}
TOKENS_FILE = "tokens.txt"
# The names sherpa-onnx's loader binds by position, and which axes vary (n_audio: the batch; T: input frames)
ENCODER_INPUTS, ENCODER_OUTPUTS = ["mel"], ["n_layer_cross_k", "n_layer_cross_v"]
ENCODER_AXES = {"mel": {0: "n_audio", 2: "T"}, "n_layer_cross_k": {1: "n_audio"}, "n_layer_cross_v": {1: "n_audio"}}
DECODER_INPUTS = ["tokens", "in_n_layer_self_k_cache", "in_n_layer_self_v_cache", "n_layer_cross_k",
                  "n_layer_cross_v", "offset"]  # fmt: skip
DECODER_OUTPUTS = ["logits", "out_n_layer_self_k_cache", "out_n_layer_self_v_cache", "cross_attention_weights"]
DECODER_AXES = {
    "tokens": {0: "n_audio", 1: "n_tokens"},
    **{name: {1: "n_audio"} for name in DECODER_INPUTS[1:5]},
}


class EncoderWithCrossCache(torch.nn.Module):
    """The Whisper encoder, then each decoder layer's cross-attention key and value of its output."""

    def __init__(self, network, frames: int):
        super().__init__()
        self.encoder, self.layers, self.frames = network.model.encoder, network.model.decoder.layers, frames

    def forward(self, mel: torch.Tensor):
        # Whisper hears padding as silence: a log-mel of zeros floors at the clip's maximum − 8, which its scaling
        # ((x + 4) / 4) puts at the maximum − 2. sherpa-onnx appends frames of 0 after scaling; they and the rest
        # of the window become that silence (a real frame is never exactly 0 in all bins).
        padding = (mel == 0).all(dim=1, keepdim=True)  # (batch, 1, T)
        loudest = torch.where(padding, torch.full_like(mel, -1e9), mel).amax(dim=(1, 2), keepdim=True)
        silence = loudest - 2.0
        heard = torch.where(padding, silence, mel)
        window = torch.cat([heard, silence.expand(-1, mel.shape[1], self.frames)], dim=2)[:, :, : self.frames]
        audio = self.encoder(window).last_hidden_state
        keys = [layer.encoder_attn.k_proj(audio) for layer in self.layers]
        values = [layer.encoder_attn.v_proj(audio) for layer in self.layers]
        return torch.stack(keys), torch.stack(values)


class DecoderWithCache(torch.nn.Module):
    """One decoding step over `tokens` at position `offset`, with the self-attention cache in and out."""

    def __init__(self, network, alignment_heads: list[tuple[int, int]]):
        super().__init__()
        decoder = network.model.decoder
        self.embed_tokens, self.positions = decoder.embed_tokens, decoder.embed_positions.weight
        self.layers, self.norm = decoder.layers, decoder.layer_norm
        self.heads = network.config.decoder_attention_heads
        self.alignment = {layer: [h for l_, h in alignment_heads if l_ == layer] for layer, _ in alignment_heads}

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], self.heads, -1).transpose(1, 2)  # (batch, heads, n, head width)

    def _attend(self, q, k, v, mask=None):
        q = self._split(q)
        scores = (q * q.shape[-1] ** -0.5) @ self._split(k).transpose(-1, -2)  # scaled by 1/√(head width)
        if mask is not None:
            scores = scores.masked_fill(mask, float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1)
        out = (weights @ self._split(v)).transpose(1, 2).flatten(2)
        return out, weights

    def forward(self, tokens, in_k, in_v, cross_k, cross_v, offset):
        n = tokens.shape[1]
        start, total = offset[0], offset[0] + n
        x = self.embed_tokens(tokens) + self.positions[start:total]
        # query j (position start + j) sees keys up to start + j
        mask = torch.arange(total)[None, :] > (start + torch.arange(n))[:, None]
        new_k, new_v, alignment = [], [], []
        for i, layer in enumerate(self.layers):
            h = layer.self_attn_layer_norm(x)
            attention = layer.self_attn
            keys = torch.cat([in_k[i, :, :start], attention.k_proj(h)], dim=1)
            values = torch.cat([in_v[i, :, :start], attention.v_proj(h)], dim=1)
            new_k.append(torch.cat([keys, in_k[i, :, total:]], dim=1))
            new_v.append(torch.cat([values, in_v[i, :, total:]], dim=1))
            out, _ = self._attend(attention.q_proj(h), keys, values, mask)
            x = x + attention.out_proj(out)
            h = layer.encoder_attn_layer_norm(x)
            out, weights = self._attend(layer.encoder_attn.q_proj(h), cross_k[i], cross_v[i])
            x = x + layer.encoder_attn.out_proj(out)
            if i in self.alignment:
                alignment.append(weights[:, self.alignment[i]])
            h = layer.final_layer_norm(x)
            x = x + layer.fc2(F.gelu(layer.fc1(h)))
        # W @ xᵀ, not x @ Wᵀ: a folded transpose would store the (vocab × width) embedding a second time
        logits = torch.matmul(self.embed_tokens.weight, self.norm(x).transpose(1, 2)).transpose(1, 2)
        return logits, torch.stack(new_k), torch.stack(new_v), torch.cat(alignment, dim=1)


def default_alignment_heads(config) -> list[tuple[int, int]]:
    """openai/whisper's default without known heads: every head of the upper half of the decoder layers."""
    layers, heads = config.decoder_layers, config.decoder_attention_heads
    return [(layer, head) for layer in range(layers // 2, layers) for head in range(heads)]


def encoder_metadata(source, heads: list[tuple[int, int]]) -> dict[str, str]:
    """What sherpa-onnx reads from the encoder (SHERPA_ONNX_READ_META_DATA…), as its export script writes it."""
    c, t = source.config, source.tokens
    languages = t.languages if source.multilingual else {}
    sot_sequence = [t.sot, *([languages["en"], t.transcribe] if languages else [])]
    values = {
        "model_type": "whisper-studio",
        "version": "1",
        "maintainer": "whisper-studio",
        "n_mels": c.num_mel_bins,
        "n_audio_ctx": c.max_source_positions,
        "n_audio_state": c.d_model,
        "n_audio_head": c.encoder_attention_heads,
        "n_audio_layer": c.encoder_layers,
        "n_vocab": c.vocab_size,
        "n_text_ctx": c.max_target_positions,
        "n_text_state": c.d_model,
        "n_text_head": c.decoder_attention_heads,
        "n_text_layer": c.decoder_layers,
        "sot_sequence": ",".join(map(str, sot_sequence)),
        "all_language_tokens": ",".join(map(str, languages.values())),
        "all_language_codes": ",".join(languages),
        "sot": t.sot,
        "sot_index": 0,
        "eot": t.eot,
        "blank_id": t.blank,
        "is_multilingual": int(source.multilingual),
        "no_speech": t.no_speech if t.no_speech is not None else t.eot,
        "non_speech_tokens": "",
        "transcribe": t.transcribe if t.transcribe is not None else t.eot,
        "translate": t.translate if t.translate is not None else t.eot,
        "sot_prev": t.sot_prev,
        "sot_lm": t.sot_lm if t.sot_lm is not None else t.eot,
        "no_timestamps": t.no_timestamps,
        "n_alignment_heads": len(heads),
    }
    return {key: str(value) for key, value in values.items()}


def _add_metadata(path: Path, metadata: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def _export(module, args: tuple, path: Path, inputs: list[str], outputs: list[str], axes: dict) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes: not the user's
        torch.onnx.export(
            module, args, str(path), dynamo=False, opset_version=OPSET, input_names=inputs, output_names=outputs,
            dynamic_axes=axes, do_constant_folding=True,
        )  # fmt: skip


def write_onnx(source, folder: Path) -> list[str]:
    """encoder/decoder ONNX (float32 and int8) and tokens.txt in `folder`; returns the names written."""
    try:
        import onnx  # noqa: F401  (the exporter's own dependency, checked before any work)
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise StudioError("the ONNX export needs onnx and onnxruntime: pip install -r requirements.txt") from None
    c = source.config
    heads = source.alignment_heads or default_alignment_heads(c)
    network = source.network
    network.set_attn_implementation("eager")  # sdpa's fused kernel has no form in the TorchScript exporter
    encoder, decoder = EncoderWithCrossCache(network, source.window_frames).eval(), DecoderWithCache(network, heads)
    mel = torch.zeros(1, c.num_mel_bins, source.window_frames)
    cross_k, cross_v = encoder(mel)
    encoder_file, decoder_file = (folder / name for name in VARIANTS["float32"])
    _export(encoder, (mel,), encoder_file, ENCODER_INPUTS, ENCODER_OUTPUTS, ENCODER_AXES)
    cache = torch.zeros(c.decoder_layers, 1, c.max_target_positions, c.d_model)
    tokens = torch.tensor([[source.tokens.sot] * 3])
    args = (tokens, cache, cache.clone(), cross_k, cross_v, torch.zeros(1, dtype=torch.int64))
    _export(decoder.eval(), args, decoder_file, DECODER_INPUTS, DECODER_OUTPUTS, DECODER_AXES)
    _add_metadata(encoder_file, encoder_metadata(source, heads))
    for full, small in zip(VARIANTS["float32"], VARIANTS["int8"]):
        quantize_dynamic(
            str(folder / full), str(folder / small), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8
        )
    vocabulary = token_bytes(source.tokenizer, source.tokens.eot)
    lines = [f"{base64.b64encode(token).decode('ascii')} {i}" for i, token in enumerate(vocabulary)]
    (folder / TOKENS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [*VARIANTS["float32"], *VARIANTS["int8"], TOKENS_FILE]
