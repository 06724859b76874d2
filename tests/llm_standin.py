"""A local stand-in for an OpenAI-compatible chat server, speaking the real protocol over a real socket.

POST /v1/chat/completions, streamed (server-sent events) or not. The model name picks the behaviour:
`echo` answers "You said: …" with the turn count (so history is visible), `fail-400`, `fail-401`, `fail-429`,
`fail-500` answer with that status, `slow` waits longer than a client's timeout, `garbage` answers 200 with JSON
that is not the chat protocol. Requests are recorded for assertions.
Run it by hand with `python tests/llm_standin.py PORT`.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW_S = 3.0


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

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        if not self.path.endswith("/chat/completions"):
            return self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.server.requests.append({"body": request, "authorization": self.headers.get("Authorization")})
        model = request.get("model", "")
        if model.startswith("fail-"):
            status = int(model.split("-")[1])
            return self._json(status, {"error": {"message": f"stand-in failure {status}", "type": "test"}})
        if model == "slow":
            time.sleep(SLOW_S)
        if model == "garbage":  # a 200 that is not the chat protocol (a web page's JSON, a wrong path's answer)
            if request.get("stream"):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                self.wfile.write(b'data: {"status": "ok", "items": []}\n\ndata: [DONE]\n\n')
                return None
            return self._json(200, {"status": "ok", "items": []})
        users = [m["content"] for m in request["messages"] if m["role"] == "user"]
        text = f"You said: {users[-1]} (turn {len(users)})"
        if not request.get("stream"):
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
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for i, word in enumerate(text.split(" ")):
            piece = word if i == 0 else " " + word
            chunk = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")


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
