"""Whisper models: load any checkpoint by Hub id or local folder, and build the small offline `demo` model.

A model is always loaded with its processor (feature extractor + tokenizer) and generation config; language and
task are set through the generation config, never `forced_decoder_ids`. `demo` is a Whisper-architecture model
with the real multilingual tokenizer (assets/whisper-tokenizer) and a short input window stored in its processor,
so every piece of code reads the window from the processor. It starts untrained (seeded random weights) and lives
in the workspace as an ordinary Hugging Face folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from core.errors import StudioError
from core.workspace import Workspace, read_json, write_json_atomic

ASSETS = Path(__file__).resolve().parent.parent / "assets"
TOKENIZER_ASSETS = ASSETS / "whisper-tokenizer"
DEMO = "demo"
MAX_TARGET_POSITIONS = 448  # decoder positions of every openai/whisper-* checkpoint
# transformers 5 saves a processor as processor_config.json; Hub checkpoints have preprocessor_config.json
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")
HOP_LENGTH = 160  # samples per mel frame at 16 kHz: 10 ms


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
    max_target_positions: int = 448  # as every openai/whisper-* model: 448 × 64 is a small table
    seed: int = 0


def demo_path(workspace: Workspace) -> Path:
    return workspace.models / DEMO


def resolve_model(model: str, workspace: Workspace) -> str:
    """A loadable location: `demo` (built on first use), a local folder, or a Hub id, as given."""
    if model == DEMO:
        path = demo_path(workspace)
        if not (path / "config.json").is_file():
            build_demo_model(path)
        return str(path)
    path = Path(model).expanduser()
    if path.is_dir():
        if not any((path / name).is_file() for name in ("config.json",) + PROCESSOR_FILES):
            raise StudioError(f"{path}: no Whisper model here (no config.json, no processor files)")
        return str(path.resolve())
    if model.startswith((".", "/", "~")) or os.sep in model.strip("/").replace("/", "", 1):
        raise StudioError(f"{model}: no such model folder; give a folder, a Hub id like openai/whisper-small, or demo")
    return model


def model_fingerprint(model: str, workspace: Workspace) -> str:
    """What identifies a model's processor for feature reuse: its location and its preprocessing files."""
    location = resolve_model(model, workspace)
    digest = hashlib.sha256(location.encode())
    for name in PROCESSOR_FILES + ("tokenizer_config.json", "tokenizer.json"):
        file = Path(location) / name
        if file.is_file():
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def _explain_load_error(model: str, err: Exception) -> StudioError:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return StudioError(
        f"cannot load model '{model}': {text[:300]}; give a Hub id such as openai/whisper-small "
        f"(needs the network, and HF_TOKEN for private models), a local model folder, or demo"
    )


def load_processor(model: str, workspace: Workspace):
    from transformers import WhisperProcessor

    location = resolve_model(model, workspace)
    try:
        return WhisperProcessor.from_pretrained(location)
    except Exception as err:
        raise _explain_load_error(model, err) from None


def load_model(model: str, workspace: Workspace, language: str | None = None, task: str = "transcribe"):
    """(model, processor) with the generation config's language (a Whisper code such as `no`) and task set."""
    from transformers import WhisperForConditionalGeneration

    location = resolve_model(model, workspace)
    processor = load_processor(model, workspace)
    try:
        network = WhisperForConditionalGeneration.from_pretrained(location)
    except Exception as err:
        raise _explain_load_error(model, err) from None
    generation = network.generation_config
    generation.language = language
    generation.task = task
    generation.forced_decoder_ids = None
    network.config.forced_decoder_ids = None
    return network, processor


def language_token_ids(tokenizer) -> dict[str, int]:
    """`<|xx|>` → id for every language token of a multilingual Whisper tokenizer."""
    start = tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
    translate = tokenizer.convert_tokens_to_ids("<|translate|>")
    return {tokenizer.convert_ids_to_tokens(i): i for i in range(start + 1, translate)}


def build_demo_model(path: Path, spec: DemoSpec | None = None) -> Path:
    """Write the untrained demo model (model, processor, generation config) to `path`, atomically."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    spec = spec or DemoSpec()
    if not (TOKENIZER_ASSETS / "tokenizer.json").is_file():
        raise StudioError(
            f"{TOKENIZER_ASSETS}: the Whisper tokenizer files are missing; "
            f"run python scripts/build_whisper_tokenizer.py"
        )
    tokenizer = WhisperTokenizer.from_pretrained(str(TOKENIZER_ASSETS))
    extractor = WhisperFeatureExtractor(
        feature_size=spec.num_mel_bins,
        sampling_rate=16000,
        hop_length=HOP_LENGTH,
        chunk_length=spec.window_seconds,
        n_fft=400,
    )
    ids = {
        t: tokenizer.convert_tokens_to_ids(t)
        for t in (
            "<|endoftext|>",
            "<|startoftranscript|>",
            "<|translate|>",
            "<|transcribe|>",
            "<|startofprev|>",
            "<|notimestamps|>",
        )
    }
    frames = extractor.nb_max_frames
    config = WhisperConfig(
        vocab_size=len(tokenizer),
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
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"],
        decoder_start_token_id=ids["<|startoftranscript|>"],
        begin_suppress_tokens=[220, ids["<|endoftext|>"]],
        suppress_tokens=[],
        tie_word_embeddings=True,
    )
    torch.manual_seed(spec.seed)
    model = WhisperForConditionalGeneration(config)
    generation = GenerationConfig.from_model_config(config)
    whisper_fields = dict(
        lang_to_id=language_token_ids(tokenizer),
        task_to_id={"translate": ids["<|translate|>"], "transcribe": ids["<|transcribe|>"]},
        is_multilingual=True,
        no_timestamps_token_id=ids["<|notimestamps|>"],
        prev_sot_token_id=ids["<|startofprev|>"],
        max_initial_timestamp_index=50,
        decoder_start_token_id=ids["<|startoftranscript|>"],
        max_length=spec.max_target_positions,
        forced_decoder_ids=None,
        begin_suppress_tokens=[220, ids["<|endoftext|>"]],
        suppress_tokens=[],
    )
    for key, value in whisper_fields.items():  # setattr: GenerationConfig.update() ignores unknown keys
        setattr(generation, key, value)
    # Marked as derived from the model config, it would be rebuilt from it on load, losing the Whisper fields.
    generation._from_model_config = False
    model.generation_config = generation

    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        model.save_pretrained(staging)
        WhisperProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(staging)
        write_json_atomic(staging / "demo_spec.json", asdict(spec))
        if path.exists():
            shutil.rmtree(path)
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def demo_spec(workspace: Workspace) -> dict | None:
    return read_json(demo_path(workspace) / "demo_spec.json")
