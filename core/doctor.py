"""The dataset doctor: what is wrong with a source before any feature is computed.

It reads the first rows of each split (decoding audio for durations) and reports hours, a duration histogram,
characters outside the language's alphabet, labels over the token limit, empty and duplicate transcripts, audio
that cannot be decoded or is longer than the model's window, and sentences shared by train and test (which make the
test WER a lie). Each problem says how many rows it touches and shows a few examples.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import islice

from core.audio import SAMPLE_RATE
from core.errors import StudioError
from core.examples import Source
from core.languages import Language
from core.text import CleaningOptions, clean_text, foreign_characters, normalize_for_wer

EXAMPLES_SHOWN = 3


@dataclass
class Problem:
    name: str
    rows: int
    advice: str
    examples: list[str] = field(default_factory=list)


@dataclass
class DoctorReport:
    rows: list[dict]  # split, id, text, duration (s), label tokens, audio (bytes or path) for the player
    problems: list[Problem]
    seconds: float
    splits: dict[str, int]

    @property
    def hours(self) -> float:
        return self.seconds / 3600


def examine(
    source: Source,
    language: Language,
    tokenizer=None,
    window_seconds: float = 30.0,
    max_tokens: int = 255,
    limit: int = 200,
    cleaning: CleaningOptions | None = None,
    progress=None,
) -> DoctorReport:
    """Look at up to `limit` rows per split; `tokenizer` (with the language prefix set) counts label tokens."""
    cleaning = cleaning or CleaningOptions()
    rows, found = [], {name: [] for name in ("undecodable", "too_long", "empty", "foreign", "over_limit")}
    for split in source.splits():
        for i, example in enumerate(islice(source.examples(split), limit), 1):
            text = clean_text(example.text, cleaning, language)
            row = {
                "split": split,
                "id": example.id,
                "text": text,
                "duration": None,
                "tokens": None,
                "audio": example.audio,
            }
            try:
                row["duration"] = len(example.load_audio()) / SAMPLE_RATE
            except StudioError as err:
                found["undecodable"].append(f"{example.id}: {err}")
            if row["duration"] and row["duration"] > window_seconds:
                found["too_long"].append(f"{example.id} ({row['duration']:.1f} s)")
            if not text:
                found["empty"].append(example.id)
            strange = foreign_characters(text, language)
            if strange:
                found["foreign"].append(f"{example.id}: {''.join(sorted(strange))}")
            if tokenizer is not None and text:
                row["tokens"] = len(tokenizer(text).input_ids)
                if row["tokens"] > max_tokens:
                    found["over_limit"].append(f"{example.id} ({row['tokens']} tokens)")
            rows.append(row)
            if progress:
                progress(split, i, limit)

    problems = []
    advice = {
        "undecodable": ("audio that cannot be decoded", "re-export or remove these files; prepare skips them"),
        "too_long": (
            f"audio longer than the model's {window_seconds:g} s window",
            "split them into shorter clips; prepare drops them",
        ),
        "empty": ("empty transcripts", "fill in or remove these rows; prepare drops them"),
        "foreign": (
            f"characters outside the {language.name} alphabet",
            "check for wrong-language rows or encoding damage; consider stripping punctuation",
        ),
        "over_limit": (f"labels over {max_tokens} tokens", "shorten these transcripts; prepare drops them"),
    }
    for key, items in found.items():
        if items:
            title, tip = advice[key]
            problems.append(Problem(title, len(items), tip, items[:EXAMPLES_SHOWN]))
    texts = Counter((r["split"], normalize_for_wer(r["text"])) for r in rows if r["text"])
    duplicates = [t for (_, t), n in texts.items() if n > 1]
    if duplicates:
        rows_touched = sum(n for (_, t), n in texts.items() if n > 1)
        problems.append(
            Problem(
                "duplicate transcripts within a split",
                rows_touched,
                "fine for read speech (many speakers, one sentence); otherwise deduplicate",
                duplicates[:EXAMPLES_SHOWN],
            )
        )
    train = {normalize_for_wer(r["text"]) for r in rows if r["split"] == "train" and r["text"]}
    shared = [r for r in rows if r["split"] != "train" and normalize_for_wer(r["text"]) in train]
    if shared:
        problems.append(
            Problem(
                "test sentences that also occur in train",
                len(shared),
                "the test WER flatters the model on these; split by sentence or speaker",
                [r["text"] for r in shared[:EXAMPLES_SHOWN]],
            )
        )
    seconds = sum(r["duration"] or 0 for r in rows)
    return DoctorReport(rows, problems, seconds, dict(Counter(r["split"] for r in rows)))


def duration_histogram(report: DoctorReport, bins: int = 20) -> list[dict]:
    """[{seconds: bin start, rows: n}] over about `bins` equal bins from 0 to the longest clip (≥ 0.1 s wide)."""
    durations = [r["duration"] for r in report.rows if r["duration"]]
    if not durations:
        return []
    width = max(0.1, round(max(durations) / bins, 1))
    counts = Counter(int(d / width + 1e-9) for d in durations)  # the epsilon keeps 0.5 s in the 0.5 bin
    return [{"seconds": round(b * width, 1), "rows": counts.get(b, 0)} for b in range(max(counts) + 1)]
