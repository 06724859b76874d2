"""Writing Whisper model folders that load like Hub checkpoints: the processor, the model config and the generation
config every folder we make shares, and the small offline `demo` model.

Two kinds of folder are made here: the `demo` model (seeded random weights, a 3-second window) and a real Whisper
converted from an installed CTranslate2 file (core/installed_models.py). Both get the real multilingual tokenizer
committed under assets/whisper-tokenizer and a generation config with the language and task tokens, so
`WhisperForConditionalGeneration.generate(language=…, task=…)` and `transformers.pipeline` work on them as on
openai/whisper-*.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from core import ASSETS
from core.audio.constants import HOP_LENGTH, MAX_TARGET_POSITIONS, N_FFT, SAMPLE_RATE
from core.errors import StudioError
from core.workspace import staged_folder, write_json_atomic

DEMO = "demo"  # the 4M-parameter toy built offline (build_demo_model): a test fixture, never trained on English
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")  # where a folder keeps its feature extractor

TOKENIZER_ASSETS = ASSETS / "whisper-tokenizer"
SPACE_TOKEN = 220  # "Ġ", a lone space: Whisper never begins a transcript with it (begin_suppress_tokens)
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|startofprev|>",
    "<|notimestamps|>",
)


def whisper_tokenizer():
    """The multilingual Whisper tokenizer shipped with the product (built offline, see scripts/)."""
    from transformers import WhisperTokenizer

    if not (TOKENIZER_ASSETS / "tokenizer.json").is_file():
        raise StudioError(
            f"{TOKENIZER_ASSETS}: the Whisper tokenizer files are missing; "
            f"run python scripts/build_whisper_tokenizer.py"
        )
    return WhisperTokenizer.from_pretrained(str(TOKENIZER_ASSETS))


def whisper_processor(num_mel_bins: int, window_seconds: int):
    """Feature extractor (`num_mel_bins` bins, a `window_seconds` window) + the shipped tokenizer."""
    from transformers import WhisperFeatureExtractor, WhisperProcessor

    extractor = WhisperFeatureExtractor(
        feature_size=num_mel_bins,
        sampling_rate=SAMPLE_RATE,
        hop_length=HOP_LENGTH,
        chunk_length=window_seconds,
        n_fft=N_FFT,
    )
    return WhisperProcessor(feature_extractor=extractor, tokenizer=whisper_tokenizer())


def special_token_ids(tokenizer) -> dict[str, int]:
    return {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}


def language_token_ids(tokenizer) -> dict[str, int]:
    """`<|xx|>` → id for every language token of a multilingual Whisper tokenizer (they sit between
    <|startoftranscript|> and <|translate|>)."""
    start = tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
    translate = tokenizer.convert_tokens_to_ids("<|translate|>")
    return {tokenizer.convert_ids_to_tokens(i): i for i in range(start + 1, translate)}


def whisper_config(tokenizer, sizes: dict, suppress_tokens: list[int] | None = None):
    """A WhisperConfig with the shipped tokenizer's special tokens; `sizes` names the architecture (d_model,
    layers, heads, ffn dims, positions, mel bins)."""
    from transformers import WhisperConfig

    ids = special_token_ids(tokenizer)
    sizes = {"vocab_size": len(tokenizer), **sizes}
    return WhisperConfig(
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"],
        decoder_start_token_id=ids["<|startoftranscript|>"],
        begin_suppress_tokens=[SPACE_TOKEN, ids["<|endoftext|>"]],
        suppress_tokens=list(suppress_tokens or []),
        tie_word_embeddings=True,
        scale_embedding=False,
        **sizes,
    )


def whisper_generation_config(tokenizer, config, alignment_heads: list | None = None):
    """Generation config with Whisper's language and task tokens, so generate(language=…, task=…) works."""
    from transformers import GenerationConfig

    ids = special_token_ids(tokenizer)
    generation = GenerationConfig.from_model_config(config)
    whisper_fields = dict(
        lang_to_id=language_token_ids(tokenizer),
        task_to_id={"translate": ids["<|translate|>"], "transcribe": ids["<|transcribe|>"]},
        is_multilingual=True,
        no_timestamps_token_id=ids["<|notimestamps|>"],
        prev_sot_token_id=ids["<|startofprev|>"],
        max_initial_timestamp_index=50,  # timestamps advance in 0.02 s steps: the first at most 1 s in
        decoder_start_token_id=ids["<|startoftranscript|>"],
        max_length=config.max_target_positions,
        forced_decoder_ids=None,
        begin_suppress_tokens=list(config.begin_suppress_tokens),
        suppress_tokens=list(config.suppress_tokens or []),
    )
    if alignment_heads:
        whisper_fields["alignment_heads"] = [list(pair) for pair in alignment_heads]
    for key, value in whisper_fields.items():  # setattr: GenerationConfig.update() ignores unknown keys
        setattr(generation, key, value)
    # Marked as derived from the model config, it would be rebuilt from it on load, losing the Whisper fields.
    generation._from_model_config = False
    return generation


def save_whisper_folder(path: Path, network, processor, extra: dict[str, dict] | None = None) -> Path:
    """Write model, processor and generation config (plus `extra` JSON files) to `path`, atomically. An existing
    folder is replaced only when it holds the first `extra` file (the demo's spec, an installed model's marker), or
    without `extra` a config.json: a model folder of the same kind."""
    with staged_folder(path, marker=next(iter(extra or {}), "config.json")) as staging:
        try:
            network.save_pretrained(staging)
        except Exception as err:
            # safetensors reports a full disk in its own error type ("I/O error: No space left on device (os error
            # 28)"): as an OSError it gets the one line (and the fix) every other full disk gets
            code = re.search(r"\(os error (\d+)\)", str(err))
            if code is None:
                raise
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(path)) from err
        processor.save_pretrained(staging)
        for name, data in (extra or {}).items():
            write_json_atomic(staging / name, data)
    return path


@dataclass(frozen=True)
class DemoSpec:
    """The demo model's shape: small enough to train on 2 CPU cores in minutes."""

    window_seconds: int = 3  # input window: 3 s × 100 frames/s = 300 mel frames, 150 encoder positions
    num_mel_bins: int = 80
    d_model: int = 64
    encoder_layers: int = 2
    decoder_layers: int = 2
    attention_heads: int = 4
    ffn_dim: int = 256
    max_target_positions: int = MAX_TARGET_POSITIONS  # as every openai/whisper-* model: 448 × 64 is a small table
    seed: int = 0


DEMO_SPEC_FILE = "demo_spec.json"


def build_demo_model(path: Path, spec: DemoSpec | None = None) -> Path:
    """Write the untrained demo model (model, processor, generation config) to `path`, atomically."""
    import torch
    from transformers import WhisperForConditionalGeneration

    spec = spec or DemoSpec()
    processor = whisper_processor(spec.num_mel_bins, spec.window_seconds)
    frames = processor.feature_extractor.nb_max_frames
    config = whisper_config(
        processor.tokenizer,
        dict(
            num_mel_bins=spec.num_mel_bins,
            d_model=spec.d_model,
            encoder_layers=spec.encoder_layers,
            decoder_layers=spec.decoder_layers,
            encoder_attention_heads=spec.attention_heads,
            decoder_attention_heads=spec.attention_heads,
            encoder_ffn_dim=spec.ffn_dim,
            decoder_ffn_dim=spec.ffn_dim,
            max_source_positions=frames // 2,  # the encoder's stride-2 convolution halves the frames
            max_target_positions=spec.max_target_positions,
        ),
    )
    torch.manual_seed(spec.seed)
    network = WhisperForConditionalGeneration(config)
    network.generation_config = whisper_generation_config(processor.tokenizer, config)
    return save_whisper_folder(path, network, processor, {DEMO_SPEC_FILE: asdict(spec)})
