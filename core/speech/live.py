"""Live transcription: audio in, utterances cut by Silero's streaming voice detector, text out as it is spoken.

One engine serves the microphone page, Conversation's hands-free mode and `serve`'s realtime WebSocket. The audio
side (`push`) only runs the detector and queues work; a worker thread transcribes. Silero (core/audio/silero.py)
carries its LSTM state from chunk to chunk (32 ms each): speech starts at SPEECH_PROBABILITY and ends after
SILENCE_END_S below SILENCE_PROBABILITY.

The final text reuses what was decoded while the speaker paused: after TENTATIVE_CHUNKS quiet chunks (64 ms), the
utterance so far is decoded at once (a tentative final). When the quiet lasts SILENCE_END_S, the utterance ends and
the tentative's text is the final (nothing was said after it), ready when its decode is, so the wait for silence
and the decode overlap instead of adding up. When speech resumes, the tentative is only a partial and the
utterance goes on. While someone speaks, the utterance so far is also decoded about once a second (partial text).
Latency is measured from the moment the voice stopped to the final text. `snapshot()` returns a consistent copy
under a lock, for a page fragment to poll; a `listener` hears each event (the realtime WebSocket's).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from core.audio.constants import INT16_SCALE, SAMPLE_RATE, WINDOW_SECONDS
from core.audio.decode import resample
from core.audio.silero import FRAME_SAMPLES, SILENCE_PROBABILITY, SPEECH_PROBABILITY, SileroStream
from core.audio.vad import frame_db

log = logging.getLogger("studio")
_CLOSE = object()  # the sentinel that ends the worker thread
SILENCE_END_S = 0.3  # this much quiet ends an utterance (it is part of the end-of-speech latency)
PRE_ROLL_S = 0.2  # audio kept from before speech started, so the first consonant is not cut
PARTIAL_EVERY_S = 1.0
MIN_UTTERANCE_S = 0.25  # shorter bursts (a click, a cough) are dropped
TENTATIVE_CHUNKS = 2  # quiet chunks (2 × 32 ms) before the tentative final starts: a dip inside a word is shorter


@dataclass
class Utterance:
    text: str
    start_s: float  # seconds since the session started
    end_s: float
    latency_s: float  # end of speech → final text
    audio: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.float32))
    error: str = ""  # the model failed on this utterance (logged with its traceback); text is empty then
    index: int = 0  # the session's count of utterances started, from 0
    done_at: float = 0.0  # time.monotonic() when the final text was ready
    reused: bool = False  # the final is the decode started when the voice stopped (no second decode)


@dataclass(frozen=True)
class LiveEvent:
    """What a listener hears: `started` (speech began at `at_s`), `stopped` (it ended at `at_s`), `partial`
    (text so far) and `final` (the utterance's text, or `error`)."""

    kind: str
    index: int  # the utterance's
    at_s: float = 0.0  # seconds since the session started
    text: str = ""
    error: str = ""


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


@dataclass
class _Job:
    kind: str  # "partial", "tentative" or "final"
    audio: np.ndarray
    index: int
    span: tuple[float, float] = (0.0, 0.0)  # a final's start and end, seconds since the session started
    speech_end: float = 0.0  # time.monotonic() when the voice stopped
    adopted: bool = False  # a tentative that became the final
    stale: bool = False  # a tentative after which speech resumed: only a partial
    text: str | None = None  # the result, once decoded
    error: str = ""


class LiveSession:
    """Feed it audio with `push(samples, rate)`; read `snapshot()`. `transcribe(samples) -> str` is the model.
    With `detect=False` there is no voice detector: everything pushed is one utterance until `flush()` (the
    realtime API's manual turns)."""

    def __init__(
        self,
        transcribe: Callable[[np.ndarray], str],
        max_utterance_s: float = WINDOW_SECONDS,
        silence_end_s: float = SILENCE_END_S,
        listener: Callable[[LiveEvent], None] | None = None,
        detect: bool = True,
    ):
        self._transcribe, self._listener, self.detect = transcribe, listener, detect
        self.max_utterance = int(max_utterance_s * SAMPLE_RATE)
        self.silence_chunks = max(1, round(silence_end_s * SAMPLE_RATE / FRAME_SAMPLES))
        self._lock = threading.Lock()  # what snapshot() copies (the worker writes it)
        # the audio side's state: frames arrive on one thread, but a page flushes on another when the stream stops
        self._audio_lock = threading.RLock()
        self._jobs: queue.Queue = queue.Queue()
        self._silero = SileroStream()
        self._pending = np.zeros(0, np.float32)  # samples not yet a whole chunk
        self._pre_roll: list[np.ndarray] = []
        self._speech: list[np.ndarray] = []  # the utterance's chunks, pre-roll included
        self._voiced = 0  # chunks of the utterance up to its last speech chunk
        self._quiet = 0  # quiet chunks since then
        self._tentative: _Job | None = None
        self._samples_seen = 0
        self._speech_started = 0
        self._last_partial = 0.0
        self._busy, self._decode_s = False, 0.0  # the worker is decoding; how long a decode takes (moving average)
        self._count = 0  # utterances started
        self.partial = ""
        self.level_db = -100.0
        self.utterances: list[Utterance] = []
        self._closed = False
        self._worker = threading.Thread(target=self._work, daemon=True, name="live-transcription")
        self._worker.start()

    # --- audio side (the WebRTC thread or the WebSocket's loop: cheap, never waits on the model)
    def push(self, samples: np.ndarray, rate: int = SAMPLE_RATE) -> None:
        if self._closed:
            return  # a frame that arrives after the session closed (the browser still streaming) is dropped
        with self._audio_lock:
            self._push(samples, rate)

    def _push(self, samples: np.ndarray, rate: int) -> None:
        samples = resample(samples, rate) if rate != SAMPLE_RATE or samples.ndim > 1 else samples.astype(np.float32)
        self._pending = np.concatenate([self._pending, samples])
        usable = len(self._pending) // FRAME_SAMPLES * FRAME_SAMPLES
        chunks, self._pending = self._pending[:usable].reshape(-1, FRAME_SAMPLES), self._pending[usable:]
        if not len(chunks):
            return
        voiced = self._silero.push(chunks.reshape(-1)) if self.detect else np.ones(len(chunks), np.float32)
        self.level_db = float(frame_db(chunks[-1:])[0])
        for chunk, probability in zip(chunks, voiced):
            self._chunk(chunk, float(probability))

    def _chunk(self, chunk: np.ndarray, probability: float) -> None:
        self._samples_seen += FRAME_SAMPLES
        if not self._speech:
            self._pre_roll = (self._pre_roll + [chunk])[-max(1, round(PRE_ROLL_S * SAMPLE_RATE / FRAME_SAMPLES)) :]
            if probability >= SPEECH_PROBABILITY:
                self._start()
            return
        self._speech.append(chunk)
        if probability >= SILENCE_PROBABILITY:  # still speech (hysteresis: it ends only below the lower bar)
            self._voiced, self._quiet = len(self._speech), 0
            if self._tentative is not None:
                self._tentative.stale, self._tentative = True, None  # speech resumed: it is only a partial now
        else:
            self._quiet += 1
            long_enough = self._voiced * FRAME_SAMPLES >= MIN_UTTERANCE_S * SAMPLE_RATE
            if self._quiet == TENTATIVE_CHUNKS and long_enough:
                # the voice may have stopped: decode what was said while the silence is timed
                self._tentative = _Job("tentative", np.concatenate(self._speech), self._count - 1)
                self._jobs.put(self._tentative)
        if self._quiet >= self.silence_chunks or len(self._speech) * FRAME_SAMPLES >= self.max_utterance:
            self._finish()
        elif self._quiet == 0 and self._partial_due():
            self._last_partial = time.monotonic()
            self._jobs.put(_Job("partial", np.concatenate(self._speech), self._count - 1))

    def _partial_due(self) -> bool:
        """A partial is decoded only when the worker is idle, and at most half its time goes to partials (every
        PARTIAL_EVERY_S, or twice as long as a decode takes): when the voice stops, the tentative final rarely
        waits behind one."""
        every = max(PARTIAL_EVERY_S, 2 * self._decode_s)
        return not self._busy and self._jobs.empty() and time.monotonic() - self._last_partial >= every

    def _start(self) -> None:
        self._speech, self._pre_roll = self._pre_roll, []
        self._voiced, self._quiet, self._tentative = len(self._speech), 0, None
        self._speech_started = self._samples_seen - len(self._speech) * FRAME_SAMPLES
        self._last_partial = time.monotonic()
        self._count += 1
        self._emit(LiveEvent("started", self._count - 1, self._speech_started / SAMPLE_RATE))

    def _finish(self) -> None:
        audio = np.concatenate(self._speech)
        speech_end = time.monotonic() - self._quiet * FRAME_SAMPLES / SAMPLE_RATE  # when the voice actually stopped
        voiced, tentative = audio[: self._voiced * FRAME_SAMPLES], self._tentative
        self._speech, self._voiced, self._quiet, self._tentative = [], 0, 0, None
        if len(voiced) < MIN_UTTERANCE_S * SAMPLE_RATE:
            return
        start_s = self._speech_started / SAMPLE_RATE
        span = (start_s, start_s + len(voiced) / SAMPLE_RATE)
        self._emit(LiveEvent("stopped", self._count - 1, span[1]))
        if tentative is None:
            self._jobs.put(_Job("final", audio, self._count - 1, span, speech_end))
            return
        with self._lock:  # the tentative covers all that was said: it is the final, now or when decoded
            tentative.adopted, tentative.span, tentative.speech_end = True, span, speech_end
            decoded = tentative.text is not None
        if decoded:
            self._finalize(tentative)

    def flush(self) -> None:
        """End the current utterance now (push-to-talk release, a manual commit, or the stream stopped: words cut off
        by Stop or a dropped connection are an utterance, not a 'speaking…' that never ends)."""
        with self._audio_lock:
            if self._speech:
                if not self.detect:
                    self._voiced = len(self._speech)
                self._quiet = min(self._quiet, len(self._speech))
                self._finish()

    def clear(self) -> None:
        """Drop the utterance being spoken, unheard (the realtime API's buffer clear)."""
        with self._audio_lock:
            if self._tentative is not None:
                self._tentative.stale = True
            self._speech, self._pre_roll, self._voiced, self._quiet, self._tentative = [], [], 0, 0, None
            self._pending = np.zeros(0, np.float32)

    @property
    def in_utterance(self) -> bool:
        return bool(self._speech)

    def _emit(self, event: LiveEvent) -> None:
        if self._listener is not None:
            try:
                self._listener(event)
            except Exception:  # noqa: BLE001 (a listener's failure must not end the session; it is logged)
                log.exception("live session listener failed")

    # --- model side
    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _CLOSE:
                self._jobs.task_done()
                return
            try:
                if not (job.kind == "tentative" and job.stale):
                    text, error = self._decode(job.audio)
                    with self._lock:
                        job.text, job.error = text, error
                        final = job.kind == "final" or job.adopted
                        if not final:
                            self.partial = text
                    if final:
                        self._finalize(job)
                    else:
                        self._emit(LiveEvent("partial", job.index, text=text))
            finally:
                self._jobs.task_done()

    def _decode(self, audio: np.ndarray) -> tuple[str, str]:
        self._busy, started = True, time.monotonic()
        try:
            return self._transcribe(audio), ""
        except Exception as err:  # noqa: BLE001 (one bad utterance must not end the session; it is logged)
            log.exception("live transcription failed")
            return "", f"transcription failed ({type(err).__name__}: {str(err)[:120]}); see the server log"
        finally:
            took = time.monotonic() - started
            self._decode_s = took if not self._decode_s else 0.7 * self._decode_s + 0.3 * took
            self._busy = False

    def _finalize(self, job: _Job) -> None:
        now = time.monotonic()
        utterance = Utterance(
            job.text or "", *job.span, now - job.speech_end, job.audio, job.error, job.index, now, job.adopted
        )
        with self._lock:
            self.utterances.append(utterance)
            self.partial = ""
        self._emit(LiveEvent("final", job.index, job.span[1], utterance.text, utterance.error))

    def close(self, timeout: float = 5.0) -> None:
        """End the worker thread (after the utterance in hand): a closed session holds no thread and no model."""
        self._closed = True
        self._jobs.put(_CLOSE)
        self._worker.join(timeout)
        self._transcribe = None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def working(self) -> bool:
        """Whether text may still change: an utterance is being spoken or a transcription is queued or running."""
        return bool(self._speech) or self.transcribing

    @property
    def transcribing(self) -> bool:
        """Whether a transcription is queued or running: text the listener is still owed."""
        return bool(self._jobs.unfinished_tasks)

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
