"""`serve`: a model behind an OpenAI-compatible HTTP endpoint, so any app that speaks OpenAI's audio API can use it.

    python -m core serve --model runs/nb-1/checkpoint-400      # then, from any OpenAI client:
    OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="KEY").audio.transcriptions.create(model="whisper-1", file=f)

FastAPI on uvicorn, on 127.0.0.1 unless told otherwise. `POST /v1/audio/transcriptions` and `/v1/audio/translations`
take OpenAI's multipart form (file, model, language, prompt, temperature, response_format, timestamp_granularities[])
and answer in its shapes; `GET /v1/models` lists the served model, the base models and every checkpoint and export of
the workspace's runs (ids like `nb-1/checkpoint-400`). `whisper-1`, the name OpenAI's clients send, means the served
model. Each model is loaded once and kept (the served one always, the last other one asked for beside it).

Work is bounded: `workers` threads transcribe, up to `queue` more requests wait (their uploads included), and any
beyond that get a 503 at once, so a burst never piles up memory. Mistakes get OpenAI's error shape
`{"error": {"message", "type", "param", "code"}}` with a 400 (not audio, too long, unknown model or format), a 401 for
a missing or wrong key when one is set (compared in constant time, never logged), a 503 when full.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import logging
import os
import shlex
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from starlette.requests import Request

from core.audio.constants import SAMPLE_RATE
from core.errors import StudioError
from core.models.resolve import BASE_MODELS, DEFAULT_MODEL
from core.options import option_help
from core.speech.openai_api import (
    KEY_ENV,
    MAX_UPLOAD_BYTES,
    OPENAI_ALIAS,
    ApiError,
    TranscriptionRequest,
    check_key,
    parse_request,
    render,
)
from core.workspace import Workspace

# fastapi and uvicorn (0.6 s) and the Transcriber (torch, 2.5 s) are imported where the server starts: the command
# line builds every subcommand's flags from ServeOptions, and `python -m core languages` must stay instant. Only
# starlette's Request (0.09 s) is imported here: FastAPI reads the handlers' annotations from the module's globals.

log = logging.getLogger("studio")

DEFAULT_PORT = 8000
MODELS_KEPT = 2  # transcribers in memory: the served model and the last other one a request named
COUNT_PIECE_S = 60  # audio without a length in its header is counted this many seconds at a time, up to the limit


@dataclass(frozen=True)
class ServeOptions:
    model: str = field(
        default=DEFAULT_MODEL,
        metadata=option_help("the model to serve: whisper-base, a checkpoint or export folder, a Hub id, or demo"),
    )
    host: str = field(
        default="127.0.0.1",
        metadata=option_help("address to listen on: 127.0.0.1 is this machine only, 0.0.0.0 every network"),
    )
    port: int = field(default=DEFAULT_PORT, metadata=option_help("TCP port (0: any free one, said at start)"))
    api_key: str | None = field(
        default=None,
        metadata=option_help(f"the key clients must send (Authorization: Bearer KEY); default ${KEY_ENV}, else none"),
    )
    workers: int = field(default=1, metadata=option_help("transcriptions at once, threads sharing the loaded model"))
    queue: int = field(default=32, metadata=option_help("requests that may wait for a worker; more get a 503"))
    max_audio_s: float = field(default=3600.0, metadata=option_help("longest audio one request may send, seconds"))

    def __post_init__(self) -> None:
        if self.workers < 1 or self.queue < 0:
            raise StudioError(f"--workers {self.workers} --queue {self.queue}: give at least 1 worker and 0 waiting")
        if not 0 <= self.port <= 65535:
            raise StudioError(f"--port {self.port}: give a port from 1 to 65535 (or 0 for any free one)")
        if self.max_audio_s <= 0:
            raise StudioError(f"--max-audio-s {self.max_audio_s}: give a positive number of seconds")


def serve_command(model: str, port: int = DEFAULT_PORT) -> str:
    """The shell command that serves `model` (what a page shows to copy), quoted for a POSIX shell."""
    return shlex.join(
        ["python", "-m", "core", "serve", "--model", model] + (["--port", str(port)] if port != DEFAULT_PORT else [])
    )


def model_id(location: str, workspace: Workspace) -> str:
    """How /v1/models names a model: a run's checkpoint or export by its path under the runs folder
    (`nb-1/checkpoint-400`), anything else as given (`whisper-base`, a Hub id, a folder)."""
    path = Path(location)
    if path.is_absolute():
        try:
            return path.resolve().relative_to(workspace.runs.resolve()).as_posix()
        except ValueError:
            pass
    return location


def model_catalog(served: str, workspace: Workspace, checkpoints: Mapping[str, str]) -> dict[str, str]:
    """Model id → what the Transcriber loads: the served model first, the base models, then every checkpoint and
    export (`checkpoints` is core.evaluation's label → location listing, the one the pages' pickers use)."""
    catalog = {model_id(served, workspace): served}
    for name in BASE_MODELS.values():
        catalog.setdefault(name, name)
    for location in checkpoints.values():
        catalog.setdefault(model_id(location, workspace), location)
    return catalog


class ModelPool:
    """The models a server answers with, each loaded once and kept: the served model always, and the last other one
    a request named (MODELS_KEPT in all). Loading happens on a worker thread, one model at a time."""

    def __init__(self, served: str, workspace: Workspace, checkpoints: Callable[[], Mapping[str, str]]):
        self.served, self.workspace, self.checkpoints = served, workspace, checkpoints
        self.loaded: OrderedDict[str, object] = OrderedDict()
        self.lock = threading.Lock()

    def catalog(self) -> dict[str, str]:
        return model_catalog(self.served, self.workspace, self.checkpoints())

    def location(self, requested: str) -> str:
        """What a request's `model` names, or a 400 listing the choices."""
        if requested in (OPENAI_ALIAS, self.served, model_id(self.served, self.workspace)):
            return self.served
        catalog = self.catalog()
        if requested in catalog:
            return catalog[requested]
        raise ApiError(
            400,
            f"model '{requested}' is not served here: choose {OPENAI_ALIAS} (the served model) or one of "
            f"{', '.join(catalog)} (GET /v1/models lists them)",
            "model",
            "model_not_found",
        )

    def transcriber(self, location: str):
        from core.speech.inference import Transcriber  # torch: see the imports above

        with self.lock:
            if location not in self.loaded:
                try:
                    self.loaded[location] = Transcriber(location, self.workspace)
                except StudioError as err:
                    raise ApiError(400, str(err), "model", "model_not_loadable") from None
                kept = [name for name in self.loaded if name != self.served]
                for name in kept[: len(self.loaded) - MODELS_KEPT]:
                    del self.loaded[name]  # a request still using it keeps its own reference
            self.loaded.move_to_end(location)
            return self.loaded[location]


class WorkQueue:
    """`workers` threads transcribe; up to `queue` more requests wait; any beyond get a 503 at once. `slot()` is
    entered on the event loop's thread only, so its count needs no lock."""

    def __init__(self, workers: int, queue: int):
        self.workers, self.queue, self.admitted = workers, queue, 0
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="transcribe")

    @contextmanager
    def slot(self) -> Iterator[None]:
        if self.admitted >= self.workers + self.queue:
            raise ApiError(
                503,
                f"the server is busy: {self.workers} transcribing and {self.queue} waiting, the most it takes; try "
                "again in a moment, or start it with a longer --queue or more --workers",
                None,
                "server_busy",
                {"Retry-After": "1"},
            )
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

    async def run(self, function: Callable, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def check_audio(data: bytes, filename: str, max_audio_s: float) -> None:
    """A 400 for bytes that are not audio or audio longer than `max_audio_s`: the header's length, or (when no
    header says, as in a browser's webm) the audio counted while decoding, stopping past the limit."""
    from core.audio.decode import audio_duration, audio_pieces  # PyAV and libsndfile: 0.4 s (see the imports)

    try:
        seconds = audio_duration(data)
        if seconds is None:
            seconds = 0.0
            for piece in audio_pieces(data, name=filename, piece_seconds=COUNT_PIECE_S):
                seconds += len(piece) / SAMPLE_RATE
                if seconds > max_audio_s:
                    break
    except StudioError as err:
        raise ApiError(400, str(err), "file", "invalid_file") from None
    if seconds > max_audio_s:
        raise ApiError(
            400,
            f"{filename}: {seconds:.0f} s of audio, over this server's {max_audio_s:.0f} s limit; cut it into shorter "
            "files, or start the server with a higher --max-audio-s",
            "file",
            "audio_too_long",
        )


def transcribe_request(pool: ModelPool, location: str, request: TranscriptionRequest, max_audio_s: float):
    """On a worker thread: check the audio, transcribe it with the kept model, and render the answer as
    (body, media type), a dict body being JSON."""
    check_audio(request.data, request.filename, max_audio_s)
    transcriber = pool.transcriber(location)
    # the decoding policy's options travel when the Transcriber takes them (see the report of issue 20)
    takes_options = "options" in inspect.signature(transcriber.transcribe_file).parameters
    if not takes_options and "word" in request.granularities:
        raise ApiError(
            400, "word timestamps are not available in this version: ask for segment", "timestamp_granularities"
        )
    extra = {"options": request.decoding_options()} if takes_options else {}
    try:
        transcript = transcriber.transcribe_file(
            request.data, name=request.filename, language=request.language, task=request.task, **extra
        )
    except StudioError as err:
        raise ApiError(400, str(err), "file", "invalid_file") from None
    tokenizer = transcriber.processor.tokenizer
    return render(transcript, request, lambda text: tokenizer.encode(" " + text, add_special_tokens=False))


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on (host, port), opened before any model loads: a port in use or an address this machine
    does not have is one line, said at once."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except (socket.gaierror, OSError) as err:
        raise StudioError(f"--host {host}: not an address ({err}); give 127.0.0.1 or 0.0.0.0") from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise StudioError(f"port {port} on {host} is in use (another server?): give --port another") from None
        raise StudioError(
            f"cannot listen on {host}:{port} ({err.strerror}): give --host 127.0.0.1 (this machine) or 0.0.0.0"
        ) from None
    sock.listen(128)  # a client that connects while the model loads waits in the backlog instead of being refused
    return sock


def create_app(options: ServeOptions, workspace: Workspace, checkpoints: Callable[[], Mapping[str, str]] | None = None):
    """The FastAPI application, with the served model loaded (a bad --model fails here, before anything answers).
    `checkpoints` lists the workspace's checkpoints and exports (label → location) for /v1/models."""
    from contextlib import asynccontextmanager

    from fastapi import APIRouter, Depends, FastAPI, Header
    from fastapi.responses import JSONResponse, Response

    from core import __version__

    pool = ModelPool(options.model, workspace, checkpoints or dict)
    try:
        pool.transcriber(options.model)
    except ApiError as err:  # the command line's one line, not a traceback: the server never started
        raise StudioError(f"--model {options.model}: {err}") from None
    work = WorkQueue(options.workers, options.queue)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        work.close()  # the worker threads end with the server

    app = FastAPI(title="Whisper Studio", version=__version__, lifespan=lifespan)
    _answer_errors_in_openai_shape(app)

    def authorized(authorization: str | None = Header(default=None)) -> None:
        check_key(options.api_key, authorization)

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(authorized)])

    @v1.get("/models")
    def models() -> dict:
        return {"object": "list", "data": [_model_card(i, location) for i, location in pool.catalog().items()]}

    @v1.get("/models/{identifier:path}")
    def model(identifier: str) -> dict:
        return _model_card(identifier, pool.location(identifier))

    async def answer(request: Request, task: str):
        length = int(request.headers.get("content-length") or 0)
        if length > MAX_UPLOAD_BYTES + 2**20:  # a megabyte for the form's other fields and boundaries
            raise ApiError(
                400, f"the upload is {length / 2**20:.0f} MB, over the 25 MB limit", "file", "file_too_large"
            )
        with work.slot():  # held while the upload arrives too: waiting uploads are bounded as well
            parsed = await _read_form(request, task)
            location = pool.location(parsed.model)
            body, media_type = await work.run(transcribe_request, pool, location, parsed, options.max_audio_s)
        return JSONResponse(body) if isinstance(body, dict) else Response(body, media_type=media_type)

    @v1.post("/audio/transcriptions")
    async def transcriptions(request: Request):
        return await answer(request, "transcribe")

    @v1.post("/audio/translations")
    async def translations(request: Request):
        return await answer(request, "translate")

    app.include_router(v1)
    return app


async def _read_form(request: Request, task: str) -> TranscriptionRequest:
    """The multipart form of a starlette Request → a checked TranscriptionRequest (its temp files closed)."""
    form = await request.form(max_files=1, max_fields=32)
    try:
        upload = form.get("file")
        data = await upload.read() if hasattr(upload, "read") else None
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        granularities = form.getlist("timestamp_granularities[]") or form.getlist("timestamp_granularities")
        filename = getattr(upload, "filename", None) or "audio"
    finally:
        await form.close()
    return parse_request(fields, [str(g) for g in granularities], data, filename, task)


def _model_card(identifier: str, location: str) -> dict:
    """One entry of /v1/models, in OpenAI's Model shape (`created`: the folder's time, 0 for a name)."""
    created = int(Path(location).stat().st_mtime) if Path(location).exists() else 0
    return {"id": identifier, "object": "model", "created": created, "owned_by": "whisper-studio"}


def _answer_errors_in_openai_shape(app) -> None:
    """Every refusal in OpenAI's error shape: ours (ApiError), the framework's (an unknown path, a form it cannot
    parse, a field it rejects: 400 instead of FastAPI's 422) and a bug (500; uvicorn logs its traceback)."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    def refused(_request, err: HTTPException):
        return JSONResponse(ApiError(err.status_code, str(err.detail)).body(), err.status_code)

    def invalid(_request, err: RequestValidationError):
        problem = (err.errors() or [{}])[0]
        param = ".".join(str(p) for p in problem.get("loc", ())[1:]) or None
        return JSONResponse(ApiError(400, f"{param}: {problem.get('msg', 'invalid')}", param).body(), 400)

    def failed(_request, err: Exception):
        message = f"internal error ({type(err).__name__}): a bug in Whisper Studio; the server log has the details"
        return JSONResponse(ApiError(500, message).body(), 500)

    app.add_exception_handler(ApiError, lambda _request, err: JSONResponse(err.body(), err.status, err.headers))
    app.add_exception_handler(HTTPException, refused)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, failed)


def uvicorn_server(app):
    """The uvicorn server for `app` (run it with `.run(sockets=[listen(...)])`)."""
    import uvicorn

    return uvicorn.Server(uvicorn.Config(app, log_level="info", timeout_graceful_shutdown=10))


def serve(
    options: ServeOptions, workspace: Workspace, checkpoints: Callable[[], Mapping[str, str]] | None = None
) -> None:
    """Serve until interrupted (Ctrl+C): listen first, load the model, then answer. The key is the option's, else
    $STUDIO_API_KEY's."""
    options = replace(options, api_key=options.api_key or os.environ.get(KEY_ENV) or None)
    sock = listen(options.host, options.port)
    host, port = sock.getsockname()[:2]
    app = create_app(options, workspace, checkpoints)
    if not options.api_key and host not in ("127.0.0.1", "::1"):
        log.warning("serving on %s without an API key: anyone who reaches it can use it (give --api-key)", host)
    log.info(
        "serving %s at http://%s:%s/v1 (%s; %d worker(s), %d waiting at most)",
        options.model,
        f"[{host}]" if ":" in host else host,
        port,
        "key required" if options.api_key else "no key",
        options.workers,
        options.queue,
    )
    try:
        uvicorn_server(app).run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl+C is how a server stops: uvicorn has shut down cleanly, then raised it again
        log.info("stopped serving %s", options.model)
