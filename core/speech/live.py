"""Live microphone transcription: audio frames in, utterances cut by a voice-activity detector, text out.

The audio callback only appends samples and never waits on the model: a worker thread transcribes. While someone
speaks, the utterance so far is transcribed about once a second (partial text); when SILENCE_END_S of quiet ends
it, the whole utterance is transcribed once more (final text) and the latency from the end of speech to the final
text is recorded. `snapshot()` returns a consistent copy under a lock, for a page fragment to poll.

The detector is core/vad.py's, with the noise floor tracked as frames arrive, so it works on a quiet laptop
microphone and a noisy room alike.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from core.audio.constants import INT16_SCALE, SAMPLE_RATE, WINDOW_SECONDS
from core.audio.decode import resample
from core.audio.vad import ABSOLUTE_FLOOR_DB, FRAME, SPEECH_ABOVE_FLOOR_DB, frame_db

log = logging.getLogger("studio")
_CLOSE = object()  # the sentinel that ends the worker thread
SILENCE_END_S = 0.3  # this much quiet ends an utterance (it is part of the end-of-speech latency)
PRE_ROLL_S = 0.2  # audio kept from before speech started, so the first consonant is not cut
PARTIAL_EVERY_S = 1.0
MIN_UTTERANCE_S = 0.25  # shorter bursts (a click, a cough) are dropped
# The noise floor is a moving average over quiet frames: it drops 30% of the way to a quieter frame at once (a
# closing door ends), and rises 2% per 20 ms frame (≈ 1 s to adapt to a louder room, but not to a long vowel).
FLOOR_FALL = 0.3
FLOOR_RISE = 0.02


@dataclass
class Utterance:
    text: str
    start_s: float  # seconds since the session started
    end_s: float
    latency_s: float  # end of speech → final text
    audio: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.float32))
    error: str = ""  # the model failed on this utterance (logged with its traceback); text is empty then


@dataclass(frozen=True)
class LiveSnapshot:
    """What a page fragment shows of a live session, copied under its lock."""

    partial: str  # the text of the utterance still being spoken
    utterances: list[Utterance]  # the finished ones, oldest first
    level_db: float  # the input level, dBFS
    speaking: bool

    @property
    def shown_level(self) -> str:
        return f"level {self.level_db:.0f} dBFS · {'speaking…' if self.speaking else 'quiet'}"


def frame_samples(frame) -> tuple[np.ndarray, int]:
    """(float32 samples shaped (samples, channels), sample rate) from an audio frame as WebRTC (PyAV) delivers it:
    packed formats arrive as (1, samples × channels), planar ones as (channels, samples), often as int16."""
    samples = frame.to_ndarray()
    channels = len(frame.layout.channels)
    samples = samples.reshape(-1, channels) if samples.shape[0] == 1 else samples.T
    if samples.dtype.kind == "i":
        samples = samples.astype(np.float32) / INT16_SCALE
    return samples, frame.sample_rate


class LiveSession:
    """Feed it audio with `push(samples, rate)`; read `snapshot()`. `transcribe(samples) -> str` is the model."""

    def __init__(self, transcribe, max_utterance_s: float = WINDOW_SECONDS, silence_end_s: float = SILENCE_END_S):
        self._transcribe = transcribe
        self.max_utterance = int(max_utterance_s * SAMPLE_RATE)
        self.silence_frames = max(1, int(silence_end_s * SAMPLE_RATE / FRAME))
        self._lock = threading.Lock()
        self._jobs: queue.Queue = queue.Queue()
        self._pending = np.zeros(0, np.float32)  # samples not yet cut into frames
        self._pre_roll: list[np.ndarray] = []
        self._speech: list[np.ndarray] = []
        self._quiet_frames = 0
        self._floor_db = -60.0
        self._samples_seen = 0
        self._speech_started = 0
        self._last_partial = 0.0
        self.partial = ""
        self.level_db = -100.0
        self.utterances: list[Utterance] = []
        self._closed = False
        self._worker = threading.Thread(target=self._work, daemon=True, name="live-transcription")
        self._worker.start()

    # --- audio side (called from the WebRTC thread: cheap, never blocks on the model)
    def push(self, samples: np.ndarray, rate: int = SAMPLE_RATE) -> None:
        if self._closed:
            return  # a frame that arrives after the session closed (the browser still streaming) is dropped
        samples = resample(samples, rate) if rate != SAMPLE_RATE or samples.ndim > 1 else samples.astype(np.float32)
        self._pending = np.concatenate([self._pending, samples])
        usable = len(self._pending) // FRAME * FRAME
        frames, self._pending = self._pending[:usable].reshape(-1, FRAME), self._pending[usable:]
        for frame in frames:
            self._frame(frame)

    def _frame(self, frame: np.ndarray) -> None:
        db = float(frame_db(frame))
        self.level_db = db
        self._samples_seen += FRAME
        speech = db > max(self._floor_db + SPEECH_ABOVE_FLOOR_DB, ABSOLUTE_FLOOR_DB)
        if not speech:
            # the floor follows quiet frames quickly downwards and slowly upwards
            rate = FLOOR_FALL if db < self._floor_db else FLOOR_RISE
            self._floor_db += rate * (db - self._floor_db)
        if not self._speech:
            self._pre_roll = (self._pre_roll + [frame])[-int(PRE_ROLL_S * SAMPLE_RATE / FRAME) :]
            if speech:
                self._speech = self._pre_roll + []
                self._pre_roll = []
                self._quiet_frames = 0
                self._speech_started = self._samples_seen - len(self._speech) * FRAME
                self._last_partial = time.monotonic()
            return
        self._speech.append(frame)
        self._quiet_frames = 0 if speech else self._quiet_frames + 1
        length = len(self._speech) * FRAME
        if self._quiet_frames >= self.silence_frames or length >= self.max_utterance:
            self._finish()
        elif (
            time.monotonic() - self._last_partial >= PARTIAL_EVERY_S
            and self._jobs.empty()
            and self._quiet_frames == 0  # not in a pause: the final may be due any moment, keep the model free for it
        ):
            self._last_partial = time.monotonic()
            self._jobs.put(("partial", np.concatenate(self._speech), None, None))

    def _finish(self) -> None:
        audio = np.concatenate(self._speech)
        speech_end = time.monotonic() - self._quiet_frames * FRAME / SAMPLE_RATE  # when the voice actually stopped
        trailing = self._quiet_frames * FRAME
        self._speech, self._quiet_frames = [], 0
        voiced = audio[: len(audio) - trailing] if trailing else audio
        if len(voiced) < MIN_UTTERANCE_S * SAMPLE_RATE:
            return
        start_s = self._speech_started / SAMPLE_RATE
        self._jobs.put(("final", audio, (start_s, start_s + len(voiced) / SAMPLE_RATE), speech_end))

    def flush(self) -> None:
        """End the current utterance now (push-to-talk release, or the stream stopped)."""
        if self._speech:
            self._quiet_frames = min(self._quiet_frames, len(self._speech))
            self._finish()

    # --- model side
    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _CLOSE:
                self._jobs.task_done()
                return
            kind, audio, span, speech_end = job
            text, error = "", ""
            try:
                text = self._transcribe(audio)
            except Exception as err:  # noqa: BLE001 (one bad utterance must not end the session; it is logged)
                log.exception("live transcription failed")
                error = f"transcription failed ({type(err).__name__}: {str(err)[:120]}); see the server log"
            with self._lock:
                if kind == "partial":
                    self.partial = text
                else:
                    latency = time.monotonic() - speech_end
                    self.utterances.append(Utterance(text, span[0], span[1], latency, audio, error))
                    self.partial = ""
            self._jobs.task_done()

    def close(self, timeout: float = 5.0) -> None:
        """End the worker thread (after the utterance in hand): a closed session holds no thread and no model."""
        self._closed = True
        self._jobs.put(_CLOSE)
        self._worker.join(timeout)
        self._transcribe = None

    @property
    def closed(self) -> bool:
        return self._closed

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Block until every queued transcription is done (tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        while self._jobs.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def snapshot(self) -> LiveSnapshot:
        with self._lock:
            return LiveSnapshot(self.partial, list(self.utterances), self.level_db, bool(self._speech))

    def take_finals(self, already: int) -> list[Utterance]:
        """Utterances after the first `already` (what a poller has not handled yet)."""
        with self._lock:
            return list(self.utterances[already:])
