"""Pseudo-labels: transcripts a model wrote for audio nobody transcribed, each with its confidence, kept as a folder
that prepare reads like any other (the `audiofolder` layout).

    WORKSPACE/labels/NAME/
        label.json        the run: source, model, language, thresholds, counts (written last: the set is complete)
        rows.jsonl        every row in the source's order: transcript, confidences, decision (keep/review/drop), why
        clips/0000012.flac  the audio of each row kept or sent to review (16 kHz mono)
        metadata.jsonl    the rows prepare reads: those kept by the thresholds, then those a person kept in review
        take-0001.wav     a row kept in review (RecordingSet.keep: the take checked and trimmed, as correct-and-keep)
        reviewed.jsonl    one line per review decision: keep, fix or drop, with the text kept

Confidence is what the decoding policy measures for every window (core/speech/decoding.py): the average token
log-probability, the compression ratio (a loop compresses well), the no-speech probability, and, when a second
model or decode is asked for, the share of words the two transcripts agree on. `LabelThresholds.route` turns them
into keep, review or drop with the reason, the rule a person can read in the help of each threshold.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from shlex import quote

from core.audio.decode import load_audio
from core.data.label_options import KEEP, REVIEW, UNKNOWN_SPEAKER, LabelRow
from core.data.recordings import LOCK_FILE, METADATA_FILE, RecordingSet, Take
from core.errors import StudioError
from core.option_fields import known_fields
from core.workspace import Workspace, check_new_name, folder_name, read_json, write_bytes_atomic

LABEL_FILE = "label.json"  # written last: a folder holding it is a complete label set, and ours
ROWS_FILE = "rows.jsonl"
REVIEWED_FILE = "reviewed.jsonl"
CLIPS_FOLDER = "clips"
REVIEW_ACTIONS = ("keep", "fix", "drop")  # keep the model's text, keep a corrected text, or drop the row


def labels_root(workspace: Workspace) -> Path:
    return workspace.labels


def clip_name(index: int, part: int = 0) -> str:
    return f"{CLIPS_FOLDER}/{index:07d}" + (f"-{part:03d}" if part else "") + ".flac"


def read_rows(path: Path) -> list[LabelRow]:
    """Rows of a jsonl file; a last line cut short by a kill (no newline, not JSON) is left out."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(LabelRow.from_dict(json.loads(line)))
        except (json.JSONDecodeError, TypeError):
            continue  # the one line a kill can cut: written again on resume
    return rows


@dataclass(frozen=True)
class LabelRecord:
    """label.json: what a label set was made from and how many rows went where."""

    name: str
    source: dict  # the source's description (a folder, a Hub dataset)
    model: str
    agree_with: str
    language: str  # our code: given, or the one detected most
    thresholds: dict
    decoding: dict  # the DecodingOptions the model decoded with
    counts: dict  # rows per decision
    seconds: float  # of audio labelled
    wall_seconds: float  # from the first start to the merge (resumed runs: their sum)
    ranks: int  # processes that labelled it (torchrun ranks)

    @classmethod
    def from_dict(cls, data: dict) -> LabelRecord:
        return cls(**known_fields(cls, data))


@dataclass(frozen=True)
class LabelSummary:
    """A label set as the Data page lists it."""

    name: str
    language: str
    model: str
    counts: dict  # rows per decision, from labelling
    review_left: int  # rows in review a person has not decided yet
    kept_in_review: int  # rows a person kept (as written, or corrected)
    training_rows: int  # what prepare reads: kept by the thresholds, plus kept in review


class LabelSet:
    """The folder WORKSPACE/labels/NAME: its rows, its review queue, and a person's keep, fix and drop."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.name = self.root.name

    @classmethod
    def open(cls, workspace: Workspace, name: str) -> LabelSet:
        found = cls(labels_root(workspace) / folder_name(name, "label set"))
        if not (found.root / LABEL_FILE).is_file():
            have = ", ".join(list_label_sets(workspace)) or "none yet: run python -m core label"
            raise StudioError(f"no label set '{name}'; label sets: {have}")
        return found

    def report_lines(self) -> list[str]:
        """What labelling ends with: minutes and decisions, and the prepare command for the kept rows."""
        record, summary = self.record(), self.summary()
        counts = ", ".join(f"{decision} {n}" for decision, n in record.counts.items())
        return [
            f"labelled {record.seconds / 60:.1f} min of audio into {self.name}: {counts} → {self.root}",
            f"prepare the kept rows with: python -m core prepare --source {quote(str(self.root))} --language "
            f"{record.language} --model MODEL --name {self.name}; {summary.review_left} rows wait for review on "
            f"the Data page",
        ]

    def record(self) -> LabelRecord:
        data = read_json(self.root / LABEL_FILE, fix=f"label the audio again into a new name, or delete {self.root}")
        return LabelRecord.from_dict(data or {})

    def rows(self) -> list[LabelRow]:
        return read_rows(self.root / ROWS_FILE)

    def reviewed(self) -> dict[str, dict]:
        """{row id: its last review decision}."""
        path = self.root / REVIEWED_FILE
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        decisions = [json.loads(line) for line in lines if line.strip()]
        return {d["id"]: d for d in decisions}

    def queue(self) -> list[LabelRow]:
        """The rows in review that nobody has decided yet, the most doubtful first."""
        done = self.reviewed()
        waiting = [r for r in self.rows() if r.decision == REVIEW and r.id not in done]
        return sorted(waiting, key=lambda r: (-r.doubt, r.index))

    def clip_path(self, row: LabelRow) -> Path:
        if not row.file_name:
            raise StudioError(f"row {row.id} of {self.name} was dropped ({row.reason}): no audio was kept for it")
        return self.root / row.file_name

    def decide(self, row_id: str, action: str, text: str = "") -> Take | None:
        """A person's decision on a row in review: keep (the model's text), fix (keep `text`) or drop. A kept row
        becomes a training row through RecordingSet.keep, the correct-and-keep of Transcribe (the take is checked,
        trimmed and written atomically, metadata.jsonl last); returns that take, or None for a drop."""
        if action not in REVIEW_ACTIONS:
            raise StudioError(f"review action '{action}': choose one of {', '.join(REVIEW_ACTIONS)}")
        row = next((r for r in self.rows() if r.id == row_id and r.decision == REVIEW), None)
        if row is None:
            raise StudioError(f"no row '{row_id}' in review in label set {self.name}")
        if row_id in self.reviewed():
            raise StudioError(f"row '{row_id}' of {self.name} was reviewed already")
        take = None
        kept = text if action == "fix" else row.text
        if action != "drop":
            samples = load_audio(self.clip_path(row), name=row.audio_name or row.id)
            take = RecordingSet(self.root).keep(samples, kept, row.speaker or UNKNOWN_SPEAKER)
        decision = {"id": row_id, "action": action, "text": " ".join(kept.split()) if take else ""}
        with self._locked():
            with open(self.root / REVIEWED_FILE, "a", encoding="utf-8") as log:
                log.write(json.dumps({**decision, "take": take.file_name if take else ""}, ensure_ascii=False) + "\n")
        return take

    def summary(self) -> LabelSummary:
        record = self.record()
        done = self.reviewed()
        in_review = [r for r in self.rows() if r.decision == REVIEW]
        kept = sum(d["action"] != "drop" for d in done.values())
        training = len(RecordingSet(self.root).takes())
        left = sum(r.id not in done for r in in_review)
        return LabelSummary(self.name, record.language, record.model, record.counts, left, kept, training)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / LOCK_FILE, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def write_label_set(folder: Path, rows: list[LabelRow], record: LabelRecord) -> None:
    """rows.jsonl, metadata.jsonl (the kept rows, as prepare reads them) and label.json (last) into `folder`, whose
    clips/ hold the audio of the rows kept or in review."""
    rows = sorted(rows, key=lambda r: (r.index, r.part))
    write_bytes_atomic(folder / ROWS_FILE, "".join(r.to_json() + "\n" for r in rows).encode())
    kept = [
        Take(r.file_name, r.text, r.speaker or UNKNOWN_SPEAKER, round(r.seconds, 2)) for r in rows if r.decision == KEEP
    ]
    write_bytes_atomic(
        folder / METADATA_FILE, "".join(json.dumps(asdict(t), ensure_ascii=False) + "\n" for t in kept).encode()
    )
    write_bytes_atomic(folder / LABEL_FILE, json.dumps(asdict(record), indent=2, ensure_ascii=False).encode())


def pseudo_label_summary(root: Path) -> dict | None:
    """What a prepared dataset's manifest says of a label set it was made from: how many of its training rows are
    pseudo-labels (kept by the thresholds) and how many a person kept, the model and the thresholds; None for a
    folder that is no label set."""
    if not (root / LABEL_FILE).is_file():
        return None
    record = LabelSet(root).record()
    takes = RecordingSet(root).takes()
    pseudo = sum(t.file_name.startswith(f"{CLIPS_FOLDER}/") for t in takes)
    return {
        "rows": pseudo,  # a model's transcripts, kept by the thresholds
        "reviewed": len(takes) - pseudo,  # kept by a person in review (as written, or corrected)
        "model": record.model,
        "agree_with": record.agree_with,
        "thresholds": record.thresholds,
    }


def list_label_sets(workspace: Workspace) -> list[str]:
    root = labels_root(workspace)
    return sorted(p.name for p in root.iterdir() if (p / LABEL_FILE).is_file()) if root.is_dir() else []


def check_label_name(workspace: Workspace, name: str) -> Path:
    """The folder a new label set `name` goes to; refused when a label set (or anything) is there already."""
    check_new_name(name, "label set")
    final = labels_root(workspace) / name
    if (final / LABEL_FILE).is_file():
        raise StudioError(f"label set '{name}' exists ({final}); choose another name")
    if final.exists():
        raise StudioError(f"{final} exists and is no label set; choose another name")
    return final
