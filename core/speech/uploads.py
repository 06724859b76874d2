"""Reading an upload within bounds: never more bytes than the limit, never longer than the deadline, never more
audio than the server takes.

A request's body is counted as it arrives, whether it says its length or not (`Transfer-Encoding: chunked` says
nothing): reading stops at the first byte past MAX_UPLOAD_BYTES and a megabyte for the form's other fields, and the
answer is a 413 at once. The whole body must arrive within the upload deadline (a client sending a byte every two
seconds would otherwise hold a slot for as long as it likes): past it, a 408. The multipart form is parsed as it
streams (its file part spooled to disk past a megabyte, closed on any refusal), then read into memory: at most the
limit per admitted request. Its audio is then measured (`check_audio`): the header's length, or counted while
decoding where no header says it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request

from core.audio.constants import SAMPLE_RATE
from core.errors import StudioError
from core.speech.batching import Cancelled, Job
from core.speech.openai_api import MAX_UPLOAD_BYTES, ApiError, TranscriptionRequest, parse_request

FORM_OVERHEAD_BYTES = 2**20  # the form's other fields and its boundaries
MAX_FORM_FIELDS = 32
COUNT_PIECE_S = 60  # audio without a length in its header is counted this many seconds at a time, up to the limit
CLOSE = {"Connection": "close"}  # the rest of a refused body is never read: the connection ends with the answer


def too_large(size: int) -> ApiError:
    return ApiError(
        413,
        f"the upload is over {size / 2**20:.0f} MB, more than the {MAX_UPLOAD_BYTES // 2**20} MB limit for one file; "
        "cut it shorter or compress it (ffmpeg -i FILE -c:a libopus out.ogg)",
        "file",
        "file_too_large",
        CLOSE,
    )


def bounded(receive: Callable[[], Awaitable[dict]], deadline_s: float) -> Callable[[], Awaitable[dict]]:
    """`receive` that refuses a body past the byte limit (413) or still arriving after `deadline_s` (408)."""
    limit = MAX_UPLOAD_BYTES + FORM_OVERHEAD_BYTES
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    received = 0

    async def next_message() -> dict:
        nonlocal received
        try:
            message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise ApiError(
                408,
                f"the upload took longer than this server's {deadline_s:g} s deadline ({received} bytes arrived); "
                "send it over a faster connection, or start the server with a longer --upload-deadline-s",
                "file",
                "upload_too_slow",
                CLOSE,
            ) from None
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large(received)
        return message

    return next_message


async def read_form(request: Request, task: str, deadline_s: float) -> TranscriptionRequest:
    """The multipart form of `request`, read within the bounds above → a checked TranscriptionRequest."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_UPLOAD_BYTES + FORM_OVERHEAD_BYTES:
        raise too_large(int(length))  # said before a byte is read
    limited = Request(request.scope, bounded(request.receive, deadline_s))
    form = await limited.form(max_files=1, max_fields=MAX_FORM_FIELDS)
    try:
        upload = form.get("file")
        data = await upload.read() if hasattr(upload, "read") else None
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        granularities = form.getlist("timestamp_granularities[]") or form.getlist("timestamp_granularities")
        filename = getattr(upload, "filename", None) or "audio"
    finally:
        await form.close()
    return parse_request(fields, [str(g) for g in granularities], data, filename, task)


def check_audio(data: bytes, filename: str, max_audio_s: float, job: Job) -> float:
    """Seconds of audio in `data`, or a 400 for bytes that are not audio or audio longer than `max_audio_s`: the
    header's length, or (when no header says, as in a browser's webm or a streamed FLAC) the audio counted while
    decoding, stopping past the limit (or when the job is cancelled)."""
    from core.audio.decode import audio_duration, audio_pieces  # PyAV and libsndfile: 0.4 s (see the imports)

    try:
        seconds = audio_duration(data)
        if seconds is None:
            seconds = 0.0
            for piece in audio_pieces(data, name=filename, piece_seconds=COUNT_PIECE_S):
                seconds += len(piece) / SAMPLE_RATE
                if seconds > max_audio_s or job.cancelled:
                    break
    except StudioError as err:
        raise ApiError(400, str(err), "file", "invalid_file") from None
    if job.cancelled:
        raise Cancelled(job.reason)
    if seconds > max_audio_s:
        raise ApiError(
            400,
            f"{filename}: {seconds:.0f} s of audio, over this server's {max_audio_s:.0f} s limit; cut it into shorter "
            "files, or start the server with a higher --max-audio-s",
            "file",
            "audio_too_long",
        )
    return seconds
