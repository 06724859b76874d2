"""Word timestamps: which encoder positions each decoded word was read from.

An engine's `align` (core/speech/engines.py) gives, per window, the monotonic path between text tokens and encoder
positions (20 ms each) and each token's probability. Here tokens become words (split at spaces, punctuation joined
to its word, as openai/whisper and faster-whisper do), a word starts where the path first reaches its first token,
and the times are placed in the file: offset by the window's start, kept inside the window, never overlapping.
"""

from __future__ import annotations

import string

import numpy as np

from core.audio.constants import ENCODER_POSITIONS_PER_SECOND
from core.speech.transcripts import Word

SENTENCE_END = ".。!！?？"
LONGEST_TYPICAL_S = 0.7  # a word's typical length is taken as at most this
PREPENDED = "\"'“¿([{-"  # punctuation that belongs to the word after it
APPENDED = "\"'.。,，!！?？:：”)]}、"  # … and to the word before it


def median_filter(x: np.ndarray, width: int) -> np.ndarray:
    """Median over `width` neighbours along the last axis (edges reflected), as openai/whisper's median_filter."""
    if x.shape[-1] <= width // 2:
        return x
    pad = width // 2
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, width, axis=-1), axis=-1)


def dynamic_time_warp(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row indices, column indices) of the cheapest monotonic path from (0, 0) to the last cell of `cost`
    (tokens × positions). The cumulative cost is filled one anti-diagonal at a time: each cell needs only the two
    diagonals before it, so a 100 × 1500 matrix takes 1,600 vector steps instead of 150,000 scalar ones."""
    rows, cols = cost.shape
    total = np.full((rows + 1, cols + 1), np.inf)
    total[0, 0] = 0.0
    step = np.zeros((rows + 1, cols + 1), np.int8)  # 0 diagonal, 1 from above (next token), 2 from the left
    for diagonal in range(2, rows + cols + 1):
        i = np.arange(max(1, diagonal - cols), min(rows, diagonal - 1) + 1)
        j = diagonal - i
        options = np.stack([total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]])
        choice = np.argmin(options, axis=0)
        total[i, j] = cost[i - 1, j - 1] + options[choice, np.arange(len(i))]
        step[i, j] = choice
    step[0, :], step[:, 0] = 2, 1
    i, j, path = rows, cols, []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        move = step[i, j]
        i, j = (i - 1, j - 1) if move == 0 else (i - 1, j) if move == 1 else (i, j - 1)
    path = np.array(path[::-1]).reshape(-1, 2)
    return path[:, 0], path[:, 1]


def split_words(tokenizer, tokens: list[int]) -> tuple[list[str], list[list[int]]]:
    """(words, their tokens): a token that decodes to a whole character sequence closes a piece (a character may
    take several byte tokens); a piece that starts with a space or is punctuation starts a new word."""
    pieces, piece_tokens, current = [], [], []
    for token in tokens:
        current.append(token)
        text = tokenizer.decode(current)
        if "\ufffd" not in text:
            pieces.append(text)
            piece_tokens.append(current)
            current = []
    words, word_tokens = [], []
    for piece, group in zip(pieces, piece_tokens):
        if not words or piece.startswith(" ") or piece.strip() in string.punctuation:
            words.append(piece)
            word_tokens.append(list(group))
        else:
            words[-1] += piece
            word_tokens[-1] += group
    return words, word_tokens


def _merge_punctuation(words: list[dict]) -> list[dict]:
    """Opening marks join the next word, closing marks the previous one (whisper's merge_punctuations)."""
    for i in range(len(words) - 2, -1, -1):
        if words[i]["word"].startswith(" ") and words[i]["word"].strip() in PREPENDED and words[i + 1]["word"]:
            words[i + 1]["word"] = words[i]["word"] + words[i + 1]["word"]
            words[i + 1]["start"] = words[i]["start"]
            words[i]["word"] = ""
    kept = -1
    for i, word in enumerate(words):
        if kept >= 0 and word["word"] and word["word"] in APPENDED and not words[kept]["word"].endswith(" "):
            words[kept]["word"] += word["word"]
            words[kept]["end"] = word["end"]
            word["word"] = ""
        elif word["word"]:
            kept = i
    return [w for w in words if w["word"]]


def window_words(tokenizer, tokens: list[int], alignment) -> list[dict]:
    """Words of one window with start/end in seconds from the window's start and their mean token probability.
    `alignment` is (text indices, encoder positions, token probabilities) from an engine's `align`."""
    text_indices, time_indices, token_probs = alignment
    end_of_text = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    words, word_tokens = split_words(tokenizer, tokens + [end_of_text])
    if len(word_tokens) <= 1 or len(text_indices) == 0:
        return []
    boundaries = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1).astype(bool)  # the path moves to a new token
    jump_times = time_indices[jumps] / ENCODER_POSITIONS_PER_SECOND
    last = len(jump_times) - 1
    out = []
    for k, word in enumerate(words[:-1]):  # the last "word" is the end-of-text token
        a, b = int(boundaries[k]), int(boundaries[k + 1])
        start, end = jump_times[min(a, last)], jump_times[min(b, last)]
        out.append(dict(word=word, start=float(start), end=float(end), probability=float(np.mean(token_probs[a:b]))))
    return _shorten_long_words(_merge_punctuation(out))


def _shorten_long_words(words: list[dict]) -> list[dict]:
    """The alignment gives the pause before a sentence to its first word: a first word (of the window or after a
    sentence's end) longer than twice the typical word starts twice the typical length before its end (the
    limit faster-whisper applies)."""
    durations = [w["end"] - w["start"] for w in words if w["end"] > w["start"]]
    if not durations:
        return words
    longest = 2 * min(LONGEST_TYPICAL_S, float(np.median(durations)))
    for i, word in enumerate(words):
        after_sentence = i == 0 or words[i - 1]["word"].rstrip()[-1:] in SENTENCE_END
        if after_sentence and word["end"] - word["start"] > longest:
            word["start"] = word["end"] - longest
    return words


def placed_words(words: list[dict], start_s: float, end_s: float, speech: list[tuple[float, float]] = ()) -> list[Word]:
    """A window's words in file time: offset by the window's start, inside [start_s, end_s], in order. A word
    that starts in a pause, or whose first half holds the onset of a stretch of speech (`speech`: (start, end)
    seconds), starts at that onset."""
    placed, previous = [], start_s
    for w in words:
        begin = _snapped(start_s + w["start"], start_s + w["end"], speech)
        begin = min(max(begin, previous), end_s)
        finish = min(max(start_s + w["end"], begin), end_s)
        placed.append(Word(round(begin, 3), round(finish, 3), w["word"], round(w["probability"], 4)))
        previous = finish
    return placed


def _snapped(start: float, end: float, speech: list[tuple[float, float]]) -> float:
    """`start` moved to the first speech onset inside the word when `start` lies in a pause, or when that onset
    comes in the word's first half (the stretch before it is the previous word's tail the alignment gave it)."""
    in_speech = False
    for region_start, region_end in speech:
        if region_start >= end:
            break
        if region_start <= start < region_end:
            in_speech = True
        elif start < region_start:
            first_half = region_start - start < end - region_start
            return float(region_start) if first_half or not in_speech else start
    return start
