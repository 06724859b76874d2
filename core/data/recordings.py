"""Your own voice as a dataset: takes recorded for prompts (or transcripts corrected on Transcribe), kept as an
ordinary local folder that prepare, the doctor and every other path already read (the `audiofolder` layout).

    WORKSPACE/recordings/NAME/
        take-0001.wav     16 kHz mono PCM-16, trimmed to the speech (the detector's padding kept)
        take-0001.txt     its text, beside it, for tools that read wav + txt pairs
        metadata.jsonl    one row a take: file_name, text, speaker, seconds (what prepare reads; the speaker travels)
        recording.json    the set's language and its prompt list, so a session can be resumed later

Every take is checked before it is kept (`check_take`: clipping, too quiet, silence only, much longer or shorter
than its text takes to say), and refused with one line saying what to do. Files are written to a temporary name and
renamed; metadata.jsonl is rewritten last, under a lock on the folder, so a take is in the set once its row is.
"""

from __future__ import annotations

import fcntl
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from core.audio.constants import SAMPLE_RATE, WINDOW_SECONDS
from core.audio.decode import load_audio
from core.audio.vad import FRAME, SPEECH_ABOVE_FLOOR_DB, frame_db, speech_regions
from core.errors import DamagedFile, StudioError
from core.languages import get_language
from core.workspace import Workspace, check_new_name, read_json, write_bytes_atomic, write_json_atomic

METADATA_FILE = "metadata.jsonl"
SESSION_FILE = "recording.json"
LOCK_FILE = ".lock"
CLIP_LEVEL = 0.99  # |sample| at or above this is full scale: the converter ran out of range
CLIPPED_SHARE = 0.001  # more than 0.1% of samples at full scale (16 in a 1 s take) is audible distortion
TOO_QUIET_DBFS = -35.0  # the loudest 20 ms of speech below this is buried in the noise a model trains on
SHORTEST_TAKE_S = 0.3  # a take shorter than this holds no word
SILENT_DBFS = -120.0  # the level of an empty take
# How long a text takes to say: 5 to 25 characters a second spans slow reading to fast talk (espeak-ng's 130–190
# words a minute is about 12–18). A 40-character prompt may take 1.6 s to 8 s, plus LENGTH_SLACK_S for pauses.
CHARACTERS_PER_SECOND = (5.0, 25.0)
LENGTH_SLACK_S = 2.0


def recordings_root(workspace: Workspace) -> Path:
    return workspace.recordings


@dataclass(frozen=True)
class TakeCheck:
    """What the checks found in one take: the problem line (None when it can be kept) and what was measured."""

    problem: str | None
    speech_seconds: float  # from the first speech to the last, the detector's padding included
    peak_dbfs: float  # the loudest 20 ms

    @property
    def summary(self) -> str:
        return f"{self.speech_seconds:.1f} s of speech, loudest {self.peak_dbfs:.0f} dBFS"


def check_take(samples: np.ndarray, text: str) -> TakeCheck:
    """Whether a take (16 kHz mono) of `text` can be kept, in the order a person fixes things: the microphone
    (silence, clipping, level), then the reading (length against the text)."""
    frames = len(samples) // FRAME
    levels = frame_db(samples[: frames * FRAME].reshape(frames, FRAME)) if frames else np.full(1, SILENT_DBFS)
    peak = float(levels.max())
    regions = speech_regions(samples) if len(samples) >= SHORTEST_TAKE_S * SAMPLE_RATE else []
    speech = (regions[-1][1] - regions[0][0]) / SAMPLE_RATE if regions else 0.0

    def found(problem: str | None) -> TakeCheck:
        return TakeCheck(problem, round(float(speech), 2), round(peak, 1))

    # speech below the detector's absolute floor still stands out of its own noise floor: too quiet, not silent
    above_noise = int(np.count_nonzero(levels > np.percentile(levels, 10) + SPEECH_ABOVE_FLOOR_DB))
    if not regions and above_noise * FRAME >= SHORTEST_TAKE_S * SAMPLE_RATE:
        return found(
            f"too quiet: the speech peaks at {peak:.0f} dBFS (aim above {TOO_QUIET_DBFS:.0f}); move closer to the "
            f"microphone or turn its input level up, then record again"
        )
    if not regions:
        return found(
            f"no speech heard (the loudest moment is {peak:.0f} dBFS): check that the right microphone is chosen "
            f"and not muted, then record again"
        )
    clipped = float(np.mean(np.abs(samples) >= CLIP_LEVEL))
    if clipped > CLIPPED_SHARE:
        return found(
            f"clipped: {100 * clipped:.1f}% of the samples hit full scale; move back from the microphone or turn "
            f"its input level down, then record again"
        )
    if peak < TOO_QUIET_DBFS:
        return found(
            f"too quiet: the speech peaks at {peak:.0f} dBFS (aim above {TOO_QUIET_DBFS:.0f}); move closer to the "
            f"microphone or turn its input level up, then record again"
        )
    if speech > WINDOW_SECONDS:
        return found(
            f"{speech:.0f} s of speech: Whisper hears {WINDOW_SECONDS} s at a time and prepare drops longer clips; "
            f"keep a take under {WINDOW_SECONDS} s"
        )
    characters = len(text.strip())
    longest = characters / CHARACTERS_PER_SECOND[0] + LENGTH_SLACK_S
    shortest = characters / CHARACTERS_PER_SECOND[1]
    if speech > longest:
        return found(
            f"{speech:.1f} s of speech for {characters} characters (about {longest:.1f} s at most): read just the "
            f"prompt, then stop the recording"
        )
    if speech < shortest:
        return found(
            f"{speech:.1f} s of speech for {characters} characters (at least {shortest:.1f} s): the take was cut "
            f"off; read the whole prompt before you stop"
        )
    return found(None)


def trimmed(samples: np.ndarray) -> np.ndarray:
    """The take from its first speech to its last, the detector's padding kept: silence trains nothing."""
    regions = speech_regions(samples)
    return samples[regions[0][0] : regions[-1][1]] if regions else samples


@dataclass(frozen=True)
class Take:
    """One kept take, as its metadata row says."""

    file_name: str  # take-0001.wav, inside the set's folder
    text: str
    speaker: str
    seconds: float


@dataclass(frozen=True)
class RecordingSummary:
    """A recording set as the Data page lists it."""

    name: str
    language: str
    takes: int
    seconds: float  # of kept audio
    bytes: int  # on disk, every file of the folder
    speakers: tuple[str, ...]
    damaged: str | None = None  # why the set cannot be read (a damaged metadata line), or None


class RecordingSet:
    """The folder WORKSPACE/recordings/NAME: its prompts, its takes, and keeping and deleting one."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.name = self.root.name

    @classmethod
    def open(cls, workspace: Workspace, name: str, language: str | None = None) -> RecordingSet:
        """The set `name`; made (empty, for `language`) when it does not exist yet and a language is given."""
        check_new_name(name, "recording set")
        found = cls(recordings_root(workspace) / name)
        if not (found.root / SESSION_FILE).is_file():
            if language is None:
                raise StudioError(f"no recording set '{name}'; choose a language and prompts to start it")
            if found.root.exists() and any(found.root.iterdir()):
                raise StudioError(f"{found.root} exists and is no recording set; choose another name")
            write_json_atomic(found.root / SESSION_FILE, {"language": language, "prompts": []})
        return found

    def _session(self) -> dict:
        return read_json(self.root / SESSION_FILE, fix="delete it, and the set's prompts with it") or {}

    @property
    def language(self) -> str:
        return str(self._session().get("language", ""))

    @property
    def prompts(self) -> list[str]:
        return [str(p) for p in self._session().get("prompts", [])]

    def add_prompts(self, prompts: list[str]) -> int:
        """Append the prompts the set does not hold yet; returns how many were new."""
        with self._locked():
            session = self._session()
            held = session.get("prompts", [])
            new = [p for p in dict.fromkeys(" ".join(p.split()) for p in prompts) if p and p not in held]
            write_json_atomic(self.root / SESSION_FILE, {**session, "prompts": held + new})
        return len(new)

    def takes(self) -> list[Take]:
        """The kept takes, as metadata.jsonl lists them; DamagedFile naming the line when one cannot be read (not
        JSON, no file_name or text) or names a file outside the set: nothing then acts on a path read from it."""
        path = self.root / METADATA_FILE
        if not path.is_file():
            return []
        takes = []
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if line.strip():
                takes.append(self._take(line, f"{path} line {number}"))
        return takes

    def _take(self, line: str, where: str) -> Take:
        fix = "correct or remove that line by hand (the set is left as it is)"
        try:
            row = json.loads(line)
            take = Take(
                str(row["file_name"]), str(row["text"]), str(row.get("speaker", "")), float(row.get("seconds", 0))
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            why = f"no {err}" if isinstance(err, KeyError) else "not a JSON row with file_name and text"
            raise DamagedFile(f"{where} is damaged ({why}); {fix}") from None
        if self._inside(take.file_name) is None:
            raise DamagedFile(f"{where} names {take.file_name!r}, a file outside the set {self.root}; {fix}")
        return take

    def _inside(self, file_name: str) -> Path | None:
        """The file a metadata row names, when it lies inside the set's folder (links resolved); else None."""
        root = self.root.resolve()
        path = (root / file_name).resolve()
        return path if path != root and path.is_relative_to(root) else None

    def path_of(self, take: Take) -> Path:
        """Where a take's audio is, once checked to lie inside the set (the player and delete use this, never the
        raw name); the path itself, not a link's target, so that delete removes a link and not what it points to."""
        if self._inside(take.file_name) is None:
            raise DamagedFile(f"{self.root / METADATA_FILE} names {take.file_name!r}, a file outside the set")
        return self.root / take.file_name

    def prompts_left(self, speaker: str) -> list[str]:
        """The prompts `speaker` has no kept take of, in order: where a resumed session goes on."""
        said = {t.text for t in self.takes() if t.speaker == speaker}
        return [p for p in self.prompts if p not in said]

    def keep(self, audio: bytes | np.ndarray, text: str, speaker: str) -> Take:
        """Check the take and keep it (trimmed) with `text`; StudioError with the check's line when it cannot be."""
        check_new_name(speaker, "speaker")
        text = " ".join(text.split())
        if not text:
            raise StudioError("the text is empty: type what is said in the take, then keep it")
        samples = load_audio(audio, name="the take") if isinstance(audio, bytes) else audio
        check = check_take(samples, text)
        if check.problem:
            raise StudioError(check.problem)
        samples = trimmed(samples)
        with self._locked():
            takes = self.takes()
            stem = self._free_stem()
            write_bytes_atomic(self.root / f"{stem}.wav", wav_bytes(samples))
            write_bytes_atomic(self.root / f"{stem}.txt", f"{text}\n".encode())
            take = Take(f"{stem}.wav", text, speaker, round(len(samples) / SAMPLE_RATE, 2))
            self._write_metadata([*takes, take])  # last: the take belongs to the set from here on
        return take

    def delete(self, file_name: str) -> None:
        """Remove a take's row, then its audio and text: only files inside the set, named by a row of it."""
        with self._locked():
            takes = self.takes()
            take = next((t for t in takes if t.file_name == file_name), None)
            if take is None:
                raise StudioError(f"no take {file_name} in {self.name}; it has {len(takes)} takes")
            audio = self.path_of(take)
            self._write_metadata([t for t in takes if t.file_name != file_name])
            for path in (audio, audio.with_suffix(".txt")):
                path.unlink(missing_ok=True)

    def summary(self) -> RecordingSummary:
        """What the Data page lists; a set whose metadata cannot be read is listed as damaged, with the reason."""
        size = sum(p.stat().st_size for p in self.root.iterdir() if p.is_file())
        try:
            takes = self.takes()
            language = self.language
        except DamagedFile as err:
            return RecordingSummary(self.name, "", 0, 0.0, size, (), damaged=str(err))
        speakers = tuple(dict.fromkeys(t.speaker for t in takes))
        seconds = round(sum(t.seconds for t in takes), 2)
        return RecordingSummary(self.name, language, len(takes), seconds, size, speakers)

    def _free_stem(self) -> str:
        """The next take's name: one past every take file in the folder, kept or left by an interrupted keep."""
        numbers = [int(p.stem.split("-")[1]) for p in self.root.glob("take-*.wav") if p.stem.split("-")[1].isdigit()]
        return f"take-{max(numbers, default=0) + 1:04d}"

    def _write_metadata(self, takes: list[Take]) -> None:
        lines = "".join(json.dumps(asdict(t), ensure_ascii=False) + "\n" for t in takes)
        write_bytes_atomic(self.root / METADATA_FILE, lines.encode())

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One keep or delete at a time (two tabs on one set): metadata.jsonl is read, changed and replaced."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK_FILE, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def wav_bytes(samples: np.ndarray) -> bytes:
    """16 kHz mono samples as a PCM-16 wav file's bytes."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, SAMPLE_RATE, "PCM_16", format="WAV")
    return buffer.getvalue()


def keep_in_set(
    workspace: Workspace, name: str, audio: bytes | np.ndarray, text: str, speaker: str, language: str | None
) -> Take:
    """Correct and keep: audio with its corrected transcript into the recording set `name` (made when new, for
    `language`: our code or Whisper's, as a transcript names it; English when not known)."""
    code = get_language(language).code if language else "en"
    return RecordingSet.open(workspace, name, code).keep(audio, text, speaker)


def list_recordings(workspace: Workspace) -> list[RecordingSummary]:
    root = recordings_root(workspace)
    folders = sorted(p for p in root.iterdir() if (p / SESSION_FILE).is_file()) if root.is_dir() else []
    return [RecordingSet(p).summary() for p in folders]
