"""Local dataset folders in the layouts people really have, detected automatically.

(a) `pairs`: `name.wav` + `name.txt` side by side, in one folder or in train/test (dev, validation) subfolders;
(b) `audiofolder`: audio files plus `metadata.csv` or `metadata.jsonl` (`file_name` + a text column, optionally
    `segments`: [[start s, end s, text], …] for timestamped labels), at the root or per split subfolder;
(c) `common_voice`: a Common Voice release (`train.tsv`, `dev.tsv`, `test.tsv`, `validated.tsv`, `clips/*.mp3`);
(d) `fleurs`: a FLEURS language folder (header-less `train.tsv`/`dev.tsv`/`test.tsv`, `audio/<split>/*.wav`).
A folder with no split structure keeps a stable 10% of its rows as the test split: by transcript, or with
`split_by="speaker"` (rows that name their speaker: a `speaker`/`speaker_id` column, Common Voice's `client_id`) by
speaker, whole speakers held out for test (and validation), so the test figure is for a voice never heard in
training.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core.audio.constants import SAMPLE_RATE
from core.audio.decode import AUDIO_EXTENSIONS
from core.data.examples import SPLITS, Example, normalize_split
from core.data.labels import parse_segments
from core.data.prepare_options import SPLIT_RULES
from core.data.pseudo_labels import pseudo_label_summary
from core.data.rows import in_slice, text_key
from core.errors import StudioError

SPEAKER_COLUMNS = ("speaker", "speaker_id", "client_id")  # ours and audiofolder's, then Common Voice's
TEXT_COLUMNS = ("sentence", "transcription", "raw_transcription", "normalized_text", "text", "transcript")
LAYOUTS = {
    "pairs": "audio files with .txt transcripts beside them",
    "audiofolder": "audio files with metadata.csv / metadata.jsonl",
    "common_voice": "a Common Voice release (train/dev/test.tsv + clips/)",
    "fleurs": "a FLEURS language folder (header-less tsv + audio/<split>/)",
}
# FLEURS tsv columns, in order (the files carry no header).
FLEURS_COLUMNS = ("id", "file_name", "raw_transcription", "transcription", "characters", "num_samples", "gender")
HOLDOUT_FRACTION = 0.1
csv.field_size_limit(1 << 24)
FALLBACK_ENCODING = "cp1252"  # Windows' Western European code page: latin-1 plus “smart quotes”, the usual non-UTF-8


def read_text_file(path: Path, encodings: Counter | None = None) -> str:
    """A transcript or metadata file as text: UTF-8 (a byte-order mark stripped), UTF-16 with its byte-order mark,
    else the Windows code page cp1252 (latin-1); anything else is refused with one line naming the file.
    `encodings` counts what was found, for the manifest."""
    raw = path.read_bytes()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        found, text = "utf-16", raw.decode("utf-16", errors="strict")
    else:
        try:
            found, text = "utf-8", raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                found, text = FALLBACK_ENCODING, raw.decode(FALLBACK_ENCODING)
            except UnicodeDecodeError:
                raise StudioError(
                    f"{path}: the text is neither UTF-8, UTF-16 nor cp1252/latin-1; convert it to UTF-8 "
                    f"(iconv -f ENCODING -t UTF-8) or remove it"
                ) from None
    if encodings is not None:
        encodings[found] += 1
    return text


def detect_layout(root: Path) -> str:
    """Name the layout of `root` or say what was expected."""
    if not root.is_dir():
        raise StudioError(f"{root}: no such folder; give a dataset folder or a Hugging Face dataset id")
    names = {p.name for p in root.iterdir()}
    if "clips" in names and names & {"train.tsv", "validated.tsv", "test.tsv", "dev.tsv"}:
        return "common_voice"
    if "audio" in names and names & {"train.tsv", "test.tsv", "dev.tsv"}:
        return "fleurs"
    if _metadata_files(root):
        return "audiofolder"
    if any(p.suffix == ".txt" for p in root.rglob("*.txt")) and _audio_files(root):
        return "pairs"
    if not names:
        raise StudioError(f"{root}: the folder is empty; expected one of: " + "; ".join(LAYOUTS.values()))
    raise StudioError(f"{root}: no dataset layout recognised; expected one of: " + "; ".join(LAYOUTS.values()))


def _audio_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())


def _metadata_files(root: Path) -> list[Path]:
    found = [root / n for n in ("metadata.csv", "metadata.jsonl") if (root / n).is_file()]
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and normalize_split(p.name)):
        found += [sub / n for n in ("metadata.csv", "metadata.jsonl") if (sub / n).is_file()]
    return found


def _hold_out_texts(rows: list[Example], split: str) -> tuple[list[Example], list[Example]]:
    """(kept, held out) by transcript: every reading of a sentence lands on the same side, so test texts never
    train; at least one row held out when there are two or more."""
    held = [in_slice(text_key(e.text), HOLDOUT_FRACTION, split) for e in rows]
    kept, out = [e for e, h in zip(rows, held) if not h], [e for e, h in zip(rows, held) if h]
    if not out and len(rows) > 1:
        out = [kept.pop()]
    return kept, out


def _speakers(rows: list[Example]) -> list[str]:
    return sorted({e.speaker for e in rows if e.speaker})


def with_split_rule(source, split_by: str):
    """`source` with the splits it makes itself made by `split_by` (PrepareOptions.split_by): a local folder is
    read again by speaker; every source splits by text already."""
    if split_by == "text" or getattr(source, "split_by", "text") == split_by:
        return source
    if isinstance(source, FolderSource):
        return source.split_by_speaker()
    raise StudioError(
        f"split_by {split_by}: only a local folder whose rows name their speaker (a {'/'.join(SPEAKER_COLUMNS)} "
        f"column) is split by speaker here; a Hub dataset keeps its own splits: split by text"
    )


def _split_of(path: Path, root: Path) -> str | None:
    """The split named by the first folder under root, if it names one."""
    parts = path.relative_to(root).parts
    return normalize_split(parts[0]) if len(parts) > 1 else None


def _pick_text_column(columns: list[str], given: str | None, where: str) -> str:
    if given:
        if given not in columns:
            raise StudioError(f"{where}: no column '{given}'; its columns are {', '.join(columns)}")
        return given
    for name in TEXT_COLUMNS:
        if name in columns:
            return name
    raise StudioError(
        f"{where}: no transcript column found; expected one of {', '.join(TEXT_COLUMNS)} "
        f"(its columns are {', '.join(columns)}); name it with --text-column"
    )


@dataclass
class FolderSource:
    """A local folder; rows are indexed on construction (cheap: file names and transcripts, no audio)."""

    root: Path
    text_column: str | None = None
    layout: str = ""
    rows: dict[str, list[Example]] = field(default_factory=dict, repr=False)
    encodings: Counter = field(default_factory=Counter, repr=False)  # transcript files by the encoding found
    train_also: tuple[str, ...] = ()  # other splits that join train (train+validation), and are splits no more
    split_by: str = "text"  # how the splits the folder lacks are made: by transcript, or by speaker

    def __post_init__(self) -> None:
        self.root = Path(self.root).expanduser().resolve()
        self.layout = detect_layout(self.root)
        reader = {
            "pairs": self._read_pairs,
            "audiofolder": self._read_audiofolder,
            "common_voice": self._read_common_voice,
            "fleurs": self._read_fleurs,
        }[self.layout]
        for split, example in reader():
            self.rows.setdefault(split, []).append(example)
        if not any(self.rows.values()):
            raise StudioError(f"{self.root}: found the {self.layout} layout but no usable rows in it")
        if self.split_by not in SPLIT_RULES:
            raise StudioError(f"split_by '{self.split_by}': choose one of {', '.join(SPLIT_RULES)}")
        hold_out = self._hold_out_speakers if self.split_by == "speaker" else _hold_out_texts
        if set(self.rows) == {"unsplit"}:
            self.rows["train"], self.rows["test"] = hold_out(self.rows.pop("unsplit"), "test")
        elif "unsplit" in self.rows:
            self.rows.setdefault("train", []).extend(self.rows.pop("unsplit"))
        for split in self.train_also:
            if split not in self.rows:
                raise StudioError(f"{self.root}: no '{split}' split to train on; it has {', '.join(self.splits())}")
            self.rows.setdefault("train", []).extend(self.rows.pop(split))
        if self.split_by == "speaker" and "validation" not in self.rows and len(_speakers(self.rows["train"])) > 1:
            # a validation voice never heard in training too; with one training speaker prepare carves by text
            self.rows["train"], self.rows["validation"] = self._hold_out_speakers(self.rows["train"], "validation")

    def _hold_out_speakers(self, rows: list[Example], split: str) -> tuple[list[Example], list[Example]]:
        """(kept, held out): whole speakers, in a stable order by their id, until the held-out rows are
        HOLDOUT_FRACTION of them; at least one speaker on each side."""
        speakers = _speakers(rows)
        if len(speakers) < 2:
            found = f"one ({speakers[0]})" if speakers else "none that names its speaker"
            raise StudioError(
                f"{self.root}: splitting by speaker needs two speakers or more, and its rows have {found} (a "
                f"{'/'.join(SPEAKER_COLUMNS)} column in the metadata); record another speaker, or split by text"
            )
        count = Counter(e.speaker for e in rows)
        held: set[str] = set()
        for speaker in sorted(speakers, key=lambda s: hashlib.sha1(f"{split}:{s}".encode()).digest())[:-1]:
            held.add(speaker)
            if sum(count[s] for s in held) >= HOLDOUT_FRACTION * len(rows):
                break
        return [e for e in rows if e.speaker not in held], [e for e in rows if e.speaker in held]

    def split_by_speaker(self) -> FolderSource:
        """This folder read again with its splits made by speaker."""
        return FolderSource(self.root, self.text_column, train_also=self.train_also, split_by="speaker")

    def describe(self) -> dict:
        described = {"kind": "folder", "path": str(self.root), "layout": self.layout, "text_column": self.text_column}
        if self.train_also:
            described["train_also"] = list(self.train_also)
        if self.split_by != "text":
            described["split_by"] = self.split_by
        if set(self.encodings) - {"utf-8"}:
            described["text_encodings"] = dict(self.encodings)  # non-UTF-8 transcripts were read: say so
        pseudo = pseudo_label_summary(self.root)  # a label set: how many rows are a model's, and its thresholds
        if pseudo:
            described["pseudo_labels"] = pseudo
        return described

    def _read(self, path: Path) -> str:
        return read_text_file(path, self.encodings)

    def splits(self) -> list[str]:
        return [s for s in SPLITS if self.rows.get(s)]

    def examples(self, split: str) -> Iterator[Example]:
        if split not in self.rows:
            raise StudioError(f"{self.root}: no '{split}' split; it has {', '.join(self.splits())}")
        yield from self.rows[split]

    def shuffled(self, split: str, seed: int) -> Iterator[Example]:
        rows = list(self.examples(split))
        random.Random(seed).shuffle(rows)
        yield from rows

    def _inside(self, listed: str, base: Path, where: str) -> Path:
        """A file a metadata row names, refused when it points outside the dataset folder (../, an absolute path):
        a dataset never pulls in clips from elsewhere. The check is on the path as written (normpath, not resolve),
        so a clips folder that is a symlink to another disk still works."""
        path = Path(os.path.normpath(base / listed))
        if not listed or Path(listed).is_absolute() or not path.is_relative_to(self.root):
            raise StudioError(
                f"{where}: '{listed}' points outside the dataset folder {self.root}; "
                f"give a path relative to the metadata file, inside the folder"
            )
        return path

    def _example(self, audio: Path, text: str, speaker: str = "") -> Example:
        if not audio.is_file():
            raise StudioError(
                f"{self.root}: the clip {audio.relative_to(self.root)} is listed but missing; "
                f"restore it or remove its row"
            )
        rel = audio.relative_to(self.root).as_posix()
        return Example(id=rel.rsplit(".", 1)[0], audio=audio, text=text, audio_name=rel, speaker=speaker)

    # (a) name.wav + name.txt
    def _read_pairs(self) -> Iterator[tuple[str, Example]]:
        for audio in _audio_files(self.root):
            transcript = audio.with_suffix(".txt")
            if not transcript.is_file():
                continue  # audio without a transcript is no training row; the doctor counts these
            text = self._read(transcript).strip()
            yield _split_of(audio, self.root) or "unsplit", self._example(audio, text)

    # (b) audiofolder: metadata.csv / metadata.jsonl with file_name
    def _read_audiofolder(self) -> Iterator[tuple[str, Example]]:
        for meta in _metadata_files(self.root):
            content = self._read(meta)
            if meta.suffix == ".csv":
                records = list(csv.DictReader(io.StringIO(content, newline="")))
            else:
                records = []
                for line_no, line in enumerate(content.splitlines(), 1):
                    try:
                        record = json.loads(line) if line.strip() else None
                    except json.JSONDecodeError:
                        raise StudioError(f"{meta}: line {line_no} is not valid JSON; fix or remove it") from None
                    if record is not None and not isinstance(record, dict):
                        raise StudioError(f"{meta}: line {line_no} is not a JSON object; fix or remove it")
                    if record is not None:
                        records.append(record)
            if not records:
                continue
            columns = list(records[0])
            where = str(meta.relative_to(self.root))
            if "file_name" not in columns:
                raise StudioError(
                    f"{where}: no 'file_name' column (its columns are {', '.join(columns)}); "
                    f"audiofolder metadata names each clip in file_name"
                )
            text_col = _pick_text_column(columns, self.text_column, where)
            speaker_col = next((c for c in SPEAKER_COLUMNS if c in columns), None)
            split = _split_of(meta, self.root) or "unsplit"
            for row, rec in enumerate(records, 2 if meta.suffix == ".csv" else 1):  # csv: line 1 is the header
                listed = str(rec.get("file_name") or "")
                audio = self._inside(listed, meta.parent, f"{where} row {row}")
                speaker = str(rec.get(speaker_col) or "") if speaker_col else ""
                example = self._example(audio, str(rec.get(text_col) or ""), speaker)
                example.segments = parse_segments(rec.get("segments"), f"{where} row {row}")  # timed labels
                yield split, example

    # (c) Common Voice release
    def _read_common_voice(self) -> Iterator[tuple[str, Example]]:
        tsvs = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
        if not any((self.root / n).is_file() for n in tsvs.values()):
            tsvs = {"unsplit": "validated.tsv"}
        for split, name in tsvs.items():
            path = self.root / name
            if not path.is_file():
                continue
            # Common Voice writes its tsv files unquoted (QUOTE_NONE): a tab inside a sentence shifts every later
            # column, so such a row is reported rather than cut silently at the tab
            reader = csv.DictReader(io.StringIO(self._read(path), newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
            columns = reader.fieldnames or []
            if "path" not in columns:
                raise StudioError(
                    f"{name}: no 'path' column (its columns are {', '.join(columns)}); "
                    f"expected Common Voice's client_id, path, sentence, …"
                )
            text_col = _pick_text_column(columns, self.text_column, name)
            for line_no, rec in enumerate(reader, 2):
                if None in rec:
                    raise StudioError(
                        f"{name} line {line_no}: {len(columns) + len(rec[None])} fields for {len(columns)} columns "
                        f"(a tab inside the sentence?); fix that row"
                    )
                audio = self._inside(rec["path"] or "", self.root / "clips", f"{name} line {line_no}")
                yield split, self._example(audio, rec[text_col] or "", rec.get("client_id") or "")

    # (d) FLEURS language folder
    def _read_fleurs(self) -> Iterator[tuple[str, Example]]:
        text_col = self.text_column or "transcription"
        if text_col not in FLEURS_COLUMNS:
            raise StudioError(f"FLEURS tsv has no column '{text_col}'; choose one of {', '.join(FLEURS_COLUMNS)}")
        index = FLEURS_COLUMNS.index(text_col)
        for name in ("train.tsv", "dev.tsv", "test.tsv"):
            path = self.root / name
            if not path.is_file():
                continue
            split_dir = name.removesuffix(".tsv")
            lines = csv.reader(io.StringIO(self._read(path), newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
            for line_no, rec in enumerate(lines, 1):
                if len(rec) < 4:
                    raise StudioError(
                        f"{name} line {line_no}: {len(rec)} columns, expected FLEURS' "
                        f"{len(FLEURS_COLUMNS)} ({', '.join(FLEURS_COLUMNS)})"
                    )
                audio = self._inside(rec[1], self.root / "audio" / split_dir, f"{name} line {line_no}")
                example = self._example(audio, rec[index])
                if len(rec) > 5 and rec[5].isdigit():
                    example.duration = int(rec[5]) / SAMPLE_RATE  # FLEURS counts samples at 16 kHz
                yield normalize_split(split_dir), example
