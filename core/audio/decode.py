"""Audio in: decode any common format from a path or bytes to 16 kHz mono float32.

soundfile (libsndfile) reads wav, flac, ogg/vorbis, ogg/opus and mp3; PyAV (FFmpeg) reads what it cannot (webm,
m4a/aac, odd wavs). Channels are averaged to mono and soxr resamples to Whisper's 16 kHz. torchcodec is never used:
datasets are loaded with `Audio(decode=False)` and their bytes come here.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import soxr

from core.errors import StudioError

SAMPLE_RATE = 16000  # Hz: what every Whisper feature extractor expects
N_FFT = 400  # samples per STFT window: 25 ms
HOP_LENGTH = 160  # samples between mel frames: 10 ms, so 100 frames per second
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH  # 100 mel frames; the encoder's stride-2 convolution halves them
INT16_SCALE = 32767  # 16-bit PCM full scale: float ±1.0 ↔ int16 ±32767 (stored test audio, WebRTC frames)
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".webm", ".m4a", ".mp4", ".aac", ".wma")

AudioSource = str | os.PathLike | bytes


def load_audio(source: AudioSource, name: str | None = None, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode `source` (a path or the file's bytes) to mono float32 at `sample_rate`; `name` labels errors."""
    label = name or (str(source) if not isinstance(source, bytes) else "audio bytes")
    if isinstance(source, bytes):
        if not source:
            raise StudioError(f"{label}: the audio is empty (0 bytes); record or choose the file again")
    else:
        path = Path(source)
        if not path.is_file():
            raise StudioError(f"{label}: no such audio file; check the path")
        if path.stat().st_size == 0:
            raise StudioError(f"{label}: the file is empty (0 bytes); replace it or remove it from the dataset")
    try:
        samples, rate = _decode_soundfile(source)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):  # a format libsndfile does not read
        try:
            samples, rate = _decode_pyav(source)
        except (av.error.FFmpegError, ValueError, IndexError, OSError) as err:
            raise StudioError(
                f"{label}: cannot decode the audio ({type(err).__name__}); "
                f"convert it to wav/flac/mp3 or remove it from the dataset"
            ) from None
    if samples.size == 0:
        raise StudioError(f"{label}: the audio holds no samples; replace it or remove it from the dataset")
    return resample(samples, rate, sample_rate)


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 at `target` Hz (soxr's high-quality resampler)."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if rate != target:
        samples = soxr.resample(samples, rate, target, quality="HQ")
    return np.ascontiguousarray(samples, dtype=np.float32)


def _decode_soundfile(source: AudioSource) -> tuple[np.ndarray, int]:
    data = io.BytesIO(source) if isinstance(source, bytes) else source
    samples, rate = sf.read(data, dtype="float32", always_2d=True)
    return samples.mean(axis=1), rate


def _decode_pyav(source: AudioSource) -> tuple[np.ndarray, int]:
    data = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    with av.open(data) as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or SAMPLE_RATE
        # Convert sample format and channel layout only; soxr does the rate conversion.
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks = []
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    return samples, rate


def audio_files_in(paths: list[Path]) -> list[Path]:
    """Files as given, and every audio file under each folder (sorted); a path that does not exist is refused."""
    found = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        elif path.exists():
            found.append(path)
        else:
            raise StudioError(f"{path}: no such audio file or folder; check the path")
    if not found:
        raise StudioError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) in {', '.join(map(str, paths))}")
    return found
