"""Hallucination probes: a fixed set of clips with no speech in them, generated, never downloaded.

A model that writes words here makes them up: Whisper's classic failures after fine-tuning are text on silence,
noise and music, and loops. Every clip is seeded, so the same probes are heard by the base model and every
checkpoint, and by every run. Each clip is PROBE_SECONDS long: inside any window a run trains with (≥ 1 s).
"""

from __future__ import annotations

import numpy as np

from core.audio.constants import SAMPLE_RATE

PROBE_SECONDS = 4.0
SEED = 1234


def _white(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal(n)


def pink_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """1/f noise: white noise shaped in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    frequencies = np.fft.rfftfreq(n)
    spectrum[1:] /= np.sqrt(frequencies[1:])
    spectrum[0] = 0
    return np.fft.irfft(spectrum, n)


def _peak(samples: np.ndarray, level: float) -> np.ndarray:
    return (level * samples / max(float(np.abs(samples).max()), 1e-9)).astype(np.float32)


def probe_clips(seconds: float = PROBE_SECONDS) -> list[tuple[str, np.ndarray]]:
    """(name, 16 kHz float32 samples) of every probe: silence, quiet and loud white and pink noise, mains hum,
    clicks, a tone sequence like a melody, and clipped noise."""
    rng = np.random.default_rng(SEED)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    clicks = np.zeros(n)
    clicks[rng.choice(n, size=int(6 * seconds), replace=False)] = 1.0
    notes = np.array([262, 294, 330, 349, 392, 440, 494, 523])  # a C major scale, one note per quarter second
    melody = np.sin(2 * np.pi * notes[(t * 4).astype(int) % len(notes)] * t) * (0.6 + 0.4 * np.cos(8 * np.pi * t))
    hum = np.sin(2 * np.pi * 50 * t) + 0.3 * np.sin(2 * np.pi * 150 * t)
    return [
        ("silence", np.zeros(n, np.float32)),
        ("white noise, quiet", _peak(_white(rng, n), 0.01)),
        ("white noise, loud", _peak(_white(rng, n), 0.5)),
        ("pink noise, quiet", _peak(pink_noise(rng, n), 0.02)),
        ("pink noise, loud", _peak(pink_noise(rng, n), 0.6)),
        ("mains hum", _peak(hum, 0.3)),
        ("clicks", _peak(clicks, 0.8)),
        ("tone melody", _peak(melody, 0.4)),
        ("clipped noise", np.clip(_peak(_white(rng, n), 3.0), -1.0, 1.0).astype(np.float32)),
    ]
