"""`serve`: a model behind an OpenAI-compatible HTTP endpoint, so any app that speaks OpenAI's audio API can use it.

    python -m core serve --model runs/nb-1/checkpoint-400      # then, from any OpenAI client:
    OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="KEY").audio.transcriptions.create(model="whisper-1", file=f)

FastAPI on uvicorn, on 127.0.0.1 unless told otherwise. `POST /v1/audio/transcriptions` and `/v1/audio/translations`
take OpenAI's multipart form (file, model, language, prompt, temperature, response_format, timestamp_granularities[],
stream) and answer in its shapes, or as server-sent events with `stream=true`; `GET /v1/models` lists what can be
served (core/speech/model_pool.py); `/v1/realtime?intent=transcription` is a Realtime-style WebSocket session
(core/speech/realtime.py). `whisper-1`, the name OpenAI's clients send, means the served model. `GET /health` (no
key) and `GET /metrics` (Prometheus text) are for the operator.

Every request's windows meet in one engine loop per model (core/speech/batching.py). Work is bounded
(core/speech/admission.py, core/speech/uploads.py): `queue` requests at once, a 503 beyond; an upload stops at the
size limit and must arrive within its deadline; a client that disconnects has its work cancelled; SIGTERM drains.
Mistakes get OpenAI's error shape `{"error": {"message", "type", "param", "code"}}`: a 400 (not audio, too long,
unknown model or format), 401 (a missing or wrong key when one is set: compared in constant time, never logged),
404 (an unknown model's card), 408 (an upload too slow), 413 (too large), 503 (full, or draining).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import os
import shlex
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from starlette.requests import Request
from starlette.websockets import WebSocket

from core.errors import StudioError
from core.models.resolve import DEFAULT_MODEL
from core.option_fields import option_help
from core.speech.admission import Admission, ClientGone, until_answered
from core.speech.batching import BATCH_WAIT_S, BATCH_WINDOWS, BatchedEngine, Job
from core.speech.model_pool import EngineSettings, LoadedModel, ModelPool
from core.speech.observability import REQUEST_ID, Metrics, RequestIds, log_config
from core.speech.openai_api import KEY_ENV, ApiError, TranscriptionRequest, check_key, render
from core.speech.streaming import StreamHooks, event_stream
from core.speech.uploads import check_audio, read_form
from core.workspace import Workspace

# fastapi and uvicorn (0.6 s) and the Transcriber (torch, 2.5 s) are imported where the server starts: the command
# line builds every subcommand's flags from ServeOptions, and `python -m core languages` must stay instant. Only
# starlette's Request and WebSocket are imported here: FastAPI reads the handlers' annotations from the globals.

log = logging.getLogger("studio")

DEFAULT_PORT = 8000
LOOPBACK = ("127.0.0.1", "::1", "localhost")


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
    workers: int = field(
        default=1, metadata=option_help("engine loops per loaded model, each decoding one batch at a time")
    )
    queue: int = field(
        default=32,
        metadata=option_help(
            "requests in progress at once (uploading, decoding, answering; a realtime session is one); more get a 503"
        ),
    )
    batch: int = field(default=BATCH_WINDOWS, metadata=option_help("windows decoded together at most, any requests'"))
    batch_wait_ms: float = field(
        default=BATCH_WAIT_S * 1000, metadata=option_help("how long a batch waits for more windows, milliseconds")
    )
    max_audio_s: float = field(default=3600.0, metadata=option_help("longest audio one request may send, seconds"))
    upload_deadline_s: float = field(
        default=120.0, metadata=option_help("an upload must arrive within this, seconds (else a 408)")
    )
    realtime_idle_s: float = field(
        default=120.0, metadata=option_help("a realtime session that sends nothing this long is closed, seconds")
    )
    drain_s: float = field(
        default=20.0, metadata=option_help("on SIGTERM, requests in progress may finish within this, seconds")
    )
    allow_download: bool = field(
        default=False, metadata=option_help("let requests name Hub models that are not downloaded yet")
    )

    def __post_init__(self) -> None:
        if self.workers < 1 or self.queue < 1 or self.batch < 1:
            raise StudioError(
                f"--workers {self.workers} --queue {self.queue} --batch {self.batch}: give at least 1 of each"
            )
        if not 0 <= self.port <= 65535:
            raise StudioError(f"--port {self.port}: give a port from 1 to 65535 (or 0 for any free one)")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not (math.isfinite(value) and value >= 0):
                flag = "--" + f.name.replace("_", "-")
                raise StudioError(f"{flag} {value}: give a finite number of {f.name.rsplit('_', 1)[-1]} (0 or more)")
        if self.max_audio_s <= 0 or self.upload_deadline_s <= 0 or self.realtime_idle_s <= 0:
            raise StudioError("--max-audio-s, --upload-deadline-s and --realtime-idle-s: give positive seconds")


def serve_command(model: str, port: int = DEFAULT_PORT) -> str:
    """The shell command that serves `model` (what a page shows to copy), quoted for a POSIX shell."""
    return shlex.join(
        ["python", "-m", "core", "serve", "--model", model] + (["--port", str(port)] if port != DEFAULT_PORT else [])
    )


def transcribe_request(transcriber, request: TranscriptionRequest, max_audio_s: float, job: Job):
    """On a request thread: check the audio, transcribe it (`transcriber` sends its windows to the model's engine
    loop), and render the answer as (body, media type, seconds of audio), a dict body being JSON."""
    seconds = check_audio(request.data, request.filename, max_audio_s, job)
    try:
        transcript = transcriber.transcribe_file(
            request.data,
            name=request.filename,
            language=request.language,
            task=request.task,
            options=request.decoding_options(),
        )
    except StudioError as err:
        raise ApiError(400, str(err), "file", "invalid_file") from None
    tokenizer = transcriber.processor.tokenizer
    body, media_type = render(transcript, request, lambda text: tokenizer.encode(" " + text, add_special_tokens=False))
    return body, media_type, seconds


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


@dataclass(frozen=True)
class Served:
    """What the handlers share: the options, the models, the requests in flight and the metrics."""

    options: ServeOptions
    pool: ModelPool
    admission: Admission
    metrics: Metrics


def create_app(options: ServeOptions, workspace: Workspace, checkpoints: Callable[[], Mapping[str, str]] | None = None):
    """The FastAPI application, with the served model loaded (a bad --model fails here, before anything answers).
    `checkpoints` lists the workspace's checkpoints and exports (label → location) for /v1/models."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI

    from core import __version__

    metrics = Metrics()
    settings = EngineSettings(options.batch, options.batch_wait_ms / 1000, options.workers, metrics.batches.observe)
    pool = ModelPool(options.model, workspace, checkpoints or dict, settings, options.allow_download)
    try:
        pool.load_now(options.model)
    except ApiError as err:  # the command line's one line, not a traceback: the server never started
        raise StudioError(f"--model {options.model}: {err}") from None
    admission = Admission(options.queue)
    metrics.watch(lambda: admission.admitted, pool.windows_waiting)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        admission.close()  # the request threads and the engine loops end with the server
        pool.close()

    app = FastAPI(title="Whisper Studio", version=__version__, lifespan=lifespan)
    app.state.drain, app.state.drain_s = (lambda: admission.drain(options.drain_s)), options.drain_s
    _answer_errors_in_openai_shape(app)
    app.add_middleware(RequestIds, metrics=metrics)
    _add_routes(app, Served(options, pool, admission, metrics))
    return app


def _add_routes(app, served: Served) -> None:
    """/health, /metrics, and OpenAI's /v1: models, transcriptions, translations, the realtime socket."""
    from fastapi import APIRouter, Depends, Header
    from fastapi.responses import JSONResponse, Response

    from core.speech.realtime import serve_session

    admission, pool, metrics = served.admission, served.pool, served.metrics

    def authorized(authorization: str | None = Header(default=None)) -> None:
        check_key(served.options.api_key, authorization)

    @app.get("/health")
    def health() -> Response:
        body = {
            "status": "draining" if admission.draining else "ok",
            "models_loaded": pool.loaded_ids(),
            "requests_in_progress": admission.admitted,
            "windows_waiting": pool.windows_waiting(),
        }
        return JSONResponse(body, 503 if admission.draining else 200)

    @app.get("/metrics", dependencies=[Depends(authorized)])
    def prometheus() -> Response:
        return Response(metrics.text(), media_type=metrics.media_type)

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(authorized)])

    @v1.get("/models")
    def models() -> dict:
        return {"object": "list", "data": [_model_card(i, location) for i, location in pool.catalog().items()]}

    @v1.get("/models/{identifier:path}")
    def model(identifier: str) -> dict:
        try:
            return _model_card(identifier, pool.location(identifier))
        except ApiError as err:  # OpenAI answers an unknown model's card with a 404 (the client's NotFoundError)
            raise ApiError(404, err.message, err.param, err.code) from None

    @v1.post("/audio/transcriptions")
    async def transcriptions(request: Request):
        return await _answer(served, request, "transcribe")

    @v1.post("/audio/translations")
    async def translations(request: Request):
        return await _answer(served, request, "translate")

    @app.websocket("/v1/realtime")
    async def realtime(websocket: WebSocket):
        await serve_session(websocket, pool, admission, served.options, metrics)

    app.include_router(v1)


async def _answer(served: Served, request: Request, task: str):
    """One transcription or translation: admitted, its upload read within bounds, its model acquired (a load
    waited for, not holding anyone else up), decoded on a request thread through the model's engine loop, and
    answered; or streamed, the stream then letting go of the model and the slot when it ends."""
    from fastapi.responses import JSONResponse, Response

    options, pool, admission = served.options, served.pool, served.admission
    label, job, model, streaming = f"request {REQUEST_ID.get()}", admission.admit(), None, False
    try:
        parsed = await read_form(request, task, options.upload_deadline_s)
        loading = pool.acquire(pool.location(parsed.model))
        model = await until_answered(loading, request.receive, job, label, in_thread=False)
        transcriber = model.transcriber.using(BatchedEngine(model.loop, job))
        if parsed.stream:
            await admission.run(check_audio, parsed.data, parsed.filename, options.max_audio_s, job)
            streaming, ended = True, _releaser(admission, pool, model, job)
            hooks = StreamHooks(admission.run, ended, served.metrics.audio.inc)
            return event_stream(transcriber, parsed, job, label, hooks)
        work = admission.run(transcribe_request, transcriber, parsed, options.max_audio_s, job)
        body, media_type, seconds = await until_answered(work, request.receive, job, label)
    finally:
        if not streaming:
            if model is not None:
                pool.release(model)
            admission.release(job)
    served.metrics.audio.inc(seconds)
    return JSONResponse(body) if isinstance(body, dict) else Response(body, media_type=media_type)


def _releaser(admission: Admission, pool: ModelPool, model: LoadedModel, job: Job) -> Callable[[], None]:
    """What a stream calls when its decoding thread is done (from any thread): the model and the slot let go on the
    event loop's thread, where they are counted."""
    loop = asyncio.get_running_loop()

    def release() -> None:
        pool.release(model)
        admission.release(job)

    return lambda: loop.call_soon_threadsafe(release)


def _model_card(identifier: str, location: str) -> dict:
    """One entry of /v1/models, in OpenAI's Model shape (`created`: the folder's time, 0 for a name)."""
    created = int(Path(location).stat().st_mtime) if Path(location).is_dir() else 0
    return {"id": identifier, "object": "model", "created": created, "owned_by": "whisper-studio"}


def _answer_errors_in_openai_shape(app) -> None:
    """Every refusal in OpenAI's error shape: ours (ApiError), the framework's (an unknown path, a form it cannot
    parse, a field it rejects: 400 instead of FastAPI's 422) and a bug (500; uvicorn logs its traceback). A client
    that went away gets nothing (499 is only what the metrics count)."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
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
    app.add_exception_handler(ClientGone, lambda _request, _err: Response(status_code=499))
    app.add_exception_handler(HTTPException, refused)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, failed)


def uvicorn_server(app):
    """The uvicorn server for `app` (run it with `.run(sockets=[listen(...)])`): request ids and no credentials in
    its log, and on SIGTERM or Ctrl+C the app drains before uvicorn waits for its connections."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        async def shutdown(self, sockets=None) -> None:
            app.state.drain()
            await super().shutdown(sockets=sockets)

    grace = app.state.drain_s + 5  # after the drain's deadline its cancelled requests answer 503: time for that
    config = uvicorn.Config(app, log_config=log_config(), timeout_graceful_shutdown=grace, ws_max_size=2**22)
    return DrainingServer(config)


def serve(
    options: ServeOptions, workspace: Workspace, checkpoints: Callable[[], Mapping[str, str]] | None = None
) -> None:
    """Serve until told to stop (Ctrl+C or SIGTERM: a graceful drain): listen first, load the model, then answer.
    The key is the option's, else $STUDIO_API_KEY's. Without --allow-download nothing is fetched from the Hub."""
    options = replace(options, api_key=options.api_key or os.environ.get(KEY_ENV) or None)
    if not options.allow_download:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read when transformers is imported: just below
    sock = listen(options.host, options.port)
    host, port = sock.getsockname()[:2]
    app = create_app(options, workspace, checkpoints)
    if not options.api_key and host not in LOOPBACK:
        log.warning("serving on %s without an API key: anyone who reaches it can use it (give --api-key)", host)
    log.info(
        "serving %s at http://%s:%s/v1 (%s; batches of %d windows, %d request(s) at once)",
        options.model,
        f"[{host}]" if ":" in host else host,
        port,
        "key required" if options.api_key else "no key",
        options.batch,
        options.queue,
    )
    try:
        uvicorn_server(app).run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl+C is how a server stops: uvicorn has shut down cleanly, then raised it again
        log.info("stopped serving %s", options.model)
