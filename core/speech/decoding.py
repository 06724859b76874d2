"""How a window is decoded: the one policy both engines (CTranslate2 and transformers) follow.

`DecodingOptions` is the contract the CLI's `transcribe` flags, the Transcribe page, the `serve` endpoint and
`Transcriber.transcribe_file` share. Its defaults are those of openai/whisper's `transcribe` and faster-whisper
(beam 5 for files, temperature fallback 0 → 0.2 … 1.0 on a compression ratio above 2.4 or an average
log-probability below −1.0, silence when the no-speech probability is above 0.6 with a low log-probability).

The policy (`WindowDecoder`) asks an engine for two things only: `encode(features)` (the audio encoder, once per
window) and `decode(encoded, prompt, temperature, beams, best_of, max_new_tokens)` (hypotheses with their average
log-probability and no-speech probability). Windows are decoded in batches at temperature 0; only the windows
that fail are decoded again, at the next temperature, so a clean recording costs one pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from core.audio.constants import MAX_TARGET_POSITIONS
from core.errors import StudioError
from core.models.hf_folders import DEMO, DEMO_SPEC_FILE
from core.option_fields import option_help
from core.text.wer import LOOP_COMPRESSION_RATIO, compression_ratio
from core.workspace import read_json_if_intact

TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
VAD_CHOICES = ("silero", "energy")
PROMPT_RESET_TEMPERATURE = 0.5  # a window decoded hotter than this is not trusted as the next window's prompt
MAX_CANDIDATES = 20  # beams or samples per window: a batch of 16 windows × 20 = 320 hypotheses at once; openai/whisper
# and faster-whisper use 5, and more costs memory and time with no gain measured
MAX_TEMPERATURE = 2.0  # above 2 the sampled text is noise: the ladder's last rung is 1.0
# A fitted context (DecodingOptions.fitted_context) is a window's audio and FITTED_MARGIN_S after it, never less than
# FITTED_MIN_S. Whisper loops when it sees little silence after speech: over 240 espeak-ng pieces (40 sentences per
# language, whole and cut at 40% and 70%, as partials are) whisper-base looped on 39 with no minimum, 13 with 5 s, none
# with 8 s (greedy; WER no worse than over 30 s), and on 1 of 240 held-out pieces (another seed) with 8 s, where a
# piece took 0.13-0.17 s against 0.50-0.55 s over 30 s on 2 cores
FITTED_MARGIN_S = 1.0
FITTED_MIN_S = 8


@dataclass(frozen=True)
class DecodingOptions:
    beam_size: int = field(
        default=5,
        metadata=option_help(f"beams per window, 1 to {MAX_CANDIDATES} (1 = greedy, what the microphone uses)"),
    )
    temperatures: tuple[float, ...] = field(
        default=TEMPERATURES, metadata=option_help("temperature ladder: the next is tried when a window fails")
    )
    compression_ratio_threshold: float | None = field(
        default=LOOP_COMPRESSION_RATIO,
        metadata=option_help("retry a window whose text compresses more than this (a loop)"),
    )
    log_prob_threshold: float | None = field(
        default=-1.0, metadata=option_help("retry a window whose average token log-probability is below this")
    )
    no_speech_threshold: float | None = field(
        default=0.6, metadata=option_help("a window this likely to be silence (with a low log-probability) is skipped")
    )
    condition_on_previous_text: bool = field(
        default=False, metadata=option_help("give each window the previous window's text as its prompt")
    )
    initial_prompt: str | None = field(
        default=None, metadata=option_help("text that comes before the audio: names, spelling, style")
    )
    hotwords: str | None = field(default=None, metadata=option_help("words to favour (names, jargon), space-separated"))
    word_timestamps: bool = field(default=False, metadata=option_help("time every word (cross-attention alignment)"))
    vad: str = field(
        default="silero", metadata=option_help("voice detector: silero (neural) or energy", choices=VAD_CHOICES)
    )
    best_of: int = field(
        default=5, metadata=option_help(f"samples drawn per window at a temperature above 0, 1 to {MAX_CANDIDATES}")
    )
    fitted_context: bool = field(
        default=False,
        metadata=option_help(
            "encode a window's audio and 1 s after it (8 s at least) instead of 30 s (CTranslate2): a short clip "
            "decodes several times faster; a window that loops is decoded again over the full 30 s"
        ),
    )

    def __post_init__(self) -> None:
        self.validate()  # every way in (the CLI's flags, the page, the server, a test) is checked before any work

    def validate(self) -> DecodingOptions:
        """Raise StudioError naming the first invalid value and its valid range; returns self. NaN is refused
        before any comparison (every comparison with it is False, so it would switch a check off unseen)."""
        for name in ("beam_size", "best_of"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CANDIDATES:
                raise StudioError(f"{name} {value}: give a whole number from 1 to {MAX_CANDIDATES} (5 is the default)")
        _check_ladder(self.temperatures, ",".join(map(str, self.temperatures)) if _iterable(self.temperatures) else "")
        for name, fits, meaning in (  # None switches a check off, on purpose; NaN or a value out of range never does
            ("compression_ratio_threshold", lambda v: v > 0, f"above 0 ({LOOP_COMPRESSION_RATIO} is the default)"),
            ("log_prob_threshold", lambda v: v <= 0, "at most 0, a log-probability (-1 is the default)"),
            ("no_speech_threshold", lambda v: 0 <= v <= 1, "from 0 to 1, a probability (0.6 is the default)"),
        ):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and math.isfinite(value) and fits(value)):
                raise StudioError(f"{name} {value}: give a finite number {meaning}")
        if self.vad not in VAD_CHOICES:
            raise StudioError(f"vad '{self.vad}': choose one of {', '.join(VAD_CHOICES)}")
        if self.fitted_context and (self.word_timestamps or self.condition_on_previous_text):
            # a window that loops is decoded again: its words and the prompt it hands on would be those of the loop
            raise StudioError(
                "fitted_context decodes each window on its own: turn off word_timestamps and "
                "condition_on_previous_text, or fitted_context"
            )
        return self


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _iterable(value) -> bool:
    return isinstance(value, tuple | list)


def _check_ladder(ladder, shown: str) -> None:
    """The temperature ladder: numbers from 0 to MAX_TEMPERATURE, rising, at least one."""
    numbers = _iterable(ladder) and all(_is_number(t) and 0 <= t <= MAX_TEMPERATURE for t in ladder)
    if not numbers or not ladder or list(ladder) != sorted(ladder):
        raise StudioError(
            f"temperatures '{shown}': give rising numbers from 0 to {MAX_TEMPERATURE:g}, comma-separated (e.g. 0,0.4)"
        )


@dataclass
class Hypothesis:
    """What an engine returns for one window at one temperature."""

    tokens: list[int]  # text tokens only: no prompt, no end-of-text
    text: str
    avg_log_prob: float  # sum of the tokens' log-probabilities (end-of-text included) / (tokens + 1), as whisper
    no_speech_prob: float  # probability of <|nospeech|> at the <|startoftranscript|> position


@dataclass
class WindowResult:
    tokens: list[int]
    text: str
    avg_log_prob: float
    no_speech_prob: float
    temperature: float  # the temperature whose output was kept
    compression_ratio: float
    silent: bool = False  # judged silence: yields no text


class Engine(Protocol):
    """What the policy needs from a model: CTranslate2Whisper and TransformersWhisper (core/speech/engines.py).
    `fits_context`: whether `encode` takes windows shorter than the model's (DecodingOptions.fitted_context)."""

    fits_context: bool

    def encode(self, features): ...

    def decode(
        self, encoded, prompt: list[int], temperature: float, beams: int, best_of: int, max_new_tokens: int
    ) -> list[Hypothesis]: ...


def parse_temperatures(value: str) -> tuple[float, ...]:
    """'0,0.2,0.4' → (0.0, 0.2, 0.4); refused unless they are numbers from 0 to MAX_TEMPERATURE, rising."""
    try:
        ladder = tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        ladder = ()
    _check_ladder(ladder, value)
    return ladder


def _judged(
    hypothesis: Hypothesis, temperature: float, options: DecodingOptions, max_new_tokens: int
) -> tuple[WindowResult, bool, bool]:
    """(result, whether it needs the next temperature, whether it looped): openai/whisper's rules, and one more: an
    output that reaches the token cap (more text than the audio's length allows) is a loop that was cut off, too
    short for its compression ratio to show it."""
    ratio = compression_ratio(hypothesis.text)
    result = WindowResult(
        hypothesis.tokens, hypothesis.text, hypothesis.avg_log_prob, hypothesis.no_speech_prob, temperature, ratio
    )
    low_log_prob = options.log_prob_threshold is not None and result.avg_log_prob < options.log_prob_threshold
    threshold = options.compression_ratio_threshold
    looping = threshold is not None and is_loop(result, max_new_tokens, threshold)
    result.silent = (
        options.no_speech_threshold is not None and result.no_speech_prob > options.no_speech_threshold and low_log_prob
    )
    return result, (looping or low_log_prob) and not result.silent, looping


def is_loop(result: WindowResult, max_new_tokens: int, threshold: float = LOOP_COMPRESSION_RATIO) -> bool:
    """Whisper's sign of a loop: text that compresses more than `threshold`, or that reached the token cap."""
    return result.compression_ratio > threshold or len(result.tokens) >= max_new_tokens


def fitted_frames(longest: int, extractor) -> int | None:
    """Frames to encode in a fitted context for windows whose longest is `longest` samples: its audio and
    FITTED_MARGIN_S, at least FITTED_MIN_S, in whole seconds (windows of similar length share a shape, so the engine
    loop batches them); None when that is no shorter than the full window."""
    seconds = max(FITTED_MIN_S, math.ceil(longest / extractor.sampling_rate + FITTED_MARGIN_S))
    frames = seconds * extractor.sampling_rate // extractor.hop_length
    return frames if frames < extractor.nb_max_frames else None


def decode_with_fallback(engine: Engine, encoded, prompt: list[int], options: DecodingOptions, max_new_tokens: int):
    """One result per window of `encoded` (all with the same prompt). Each window climbs the temperature ladder
    until its output passes; one that never passes keeps its best attempt (highest log-probability, preferring
    those that did not loop), as openai/whisper does."""
    count = len(encoded)
    final: list[WindowResult | None] = [None] * count
    attempts: list[list[tuple[WindowResult, bool]]] = [[] for _ in range(count)]
    pending = list(range(count))
    for temperature in options.temperatures or (0.0,):
        if not pending:
            break
        beams = options.beam_size if temperature == 0 else 1
        best_of = 1 if temperature == 0 else options.best_of
        subset = encoded if len(pending) == count else encoded[pending]
        hypotheses = engine.decode(subset, prompt, temperature, beams, best_of, max_new_tokens)
        failed = []
        for index, hypothesis in zip(pending, hypotheses):
            result, retry, looped = _judged(hypothesis, temperature, options, max_new_tokens)
            if retry:
                attempts[index].append((result, looped))
                failed.append(index)
            else:
                final[index] = result
        pending = failed
    for index in pending:
        tried = attempts[index]
        kept = [r for r, looped in tried if not looped] or [r for r, _ in tried]
        best = max(kept, key=lambda r: r.avg_log_prob)
        best.temperature = tried[-1][0].temperature  # the hottest tried: the next window's prompt is then reset
        final[index] = best
    for result in final:
        if result.silent:
            result.tokens, result.text = [], ""
    return final


class WindowDecoder:
    """The policy for one file (or one live utterance): prompts, fallback, and the text carried between windows.

    A prompt is `<|startofprev|> hotwords previous-text` before the start sequence (faster-whisper's layout). The
    initial prompt is the first window's previous text; with `condition_on_previous_text` every window gets the
    text of the one before it (so windows are decoded one at a time), reset after a window decoded hotter than
    PROMPT_RESET_TEMPERATURE (its text is not trusted)."""

    def __init__(self, engine: Engine, tokenizer, options: DecodingOptions, language: str, task: str):
        self.engine, self.tokenizer, self.options = engine, tokenizer, options
        ids = tokenizer.convert_tokens_to_ids
        self.start_sequence = ids(["<|startoftranscript|>", f"<|{language}|>", f"<|{task}|>"])
        self.no_timestamps, self.start_of_previous = ids("<|notimestamps|>"), ids("<|startofprev|>")
        self.hotwords = self._tokens(options.hotwords)
        self.previous = self._tokens(options.initial_prompt)

    def _tokens(self, text: str | None) -> list[int]:
        return self.tokenizer.encode(" " + text.strip(), add_special_tokens=False) if text and text.strip() else []

    def prompt(self, previous: list[int]) -> list[int]:
        """The decoder's first tokens; hotwords and previous text share half the decoder's positions."""
        half = MAX_TARGET_POSITIONS // 2 - 1
        context = (self.hotwords[:half] + previous[-half:])[-half:] if self.hotwords or previous else []
        lead = [self.start_of_previous, *context] if context else []
        return [*lead, *self.start_sequence, self.no_timestamps]

    def decode(self, encoded, max_new_tokens: int) -> list[WindowResult]:
        """Results for a batch of encoded windows, in order."""
        options = self.options
        if options.condition_on_previous_text:
            results = []
            for index in range(len(encoded)):
                result = decode_with_fallback(
                    self.engine, encoded[index : index + 1], self.prompt(self.previous), options, max_new_tokens
                )[0]
                trusted = result.temperature <= PROMPT_RESET_TEMPERATURE
                self.previous = (self.previous + result.tokens) if trusted else []
                results.append(result)
            return results
        results = []
        if self.previous:  # the initial prompt: only the first window of the file has it
            first, encoded = encoded[:1], encoded[1:]
            results += decode_with_fallback(self.engine, first, self.prompt(self.previous), options, max_new_tokens)
            self.previous = []
        if len(encoded):
            results += decode_with_fallback(self.engine, encoded, self.prompt([]), options, max_new_tokens)
        return results


# Greedy in one pass: evaluation and a Transcriber given no options
GREEDY = DecodingOptions(beam_size=1, temperatures=(0.0,))
# The live paths (the microphone, Conversation's hands-free mode, the realtime socket): greedy (a temperature ladder
# would multiply their latency when the model is unsure) over a context fitted to the utterance: whisper-base's
# encoder takes 0.42 s over 30 s on 2 cores, 0.04 s over 8 s (bench/live_latency.py)
LIVE = replace(GREEDY, fitted_context=True)


def file_options(accurate: bool = True, word_timestamps: bool = False) -> DecodingOptions:
    """How a file is decoded: faster-whisper's defaults (5 beams, the temperature ladder) when `accurate`, else
    greedy in one pass (what the microphone and evaluation do)."""
    if accurate:
        return DecodingOptions(word_timestamps=word_timestamps)
    return replace(GREEDY, word_timestamps=word_timestamps)


def is_toy(model: str) -> bool:
    """The 4M-parameter demo model, or a checkpoint of a run that trained it: it never passes the fallback's
    thresholds, so the ladder only costs it time (62 s instead of 2 s for a 3 s clip, measured)."""
    folder = Path(str(model))
    run_config = read_json_if_intact(folder.parent / "config.json") if folder.is_dir() else None
    from_demo = isinstance(run_config, dict) and run_config.get("model") == DEMO
    return model == DEMO or (folder / DEMO_SPEC_FILE).is_file() or from_demo
