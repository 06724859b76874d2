"""Find a checkpoint's alignment heads again: the cross-attention heads whose path through the audio times words.

Word timestamps read the decoder's cross-attention on a few "alignment heads" (openai/whisper ships them per model,
faster-whisper and whisper.cpp copy them). Fine-tuning moves what heads attend to, so the base model's heads may
no longer point at the words (transformers #28365, faster-whisper #338). The search, as WhisperLiveKit's
`determine_alignment_heads.py` does by hand:

1. speak sentences word by word with espeak-ng and join the words with short gaps, so each word's start is known;
2. teacher-force each clip's text through the checkpoint and keep every head's cross-attention (eager attention);
3. per head: normalise per position, median-filter, DTW → word starts (core/speech/words.py), the error against
   the known starts;
4. rank the heads by median error and keep the best few: the count whose averaged path times best.

The heads go into the checkpoint's `generation_config.json` (`alignment_heads`), which our own engine, the
CTranslate2 export (its config.json) and the other exports (`alignment_heads.json`) read.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.audio.constants import HOP_LENGTH, SAMPLE_RATE
from core.audio.decode import load_audio
from core.audio.melspec import log_mel
from core.errors import StudioError
from core.languages import Language
from core.models.resolve import load_model
from core.speech.engines import MEDIAN_FILTER_WIDTH
from core.speech.words import dynamic_time_warp, median_filter, window_words
from core.workspace import Workspace, read_json_if_intact, write_json_atomic

WORD_GAP_S = 0.15  # silence between words: each start is then known to the sample
LEAD_S = 0.5  # silence before the first word
MOST_HEADS = 12  # the search keeps at most this many heads (openai's base has 8, large-v2 23)


@dataclass(frozen=True)
class TimedClip:
    samples: np.ndarray
    words: list[tuple[str, float]]  # (word, start in seconds)


@dataclass(frozen=True)
class HeadSearch:
    """What the search found: the heads, and the median word-start error (seconds) with the old and new heads."""

    heads: list[tuple[int, int]]
    before_s: float
    after_s: float
    words: int

    @property
    def shown(self) -> str:
        return (
            f"{len(self.heads)} alignment heads {self.heads}: median word-start error "
            f"{self.before_s:.3f} s with the checkpoint's heads → {self.after_s:.3f} s ({self.words} words)"
        )


def _spoken_word(word: str, voice: str, folder: Path) -> np.ndarray:
    wav = folder / "word.wav"
    result = subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), word], capture_output=True, text=True)
    if result.returncode != 0:
        raise StudioError(f"espeak-ng failed for voice {voice}: {result.stderr.strip()[:200]}")
    samples = load_audio(wav)
    loud = np.flatnonzero(np.abs(samples) > 0.01)  # espeak-ng's own silences cut: the word starts at its sound
    return samples[loud[0] : loud[-1] + 1] if len(loud) else samples


def timed_clips(texts: list[str], language: Language, window_s: float) -> list[TimedClip]:
    """One clip per text, its words spoken one by one with WORD_GAP_S between them, each start known."""
    if not language.espeak:
        raise StudioError(f"{language.name} has no espeak-ng voice to speak the timing clips; choose --language en")
    clips = []
    with tempfile.TemporaryDirectory() as scratch:
        for text in texts:
            parts, words, at = [np.zeros(int(LEAD_S * SAMPLE_RATE), np.float32)], [], LEAD_S
            for word in text.split():
                audio = _spoken_word(word, language.espeak, Path(scratch))
                if at + len(audio) / SAMPLE_RATE > window_s - 0.5:
                    break  # the clip stays inside one window
                words.append((word, at))
                parts += [audio, np.zeros(int(WORD_GAP_S * SAMPLE_RATE), np.float32)]
                at += len(audio) / SAMPLE_RATE + WORD_GAP_S
            if len(words) >= 2:
                clips.append(TimedClip(np.concatenate(parts), words))
    if not clips:
        raise StudioError("no timing clip fits the model's window; give shorter sentences (--text)")
    return clips


def _cross_attention(model, processor, clip: TimedClip, language: str) -> tuple[np.ndarray, list[int], int]:
    """(every head's cross-attention over the text tokens: layers × heads × tokens × positions, the text tokens,
    the clip's positions)."""
    tokenizer = processor.tokenizer
    text = tokenizer.encode(" " + " ".join(w for w, _ in clip.words), add_special_tokens=False)
    prompt = tokenizer.convert_tokens_to_ids(
        ["<|startoftranscript|>", f"<|{language}|>", "<|transcribe|>", "<|notimestamps|>"]
    )
    tokens = torch.tensor([prompt + text + [tokenizer.eos_token_id]])
    features = torch.from_numpy(log_mel([clip.samples], processor.feature_extractor))
    with torch.inference_mode():
        out = model(input_features=features, decoder_input_ids=tokens, output_attentions=True)
    positions = len(clip.samples) // HOP_LENGTH // 2  # 2 mel frames per encoder position
    attention = torch.stack([a[0] for a in out.cross_attentions]).float().numpy()  # layers × heads × T × positions
    return attention[:, :, len(prompt) - 1 : -1, :positions], text, positions


def _starts_error(tokenizer, weights: np.ndarray, text: list[int], known: list[tuple[str, float]]) -> list[float]:
    """Word-start errors (seconds) of the DTW path through `weights` (heads × tokens × positions, averaged)."""
    normed = (weights - weights.mean(axis=-2, keepdims=True)) / (weights.std(axis=-2, keepdims=True) + 1e-9)
    # row 0 is <|notimestamps|>: its attention predicts the first word (openai/whisper's find_alignment)
    matrix = median_filter(normed, MEDIAN_FILTER_WIDTH).mean(axis=0)
    rows, cols = dynamic_time_warp(-matrix)
    timed = window_words(tokenizer, text, (rows, cols, np.ones(len(text))))
    spelled = [(w["word"].strip(" .,!?").lower(), w["start"]) for w in timed]
    errors = []
    for (word, start), (heard, found) in zip(known, spelled):
        if heard == word.strip(" .,!?").lower():
            errors.append(abs(found - start))
    return errors


def find_alignment_heads(
    checkpoint: str, workspace: Workspace, language: Language, texts: list[str], write: bool = True
) -> HeadSearch:
    """Search `checkpoint`'s heads on clips of `texts` spoken in `language`; with `write`, store the best in its
    generation_config.json. Returns the heads and the word-start error before and after."""
    model, processor = load_model(checkpoint, workspace)
    model.set_attn_implementation("eager")  # sdpa returns no attention weights
    model.eval()
    window_s = processor.feature_extractor.n_samples / SAMPLE_RATE
    clips = timed_clips(texts, language, window_s)
    layers, heads = model.config.decoder_layers, model.config.decoder_attention_heads
    seen = [_cross_attention(model, processor, clip, language.whisper) for clip in clips]
    tokenizer = processor.tokenizer

    def median_error(chosen: list[tuple[int, int]]) -> tuple[float, int]:
        errors = []
        for (attention, text, _), clip in zip(seen, clips):
            stacked = np.stack([attention[layer, head] for layer, head in chosen])
            errors += _starts_error(tokenizer, stacked, text, clip.words)
        return (float(np.median(errors)) if errors else float("inf")), len(errors)

    # 3. every head alone; 4. the best few together
    ranked = sorted(
        ((layer, head) for layer in range(layers) for head in range(heads)), key=lambda h: median_error([h])
    )
    tries = {k: median_error(ranked[:k]) for k in range(1, min(MOST_HEADS, len(ranked)) + 1)}
    best = min(tries, key=lambda k: tries[k][0])
    current = [tuple(h) for h in (getattr(model.generation_config, "alignment_heads", None) or [])]
    upper = [(layer, head) for layer in range(layers // 2, layers) for head in range(heads)]
    before, _ = median_error(current or upper)
    after, words = tries[best]
    chosen = sorted(ranked[:best])
    if write:
        write_alignment_heads(Path(checkpoint), chosen)
    return HeadSearch(chosen, before, after, words)


def write_alignment_heads(folder: Path, heads: list[tuple[int, int]]) -> None:
    """`alignment_heads` in the checkpoint folder's generation_config.json (written atomically)."""
    path = folder / "generation_config.json"
    config = read_json_if_intact(path)
    if not isinstance(config, dict):
        raise StudioError(f"{folder}: no readable generation_config.json to write the alignment heads into")
    write_json_atomic(path, {**config, "alignment_heads": [list(h) for h in heads]})
