"""`stream=true`: a transcription answered as server-sent events while it is decoded, as OpenAI streams it.

The file is decoded one window at a time through the model's engine loop (where the windows of other requests
still join it in batches), and after each window the text it added goes out as a `transcript.text.delta`; the
deltas joined are the whole text, which `transcript.text.done` then carries. A failure mid-way is the stream's last
event, in OpenAI's error shape (the official client raises it). A client that goes away cancels the work; the
request's slot and its model are let go when the decoding thread has stopped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from core.errors import StudioError
from core.speech.batching import Cancelled, Job
from core.speech.openai_api import ApiError, TranscriptionRequest, stream_event, text_delta, text_done

log = logging.getLogger("studio")
_DONE = object()  # what the decoding thread queues after the last transcript


@dataclass(frozen=True)
class StreamHooks:
    """What the server lends a stream: `run(function)` runs a function on a request thread; `on_end()` is called
    once the decoding thread is done, `count_audio(seconds)` when the whole file was transcribed."""

    run: Callable[..., Awaitable]
    on_end: Callable[[], None]
    count_audio: Callable[[float], None]


def event_stream(transcriber, request: TranscriptionRequest, job: Job, label: str, hooks: StreamHooks):
    """The StreamingResponse for `request`, decoded by `transcriber` as `job` (`label` names it in the log)."""
    from fastapi.responses import StreamingResponse
    from starlette.background import BackgroundTask

    loop = asyncio.get_running_loop()
    progress: asyncio.Queue = asyncio.Queue()

    def decode() -> None:
        try:
            for transcript in transcriber.transcribe_progressively(
                request.data, request.filename, request.language, request.task, request.decoding_options(), 1
            ):
                loop.call_soon_threadsafe(progress.put_nowait, transcript)
            loop.call_soon_threadsafe(progress.put_nowait, _DONE)
        except Exception as err:  # noqa: BLE001 (handed to the stream, which ends with it as an error event)
            loop.call_soon_threadsafe(progress.put_nowait, err)

    # started now, not when the body is first read: a client gone before that still has its work stopped below
    work = asyncio.ensure_future(hooks.run(decode))
    work.add_done_callback(lambda _: hooks.on_end())
    said_all = asyncio.Event()

    async def events():
        last, said = None, 0
        try:
            while (item := await progress.get()) is not _DONE:
                if isinstance(item, Exception):
                    raise item
                last = item
                delta, said = text_delta(last, said)
                if delta:
                    yield stream_event(delta)
            hooks.count_audio(last.duration)
            yield stream_event(text_done(last))
        except (ApiError, StudioError, Cancelled) as err:
            status = err.status if isinstance(err, ApiError) else 503 if isinstance(err, Cancelled) else 400
            yield stream_event(ApiError(status, getattr(err, "message", str(err)), "file").body())
        said_all.set()

    def after() -> None:
        """The response is over, sent whole or not: a client that went away before the end cancels the work."""
        if not said_all.is_set():
            job.cancel("the client disconnected")
            log.info("%s: the client disconnected; its transcription was cancelled", label)

    headers = {"Cache-Control": "no-cache"}
    return StreamingResponse(
        events(), media_type="text/event-stream", headers=headers, background=BackgroundTask(after)
    )
