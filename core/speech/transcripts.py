"""Transcripts to keep: one transcribed file as SRT, WebVTT, plain text or JSON.

A `Transcript` is what `Transcriber.transcribe_file` returns: timed segments (with their timed words when word
timestamps were asked for), the language (and, when it was detected rather than given, the model's probability for
it) and the audio's length. The writers here are pure functions of it: SRT and WebVTT with a cue per segment, or a
cue per word (`to_word_srt`, `to_word_vtt`). `destinations` says where each input's transcripts go (one name per
input, never over a file we did not write), and `write_transcripts` writes the chosen formats there atomically.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.errors import StudioError
from core.languages import get_language
from core.workspace import check_free, writable_folder, write_owned

FORMATS = ("txt", "srt", "vtt", "json")


@dataclass
class Word:
    start: float  # seconds into the file
    end: float
    word: str  # as the tokenizer spells it, with its leading space
    probability: float  # the model's mean token probability for the word


@dataclass
class Segment:
    start: float  # seconds
    end: float
    text: str
    words: list[Word] = field(default_factory=list)  # filled only when word timestamps were asked for
    # what the decoding policy measured for the segment's window (None for a segment nothing decoded)
    temperature: float | None = None  # the temperature whose output was kept
    avg_logprob: float | None = None  # average token log-probability, end-of-text included
    compression_ratio: float | None = None  # UTF-8 bytes over zlib bytes of the text
    no_speech_prob: float | None = None  # probability of <|nospeech|> at the window's start


@dataclass
class Transcript:
    segments: list[Segment]
    language: str | None = None  # Whisper code (`no`), given or detected
    language_probability: float | None = None  # only when detected
    duration: float = 0.0  # seconds of audio
    source: str = ""
    extra: dict = field(default_factory=dict)
    # when detected: the likeliest languages, (Whisper code, probability), likeliest first (the first is `language`)
    likely_languages: list[tuple[str, float]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text).strip()


SURE_LANGUAGE = 0.5  # a detected language below this probability is a guess: it is said so, with its rivals


@dataclass(frozen=True)
class LanguageGuess:
    """One language a detection found likely: our code (for the language pickers), its name and probability."""

    code: str
    name: str
    probability: float


def language_guesses(transcript: Transcript) -> list[LanguageGuess]:
    """The detection's likeliest languages, likeliest first (none when the language was given)."""
    guesses = []
    for whisper, probability in transcript.likely_languages:
        try:
            language = get_language(whisper)
        except StudioError:  # a token outside the language table: shown by its code
            guesses.append(LanguageGuess(whisper, whisper, probability))
            continue
        guesses.append(LanguageGuess(language.code, language.name, probability))
    return guesses


def language_line(transcript: Transcript) -> str | None:
    """What the detection said, in words: 'Detected language: Norwegian Bokmål (93%)', or, when it is unsure
    (below SURE_LANGUAGE), 'Not sure which language this is: Thai 39%, Norwegian Bokmål 21% or Danish 12%…'. None
    when the language was given."""
    guesses = language_guesses(transcript)
    if not guesses:
        return None
    if guesses[0].probability >= SURE_LANGUAGE:
        return f"Detected language: **{guesses[0].name}** ({100 * guesses[0].probability:.0f}%)"
    shown = [f"{g.name} {100 * g.probability:.0f}%" for g in guesses]
    listed = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"
    return (
        f"Not sure which language this is: {listed}. The text below is read as {guesses[0].name}; choose the "
        f"language and it is transcribed again."
    )


def _clock(seconds: float, separator: str) -> str:
    """12.345 → 00:00:12,345 (SRT, separator ',') or 00:00:12.345 (WebVTT, '.')."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_srt(transcript: Transcript) -> str:
    cues = [s for s in transcript.segments if s.text]
    blocks = [f"{i}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text}\n" for i, s in enumerate(cues, start=1)]
    return "\n".join(blocks)


def to_vtt(transcript: Transcript) -> str:
    cues = [f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text}\n" for s in transcript.segments if s.text]
    return "WEBVTT\n\n" + "\n".join(cues)


def _word_cues(transcript: Transcript) -> list[Word]:
    return [w for s in transcript.segments for w in s.words if w.word.strip()]


def to_word_srt(transcript: Transcript) -> str:
    """One cue per timed word (a segment without timed words is one cue, as in `to_srt`)."""
    cues = [(w.start, w.end, w.word.strip()) for w in _word_cues(transcript)] or [
        (s.start, s.end, s.text) for s in transcript.segments if s.text
    ]
    return "\n".join(
        f"{i}\n{_clock(a, ',')} --> {_clock(b, ',')}\n{text}\n" for i, (a, b, text) in enumerate(cues, start=1)
    )


def to_word_vtt(transcript: Transcript) -> str:
    """WebVTT with one cue per timed word."""
    cues = [(w.start, w.end, w.word.strip()) for w in _word_cues(transcript)] or [
        (s.start, s.end, s.text) for s in transcript.segments if s.text
    ]
    return "WEBVTT\n\n" + "\n".join(f"{_clock(a, '.')} --> {_clock(b, '.')}\n{text}\n" for a, b, text in cues)


def to_txt(transcript: Transcript) -> str:
    return transcript.text + "\n"


def _segment_json(segment: Segment) -> dict:
    """A segment's start, end and text; its words only when they were timed, its decoding measures only when they
    were measured (a plain transcript stays as before)."""
    data = {k: v for k, v in asdict(segment).items() if v is not None}
    if not segment.words:
        del data["words"]
    return data


def to_json(transcript: Transcript) -> str:
    data = {
        "source": transcript.source,
        "language": transcript.language,
        "language_probability": transcript.language_probability,
        "duration": round(transcript.duration, 3),
        "text": transcript.text,
        "segments": [_segment_json(s) for s in transcript.segments],
        **transcript.extra,
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


WRITERS = {"txt": to_txt, "srt": to_srt, "vtt": to_vtt, "json": to_json}
WORD_WRITERS = {**WRITERS, "srt": to_word_srt, "vtt": to_word_vtt}  # --words: a cue per word


def parse_formats(value: str) -> list[str]:
    """'srt,txt' → ['srt', 'txt']; an unknown name is refused with the choices."""
    formats = [f.strip().lower() for f in value.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise StudioError(f"format '{value}': choose one or more of {', '.join(FORMATS)} (comma-separated)")
    return formats


OUT_SUFFIX = "-transcripts"  # a folder argument's transcripts go to a new folder beside it: talks/ → talks-transcripts/
FOREIGN_FIX = "choose another --out folder, or move the file away (transcribe replaces only transcripts it wrote)"


@dataclass(frozen=True)
class Destination:
    """Where one input file's transcripts go: `stem` plus each format's suffix (O/talks/day1 → O/talks/day1.srt)."""

    audio: Path
    stem: Path

    def path(self, fmt: str) -> Path:
        return self.stem.with_name(f"{self.stem.name}.{fmt}")


def _below(path: Path, folder: Path) -> bool:
    return os.path.commonpath([path, folder]) == str(folder)


def destinations(arguments: list[Path], files: list[Path], out: Path | None, formats: list[str]) -> list[Destination]:
    """One destination per audio file (`files`, found from the command's `arguments`), checked before any decoding:

    - with `out`, the transcripts mirror the inputs' paths below the folder the arguments share (`talks/ --out T`
      writes T/day1.txt, T/sub/day2.txt; `a/x.wav b/ --out T` writes T/a/x.txt, T/b/…);
    - without it, a file's go beside it (clip.wav → clip.txt) and a folder's into a new folder beside it
      (talks/ → talks-transcripts/), never among the inputs (a folder of clip.wav + clip.txt pairs is a dataset);
    - where two inputs would share a name (same.wav and same.mp3), each keeps its audio suffix: same.wav.txt;
    - an existing file is replaced only when we wrote it and nobody changed it since; anything else is refused in
      one line, and a folder that cannot be written is refused too."""
    given = [Path(os.path.abspath(a)) for a in arguments]
    shared = Path(os.path.commonpath([a if a.is_dir() else a.parent for a in given])) if out is not None else None
    planned, seen = [], set()
    for audio in files:
        path = Path(os.path.abspath(audio))
        if path.resolve() in seen:
            continue  # given twice (a file and its folder): transcribed once
        seen.add(path.resolve())
        folder = next((a for a in given if a.is_dir() and _below(path, a)), None)  # the folder argument it is from
        if shared is not None:
            base, root = shared, out
        elif folder is not None:
            base, root = folder, folder.parent / f"{folder.name}{OUT_SUFFIX}"
        else:
            base = root = path.parent
        planned.append(Destination(audio, Path(root) / path.relative_to(base).with_suffix("")))
    stems = Counter(d.stem for d in planned)
    planned = [d if stems[d.stem] == 1 else Destination(d.audio, d.stem.with_name(d.audio.name)) for d in planned]
    clashing = [d for d, n in Counter(d.stem for d in planned).items() if n > 1]
    if clashing:
        raise StudioError(f"two inputs would be written to {clashing[0]}.*; give --out a folder, or rename one")
    return _checked(planned, formats)


def planned_outputs(
    arguments: list[Path], files: list[Path], out: Path | None, formats: list[str]
) -> tuple[list[Path], list[Destination | None]]:
    """(the files to transcribe, where each one's transcripts go: None, printed), checked before any model loads:
    a file is never written over unless ours, and a file given twice (and in its folder) is done once."""
    if not formats:
        return files, [None] * len(files)
    targets = destinations(arguments, files, out, formats)
    return [t.audio for t in targets], targets


def detected_note(transcript: Transcript) -> str:
    """' (detected no, p=0.97)', or what was heard when no language could be detected (no speech in the file)."""
    if transcript.language_probability is None:
        return " (no speech heard: no language detected)"
    return f" (detected {transcript.language}, p={transcript.language_probability:.2f})"


def _checked(planned: list[Destination], formats: list[str]) -> list[Destination]:
    """The destinations, once every folder they need can be written (made now, before decoding) and no file they
    name is someone else's."""
    for folder in dict.fromkeys(d.stem.parent for d in planned):
        writable_folder(folder, "--out")  # without --out the fix is the same: give it a folder you can write to
    check_free([d.path(fmt) for d in planned for fmt in formats], FOREIGN_FIX)
    return planned


def write_transcripts(
    transcript: Transcript, destination: Destination, formats: list[str], words: bool = False
) -> list[Path]:
    """Write each format's file for `destination` (temp file + rename: never half a file; recorded as ours, so a
    later run may replace it); with `words`, SRT and WebVTT get a cue per word. Returns the paths written."""
    writers = WORD_WRITERS if words else WRITERS
    return [
        write_owned(destination.path(name), writers[name](transcript).encode("utf-8"), FOREIGN_FIX) for name in formats
    ]
