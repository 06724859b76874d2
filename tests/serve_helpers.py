"""What the `serve` tests share: a server in a thread on a free port, the official client, a raw multipart form, a
child's stderr read up to a line, OpenAI's error shape checked, and the server's /metrics and /health read back."""

from __future__ import annotations

import json
import re
import select
import threading
import urllib.request

import openai
import pytest

from core.speech.server import listen, uvicorn_server

KEY = "sk-studio-test-key"


def start(app) -> tuple[str, callable]:
    """Serve `app` on a free port in a thread: (base URL ending in /v1, stop)."""
    sock = listen("127.0.0.1", 0)
    server = uvicorn_server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join()

    return f"http://127.0.0.1:{sock.getsockname()[1]}/v1", stop


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def client(url: str, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0)  # no retries: a 503 is seen as it is


def form(fields: dict[str, str], filename: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body as OpenAI's clients send it: (body, content type)."""
    boundary = "studio-test-boundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields.items()]
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n\r\n'
    body = "".join(parts).encode() + head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def read_until(stream, marker: str) -> str:
    """Lines of a child's stderr until one holds `marker` (an end of the stream fails with what was read)."""
    seen = []
    while True:
        ready, _, _ = select.select([stream], [], [], 300)  # a guard against a hang, not a measurement
        line = stream.readline() if ready else ""
        seen.append(line)
        assert line, "".join(seen)
        if marker in line:
            return line


class Lines:
    """A child's output read line by line on a thread of its own (so neither a full pipe nor Python's buffering
    stalls anyone): `wait_for(marker)` is the first line holding it, `text` all read so far."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._ready = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._ready:
                self.lines.append(line)
                self._ready.notify_all()
        with self._ready:
            self.lines.append(None)  # the end
            self._ready.notify_all()

    def wait_for(self, marker: str, timeout: float = 300) -> str:
        """A guard of `timeout` seconds against a hang, not a measurement."""
        with self._ready:
            while True:
                found = next((line for line in self.lines if line and marker in line), None)
                if found or None in self.lines:
                    break
                assert self._ready.wait(timeout), "".join(line for line in self.lines if line)
        assert found, f"no line with {marker!r} in: " + "".join(line for line in self.lines if line)
        return found

    @property
    def text(self) -> str:
        with self._ready:
            return "".join(line for line in self.lines if line)


def refusal(call) -> tuple[int, dict]:
    """(status, error) of a call the server refuses, its body checked to be OpenAI's error shape."""
    with pytest.raises(openai.APIStatusError) as caught:
        call()
    body = caught.value.response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    return caught.value.status_code, body["error"]


def _get(url: str, key: str | None = KEY) -> urllib.request.Request:
    return urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})


def metric(url: str, name: str, key: str | None = KEY) -> float:
    """The sum of a metric's samples named `name` (labels included in the name to pick one) from /metrics."""
    text = urllib.request.urlopen(_get(url.removesuffix("/v1") + "/metrics", key), timeout=60).read().decode()
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", re.MULTILINE)
    return sum(float(value) for _, value in pattern.findall(text))


def health(url: str) -> dict:
    try:
        return json.loads(urllib.request.urlopen(url.removesuffix("/v1") + "/health", timeout=60).read())
    except urllib.error.HTTPError as err:  # 503 while draining, with the same body
        return json.loads(err.read())
