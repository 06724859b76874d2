"""The dataset doctor: what is wrong with a source before any feature is computed.

It reads the first rows of each split (decoding audio for durations) and reports hours, a duration histogram and
problems. What prepare would drop comes from the very check prepare applies (core/rows.py) with the very limits it
would use (the model's window, the label limit of the prepare options); the rest are warnings prepare keeps:
characters outside the language's alphabet, duplicate transcripts within a split, and sentences shared by train and
an evaluation split (which make the test WER a lie). Each problem says how many rows it touches, with examples.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import islice

from core.audio.constants import SAMPLE_RATE, WINDOW_SECONDS
from core.data.examples import Source
from core.data.features import PrepareContext, ProgressCallback, feature_processor
from core.data.folders import with_split_rule
from core.data.prepare_options import PrepareOptions
from core.data.rows import REASON_TEXT, RowLimits, decoded, row_problem, text_key
from core.formatting import MISSING
from core.languages import Language
from core.text.cleaning import clean_text, foreign_characters
from core.workspace import Workspace

EXAMPLES_SHOWN = 3
ADVICE = {
    "undecodable_audio": "re-export or remove these files; prepare skips them",
    "invalid_samples": "re-export or record these files again (their samples are NaN, infinite or absurd); prepare "
    "drops them",
    "audio_too_long": "split them into shorter clips; prepare drops them",
    "audio_too_short": "check that each clip holds its whole transcript (and is the right file); prepare drops them",
    "empty_text": "fill in or remove these rows; prepare drops them",
    "labels_too_long": "shorten these transcripts or raise max_sequence_length; prepare drops them",
    "duplicate_id": "remove the second copy (prepare keeps the first and drops the rest)",
}


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
    window_seconds: float = WINDOW_SECONDS

    @property
    def hours(self) -> float:
        return self.seconds / 3600


@dataclass(frozen=True)
class DoctorSample:
    """How much the doctor reads: the first `limit` rows of each split (each one decoded), and where its progress
    goes."""

    limit: int = 200
    progress: ProgressCallback | None = None


def examine(
    source: Source,
    language: Language,
    model: str,
    workspace: Workspace,
    options: PrepareOptions | None = None,
    sample: DoctorSample | None = None,
) -> DoctorReport:
    """Look at `sample`'s rows per split, as `prepare_features(source, language, model, …, options)` would."""
    options, sample = options or PrepareOptions(), sample or DoctorSample()
    source = with_split_rule(source, options.split_by)  # the splits prepare will make
    processor, limits = feature_processor(model, workspace, language, options)
    context = PrepareContext(
        language, options, processor.feature_extractor, processor.tokenizer, limits, sample.progress
    )
    rows = _read_rows(source, context, sample.limit)
    problems = _dropped(rows, limits) + _warnings(rows, language)
    seconds = sum(r["duration"] or 0 for r in rows)
    return DoctorReport(rows, problems, seconds, dict(Counter(r["split"] for r in rows)), limits.window_seconds)


def _read_rows(source: Source, context: PrepareContext, limit: int) -> list[dict]:
    """Each split's first `limit` rows, cleaned, tokenised and checked as prepare would, dropped ones included."""
    limits, progress = context.limits, context.progress
    rows = []
    for split in source.splits():
        seen_ids: set[str] = set()
        for i, (example, audio) in enumerate(decoded(islice(source.examples(split), limit), limits.window_samples), 1):
            text = clean_text(example.text, context.options.cleaning, context.language)
            ids = context.tokenizer(text).input_ids if text else None
            reason = row_problem(text, audio, ids, limits)
            if reason is None and example.id in seen_ids:
                reason = "duplicate_id"
            seen_ids.add(example.id)
            rows.append(
                {
                    "split": split,
                    "id": example.id,
                    "text": text,
                    "duration": None if audio is None else len(audio) / SAMPLE_RATE,
                    "tokens": None if ids is None else len(ids),
                    "dropped": reason,
                    "audio": example.audio,
                }
            )
            if progress:
                progress(split, i, limit)
        if progress:  # the split held fewer rows than the limit: it is done, not stuck at "10/100"
            read = sum(1 for r in rows if r["split"] == split)
            progress(split, read, read)
    return rows


def _example(row: dict, reason: str) -> str:
    if reason in ("audio_too_long", "audio_too_short"):
        return f"{row['id']} ({row['duration']:.2f} s)"
    if reason == "labels_too_long":
        return f"{row['id']} ({row['tokens']} tokens)"
    return row["id"]


def _dropped(rows: list[dict], limits: RowLimits) -> list[Problem]:
    problems = []
    for reason, text in REASON_TEXT.items():
        hit = [r for r in rows if r["dropped"] == reason]
        if hit:
            if reason == "audio_too_long":
                text = f"audio longer than the model's {limits.window_seconds:g} s window"
            elif reason == "labels_too_long":
                text = f"labels over {limits.max_sequence_length} tokens"
            examples = [_example(r, reason) for r in hit[:EXAMPLES_SHOWN]]
            problems.append(Problem(text, len(hit), ADVICE[reason], examples))
    return problems


def _warnings(rows: list[dict], language: Language) -> list[Problem]:
    problems = []
    strange = [(r, foreign_characters(r["text"], language)) for r in rows]
    strange = [f"{r['id']}: {''.join(sorted(chars))}" for r, chars in strange if chars]
    if strange:
        problems.append(
            Problem(
                f"characters outside the {language.name} alphabet",
                len(strange),
                "check for wrong-language rows or encoding damage; consider stripping punctuation",
                strange[:EXAMPLES_SHOWN],
            )
        )
    texts = Counter((r["split"], text_key(r["text"])) for r in rows if r["text"])
    duplicates = [t for (_, t), n in texts.items() if n > 1]
    if duplicates:
        problems.append(
            Problem(
                "duplicate transcripts within a split",
                sum(n for n in texts.values() if n > 1),
                "fine for read speech (many speakers, one sentence); otherwise deduplicate",
                duplicates[:EXAMPLES_SHOWN],
            )
        )
    train = {text_key(r["text"]) for r in rows if r["split"] == "train" and r["text"]}
    shared = [r for r in rows if r["split"] != "train" and r["text"] and text_key(r["text"]) in train]
    if shared:
        problems.append(
            Problem(
                "evaluation sentences that also occur in train",
                len(shared),
                "the WER on these flatters the model; split by sentence or speaker",
                [r["text"] for r in shared[:EXAMPLES_SHOWN]],
            )
        )
    return problems


def duration_histogram(report: DoctorReport, bins: int = 20) -> list[dict]:
    """[{seconds: bin start, end: bin end, rows: n}] over about `bins` equal bins from 0 to the longest clip (each
    ≥ 0.1 s wide)."""
    durations = [r["duration"] for r in report.rows if r["duration"]]
    if not durations:
        return []
    width = max(0.1, round(max(durations) / bins, 1))
    counts = Counter(int(d / width + 1e-9) for d in durations)  # the epsilon keeps 0.5 s in the 0.5 bin
    return [
        {"seconds": round(b * width, 1), "end": round((b + 1) * width, 1), "rows": counts.get(b, 0)}
        for b in range(max(counts) + 1)
    ]


def report_table(report: DoctorReport) -> list[dict]:
    """The rows examined as a person reads them: seconds to 0.1, label tokens, and what prepare does with the row,
    in words ('keeps it', 'drops it: audio longer than the model's 3 s window')."""

    def fate(reason: str | None) -> str:
        if reason is None:
            return "keeps it"
        if reason == "audio_too_long":
            return f"drops it: audio longer than the model's {report.window_seconds:g} s window"
        return f"drops it: {REASON_TEXT.get(reason, reason)}"

    return [
        {
            "split": r["split"],
            "id": r["id"],
            "text": r["text"],
            "seconds": MISSING if r["duration"] is None else f"{r['duration']:.1f}",
            "label tokens": MISSING if r["tokens"] is None else r["tokens"],
            "prepare": fate(r["dropped"]),
        }
        for r in report.rows
    ]
