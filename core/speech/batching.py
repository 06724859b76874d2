"""Dynamic batching: one engine loop per loaded model, where the windows of every request meet.

A request (a call of `serve`, an utterance of a realtime session, one file of `transcribe` over many) runs the
decoding policy (core/speech/decoding.py) on its own thread as before, through a `BatchedEngine`: each model call
(encode, decode, align, detect_language) becomes a work item on the model's `EngineLoop`, and the thread waits for
its answer. The loop takes the first item waiting and whatever else arrives within `wait_s` (a few ms), up to
`batch` windows, and runs them together: the encodes of one shape in one call, the decodes that share a prompt,
settings (temperature, beams, token cap) and shape in one call each; word alignment and language detection one by one.
Beam search and the temperature fallback stay per window, as the policy says, and sampling is seeded per window
(core/speech/engines.py), so a window's text is the same whether it was decoded alone or beside fifteen others.

A `Job` is one request's claim on the loop: `cancel()` (its client went away, the server is draining) drops its
waiting items, and its thread gets `Cancelled` at its next model call, so nothing more is decoded for it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.errors import StudioError

BATCH_WINDOWS = 16  # windows decoded in one call at most: 16 × 30 s = 8 minutes of speech
BATCH_WAIT_S = 0.005  # how long the loop waits for more work after the first item (5 ms: a fraction of one decode)
FILES_AT_ONCE = 4  # files of `transcribe` read, cut into windows and queued at once


class Cancelled(Exception):
    """The work's request was cancelled (or its loop closed): nothing more is decoded for it."""


class Job:
    """One request's claim on an engine loop. `cancel(reason)` is safe from any thread."""

    def __init__(self) -> None:
        self._cancelled = threading.Event()
        self.reason = ""
        self._current: tuple[EngineLoop, Work] | None = None
        self._callbacks: list[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self, reason: str = "cancelled") -> None:
        if self.cancelled:
            return
        self.reason = reason
        self._cancelled.set()
        current = self._current
        if current is not None:
            current[0].drop(current[1])
        for callback in self._callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from the cancelling thread) when the job is cancelled; at once if it is already."""
        self._callbacks.append(callback)
        if self.cancelled:
            callback()


@dataclass(eq=False)
class Work:
    kind: str  # "encode" (features), "decode" (encoded windows) or "call" (a function of the engine)
    data: object
    size: int  # windows
    key: tuple = ()  # a decode's (prompt, temperature, beams, best_of, max_new_tokens): equal keys share a call
    job: Job | None = None
    done: threading.Event = field(default_factory=threading.Event)
    result: object = None
    error: BaseException | None = None

    def finish(self, result: object = None, error: BaseException | None = None) -> None:
        """Hand the waiting thread its answer, once: a work cancelled while its batch ran keeps its Cancelled."""
        if not self.done.is_set():
            self.result, self.error = result, error
            self.done.set()


class EngineLoop:
    """`loops` threads that run every model call of one engine (CTranslate2Whisper or TransformersWhisper), in
    batches. `observe(windows)` is told each batch's size (the server's metrics)."""

    def __init__(
        self,
        engine,
        batch: int = BATCH_WINDOWS,
        wait_s: float = BATCH_WAIT_S,
        loops: int = 1,
        observe: Callable[[int], None] | None = None,
    ):
        self.engine, self.batch, self.wait_s, self.observe = engine, batch, wait_s, observe
        self._waiting: deque[Work] = deque()
        self._running: list[Work] = []  # the batches in hand, all loops'
        self._ready = threading.Condition()
        self._closing = False
        self._threads = [threading.Thread(target=self._run, daemon=True, name=f"engine-loop-{k}") for k in range(loops)]
        for thread in self._threads:
            thread.start()

    def submit(self, work: Work):
        """Queue `work` and wait for its result (raised if it failed, Cancelled if its job was)."""
        job = work.job
        with self._ready:
            if self._closing or (job is not None and job.cancelled):
                raise Cancelled(job.reason if job is not None and job.reason else "the engine loop is closed")
            self._waiting.append(work)
            if job is not None:
                job._current = (self, work)
            self._ready.notify()
        work.done.wait()
        if job is not None:
            job._current = None
        if work.error is not None:
            raise work.error
        return work.result

    def drop(self, work: Work) -> None:
        """Let go of `work` (its job was cancelled): out of the queue if it waits; if its batch is running, its
        thread goes on at once and the batch's answer for it is thrown away."""
        with self._ready:
            if work in self._waiting:
                self._waiting.remove(work)
        work.finish(error=Cancelled(work.job.reason if work.job else "cancelled"))

    def depth(self) -> int:
        """Windows waiting for the loop."""
        with self._ready:
            return sum(w.size for w in self._waiting)

    def close(self, timeout: float = 30.0) -> None:
        """Refuse new work, cancel what waits and what runs (its threads go on at once), and end the loop's
        threads after the batch in hand (waited for up to `timeout` seconds)."""
        with self._ready:
            self._closing = True
            for work in [*self._waiting, *self._running]:
                work.finish(error=Cancelled("the engine loop is closed"))
            self._waiting.clear()
            self._ready.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    def _take(self) -> list[Work] | None:
        """The next batch: the first item waiting, then what arrives within wait_s, up to `batch` windows (an item
        larger than a batch alone); None when the loop closes."""
        with self._ready:
            while not self._waiting and not self._closing:
                self._ready.wait()
            if self._closing:
                return None
            taken, size, deadline = [], 0, time.monotonic() + self.wait_s
            while not self._closing:
                if not self._waiting:
                    left = deadline - time.monotonic()
                    if not taken or left <= 0:
                        break
                    self._ready.wait(left)
                    continue
                work = self._waiting[0]
                if taken and size + work.size > self.batch:
                    break
                self._waiting.popleft()
                if work.job is not None and work.job.cancelled:
                    work.finish(error=Cancelled(work.job.reason))
                    continue
                taken.append(work)
                size += work.size
                if size >= self.batch:
                    break
            return taken

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            if not batch:
                continue  # all it took had been cancelled
            if self.observe is not None:
                self.observe(sum(w.size for w in batch if w.kind == "encode") or sum(w.size for w in batch))
            with self._ready:
                self._running += batch
            try:
                self._execute(batch)
            finally:
                with self._ready:
                    self._running = [w for w in self._running if w not in batch]

    def _execute(self, batch: list[Work]) -> None:
        # windows join one call only when their shapes do: a context fitted to an utterance is shorter than 30 s
        encodes: dict[tuple, list[Work]] = {}
        decodes: dict[tuple, list[Work]] = {}
        for work in batch:
            if work.kind == "encode":
                encodes.setdefault(tuple(work.data.shape[1:]), []).append(work)
            elif work.kind == "decode":
                decodes.setdefault((work.key, tuple(work.data.shape[1:])), []).append(work)
        for works in encodes.values():
            self._together(works, self.engine.encode)
        for ((prompt, *settings), _), works in decodes.items():
            self._together(works, lambda encoded, p=list(prompt), s=settings: self.engine.decode(encoded, p, *s))
        for work in batch:
            if work.kind == "call":
                self._together([work], lambda function: function())

    def _together(self, works: list[Work], function: Callable) -> None:
        """One call of `function` over all the works' windows, each given its share; when a call of several fails,
        each is tried alone, so one request's bad input fails that request only."""
        try:
            out = function(works[0].data if len(works) == 1 else _joined([w.data for w in works]))
        except BaseException as err:  # noqa: BLE001 (handed to the waiting request threads, which raise it)
            if len(works) > 1:
                for work in works:
                    self._together([work], function)
                return
            works[0].finish(error=err)
            return
        start = 0
        for work in works:
            share = out if len(works) == 1 else out[start : start + work.size]
            start += work.size
            work.finish(result=share)


def _joined(parts: Sequence) -> object:
    return torch.cat(list(parts)) if isinstance(parts[0], torch.Tensor) else np.concatenate(parts)


class BatchedEngine:
    """The engine as the decoding policy sees it, for one job: every call goes through the job's loop."""

    def __init__(self, loop: EngineLoop, job: Job | None = None):
        self.loop, self.job = loop, job or Job()

    @property
    def fits_context(self) -> bool:
        return self.loop.engine.fits_context

    def encode(self, features):
        features = np.asarray(features, np.float32)
        return self.loop.submit(Work("encode", features, len(features), job=self.job))

    def decode(self, encoded, prompt: list[int], temperature: float, beams: int, best_of: int, max_new_tokens: int):
        key = (tuple(prompt), temperature, beams, best_of, max_new_tokens)
        return self.loop.submit(Work("decode", encoded, len(encoded), key, self.job))

    def align(self, encoded, start_sequence: list[int], texts: list[list[int]], frames: list[int]):
        call = lambda: self.loop.engine.align(encoded, start_sequence, texts, frames)  # noqa: E731
        return self.loop.submit(Work("call", call, len(texts), job=self.job))

    def detect_language(self, features) -> tuple[str, float]:
        return self.likely_languages(features, 1)[0]

    def likely_languages(self, features, top: int) -> list[tuple[str, float]]:
        call = lambda: self.loop.engine.likely_languages(features, top)  # noqa: E731
        return self.loop.submit(Work("call", call, 1, job=self.job))


def transcribe_files(
    transcriber, paths: list[Path], options, files_at_once: int = FILES_AT_ONCE
) -> Iterator[tuple[Path, object]]:
    """(path, Transcript or the StudioError that refused it) for each file, in order, the files' windows decoded
    together on one engine loop (what `transcribe` of many files does). Stopping early cancels the rest."""
    loop, job = EngineLoop(transcriber.backend), Job()
    engine = BatchedEngine(loop, job)

    def one(path: Path):
        try:
            return transcriber.using(engine).transcribe_file(path, options=options)
        except StudioError as err:
            return err

    pool = ThreadPoolExecutor(max_workers=files_at_once, thread_name_prefix="transcribe-file")
    try:
        futures = [pool.submit(one, path) for path in paths]
        for path, future in zip(paths, futures):
            yield path, future.result()
    finally:
        job.cancel("stopped")
        pool.shutdown(wait=True, cancel_futures=True)
        loop.close()
