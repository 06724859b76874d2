"""The records a run folder is read into: its state, its status, its held-out result and its one-row summary.

These are what crosses module boundaries (the CLI, the pages, the demo, the model card), so that no caller renames
dict keys or retypes a state string. `status.json` and `result.json` stay plain JSON on disk, so run folders written
by earlier versions still read: unknown keys are ignored, missing ones take their defaults.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Literal

from core.formatting import MISSING, percent, points
from core.option_fields import known_fields
from core.text.bootstrap import WerChange


class RunState(StrEnum):
    """Where a run is. A StrEnum: it is written to status.json as its value and compares equal to it."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    NOT_RESPONDING = "not responding"  # its process lives but wrote no heartbeat for a minute (paused, frozen)
    STOPPED = "stopped"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # its process died (or stopped answering) without writing an end state
    DAMAGED = "damaged"  # a run file cannot be read; it names the file

    @property
    def live(self) -> bool:
        """A worker may be writing the run folder."""
        return self in LIVE_STATES

    @property
    def resumable(self) -> bool:
        return self in RESUMABLE_STATES

    @classmethod
    def read(cls, value) -> RunState | None:
        try:
            return cls(value)
        except ValueError:
            return None


# live: a worker may still write the run folder (a paused one too, once it goes on), so it is never resumed
LIVE_STATES = (RunState.STARTING, RunState.RUNNING, RunState.STOPPING, RunState.NOT_RESPONDING)
RESUMABLE_STATES = (RunState.STOPPED, RunState.FAILED, RunState.INTERRUPTED)
ENDED_WELL = (RunState.COMPLETED, RunState.STOPPED)  # a foreground run that ended so is no error


@dataclass(frozen=True)
class RunStatus:
    """status.json: written by the worker (its heartbeat and every change) and by stop/resume."""

    state: RunState = RunState.STARTING
    step: int = 0
    total: int = 0
    phase: str | None = None
    phase_done: int | None = None
    phase_total: int | None = None
    pid: int | None = None
    host: str | None = None  # the machine `pid` runs on: on several nodes, rank 0 may run on another than this one
    heartbeat: float | None = None
    created: float | None = None
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    note: str | None = None
    precision: str | None = None
    resumed_from: str | None = None
    # the first step this worker process finished (epoch s, step): its pace counts from there, so neither the time a
    # resumed run stood stopped nor the model's loading and first evaluation is taken for training
    timed_from: float | None = None
    timed_from_step: int | None = None
    last_checkpoint: str | None = None
    left_out: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)  # what got worse (a guard set's rise), one line each
    # phase → [wall s, CPU s of the worker process] spent in it: where the run's time went (summed over repeats)
    phase_seconds: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> RunStatus:
        values = {k: v for k, v in known_fields(cls, data).items() if v is not None}
        values["state"] = RunState.read(data.get("state")) or RunState.STARTING
        for number in ("step", "total"):
            if not isinstance(values.get(number), int) or isinstance(values.get(number), bool):
                values[number] = 0
        return cls(**values)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, {}, [])}

    @property
    def live(self) -> bool:
        return self.state.live

    @property
    def resumable(self) -> bool:
        return self.state.resumable

    @property
    def explained(self) -> str:
        """The state, with its reason where the state alone does not say what to do ('damaged (status.json …)')."""
        needs_reason = self.state in (RunState.DAMAGED, RunState.NOT_RESPONDING) and self.error
        return f"{self.state} ({self.error})" if needs_reason else str(self.state)


STATUS_FIELDS = frozenset(f.name for f in fields(RunStatus))


@dataclass(frozen=True)
class TestHalf:
    """One half of a run's held-out result: a model's WER/CER on the test split."""

    checkpoint: str
    split: str
    wer: float
    cer: float
    wer_raw: float | None = None
    cer_raw: float | None = None
    utterances: int = 0
    language: str | None = None  # the target's Whisper code
    language_accuracy: float | None = None  # share of the test split detected as the target language
    guards: dict = field(default_factory=dict)  # guard set → {wer, cer, utterances, language, language_accuracy}
    probes: dict = field(default_factory=dict)  # probe counts: probe_words, probe_clips_with_words, probe_loops …

    @classmethod
    def from_dict(cls, data) -> TestHalf | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(**known_fields(cls, data))
        except TypeError:
            return None


@dataclass(frozen=True)
class RunResult:
    """result.json: the test split before (the starting model) and after (the best checkpoint); halves may be
    missing while a run is young."""

    before: TestHalf | None = None
    after: TestHalf | None = None
    changes: dict = field(default_factory=dict)  # "test" or a guard set → WerChange.to_dict() (paired bootstrap)

    @classmethod
    def from_dict(cls, data: dict) -> RunResult:
        changes = data.get("changes") if isinstance(data.get("changes"), dict) else {}
        return cls(TestHalf.from_dict(data.get("before")), TestHalf.from_dict(data.get("after")), changes)

    def to_dict(self) -> dict:
        halves = {half: asdict(value) for half, value in (("before", self.before), ("after", self.after)) if value}
        return {**halves, **({"changes": self.changes} if self.changes else {})}

    def change(self, name: str = "test") -> WerChange | None:
        """The paired-bootstrap change of the test split (or of a guard set), once both halves exist."""
        return WerChange.from_dict(self.changes.get(name))

    def guard_lines(self) -> list[str]:
        """'english-reference-80mel: 7.7% → 16.6% (+8.9 points (95% CI …))' per guard set measured on both sides."""
        if not (self.before and self.after):
            return []
        lines = []
        for name, after in self.after.guards.items():
            before = self.before.guards.get(name)
            if before:
                change = self.change(name)
                shown = f" ({change.shown})" if change else ""
                lines.append(f"{name}: {percent(before.get('wer'))} → {percent(after.get('wer'))}{shown}")
        return lines

    def report_lines(self) -> list[str]:
        """What got better and what got worse, for a person: the test change with its interval, each guard set,
        the probes and language detection (lines that cannot be said yet are left out)."""
        change = self.change()
        lines = [f"test change {change.shown}"] if change else []
        lines += [f"guard {line}" for line in self.guard_lines()]
        return lines + [line for line in (self.probe_line(), self.language_line()) if line]

    def probe_line(self) -> str | None:
        """'probe words 0 → 3 (loops 0 → 1) on 9 clips with no speech'."""
        if not (self.before and self.after and self.before.probes and self.after.probes):
            return None
        a, b = self.before.probes, self.after.probes
        return (
            f"probe words {a.get('probe_words')} → {b.get('probe_words')} (loops {a.get('probe_loops')} → "
            f"{b.get('probe_loops')}) on {b.get('probe_clips')} clips with no speech"
        )

    def language_line(self) -> str | None:
        """'language ID (no) 98% → 100%' on the test split."""
        if not (self.before and self.after) or self.after.language_accuracy is None:
            return None
        return (
            f"language ID ({self.after.language}) {percent(self.before.language_accuracy, 0)} → "
            f"{percent(self.after.language_accuracy, 0)}"
        )

    @property
    def wer_before(self) -> float | None:
        return self.before.wer if self.before else None

    @property
    def wer_after(self) -> float | None:
        return self.after.wer if self.after else None


@dataclass(frozen=True)
class RunSummary:
    """One row of a runs table: never raises, whatever the state of the run's files."""

    run: str
    state: RunState
    step: int
    total: int
    baseline_wer: float | None  # the base model's zero-shot WER on the validation split (step 0)
    best_wer: float | None  # the best checkpoint's validation WER
    best_checkpoint: str | None
    test_before: float | None  # held-out test WER of the starting model
    test_after: float | None  # held-out test WER of the best checkpoint
    error: str | None
    change: str = MISSING  # the test change with its 95% interval
    guards: str = MISSING  # each guard set's WER before → after
    probes: str = MISSING  # words written on clips with no speech, before → after
    warnings: tuple = ()  # what got worse, one line each

    # (attribute, the column a person reads): the one place the runs tables take their headers from
    COLUMNS = (
        ("run", "Run"),
        ("state", "State"),
        ("progress", "Step"),
        ("test_before_shown", "Test WER before"),
        ("test_after_shown", "Test WER after"),
        ("change", "Test change (95% CI)"),
        ("guards", "Guards before → after"),
        ("probes", "Probe words before → after"),
        ("best_shown", "Best validation WER"),
        ("baseline_shown", "Base validation WER"),
        ("best_checkpoint_shown", "Best checkpoint"),
    )

    @property
    def progress(self) -> str:
        return f"{self.step}/{self.total}" if self.total else str(self.step)

    @property
    def test_before_shown(self) -> str:
        return percent(self.test_before)

    @property
    def test_after_shown(self) -> str:
        return percent(self.test_after)

    @property
    def test_change(self) -> str | None:
        return points(self.test_before, self.test_after)

    @property
    def best_shown(self) -> str:
        return percent(self.best_wer)

    @property
    def baseline_shown(self) -> str:
        return percent(self.baseline_wer)

    @property
    def best_checkpoint_shown(self) -> str:
        return self.best_checkpoint or MISSING

    def table_row(self) -> dict[str, str]:
        """{column header: shown value}, for st.dataframe and the CLI alike."""
        return {header: str(getattr(self, attribute)) for attribute, header in self.COLUMNS}

    def to_dict(self) -> dict:
        return asdict(self)


# The two halves of a run's held-out result: the test split decoded before training and after it
Half = Literal["before", "after"]


@dataclass(frozen=True)
class BestCheckpoint:
    """The best checkpoint by validation WER (best.json), or the best still on disk recomputed from the metrics."""

    checkpoint: str  # the folder's name: checkpoint-N
    wer: float | None
    step: int | None
    recomputed: bool = False  # best.json was missing, damaged or named a checkpoint that is gone

    def to_dict(self) -> dict:
        return {"checkpoint": self.checkpoint, "wer": self.wer, "step": self.step}


# What fine-tuning broke, measured at one step (core/training/guards.py measures; result.json keeps it)
@dataclass(frozen=True)
class GuardResult:
    """One guard set decoded by the model as it is now: `summary` is `summarize`'s (wer, cer, utterances, flags and
    the per-utterance rows)."""

    name: str
    split: str
    language: str
    language_accuracy: float
    summary: dict

    @property
    def wer(self) -> float:
        return self.summary["wer"]

    def record(self) -> dict:
        """The guard's entry in result.json: its figures without the per-utterance rows (saved as evaluations)."""
        figures = {k: v for k, v in self.summary.items() if k != "rows"}
        return {**figures, "split": self.split, "language": self.language, "language_accuracy": self.language_accuracy}

    def evaluation(self, checkpoint: str) -> dict:
        """The guard's per-utterance evaluation of `checkpoint`, as the Compare page's drill-down reads it."""
        return {"model": checkpoint, "data": self.name, **self.summary, **self.record()}


@dataclass(frozen=True)
class ProbeResult:
    """What the model wrote on the clips with no speech: `counts` is `probe_counts`' (probe_words,
    probe_clips_with_words, probe_loops, probe_clips), `texts` each clip's transcript by id."""

    counts: dict[str, int]
    texts: dict[str, str]

    def record(self) -> dict:
        return {**self.counts, "texts": self.texts}


@dataclass(frozen=True)
class HarmMeasurement:
    """The guard sets and the probes, measured once on the model as it was at one step."""

    guards: dict[str, GuardResult]
    probes: ProbeResult

    def guard_wers(self) -> dict[str, float]:
        return {name: guard.wer for name, guard in self.guards.items()}


# The rows of metrics.jsonl: what each records, and the numbers a plot may trust.
def row_kind(row: dict) -> str:
    """What a metrics.jsonl row records: 'eval' (validation), 'save' (a checkpoint's save time), 'guard:NAME' (a
    guard set), 'probes' (the no-speech probes) or 'train' (loss and learning rate); one row of each kind a step."""
    if "guard" in row:
        return f"guard:{row['guard']}"
    if "probe_words" in row:
        return "probes"
    return "eval" if "eval_wer" in row else "save" if "checkpoint_seconds" in row else "train"


def baseline_of(metrics: list[dict]) -> float | None:
    """The base model's zero-shot WER in a run's metric rows (the row marked baseline, at step 0)."""
    return next((r["eval_wer"] for r in metrics if r.get("baseline") and "eval_wer" in r), None)


NUMERIC_KEYS = ("epoch", "time", "loss", "learning_rate", "samples_per_second", "eval_wer", "eval_cer")


def numbers_where_expected(row: dict) -> bool:
    """A metric row whose numeric keys hold numbers (a damaged line is skipped, never plotted)."""
    return all(isinstance(row[k], int | float) and not isinstance(row[k], bool) for k in NUMERIC_KEYS if k in row)
