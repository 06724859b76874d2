"""Where the speech is: the voice detectors shared by file transcription and the live microphone.

Two detectors decide, frame by frame, what is speech:
- `energy`: a 20 ms frame is speech when it is SPEECH_ABOVE_FLOOR_DB above the noise floor and above
  ABSOLUTE_FLOOR_DB. For a whole file the floor is the 10th percentile of frame levels; the live microphone
  (core/speech/live.py) tracks it as frames arrive. Free, and exact on clean audio;
- `silero` (core/audio/silero.py): a neural detector on 32 ms chunks that keeps telling speech from noise when
  noise is loud enough to lift the energy floor (BENCHMARKS.md measures both, clean and in noise).
Either way, the voiced frames become regions the same way: pauses shorter than MIN_GAP_S bridged, PAD_S kept on
each side. Cutting long audio at pauses, one stretch of speech per window, is what lets a model trained on single
utterances transcribe a recording: a window that starts mid-word is where errors come from. `speech_windows` packs
those stretches into the model's windows for file transcription.
"""

from __future__ import annotations

import numpy as np

from core.audio import silero
from core.audio.constants import SAMPLE_RATE
from core.errors import StudioError

FRAME = 320  # samples in 20 ms at 16 kHz: the detector's unit
QUIET_SEARCH_S = 1.0  # a window longer than the model's is cut at the quietest 20 ms within this much of its end
SPEECH_ABOVE_FLOOR_DB = 12.0
ABSOLUTE_FLOOR_DB = -50.0
MIN_GAP_S = 0.3  # shorter pauses stay inside one region (between words, not utterances)
PAD_S = 0.25  # kept around each region: quiet onsets and final consonants sit below the threshold
DETECTORS = ("silero", "energy")


def frame_db(frames: np.ndarray) -> np.ndarray:
    """Level in dBFS of each row of `frames` (or of one frame)."""
    return 10 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=-1) + 1e-12)


def voiced_frames(samples: np.ndarray, detector: str = "energy") -> tuple[np.ndarray, int]:
    """(whether each frame is speech, samples per frame) by the named detector."""
    if detector == "silero":
        return silero.speech_chunks(silero.speech_probabilities(samples)), silero.FRAME_SAMPLES
    if detector != "energy":
        raise StudioError(f"voice detector '{detector}': choose {' or '.join(DETECTORS)}")
    count = len(samples) // FRAME
    if count == 0:
        return np.zeros(0, bool), FRAME
    levels = frame_db(samples[: count * FRAME].reshape(count, FRAME))
    floor = np.percentile(levels, 10)
    return levels > max(floor + SPEECH_ABOVE_FLOOR_DB, ABSOLUTE_FLOOR_DB), FRAME


def speech_regions(
    samples: np.ndarray, min_gap_s: float = MIN_GAP_S, pad_s: float = PAD_S, detector: str = "energy"
) -> list[tuple[int, int]]:
    """(start, end) sample ranges that hold speech, padded, with pauses shorter than `min_gap_s` bridged."""
    voiced, frame = voiced_frames(samples, detector)
    regions: list[list[int]] = []
    gap = int(min_gap_s * SAMPLE_RATE / frame)
    for index in np.flatnonzero(voiced):
        if regions and index - regions[-1][1] <= gap:
            regions[-1][1] = index + 1
        else:
            regions.append([index, index + 1])
    pad = int(pad_s * SAMPLE_RATE)
    padded, previous_end = [], 0
    for start, end in regions:
        begin = max(previous_end, start * frame - pad)  # padding never reaches back into the previous region
        previous_end = min(len(samples), end * frame + pad)
        padded.append((begin, previous_end))
    return padded


def split_windows(samples: np.ndarray, window: int) -> list[tuple[int, int]]:
    """(start, end) sample ranges no longer than `window`, cut at the quietest 20 ms near each window's end."""
    spans, start, total = [], 0, len(samples)
    search = int(QUIET_SEARCH_S * SAMPLE_RATE)
    while start < total:
        end = min(start + window, total)
        if end < total:
            lo = max(start + window // 2, end - search)
            region = samples[lo:end]
            frames = len(region) // FRAME
            if frames > 1:
                energy = (region[: frames * FRAME].reshape(frames, FRAME) ** 2).mean(axis=1)
                end = lo + int(np.argmin(energy)) * FRAME + FRAME // 2
        spans.append((start, end))
        start = end
    return spans


def speech_windows(samples: np.ndarray, window: int, detector: str = "energy") -> list[tuple[int, int]]:
    """Windows over the speech: regions from the VAD packed whole, in order, into windows of at most `window`
    samples (a window runs from its first region's start to its last region's end, pauses between them included);
    a region longer than a window is cut at its quietest moments (split_windows). Silence before, after and between
    windows is never decoded. Audio that fits in one window is decoded whole, as the model saw its training clips,
    when the detector hears speech in it (Whisper reads "you" into digital silence, confidently)."""
    if len(samples) <= window:
        return [(0, len(samples))] if len(samples) and speech_regions(samples, detector=detector) else []
    windows: list[tuple[int, int]] = []
    current: list[int] | None = None
    for start, end in speech_regions(samples, detector=detector):
        if current is not None and end - current[0] <= window:
            current[1] = end  # the region fits in the open window: pack it
            continue
        if current is not None:
            windows.append((current[0], current[1]))
            current = None
        if end - start > window:
            windows += [(start + s, start + e) for s, e in split_windows(samples[start:end], window)]
        else:
            current = [start, end]
    if current is not None:
        windows.append((current[0], current[1]))
    return windows
