"""Label token ids in Whisper's two formats: plain (the prefix, <|notimestamps|>, the text, <|endoftext|>) and
timestamped (the prefix without <|notimestamps|>, then each segment as `<|start|> text<|end|>`, then <|endoftext|>).

A fine-tune on plain labels only unlearns timestamps, and with them subtitles and long-file transcription
(transformers#30148). distil-whisper keeps them by giving a share of the training rows timestamped labels
(`timestamp_probability`); prepare's `timestamp_fraction` does the same, choosing rows by id (seeded, stable).
Segment times come from the source where it knows them (synthetic multi-sentence clips, a `segments` column), else
the clip is one segment: 0.00 to its duration. Times sit on Whisper's grid of 0.02 s: `<|0.00|>` … `<|30.00|>`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from core.audio.constants import SAMPLE_RATE
from core.data.examples import Example
from core.data.no_speech import NoSpeechMixer
from core.data.rows import in_slice
from core.errors import StudioError
from core.languages import Language
from core.text.cleaning import CleaningOptions, clean_text

TIME_STEP_S = 0.02  # seconds between Whisper's timestamp tokens
FIRST_TIMESTAMP = "<|0.00|>"


@dataclass(frozen=True)
class LabelSegment:
    """One timed stretch of a transcript, in seconds from the clip's start."""

    start: float
    end: float
    text: str


def parse_segments(value, where: str) -> tuple:
    """A metadata row's `segments` ([[start, end, text], …] or [{"start", "end", "text"}, …], or that as JSON text
    in a csv cell) as ((start s, end s, text), …); () when the row has none. A malformed value names the row."""
    if value in (None, "", []):
        return ()
    try:
        items = json.loads(value) if isinstance(value, str) else value
        rows = [(i["start"], i["end"], i["text"]) if isinstance(i, dict) else tuple(i) for i in items]
        segments = tuple((float(start), float(end), str(text)) for start, end, text in rows)
    except (ValueError, TypeError, KeyError):
        raise StudioError(
            f"{where}: segments must be a list of [start seconds, end seconds, text]; fix the row or drop its segments"
        ) from None
    if any(not 0 <= start <= end for start, end, _ in segments):
        raise StudioError(f"{where}: a segment ends before it starts (or starts below 0 s); fix its times")
    return segments


def wants_timestamps(example_id: str, fraction: float, seed: int) -> bool:
    """Whether a training row gets timestamped labels: a stable, seeded `fraction` of the rows, by id."""
    return fraction >= 1 or (fraction > 0 and in_slice(example_id, fraction, f"timestamps-{seed}"))


WINDOW_STEPS = 1500  # <|30.00|>: the last timestamp token; a time past the window has no token


def timestamp_id(tokenizer, seconds: float) -> int:
    """The token of `seconds` on the 0.02 s grid (`<|1.84|>`), held inside the 30 s window (a time past it would
    index beyond the vocabulary and crash training)."""
    return tokenizer.convert_tokens_to_ids(FIRST_TIMESTAMP) + min(WINDOW_STEPS, max(0, round(seconds / TIME_STEP_S)))


def segments_of(
    segments: tuple | list, duration: float, text: str, cleaning: CleaningOptions, language: Language
) -> list[LabelSegment]:
    """The clip's segments with cleaned texts (segments whose text cleans away are dropped), or one segment over
    the whole clip when the source gives none; `text` is the clip's cleaned transcript."""
    found = []
    for start, end, words in segments or ():
        cleaned = clean_text(str(words), cleaning, language)
        if cleaned:
            found.append(LabelSegment(float(start), max(float(start), float(end)), cleaned))
    return found or [LabelSegment(0.0, duration, text)]


def timestamped_label_ids(tokenizer, segments: list[LabelSegment]) -> list[int]:
    """<|startoftranscript|><|lang|><|task|><|0.00|> text<|1.84|><|1.84|> more<|3.00|><|endoftext|>; `tokenizer`
    has the language/task prefix set (its <|notimestamps|> is left out)."""
    no_timestamps = tokenizer.convert_tokens_to_ids("<|notimestamps|>")
    ids = [i for i in tokenizer.prefix_tokens if i != no_timestamps]
    for segment in segments:
        ids.append(timestamp_id(tokenizer, segment.start))
        ids += tokenizer(" " + segment.text.strip(), add_special_tokens=False).input_ids
        ids.append(timestamp_id(tokenizer, segment.end))
    return ids + [tokenizer.eos_token_id]


def label_segments(tokenizer, ids: list[int]) -> list[LabelSegment]:
    """Timestamped label (or generated) ids back into segments: each `<|start|> text<|end|>` pair."""
    first = tokenizer.convert_tokens_to_ids(FIRST_TIMESTAMP)
    segments, start, words = [], None, []
    for token in ids:
        if token >= first:
            if start is None:
                start, words = (token - first) * TIME_STEP_S, []
            else:
                text = tokenizer.decode(words, skip_special_tokens=True).strip()
                segments.append(LabelSegment(round(start, 2), round((token - first) * TIME_STEP_S, 2), text))
                start = None
        elif start is not None:
            words.append(token)
    return segments


@dataclass
class TrainingLabels:
    """What prepare gives the training split beyond its rows as they are: timestamped labels for
    `timestamp_fraction` of them, and generated no-speech rows topped up to `no_speech_fraction` (no_speech.py)."""

    context: object  # core/data/features.PrepareContext: options, tokenizer, limits, language
    mixer: NoSpeechMixer | None
    real_rows: int = 0
    timestamped: int = 0

    @classmethod
    def of(cls, context) -> TrainingLabels | None:
        options = context.options
        if not (options.no_speech_fraction or options.timestamp_fraction):
            return None
        empty = context.tokenizer("").input_ids  # the prefix, then <|endoftext|>: Whisper's empty transcript
        window = context.limits.window_seconds
        mixer = (
            NoSpeechMixer(options.no_speech_fraction, options.seed, window, empty)
            if options.no_speech_fraction
            else None
        )
        return cls(context, mixer)

    def ids(self, example: Example, audio: np.ndarray, ids: list[int]) -> list[int]:
        """A training row's label ids: its own, or timestamped where chosen and within the label limit."""
        self.real_rows += 1
        options, context = self.context.options, self.context
        if not wants_timestamps(example.id, options.timestamp_fraction, options.seed):
            return ids
        segments = segments_of(
            example.segments, len(audio) / SAMPLE_RATE, example.text, options.cleaning, context.language
        )
        timed = timestamped_label_ids(context.tokenizer, segments)
        if len(timed) > context.limits.max_sequence_length:
            return ids  # the times add two tokens a segment: a row at the limit keeps its plain labels
        self.timestamped += 1
        return timed

    def after_row(self, writer) -> None:
        if self.mixer:
            self.mixer.top_up(writer, self.real_rows)

    def counts(self) -> dict:
        counts = {"timestamped": self.timestamped} if self.context.options.timestamp_fraction else {}
        return {**counts, **({"no_speech": self.mixer.counts()} if self.mixer else {})}
