"""Audio to label: every clip of a source in one stable order, transcripts or not.

Pseudo-labelling reads what prepare reads, and audio alone: a folder in the `audiofolder`, Common Voice or FLEURS
layout gives its rows (every split, in order); any other folder gives every audio file under it, sorted by path, with
the `.txt` beside a file (when there is one) kept as its reference transcript, to measure the labels, never to train
on; a Hub dataset id gives the rows of its splits. The order is the same every time it is read: shards are cut by
it and a resumed run skips by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.audio.decode import AUDIO_EXTENSIONS
from core.data.examples import Example
from core.data.folders import FolderSource, detect_layout, read_text_file
from core.data.sources import SourceSpec, open_source
from core.errors import StudioError
from core.languages import Language

LISTED_LAYOUTS = ("audiofolder", "common_voice", "fleurs")  # layouts whose rows a metadata file lists


@dataclass(frozen=True)
class UnlabelledSource:
    """What was found to label: the source described (for the label set's record) and its clips in order."""

    description: dict
    examples: list[Example]


def unlabelled_audio(source: str, language: Language, config: str | None = None) -> UnlabelledSource:
    """The clips of `source` (a folder or a Hub dataset id) in a stable order; StudioError naming the problem when
    there is nothing to label (no such folder, a folder without audio)."""
    path = Path(source).expanduser()
    if path.is_file():
        raise StudioError(f"{source}: a file; give the folder that holds the audio to label")
    if not path.is_dir():
        hub = open_source(source, language, SourceSpec(config=config))
        examples = [e for split in hub.splits() for e in hub.examples(split)]
        return UnlabelledSource(hub.describe(), examples)
    root = path.resolve()
    layout = _layout(root)
    if layout in LISTED_LAYOUTS:
        folder = FolderSource(root)
        examples = [e for split in folder.splits() for e in folder.examples(split)]
        return UnlabelledSource({**folder.describe(), "text": "reference only"}, examples)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    files = [p for p in files if not any(part.startswith(".") for part in p.relative_to(root).parts)]
    if not files:
        raise StudioError(
            f"{root}: no audio files in it (looked for {', '.join(AUDIO_EXTENSIONS)}); give a folder of audio"
        )
    return UnlabelledSource(
        {"kind": "folder", "path": str(root), "layout": "audio"}, [_audio_example(root, p) for p in files]
    )


def _layout(root: Path) -> str | None:
    try:
        return detect_layout(root)
    except StudioError:
        return None  # audio alone (or nothing): listed file by file


def _audio_example(root: Path, audio: Path) -> Example:
    rel = audio.relative_to(root).as_posix()
    transcript = audio.with_suffix(".txt")
    reference = read_text_file(transcript).strip() if transcript.is_file() else ""
    return Example(id=rel.rsplit(".", 1)[0], audio=audio, text=reference, audio_name=rel)
