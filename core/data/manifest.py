"""What a prepared dataset is, as read from its `manifest.json`: a frozen `Manifest` whose splits are `SplitCounts`
and whose features are a `FeatureLayout`, and what it says in words (empty splits, dropped rows, overlap).

features.py writes the file as a plain JSON object (written last: a folder holding it is complete); everything that
reads one goes through `Manifest.from_dict`, which fills what older folders lack, so they keep loading.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.audio.constants import SAMPLE_RATE
from core.data.examples import SPLITS
from core.data.rows import REASON_TEXT
from core.errors import StudioError
from core.formatting import MISSING, format_duration, format_time
from core.languages import get_language
from core.option_fields import known_fields
from core.text.bootstrap import worst_half_width

MANIFEST_FILE = "manifest.json"  # written last: a dataset folder holding it is complete
TEST_ROWS_ENOUGH = 30  # fewer test rows than this measure a WER to worse than about ±18 points (worst_half_width)


@dataclass(frozen=True)
class SplitCounts:
    """One split as prepare counted it: rows kept of those seen, their hours, rows dropped by reason."""

    rows: int = 0
    seen: int = 0
    hours: float = 0.0
    filtered: dict[str, int] = field(default_factory=dict)  # reason → rows dropped for it
    streamed: bool = False  # read from the source at training time, nothing stored (rows counted as it goes)
    carved_from_train: float = 0.0  # validation only: the share of the source's train split it was cut from
    timestamped: int = 0  # train only: rows whose labels carry timestamps
    no_speech: dict = field(default_factory=dict)  # train only: {"rows": n, "kinds": {kind: rows}}

    @classmethod
    def from_dict(cls, raw: dict) -> SplitCounts:
        return cls(**known_fields(cls, raw or {}))

    @property
    def dropped(self) -> dict[str, int]:
        return {reason: n for reason, n in self.filtered.items() if n}


@dataclass(frozen=True)
class FeatureLayout:
    """The features' shape (bins × frames), dtype, window and sampling rate."""

    shape: tuple[int, int]
    dtype: str = "float16"
    window_seconds: float | None = None
    sampling_rate: int = SAMPLE_RATE

    @classmethod
    def from_dict(cls, raw: dict) -> FeatureLayout:
        known = known_fields(cls, raw or {})
        return cls(**{**known, "shape": tuple(known.get("shape") or (0, 0))})


@dataclass(frozen=True)
class Manifest:
    """A prepared dataset's inputs (source, language, model, options) and what came of them (splits, overlap)."""

    name: str
    fingerprint: str
    language: str  # our code ("nb")
    model: str  # the base model whose processor made the features
    splits: dict[str, SplitCounts]
    features: FeatureLayout
    whisper_language: str = ""  # Whisper's code ("no")
    task: str = "transcribe"
    source: dict = field(default_factory=dict)  # what the source describes of itself (JSON, no secrets)
    options: dict = field(default_factory=dict)  # the PrepareOptions, as a dict
    cleaning: dict = field(default_factory=dict)
    prefix: list[str] = field(default_factory=list)  # the label prefix tokens
    overlap: dict = field(default_factory=dict)  # split → {"checked", "sentences", "examples"}
    created: float | None = None
    format: int = 0

    @classmethod
    def from_dict(cls, raw: dict) -> Manifest:
        known = known_fields(cls, raw)
        language = known.get("language") or ""
        if not known.get("whisper_language") and language:
            try:  # written before the manifest kept Whisper's code
                known["whisper_language"] = get_language(language).whisper
            except StudioError:
                pass
        return cls(
            **{
                "name": "",
                "fingerprint": "",
                "language": "",
                "model": "",
                **known,
                "splits": {split: SplitCounts.from_dict(c) for split, c in (raw.get("splits") or {}).items()},
                "features": FeatureLayout.from_dict(raw.get("features") or {}),
            }
        )

    def rows(self, split: str) -> int:
        return self.splits[split].rows if split in self.splits else 0

    def streams(self, split: str) -> bool:
        return split in self.splits and self.splits[split].streamed

    def empty_splits(self) -> list[str]:
        """The splits a run needs (train, validation, test) that hold no rows or are missing (a streamed training
        split is counted as it goes: it is not empty here)."""
        wanted = list(dict.fromkeys([*SPLITS, *self.splits]))
        return [s for s in wanted if not self.streams(s) and not self.rows(s)]

    def warnings(self) -> list[str]:
        """Everything a person should hear after a prepare: empty splits (a run could not train or be measured on
        them), then evaluation sentences that also occur in train."""
        empty = self.empty_splits()
        dropped = ", ".join(
            f"{split}: {reason} {n}"
            for split in empty
            for reason, n in (self.splits[split].dropped if split in self.splits else {}).items()
        )
        warnings = (
            [
                f"the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'} empty"
                + (f" (rows dropped: {dropped})" if dropped else "")
                + ": a run needs rows in train, validation and test; add data, or prepare with a "
                "--validation-fraction and a source that has a test split"
            ]
            if empty
            else []
        )
        return warnings + self.overlap_warnings()

    def dropped_rows_line(self) -> str | None:
        """What prepare dropped and why, in words: '12 of 40 rows dropped: 12 audio longer than the model's window
        (train 9, test 3)'; None when it kept every row."""
        per_reason: dict[str, dict[str, int]] = {}
        for split, counts in self.splits.items():
            for reason, n in counts.dropped.items():
                per_reason.setdefault(reason, {})[split] = n
        if not per_reason:
            return None
        dropped = sum(sum(per_split.values()) for per_split in per_reason.values())
        kept = sum(counts.rows for counts in self.splits.values())
        parts = []
        for reason, where in per_reason.items():
            splits_named = ", ".join(f"{split} {n}" for split, n in where.items())
            parts.append(f"{sum(where.values())} {REASON_TEXT.get(reason, reason)} ({splits_named})")
        return f"{dropped} of {kept + dropped} rows dropped: {'; '.join(parts)}"

    def small_split_warnings(self) -> list[str]:
        """A test split too small for its WER to mean much, with the width of the interval it would have."""
        rows = self.rows("test")
        if not 0 < rows < TEST_ROWS_ENOUGH:
            return []
        return [
            f"the test split has {rows} row{'s' * (rows != 1)}: a WER measured on it is uncertain by up to "
            f"±{100 * worst_half_width(rows):.0f} points (95% interval); {TEST_ROWS_ENOUGH} rows bring that to "
            f"±{100 * worst_half_width(TEST_ROWS_ENOUGH):.0f}, 100 to ±{100 * worst_half_width(100):.0f}"
        ]

    def split_table(self) -> list[dict]:
        """One row per split as a person reads it: rows kept, their audio's length, rows dropped and why."""
        return [
            {
                "split": split,
                "rows": "streamed" if counts.streamed else counts.rows,
                "audio": format_duration(3600 * counts.hours),
                "dropped": "; ".join(f"{n} {REASON_TEXT.get(r, r)}" for r, n in counts.dropped.items()) or "none",
            }
            for split, counts in self.splits.items()
        ]

    def made_from(self) -> str:
        """Where a dataset came from, in a line: 'Made 2026-12-04 07:38:13 from folder …/my-voice with demo's
        processor (3 s window): Norwegian Bokmål, transcribe, split by text'."""
        source = self.source
        origin = source.get("path") or source.get("dataset") or source.get("id") or source.get("kind") or MISSING
        window = self.features.window_seconds
        try:
            language = get_language(self.language).name
        except StudioError:
            language = self.language or MISSING
        return (
            f"Made {format_time(self.created)} from {source.get('kind', 'source')} `{origin}` with "
            f"{self.model or MISSING}'s processor"
            + (f" ({window:g} s window)" if window else "")
            + f": {language}, {self.task}, test and validation split by {self.options.get('split_by', 'text')}"
        )

    def overlap_warnings(self) -> list[str]:
        """Plain sentences about evaluation splits whose sentences also occur in train (none for a clean one)."""
        warnings = []
        for split, found in self.overlap.items():
            if found.get("checked") and found.get("sentences"):
                examples = "; ".join(f"'{e}'" for e in found.get("examples", []))
                warnings.append(
                    f"{found['sentences']} {split} sentences also occur in train (e.g. {examples}): the {split} WER "
                    f"flatters the model on them; split the source by sentence or speaker"
                )
        return warnings
