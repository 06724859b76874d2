"""A local stand-in for an OpenAI-compatible chat server, speaking the real protocol over a real socket.

POST /v1/chat/completions, streamed (server-sent events) or not. The model name picks the behaviour:
`echo` answers "You said: …" with the turn count (so history is visible), `fail-400`, `fail-401`, `fail-429`,
`fail-500` answer with that status, `slow` waits longer than a client's timeout, `garbage` answers 200 with JSON
that is not the chat protocol. The broken streams a real server or proxy can send: `drip` trickles words for
DRIP_FOR_S (each gap well inside any read timeout, so only a whole-reply deadline stops it), `huge` sends
HUGE_CHARS characters (streamed or whole), `not-json` sends `data: this is not json`, `number` sends a chunk whose
content is the number 5, `no-done` closes the stream after the words without a finish_reason or `[DONE]` (a dropped
connection or a crashed worker), and `echo-auth` refuses with a 400 whose message repeats the Authorization header.
Requests are recorded for assertions.
Run it by hand with `python tests/llm_standin.py PORT`.
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW_S = 3.0
DRIP_S = 0.05  # between two words of `drip`
DRIP_FOR_S = 10.0  # how long `drip` goes on: far past the small deadlines the tests pass in
HUGE_CHARS = 10_000_000  # what `huge` sends, in pieces of HUGE_PIECE characters
HUGE_PIECE = 10_000


def _chunk(model: str, delta: dict, finish_reason: str | None = None) -> bytes:
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    return f"data: {json.dumps(chunk)}\n\n".encode()


def _words(text: str) -> list[dict]:
    return [{"content": word if i == 0 else " " + word} for i, word in enumerate(text.split(" "))]


class Handler(BaseHTTPRequestHandler):
    server: StandIn

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _events(self, events, gap_s: float = 0.0) -> None:
        """Send server-sent events (bytes each); a client that stops reading (a deadline, a size cap) is fine."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            for event in events:
                self.wfile.write(event)
                self.wfile.flush()
                time.sleep(gap_s)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        if not self.path.endswith("/chat/completions"):
            return self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        authorization = self.headers.get("Authorization")
        self.server.requests.append({"body": request, "authorization": authorization})
        model = request.get("model", "")
        if model.startswith("fail-"):
            status = int(model.split("-")[1])
            return self._json(status, {"error": {"message": f"stand-in failure {status}", "type": "test"}})
        if model == "echo-auth":  # some proxies and home-made servers quote the offending header back
            return self._json(400, {"error": {"message": f"bad header {authorization}", "type": "invalid_request"}})
        if model == "slow":
            time.sleep(SLOW_S)
        if model == "garbage":  # a 200 that is not the chat protocol (a web page's JSON, a wrong path's answer)
            if request.get("stream"):
                return self._events([b'data: {"status": "ok", "items": []}\n\n', b"data: [DONE]\n\n"])
            return self._json(200, {"status": "ok", "items": []})
        users = [m["content"] for m in request["messages"] if m["role"] == "user"]
        text = f"You said: {users[-1]} (turn {len(users)})"
        if not request.get("stream"):
            text = "x" * HUGE_CHARS if model == "huge" else text
            return self._json(
                200,
                {
                    "id": "c1",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
                    ],
                },
            )
        done = [_chunk(model, {}, "stop"), b"data: [DONE]\n\n"]
        if model == "drip":
            words = (_chunk(model, {"content": "tick "}) for _ in range(int(DRIP_FOR_S / DRIP_S)))
            return self._events(itertools.chain(words, done), gap_s=DRIP_S)
        if model == "huge":
            pieces = (_chunk(model, {"content": "x" * HUGE_PIECE}) for _ in range(HUGE_CHARS // HUGE_PIECE))
            return self._events(itertools.chain(pieces, done))
        if model == "not-json":
            return self._events([_chunk(model, {"content": "Hello"}), b"data: this is not json\n\n", *done])
        if model == "number":
            return self._events([_chunk(model, {"content": "Hello"}), _chunk(model, {"content": 5}), *done])
        if model == "no-done":
            return self._events([_chunk(model, delta) for delta in _words(text)])
        # as real servers do: the words, then an empty delta with the finish_reason, then the [DONE] sentinel
        return self._events([*(_chunk(model, delta) for delta in _words(text)), *done])


class StandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0):
        super().__init__(("127.0.0.1", port), Handler)
        self.requests: list[dict] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def start(self) -> StandIn:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self


if __name__ == "__main__":
    server = StandIn(int(sys.argv[1]) if len(sys.argv) > 1 else 8808)
    print(server.base_url, flush=True)
    server.serve_forever()
