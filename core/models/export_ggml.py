"""whisper.cpp's ggml model file, written and read: what `whisper_init_from_file` (and pywhispercpp over it) loads.

The layout is what whisper.cpp's `whisper_model_load` reads (all little-endian int32 unless said):

    magic 0x67676d6c ("ggml")
    hyperparameters: n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer, n_text_ctx, n_text_state,
                     n_text_head, n_text_layer, n_mels, ftype (+ 1000 × quantization version when quantized)
    mel filters: n_mel, n_fft (201), then n_mel × n_fft float32 (the feature extractor's own filters)
    vocabulary: a count, then per token its byte length and bytes (the ordinary tokens; whisper.cpp adds the
                special ones itself from n_vocab)
    tensors, each: n_dims, name length, type; the dims innermost first; the name; the data

Tensors carry openai/whisper's names (core/models/export_openai.py). Types follow the loader: 1-D tensors, the
convolution biases and both position tables in float32, the convolution kernels in float16, every other matrix in
the model's type: float16 (`ggml-model.bin`) or Q8_0 (`ggml-model-q8_0.bin`: blocks of 32 int8 values and one
float16 scale, max |x| / 127, rounded half away from zero as ggml's reference quantizer does). Alignment heads have
no place in the file: whisper.cpp takes them through its C API (`dtw_aheads`), so they go beside it in
`alignment_heads.json`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import StudioError
from core.models.export_openai import openai_name, transformers_name

GGML_MAGIC = 0x67676D6C
QUANTIZATION_VERSION, QUANTIZATION_FACTOR = 2, 1000  # ggml.h's GGML_QNT_VERSION and GGML_QNT_VERSION_FACTOR
F32, F16, Q8_0 = 0, 1, 8  # ggml_type ids of the tensor types written here
FTYPE = {"float16": 1, "q8_0": 7}  # ggml_ftype of the whole model: GGML_FTYPE_MOSTLY_F16, GGML_FTYPE_MOSTLY_Q8_0
BLOCK = 32  # values per Q8_0 block (QK8_0)
VARIANTS = {"float16": "ggml-model.bin", "q8_0": "ggml-model-q8_0.bin"}
FLOAT32_MATRICES = ("encoder.conv1.bias", "encoder.conv2.bias", "encoder.positional_embedding",
                    "decoder.positional_embedding")  # fmt: skip


def byte_alphabet() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet, character → byte: printable bytes stand for themselves, the other 68 are
    moved to code points 256 and up (the table every byte-level BPE vocabulary is written in)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    characters, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            characters[chr(byte)] = byte
        else:
            characters[chr(256 + extra)] = byte
            extra += 1
    return characters


def token_bytes(tokenizer, count: int) -> list[bytes]:
    """The bytes of tokens 0 … count−1 (the ordinary, byte-level BPE tokens)."""
    alphabet = byte_alphabet()
    out = []
    for token in tokenizer.convert_ids_to_tokens(list(range(count))):
        try:
            out.append(bytes(alphabet[c] for c in token))
        except KeyError:
            raise StudioError(
                f"the token {token!r} is no byte-level BPE token; this tokenizer is no Whisper's"
            ) from None
    return out


def quantize_q8_0(matrix: np.ndarray) -> bytes:
    """Q8_0 blocks of a float32 matrix whose rows hold a multiple of 32 values: per block a float16 scale and 32
    int8 values."""
    blocks = matrix.astype(np.float32).reshape(-1, BLOCK)
    scale = np.abs(blocks).max(axis=1) / 127.0
    inverse = np.divide(1.0, scale, out=np.zeros_like(scale), where=scale > 0)
    scaled = blocks * inverse[:, None]
    values = (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype(np.int8)  # C's roundf
    packed = np.empty(len(blocks), dtype=[("d", "<f2"), ("qs", "i1", BLOCK)])
    packed["d"], packed["qs"] = scale.astype(np.float16), values
    return packed.tobytes()


def dequantize_q8_0(data: bytes, count: int) -> np.ndarray:
    packed = np.frombuffer(data, dtype=[("d", "<f2"), ("qs", "i1", BLOCK)], count=count // BLOCK)
    return (packed["qs"].astype(np.float32) * packed["d"].astype(np.float32)[:, None]).reshape(-1)


def _tensor_type(name: str, array: np.ndarray, variant: str) -> int:
    if array.ndim == 1 or name in FLOAT32_MATRICES:
        return F32
    if array.ndim == 3 or variant == "float16":
        return F16
    return Q8_0


def _write_tensor(sink, name: str, array: np.ndarray, variant: str) -> None:
    if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
        array = array.reshape(-1, 1)  # the loader's shape for them: (1, n) innermost first
    kind = _tensor_type(name, array, variant)
    encoded = name.encode("utf-8")
    sink.write(struct.pack("<iii", array.ndim, len(encoded), kind))
    sink.write(struct.pack(f"<{array.ndim}i", *reversed(array.shape)))
    sink.write(encoded)
    if kind == Q8_0:
        if array.shape[-1] % BLOCK:
            raise StudioError(f"{name}: rows of {array.shape[-1]} values cannot be Q8_0 blocks of {BLOCK}")
        sink.write(quantize_q8_0(array))
    else:
        sink.write(np.ascontiguousarray(array, dtype=np.float32 if kind == F32 else np.float16).tobytes())


def write_ggml(source, folder: Path) -> list[str]:
    """`ggml-model.bin` (float16) and `ggml-model-q8_0.bin` in `folder`; returns the names written."""
    c = source.config
    state = {openai_name(k): v.numpy() for k, v in source.state().items()}
    filters = np.asarray(source.extractor.mel_filters, dtype=np.float32).T  # (n_mels, 201)
    vocabulary = token_bytes(source.tokenizer, source.tokens.eot)
    written = []
    for variant, name in VARIANTS.items():
        ftype = FTYPE[variant] + (QUANTIZATION_VERSION * QUANTIZATION_FACTOR if variant != "float16" else 0)
        with open(folder / name, "wb") as sink:
            sink.write(struct.pack("<I", GGML_MAGIC))
            sink.write(struct.pack("<11i", c.vocab_size, c.max_source_positions, c.d_model,
                                   c.encoder_attention_heads, c.encoder_layers, c.max_target_positions, c.d_model,
                                   c.decoder_attention_heads, c.decoder_layers, c.num_mel_bins, ftype))  # fmt: skip
            sink.write(struct.pack("<ii", *filters.shape))
            sink.write(filters.tobytes())
            sink.write(struct.pack("<i", len(vocabulary)))
            for token in vocabulary:
                sink.write(struct.pack("<i", len(token)) + token)
            for tensor_name, array in state.items():
                _write_tensor(sink, tensor_name, array, variant)
        written.append(name)
    return written


@dataclass
class GgmlModel:
    """A parsed ggml file: hyperparameters, mel filters, vocabulary, and tensors as float32 under transformers
    names."""

    hparams: dict[str, int]
    filters: np.ndarray
    vocabulary: list[bytes]
    tensors: dict[str, np.ndarray]


HPARAMS = ("n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer", "n_text_ctx",
           "n_text_state", "n_text_head", "n_text_layer", "n_mels", "ftype")  # fmt: skip


def read_ggml(path: Path) -> GgmlModel:
    """Parse a ggml Whisper file of float32, float16 and Q8_0 tensors; StudioError for anything else."""
    data = Path(path).read_bytes()
    at = 0

    def take(fmt: str):
        nonlocal at
        size = struct.calcsize(fmt)
        if at + size > len(data):
            raise StudioError(f"{path}: the file ends early (at byte {at}); re-export it")
        values = struct.unpack_from(fmt, data, at)
        at += size
        return values

    if take("<I")[0] != GGML_MAGIC:
        raise StudioError(f"{path} is no ggml model (wrong magic number)")
    hparams = dict(zip(HPARAMS, take("<11i")))
    n_mel, n_fft = take("<ii")
    filters = np.frombuffer(data, np.float32, n_mel * n_fft, at).reshape(n_mel, n_fft)
    at += 4 * n_mel * n_fft
    vocabulary = []
    for _ in range(take("<i")[0]):
        (length,) = take("<i")
        vocabulary.append(data[at : at + length])
        at += length
    tensors = {}
    while at < len(data):
        dims, length, kind = take("<iii")
        shape = tuple(reversed(take(f"<{dims}i")))
        name = data[at : at + length].decode("utf-8")
        at += length
        count = int(np.prod(shape))
        if kind == Q8_0:
            size = count // BLOCK * (2 + BLOCK)
            array = dequantize_q8_0(data[at : at + size], count)
        elif kind in (F32, F16):
            size = count * (4 if kind == F32 else 2)
            array = np.frombuffer(data, np.float32 if kind == F32 else np.float16, count, at).astype(np.float32)
        else:
            raise StudioError(f"{path}: tensor {name} has ggml type {kind}, which this reader cannot load")
        at += size
        array = array.reshape(shape)
        tensors[transformers_name(name)] = (
            array.reshape(-1) if name.endswith("conv1.bias") or name.endswith("conv2.bias") else array
        )
    return GgmlModel(hparams, filters, vocabulary, tensors)
