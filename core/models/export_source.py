"""What every export reads from a checkpoint: the Whisper network (float32), its tokenizer and feature extractor,
and the facts each runtime's file spells out (sizes, special tokens, languages, alignment heads).

The runtimes re-implement Whisper's architecture with openai/whisper's fixed choices: an MLP of 4 × d_model, one
width for encoder and decoder, GELU, no embedding scale, the output projection tied to the token embedding. A
checkpoint that leaves any of these is refused here in one line, before a file is written. Token ids come from the
checkpoint's own tokenizer, so a multilingual model and an English-only `.en` one (51,864 tokens, no language or
task tokens) each get their own layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.errors import StudioError
from core.workspace import read_json_if_intact

MULTILINGUAL_VOCAB = 51865  # openai/whisper's is_multilingual: n_vocab >= 51865 (large-v3 has 51,866)
ENGLISH_ONLY_VOCAB = 51864  # the `.en` models: GPT-2's 50,257 tokens and Whisper's special ones, no languages


@dataclass(frozen=True)
class SpecialTokens:
    """The ids every runtime needs by name (openai/whisper's tokenizer properties)."""

    sot: int
    eot: int
    translate: int | None
    transcribe: int | None
    sot_prev: int
    sot_lm: int | None
    no_speech: int | None
    no_timestamps: int
    blank: int  # " ": what a transcript never starts with
    languages: dict[str, int] = field(default_factory=dict)  # Whisper code (`no`) → its token id


@dataclass
class WhisperSource:
    """A checkpoint as the exporters see it: the network in float32 and its facts."""

    location: Path
    network: object  # WhisperForConditionalGeneration, eval mode, float32
    tokenizer: object
    extractor: object  # WhisperFeatureExtractor
    tokens: SpecialTokens
    alignment_heads: list[tuple[int, int]]

    @property
    def config(self):
        return self.network.config

    @property
    def multilingual(self) -> bool:
        return self.config.vocab_size >= MULTILINGUAL_VOCAB

    @property
    def window_frames(self) -> int:
        """Mel frames per window (3,000 for Whisper's 30 s; 300 for the demo's 3 s)."""
        return 2 * self.config.max_source_positions  # the encoder's stride-2 convolution halves the frames

    def state(self) -> dict[str, torch.Tensor]:
        """transformers parameter name → float32 tensor (the tied output projection left out)."""
        return {k: v.detach().float() for k, v in self.network.state_dict().items() if k != "proj_out.weight"}


def special_tokens(tokenizer) -> SpecialTokens:
    """The special ids by name from the checkpoint's own tokenizer; None for what an English-only one lacks."""

    def token(text: str) -> int | None:
        found = tokenizer.convert_tokens_to_ids(text)
        return None if found is None or found == tokenizer.unk_token_id and text != tokenizer.unk_token else found

    sot, translate = token("<|startoftranscript|>"), token("<|translate|>")
    languages = {}
    if sot is not None and translate is not None:  # the language tokens sit between the two
        for i in range(sot + 1, translate):
            languages[tokenizer.convert_ids_to_tokens(i).strip("<|>")] = i
    return SpecialTokens(
        sot=sot,
        eot=token("<|endoftext|>"),
        translate=translate,
        transcribe=token("<|transcribe|>"),
        sot_prev=token("<|startofprev|>"),
        sot_lm=token("<|startoflm|>"),
        no_speech=token("<|nospeech|>") or token("<|nocaptions|>"),
        no_timestamps=token("<|notimestamps|>"),
        blank=tokenizer.encode(" ", add_special_tokens=False)[0],
        languages=languages,
    )


def load_source(location: Path) -> WhisperSource:
    """The checkpoint folder `location` loaded for export; StudioError for anything that is no Whisper."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    config = read_json_if_intact(location / "config.json")
    if not isinstance(config, dict) or config.get("model_type") != "whisper":
        kind = config.get("model_type") if isinstance(config, dict) else None
        raise StudioError(
            f"{location} is no Whisper checkpoint (model_type {kind!r} in config.json); "
            f"export a Whisper checkpoint folder (config.json with model_type whisper, model.safetensors)"
        )
    if not any(location.glob("*.safetensors")) and not (location / "pytorch_model.bin").is_file():
        hint = " (a LoRA adapter alone: export the run's checkpoint, which holds the merged model)"
        adapter = (location / "adapter_config.json").is_file()
        raise StudioError(f"{location}: no model weights (model.safetensors){hint if adapter else ''}")
    try:
        network = WhisperForConditionalGeneration.from_pretrained(str(location), dtype=torch.float32).eval()
        processor = WhisperProcessor.from_pretrained(str(location))
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise StudioError(f"cannot load {location} for export ({first}); pick another checkpoint") from None
    heads = getattr(network.generation_config, "alignment_heads", None) or []
    source = WhisperSource(
        location=location,
        network=network,
        tokenizer=processor.tokenizer,
        extractor=processor.feature_extractor,
        tokens=special_tokens(processor.tokenizer),
        alignment_heads=[(int(a), int(b)) for a, b in heads],
    )
    check_architecture(source)
    return source


def check_architecture(source: WhisperSource) -> None:
    """Refuse a checkpoint the runtimes' fixed Whisper architecture cannot hold, naming what differs."""
    c = source.config
    problems = []
    if c.encoder_ffn_dim != 4 * c.d_model or c.decoder_ffn_dim != 4 * c.d_model:
        problems.append(f"MLP widths {c.encoder_ffn_dim}/{c.decoder_ffn_dim}, the runtimes fix 4 × {c.d_model}")
    if c.activation_function != "gelu":
        problems.append(f"activation {c.activation_function}, the runtimes use gelu")
    if getattr(c, "scale_embedding", False):
        problems.append("scaled embeddings, which the runtimes never apply")
    if c.vocab_size < ENGLISH_ONLY_VOCAB:
        problems.append(f"{c.vocab_size} tokens, fewer than any Whisper's {ENGLISH_ONLY_VOCAB}")
    if len(source.tokenizer) != c.vocab_size:
        problems.append(f"a tokenizer of {len(source.tokenizer)} tokens for a model of {c.vocab_size}")
    if source.extractor.feature_size != c.num_mel_bins:
        problems.append(f"a feature extractor of {source.extractor.feature_size} bins for {c.num_mel_bins}")
    if source.tokens.sot is None or source.tokens.eot is None or source.tokens.no_timestamps is None:
        problems.append("a tokenizer without Whisper's special tokens")
    if source.multilingual and not source.tokens.languages:
        problems.append("a multilingual vocabulary whose tokenizer has no language tokens (a `.en` tokenizer?)")
    if problems:
        raise StudioError(
            f"{source.location} cannot be exported as standard Whisper: {'; '.join(problems)}; "
            f"export a Whisper checkpoint trained from openai/whisper-* or demo"
        )
