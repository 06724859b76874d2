"""Audio in: decode any common format from a path or bytes to 16 kHz mono float32.

soundfile (libsndfile) reads wav, flac, ogg/vorbis, ogg/opus and mp3; PyAV (FFmpeg) reads what it cannot (webm,
m4a/aac, odd wavs). Channels are averaged to mono and soxr resamples to Whisper's 16 kHz. torchcodec is never used:
datasets are loaded with `Audio(decode=False)` and their bytes come here.

`load_audio` decodes a clip whole. A recording of hours goes through `audio_pieces` instead: PIECE_SECONDS at a
time, resampled by one soxr stream (bit-identical to resampling the whole), so memory stays bounded whatever the
length; `audio_duration` reads the length from the header without decoding (prepare drops a too-long clip unread),
and is None when the header holds none (a streamed FLAC): that length is counted while decoding.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import soxr

from core.audio.constants import SAMPLE_RATE
from core.errors import StudioError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".webm", ".m4a", ".mp4", ".aac", ".wma")

PIECE_SECONDS = 600  # a long file is decoded 10 minutes at a time: 9.6 M samples, 37 MiB of float32 at 16 kHz
MAX_AUDIO_HOURS = 24  # the longest file transcribed (a day's recording); longer is refused, not decoded
DECODE_ERRORS = (av.error.FFmpegError, ValueError, IndexError, OSError)  # what a damaged or odd file raises in PyAV

AudioSource = str | os.PathLike | bytes


def _label(source: AudioSource, name: str | None) -> str:
    return name or (str(source) if not isinstance(source, bytes) else "audio bytes")


def _check_source(source: AudioSource, label: str) -> None:
    """Refuse a missing or empty file (or empty bytes) before any decoder sees it."""
    if isinstance(source, bytes):
        if not source:
            raise StudioError(f"{label}: the audio is empty (0 bytes); record or choose the file again")
    else:
        path = Path(source)
        if not path.is_file():
            raise StudioError(f"{label}: no such audio file; check the path")
        if path.stat().st_size == 0:
            raise StudioError(f"{label}: the file is empty (0 bytes); record or export it again, or leave it out")


def _undecodable(label: str, err: Exception) -> StudioError:
    return StudioError(
        f"{label}: cannot decode the audio ({type(err).__name__}): it is not audio, or damaged; convert it to "
        f"wav, flac or mp3, or leave it out"
    )


def load_audio(source: AudioSource, name: str | None = None, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode `source` (a path or the file's bytes) to mono float32 at `sample_rate`; `name` labels errors."""
    label = _label(source, name)
    _check_source(source, label)
    try:
        samples, rate = _decode_soundfile(source)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):  # a format libsndfile does not read
        try:
            samples, rate = _decode_pyav(source)
        except DECODE_ERRORS as err:
            raise _undecodable(label, err) from None
    if samples.size == 0:
        raise StudioError(f"{label}: the audio holds no samples; record or export it again, or leave it out")
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
    rate, blocks = _pyav_blocks(source, None)
    chunks = list(blocks)
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    return samples, rate


ABSURD_AMPLITUDE = 1e4  # float audio lives near ±1.0; samples 80 dB beyond full scale are damage (1e30 was seen)


def finite_audio_problem(samples: np.ndarray) -> str | None:
    """What is wrong with samples that are not all finite, plausible numbers (NaN, ±inf or 1e30, from a damaged
    float file or a broken recorder), or None when they are: a model given them writes nonsense (`!!!!!!!!`), and a
    model trained on them turns every weight into NaN."""
    finite = np.isfinite(samples) & (np.abs(np.nan_to_num(samples)) <= ABSURD_AMPLITUDE)
    if finite.all():
        return None
    bad = int(finite.size - np.count_nonzero(finite))
    return (
        f"the audio holds invalid (NaN/inf) samples, or absurdly large ones ({bad:,} of {finite.size:,}): the file "
        f"is damaged; export or record it again"
    )


# A header claiming more than a year is a placeholder, not a length: a streaming encoder leaves a FLAC's
# total_samples 0, which libsndfile reports as 2^63 - 1 frames (576,460,752,303,424 s at 16 kHz).
BELIEVED_HEADER_S = 365 * 24 * 3600


def _believed(seconds: float) -> float | None:
    return seconds if 0 < seconds <= BELIEVED_HEADER_S else None


def audio_duration(source: AudioSource) -> float | None:
    """Seconds of audio according to the file's header, without decoding it; None when no header says, when it
    says something unbelievable (no length, or over BELIEVED_HEADER_S), or when the file cannot be opened: then the
    length is unknown, and is counted while decoding (`audio_pieces`, prepare's row check, the server's limit). A
    header can be off by a frame or so (mp3 padding)."""
    data = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        info = sf.info(data)
        if info.frames > 0 and info.samplerate > 0 and _believed(info.frames / info.samplerate):
            return info.frames / info.samplerate
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        pass  # a format libsndfile does not read (or a header without a length): ask FFmpeg
    if isinstance(data, io.BytesIO):
        data.seek(0)
    try:
        with av.open(data if isinstance(data, io.BytesIO) else str(data)) as container:
            if container.duration and container.duration > 0:
                return _believed(container.duration / av.time_base)
            streams = container.streams.audio
            if streams and streams[0].duration and streams[0].time_base:
                return _believed(float(streams[0].duration * streams[0].time_base))
    except DECODE_ERRORS:
        pass
    return None


def audio_pieces(
    source: AudioSource, name: str | None = None, piece_seconds: float | None = None
) -> Iterator[np.ndarray]:
    """Decode `source` as consecutive pieces of 16 kHz mono float32, each about `piece_seconds` long (default
    PIECE_SECONDS): joined, they equal `load_audio(source)`, but only a piece or two are in memory at a time. A
    file longer than MAX_AUDIO_HOURS is refused, by its header before decoding, else as soon as decoding passes it."""
    label = _label(source, name)
    _check_source(source, label)
    limit_s = MAX_AUDIO_HOURS * 3600
    seconds = audio_duration(source)
    if seconds is not None and seconds > limit_s:
        raise _too_long(label, seconds)
    rate, blocks = _open_blocks(source, piece_seconds or PIECE_SECONDS, label)
    stream = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ") if rate != SAMPLE_RATE else None

    def piece(block: np.ndarray, last: bool) -> np.ndarray:
        resampled = stream.resample_chunk(block, last=last) if stream else block
        return np.ascontiguousarray(resampled, dtype=np.float32)

    decoded, previous = 0, None
    try:
        for block in blocks:  # one block behind: the last one is resampled with the stream's tail, in one piece
            decoded += len(block)
            if decoded > limit_s * rate:
                raise _too_long(label, decoded / rate)
            if previous is not None:
                yield piece(previous, last=False)
            previous = block
    except (sf.LibsndfileError, *DECODE_ERRORS) as err:  # damaged part-way through
        raise _undecodable(label, err) from None
    if not decoded:
        raise StudioError(f"{label}: the audio holds no samples; record or export it again, or leave it out")
    yield piece(previous, last=True)


def _too_long(label: str, seconds: float) -> StudioError:
    return StudioError(
        f"{label}: {seconds / 3600:.1f} hours of audio, over the {MAX_AUDIO_HOURS}-hour limit for one file; cut it "
        f"into shorter files (ffmpeg -i FILE -f segment -segment_time 3600 part%03d.flac)"
    )


def _open_blocks(source: AudioSource, seconds: float, label: str) -> tuple[int, Iterator[np.ndarray]]:
    """(native rate, mono blocks) from libsndfile, else (as load_audio falls back) from FFmpeg; the first block is
    read here, so a file libsndfile opens but cannot read still goes to FFmpeg."""
    try:
        rate, blocks = _soundfile_blocks(source, seconds)
        first = next(blocks, None)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):  # a format libsndfile does not read
        try:
            rate, blocks = _pyav_blocks(source, seconds)
            first = next(blocks, None)
        except DECODE_ERRORS as err:
            raise _undecodable(label, err) from None
    return rate, chain([first] if first is not None else [], blocks)


def _soundfile_blocks(source: AudioSource, seconds: float) -> tuple[int, Iterator[np.ndarray]]:
    """(native rate, mono float32 blocks of `seconds`); opening raises at once when libsndfile cannot read it."""
    sound = sf.SoundFile(io.BytesIO(source) if isinstance(source, bytes) else source)

    def blocks() -> Iterator[np.ndarray]:
        with sound:
            for block in sound.blocks(blocksize=int(seconds * sound.samplerate), dtype="float32", always_2d=True):
                yield block.mean(axis=1)

    return sound.samplerate, blocks()


def _pyav_blocks(source: AudioSource, seconds: float | None) -> tuple[int, Iterator[np.ndarray]]:
    """(native rate, mono float32 blocks of about `seconds`, or one block with None) through FFmpeg, for what
    libsndfile cannot read; opening raises at once when FFmpeg cannot read it either."""
    container = av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source))
    if not container.streams.audio:
        container.close()
        raise ValueError("no audio stream")
    stream = container.streams.audio[0]
    rate = stream.codec_context.sample_rate or SAMPLE_RATE
    size = int(seconds * rate) if seconds else None

    def blocks() -> Iterator[np.ndarray]:
        with container:
            # Convert sample format and channel layout only; soxr does the rate conversion.
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            held: list[np.ndarray] = []
            count = 0
            for frame in chain(container.decode(stream), [None]):  # None flushes the resampler
                for out in resampler.resample(frame):
                    held.append(out.to_ndarray().reshape(-1))
                    count += len(held[-1])
                    if size and count >= size:
                        yield np.concatenate(held)
                        held, count = [], 0
            if held:
                yield np.concatenate(held)

    return rate, blocks()


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
