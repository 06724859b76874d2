"""Which rows can train: decoding ahead in threads, text cleaning, and the one row check that `prepare`, streamed
training and the dataset doctor all apply, so the doctor's "prepare drops these" is what prepare drops.

A row is dropped when its cleaned text is empty, its audio cannot be decoded, its audio is longer than the model's
window (Whisper would silently cut it) or too short to say its text in (a clip cut off, or the wrong file), its
labels are longer than `max_sequence_length`, or its id was seen before in the same split (a clip listed twice,
`clip.wav` beside `clip.flac`). A clip whose header already says it is too
long is dropped without decoding it (a 3-hour recording would take gigabytes). Rows are also routed: a source without a
validation split gives a stable slice of its training rows, chosen by transcript (every reading of a sentence lands
on the same side), so validation texts never occur in training.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from core.audio.constants import SAMPLE_RATE
from core.audio.decode import audio_duration, finite_audio_problem
from core.data.examples import Example
from core.data.memory import RELEASE_EVERY_ROWS, release_unused_memory
from core.data.recordings import CHARACTERS_PER_SECOND
from core.errors import StudioError
from core.languages import Language
from core.text.cleaning import CleaningOptions, clean_text, normalize_for_wer

DECODE_WORKERS = min(4, os.cpu_count() or 2)  # threads decoding and resampling audio ahead of the STFT
DECODE_AHEAD = 64  # rows decoded ahead at most: bounds memory on streaming sources
HEADER_SLACK_S = 1.0  # a header may be off by a frame or so (mp3 padding): only clearly too-long clips skip decoding
# No one says more than 50 characters a second: twice the fastest reading a recorded take may have (recordings'
# CHARACTERS_PER_SECOND, 25/s: 130-190 words a minute is 12-18/s). So a clip needs 20 ms of audio per character of
# its cleaned text: a 40-character sentence at least 0.8 s, a 3-letter word 60 ms (espeak-ng says one in ~0.3 s).
MIN_SECONDS_PER_CHARACTER = 1 / (2 * CHARACTERS_PER_SECOND[1])
REASONS = (
    "audio_too_long",
    "audio_too_short",
    "labels_too_long",
    "empty_text",
    "undecodable_audio",
    "invalid_samples",
    "duplicate_id",
)
REASON_TEXT = {
    "audio_too_long": "audio longer than the model's window",
    "audio_too_short": (
        f"audio too short to hold its transcript (under {1000 * MIN_SECONDS_PER_CHARACTER:.0f} ms a character: "
        "cut off, or paired with the wrong text)"
    ),
    "invalid_samples": "audio holding NaN or infinite samples (a damaged float file)",
    "labels_too_long": "labels over the token limit",
    "empty_text": "empty transcripts",
    "undecodable_audio": "audio that cannot be decoded",
    "duplicate_id": "the same clip id twice",
}


@dataclass(frozen=True)
class TooLong:
    """A clip its header says is too long for the model's window, in place of its samples (never decoded): its
    length, so the row check and the doctor's durations read it as they read decoded audio."""

    samples: int  # at 16 kHz

    def __len__(self) -> int:
        return self.samples


@dataclass(frozen=True)
class RowLimits:
    """What a row must fit: the model's window (samples at 16 kHz) and the label length (tokens, prefix and
    <|endoftext|> included)."""

    window_samples: int
    max_sequence_length: int

    @property
    def window_seconds(self) -> float:
        return self.window_samples / SAMPLE_RATE


def row_problem(
    text: str, audio: np.ndarray | TooLong | None, label_ids: list[int] | None, limits: RowLimits
) -> str | None:
    """The reason (one of REASONS) a row cannot train, or None when it can. `text` is the cleaned transcript."""
    if not text:
        return "empty_text"
    if audio is None:
        return "undecodable_audio"
    if len(audio) > limits.window_samples:
        return "audio_too_long"
    if isinstance(audio, np.ndarray) and finite_audio_problem(audio):
        return "invalid_samples"  # every log-mel value would be NaN, and so would every weight trained on it
    if label_ids is not None and len(label_ids) > limits.max_sequence_length:
        return "labels_too_long"
    if len(audio) < len(text) * MIN_SECONDS_PER_CHARACTER * SAMPLE_RATE:
        return "audio_too_short"  # a 28-sample wav labelled with a sentence: cut off, or the wrong file
    return None


def text_key(text: str) -> str:
    """What makes two transcripts "the same sentence": Whisper's normaliser (case, punctuation, spacing)."""
    return normalize_for_wer(text)


def in_slice(key: str, fraction: float, salt: str) -> bool:
    """Stable pseudo-random membership: the same key and salt always give the same answer."""
    digest = hashlib.sha1(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


def in_carved_validation(text: str, fraction: float) -> bool:
    """Whether a training row belongs to the validation slice carved from train (by its transcript)."""
    return bool(fraction) and in_slice(text_key(text), fraction, "validation")


def decoded(
    rows: Iterator[Example], max_samples: int | None = None
) -> Iterator[tuple[Example, np.ndarray | TooLong | None]]:
    """Examples with their decoded audio (None when undecodable), in order. Decoding runs in threads a bounded
    distance ahead (soundfile, PyAV and soxr release the GIL), overlapping the feature extraction; a streaming
    source is never read further ahead than DECODE_AHEAD rows. With `max_samples` (the model's window), a clip whose
    header says it is longer comes as TooLong, undecoded."""

    def decode(example: Example) -> np.ndarray | TooLong | None:
        if max_samples is not None:
            seconds = audio_duration(example.audio)
            if seconds is not None and seconds - HEADER_SLACK_S > max_samples / SAMPLE_RATE:
                return TooLong(round(seconds * SAMPLE_RATE))
        try:
            return example.load_audio()
        except StudioError:
            return None

    with ThreadPoolExecutor(max_workers=DECODE_WORKERS) as pool:
        pending: deque = deque()
        for index, example in enumerate(rows, 1):
            if index % RELEASE_EVERY_ROWS == 0:
                release_unused_memory()  # audio, log-mel and Arrow buffers freed since, but kept by the allocators
            pending.append((example, pool.submit(decode, example)))
            if len(pending) >= DECODE_AHEAD:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


def usable_rows(
    rows: Iterator[Example],
    language: Language,
    cleaning: CleaningOptions,
    tokenizer,
    limits: RowLimits,
    filtered: Counter,
) -> Iterator[tuple[Example, np.ndarray, list[int]]]:
    """(example with cleaned text, 16 kHz audio, label ids) for each row that can train; the others are counted in
    `filtered` by reason. `tokenizer` has the language/task prefix set."""
    seen: set[str] = set()
    for example, audio in decoded(rows, max_samples=limits.window_samples):
        example.text = clean_text(example.text, cleaning, language)
        ids = tokenizer(example.text).input_ids if example.text else None
        reason = row_problem(example.text, audio, ids, limits)
        if reason is None and example.id in seen:
            reason = "duplicate_id"
        if reason:
            filtered[reason] += 1
            continue
        seen.add(example.id)
        yield example, audio, ids


def summarize_filtered(splits: dict) -> str:
    """'train: 20 kept (empty_text 1 dropped); test: …' from a manifest's split counts."""
    parts = []
    for split, counts in splits.items():
        dropped = ", ".join(f"{k} {v}" for k, v in counts.get("filtered", {}).items() if v)
        parts.append(f"{split}: {counts['rows']} kept" + (f" ({dropped} dropped)" if dropped else ""))
    return "; ".join(parts)
