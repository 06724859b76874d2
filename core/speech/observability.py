"""What an operator sees of `serve`: Prometheus metrics, a request id on every log line, no credential in the log.

- `Metrics`: requests answered (by endpoint and status), their latency, requests in progress, windows waiting for
  an engine loop, windows per batch, seconds of audio transcribed, open realtime sessions; `GET /metrics` serves
  them in Prometheus' text format (each app has its own registry).
- `RequestIds`: every request and WebSocket gets an id (the client's `X-Request-Id` when it is a plain token of
  at most 64 characters, else a new one), sent back in `X-Request-Id` and put in each log line uvicorn writes for
  it (`[id]`); the server's own lines name it (`request ID: …`).
- The access log never shows a credential: query parameters whose name says key, token, secret, password,
  signature or auth have their values replaced by `REDACTED` (the Authorization header is never logged at all).
"""

from __future__ import annotations

import contextvars
import copy
import logging
import re
import time
import uuid
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_PLAIN_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_CREDENTIAL = re.compile(r"key|token|secret|passw|signature|sig$|auth|credential|session", re.IGNORECASE)
ENDPOINTS = {
    "/v1/audio/transcriptions": "transcriptions",
    "/v1/audio/translations": "translations",
    "/v1/models": "models",
    "/v1/realtime": "realtime",
    "/health": "health",
    "/metrics": "metrics",
}
LATENCY_BUCKETS_S = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Metrics:
    """The server's Prometheus metrics, in a registry of its own."""

    def __init__(self) -> None:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram

        self.registry, self.media_type = CollectorRegistry(), CONTENT_TYPE_LATEST
        registry = self.registry
        self.requests = Counter("studio_requests", "HTTP requests answered", ["endpoint", "status"], registry=registry)
        self.latency = Histogram(
            "studio_request_seconds", "seconds from a request to the end of its answer", ["endpoint"],
            buckets=LATENCY_BUCKETS_S, registry=registry,
        )  # fmt: skip
        self.audio = Counter("studio_audio_seconds", "seconds of audio transcribed", registry=registry)
        self.batches = Histogram(
            "studio_batch_windows", "windows per engine-loop batch", buckets=BATCH_BUCKETS, registry=registry
        )
        self.in_progress = Gauge("studio_requests_in_progress", "requests admitted now", registry=registry)
        self.waiting = Gauge("studio_queue_windows", "windows waiting for an engine loop", registry=registry)
        self.sessions = Gauge("studio_realtime_sessions", "realtime sessions open", registry=registry)

    def watch(self, in_progress: Callable[[], int], waiting: Callable[[], int]) -> None:
        """Gauges read when scraped."""
        self.in_progress.set_function(in_progress)
        self.waiting.set_function(waiting)

    def text(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class RequestIds:
    """ASGI middleware: a request id for each request (see the module's docstring), and its answer counted."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _PLAIN_ID.match(given) else uuid.uuid4().hex[:16]
        REQUEST_ID.set(request_id)  # this task's context: every log line of the request, and its threads
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [499]  # 499: the client went away before an answer

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            await send(message)

        endpoint = next((name for path, name in ENDPOINTS.items() if scope["path"].startswith(path)), "other")
        try:
            await self.app(scope, receive, sending)
        except Exception:
            status[0] = 500
            raise
        finally:
            self.metrics.requests.labels(endpoint, str(status[0])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)


def redacted(path: str) -> str:
    """A request's path with the values of credential-like query parameters replaced: `/v1/models?api_key=sk-1`
    → `/v1/models?api_key=REDACTED`."""
    base, mark, query = path.partition("?")
    if not mark:
        return path
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        return base + "?REDACTED"  # not a form we can read: none of it is logged
    return base + "?" + urlencode([(k, "REDACTED" if _CREDENTIAL.search(k) else v) for k, v in pairs], safe="/:")


class RequestIdFilter(logging.Filter):
    """Puts the request id of the record's context in `record.request_id` ('-' outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class RedactCredentials(logging.Filter):
    """uvicorn's access records carry (client, method, path with query, HTTP version, status): the path redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, version, status = record.args
            record.args = (client, method, redacted(str(path)), version, status)
        return True


def log_config() -> dict:
    """uvicorn's logging configuration with the request id in each line and the access log redacted."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {
        "request_id": {"()": f"{__name__}.RequestIdFilter"},
        "redact": {"()": f"{__name__}.RedactCredentials"},
    }
    config["formatters"]["default"]["fmt"] = "%(levelprefix)s [%(request_id)s] %(message)s"
    config["formatters"]["access"]["fmt"] = (
        '%(levelprefix)s [%(request_id)s] %(client_addr)s - "%(request_line)s" %(status_code)s'
    )
    config["handlers"]["default"]["filters"] = ["request_id"]
    config["handlers"]["access"]["filters"] = ["redact", "request_id"]
    return config
