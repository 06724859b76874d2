"""No-speech rows: generated clips with nothing said in them (silence, quiet white and pink noise, mains hum) and an
empty transcript, mixed into the training split so a fine-tune learns to write nothing where nobody speaks.

Whisper fine-tuned only on speech learns that every window holds words, and writes some on silence and noise (the
hallucination probes of core/audio/probes.py count them). A `no_speech_fraction` of the training rows are these
clips; their labels are Whisper's for an empty transcript: the prefix, then <|endoftext|>. They are spread evenly
through the split (one after every few real rows), so `max_train_samples` keeps its share too, and only the training
split gets them: validation and test stay the user's speech. Every clip is seeded by (seed, index): the same prepare
gives the same clips, and they are never the probes' (another generator, other levels and lengths).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.audio.constants import SAMPLE_RATE
from core.audio.probes import pink_noise
from core.data.examples import Example

NOISE_KINDS = ("silence", "white noise", "pink noise", "hum")
SECONDS = (1.0, 10.0)  # clip lengths, uniform: as long as short utterances (capped by the model's window)
NOISE_PEAK = (0.002, 0.03)  # −54 to −30 dBFS: a quiet room or a quiet line, not a loud one
HUM_HZ = (50, 60)  # mains frequency
ID_PREFIX = "no-speech-"


def no_speech_clip(index: int, seed: int, max_seconds: float) -> tuple[str, np.ndarray]:
    """(kind, 16 kHz float32 samples) of clip `index`: the kinds in turn, length and level seeded."""
    rng = np.random.default_rng([abs(seed), index])
    kind = NOISE_KINDS[index % len(NOISE_KINDS)]
    longest = max(SECONDS[0], min(SECONDS[1], max_seconds))
    n = int(rng.uniform(SECONDS[0], longest) * SAMPLE_RATE)
    if kind == "silence":
        return kind, np.zeros(n, np.float32)
    if kind == "hum":
        t = np.arange(n) / SAMPLE_RATE
        f = rng.choice(HUM_HZ)
        samples = np.sin(2 * np.pi * f * t) + 0.3 * np.sin(2 * np.pi * 3 * f * t) + 0.1 * rng.standard_normal(n)
    else:
        samples = rng.standard_normal(n) if kind == "white noise" else pink_noise(rng, n)
    peak = rng.uniform(*NOISE_PEAK)
    return kind, (peak * samples / max(float(np.abs(samples).max()), 1e-9)).astype(np.float32)


@dataclass
class NoSpeechMixer:
    """Tops a training writer up with no-speech rows so they stay `fraction` of the rows written so far."""

    fraction: float
    seed: int
    max_seconds: float  # the model's window
    label_ids: list[int]  # the prefix and <|endoftext|>: an empty transcript
    added: int = 0
    kinds: dict = field(default_factory=dict)  # kind → rows, for the manifest

    def due(self, real_rows: int) -> int:
        """No-speech rows owed after `real_rows` real ones: n / (real + n) = fraction, rounded down."""
        return int(real_rows * self.fraction / (1 - self.fraction) + 1e-9) - self.added

    def top_up(self, writer, real_rows: int) -> None:
        for _ in range(self.due(real_rows)):
            kind, samples = no_speech_clip(self.added, self.seed, self.max_seconds)
            example = Example(
                id=f"{ID_PREFIX}{self.added:06d}", audio=b"", text="", duration=len(samples) / SAMPLE_RATE
            )
            writer.add(example, samples, list(self.label_ids))  # generated: `audio` is never decoded
            self.added += 1
            self.kinds[kind] = self.kinds.get(kind, 0) + 1

    def counts(self) -> dict:
        return {"rows": self.added, "fraction": self.fraction, "kinds": dict(self.kinds)}
