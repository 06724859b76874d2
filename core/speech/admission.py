"""Which requests `serve` takes on, and letting go of them: a bounded number at once, cancelled when their client
goes away, and a graceful drain when the server is told to stop.

At most `capacity` requests (their uploads, their decoding, their answers; a realtime session counts as one while
it is open) are admitted at once; any beyond get a 503 at once, so a burst never piles up memory. Each admitted
request has a `Job` (core/speech/batching.py) and a thread that runs its decoding policy. When its client
disconnects, the job is cancelled: its windows still waiting are dropped and nothing more is decoded for it (one
log line says so). When the server is told to stop (SIGTERM, Ctrl+C), it drains: new requests get a 503, admitted
ones may finish within `drain_s`, and what is still running then is cancelled and answered with a 503.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from core.speech.batching import Cancelled, Job
from core.speech.openai_api import ApiError

log = logging.getLogger("studio")
SHUTTING_DOWN = "the server is shutting down"


class ClientGone(Exception):
    """The client disconnected before its answer: nothing is sent (the work was cancelled)."""


class Admission:
    """The requests in flight: their count, their jobs, and the threads they run on."""

    def __init__(self, capacity: int):
        self.capacity, self.admitted, self.draining = capacity, 0, False
        self.jobs: set[Job] = set()
        self.executor = ThreadPoolExecutor(max_workers=capacity, thread_name_prefix="request")

    def admit(self) -> Job:
        """Admit a request (on the event loop's thread only, so the count needs no lock): its Job, or a 503.
        `release` it when its answer is done."""
        if self.draining:
            raise ApiError(503, f"{SHUTTING_DOWN}: send the request to another replica", None, "shutting_down")
        if self.admitted >= self.capacity:
            raise ApiError(
                503,
                f"the server is busy: {self.capacity} requests in progress, the most it takes; try again in a "
                "moment, or start it with a longer --queue",
                None,
                "server_busy",
                {"Retry-After": "1"},
            )
        job = Job()
        self.admitted += 1
        self.jobs.add(job)
        return job

    def release(self, job: Job) -> None:
        if job in self.jobs:
            self.admitted -= 1
            self.jobs.discard(job)

    @contextmanager
    def slot(self) -> Iterator[Job]:
        job = self.admit()
        try:
            yield job
        finally:
            self.release(job)

    async def run(self, function: Callable, *args):
        """`function(*args)` on a request thread, with this task's context (its request id) carried over."""
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self.executor, context.run, function, *args)

    def drain(self, drain_s: float) -> None:
        """Refuse new requests; cancel those still running after `drain_s` seconds."""
        if self.draining:
            return
        self.draining = True
        log.info(
            "draining: %d request(s) in progress may finish within %.0f s; new ones get a 503", self.admitted, drain_s
        )
        asyncio.get_running_loop().call_later(drain_s, self.cancel_all, SHUTTING_DOWN)

    def cancel_all(self, reason: str) -> None:
        for job in list(self.jobs):
            job.cancel(reason)

    def close(self) -> None:
        self.cancel_all(SHUTTING_DOWN)
        self.executor.shutdown(wait=False, cancel_futures=True)


async def watch_disconnect(receive: Callable[[], Awaitable[dict]]) -> None:
    """Returns when the client disconnects (after its body was read, the next message is the disconnect)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def until_answered(
    work: Awaitable, receive: Callable[[], Awaitable[dict]], job: Job, label: str, in_thread: bool = True
):
    """The result of `work`, or ClientGone when the client disconnects first: then the job is cancelled, said in
    one line, and the work stops (a thread's at its next model call: it is waited for). A job cancelled by the drain
    is a 503: a thread's work raises Cancelled itself, other work (waiting for a model to load) is stopped."""
    loop = asyncio.get_running_loop()
    work = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(watch_disconnect(receive))
    cancelled = loop.create_future()
    job.on_cancel(lambda: loop.call_soon_threadsafe(lambda: cancelled.done() or cancelled.set_result(None)))
    waiting = {work, watcher} if in_thread else {work, watcher, cancelled}
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # uvicorn's grace is over: the work stops, the client still gets its answer
        job.cancel(SHUTTING_DOWN)
        raise ApiError(503, f"{SHUTTING_DOWN}: send the request again", None, "cancelled") from None
    finally:
        watcher.cancel()
    if not work.done() and watcher.done():
        job.cancel("the client disconnected")
        log.info("%s: the client disconnected; its transcription was cancelled", label)
        if not in_thread:
            work.cancel()
        try:
            await work
        except (Exception, asyncio.CancelledError):  # noqa: BLE001 (the client is gone: no one to tell)
            pass
        raise ClientGone
    if not work.done():  # cancelled by the drain while waiting
        work.cancel()
        raise ApiError(503, f"{job.reason or SHUTTING_DOWN}: send the request again", None, "cancelled")
    try:
        return work.result()
    except Cancelled:
        raise ApiError(503, f"{job.reason or SHUTTING_DOWN}: send the request again", None, "cancelled") from None
