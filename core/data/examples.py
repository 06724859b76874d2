"""The one shape every data source yields: an `Example` (id, audio, text, duration) per utterance, per split.

Audio stays undecoded (a path or the file's bytes) until someone needs the samples, so previews and streaming
sources never hold more than the rows in hand. Split names are normalised to `train`, `validation` and `test`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from core.audio.decode import load_audio

SPLITS = ("train", "validation", "test")
_SPLIT_ALIASES = {
    "train": "train",
    "dev": "validation",
    "valid": "validation",
    "validation": "validation",
    "val": "validation",
    "test": "test",
    "eval": "test",
}


def normalize_split(name: str) -> str | None:
    """`dev` → `validation` and so on; None for names that are no split (`other`, `invalidated`)."""
    return _SPLIT_ALIASES.get(name.lower())


@dataclass
class Example:
    id: str
    audio: Path | bytes  # undecoded: a file path or the encoded file's bytes
    text: str
    duration: float | None = None  # seconds, when the source knows it before decoding
    audio_name: str = ""  # how errors name the audio (file name inside the source)
    speaker: str = ""  # who speaks, when the source says (a metadata column): prepare can split by it
    segments: tuple = ()  # ((start s, end s, text), …) when the source knows them: timestamped labels use them

    def load_audio(self) -> np.ndarray:
        """16 kHz mono float32; raises StudioError naming the file when it cannot be decoded."""
        return load_audio(self.audio, name=self.audio_name or self.id)


class Source(Protocol):
    """Anything that yields examples per split: a Hub dataset, a local folder, a synthetic set."""

    def describe(self) -> dict:
        """What this source is, for manifests and fingerprints (JSON-serialisable, no secrets)."""
        ...

    def splits(self) -> list[str]: ...

    def examples(self, split: str) -> Iterator[Example]: ...
