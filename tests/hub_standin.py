"""A local stand-in for the few Hugging Face Hub endpoints a model upload uses, over a real socket.

`huggingface_hub` (HfApi.create_repo + upload_folder, with HF_ENDPOINT pointing here and HF_HUB_DISABLE_XET=1 so
that large files take the Git LFS protocol rather than Xet storage) talks to:

    POST /api/repos/create                              create the repository (private or public)
    POST /api/validate-yaml                             the README's metadata, parsed as YAML
    POST /api/models/{repo}/preupload/{revision}        which files go through LFS
    POST /{repo}.git/info/lfs/objects/batch             where to PUT each LFS object (basic transfer)
    PUT  /lfs/{oid}                                     the object's bytes (sha256 checked)
    POST /api/models/{repo}/commit/{revision}           the commit: NDJSON header, small files inline, LFS pointers

Everything received is kept in `repos[repo_id]` (files by path, private flag, commit messages) for assertions. A
token other than TOKEN gets 401. Run it by hand with `python tests/hub_standin.py PORT`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

TOKEN = "hf_standin_write_token"
LFS_THRESHOLD = 10 * 1024  # bytes: larger files go through LFS, as the Hub sends binaries and big files


class Handler(BaseHTTPRequestHandler):
    server: HubStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _reply(self, status: int, body: dict | None = None) -> None:
        data = json.dumps(body or {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._reply(401, {"error": "Invalid credentials in Authorization header"})
            return False
        return True

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.log.append(("POST", self.path))
        body = self._body()
        if not self._authorised():
            return
        repos = self.server.repos
        if self.path == "/api/repos/create":
            request = json.loads(body)
            repo_id = f"{request.get('organization') or 'user'}/{request['name']}"
            private = request.get("visibility", "private" if request.get("private") else "public") == "private"
            repos.setdefault(repo_id, {"private": private, "files": {}, "commits": []})
            return self._reply(200, {"url": f"{self.server.url}/{repo_id}", "name": repo_id})
        if self.path == "/api/validate-yaml":  # the client checks a README's metadata before committing it
            content = json.loads(body)["content"]
            try:
                meta = yaml.safe_load(content.split("---")[1]) if content.startswith("---") else None
            except yaml.YAMLError as err:
                return self._reply(400, {"error": f"invalid YAML metadata: {err}"})
            self.server.cards.append(meta)
            return self._reply(200, {"errors": [], "warnings": []})
        if match := re.fullmatch(r"/api/models/(.+?/.+?)/preupload/(.+)", self.path):
            files = json.loads(body)["files"]
            modes = [
                {
                    "path": f["path"],
                    "uploadMode": "lfs" if f["size"] > LFS_THRESHOLD else "regular",
                    "shouldIgnore": False,
                }
                for f in files
            ]
            return self._reply(200, {"files": modes})
        if match := re.fullmatch(r"/(.+?/.+?)\.git/info/lfs/objects/batch", self.path):
            objects = json.loads(body)["objects"]
            answer = [
                {
                    "oid": o["oid"],
                    "size": o["size"],
                    "authenticated": True,
                    "actions": {"upload": {"href": f"{self.server.url}/lfs/{o['oid']}", "header": {}}},
                }
                for o in objects
                if o["oid"] not in self.server.lfs
            ]
            return self._reply(200, {"transfer": "basic", "objects": answer})
        if match := re.fullmatch(r"/api/models/(.+?/.+?)/commit/(.+)", self.path):
            repo = repos.get(match.group(1))
            if repo is None:
                return self._reply(404, {"error": "Repository not found"})
            for line in body.decode().splitlines():
                item = json.loads(line)
                value = item["value"]
                if item["key"] == "header":
                    repo["commits"].append(value.get("summary"))
                elif item["key"] == "file":
                    repo["files"][value["path"]] = base64.b64decode(value["content"])
                elif item["key"] == "lfsFile":
                    repo["files"][value["path"]] = self.server.lfs[value["oid"]]
            oid = hashlib.sha1(body).hexdigest()
            return self._reply(200, {"commitUrl": f"{self.server.url}/{match.group(1)}/commit/{oid}", "commitOid": oid})
        self._reply(404, {"error": f"no route {self.path}"})

    def do_PUT(self) -> None:  # noqa: N802
        self.server.log.append(("PUT", self.path))
        data = self._body()
        match = re.fullmatch(r"/lfs/([0-9a-f]{64})", self.path)
        if not match or hashlib.sha256(data).hexdigest() != match.group(1):
            return self._reply(400, {"error": "sha256 mismatch"})
        self.server.lfs[match.group(1)] = data
        self._reply(200)


class HubStandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0):
        super().__init__(("127.0.0.1", port), Handler)
        self.repos: dict[str, dict] = {}
        self.lfs: dict[str, bytes] = {}
        self.log: list[tuple[str, str]] = []
        self.cards: list[dict | None] = []  # README metadata the client asked to validate, parsed

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> HubStandIn:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self


if __name__ == "__main__":
    server = HubStandIn(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(f"Hub stand-in on {server.url}; token {TOKEN}")
    server.serve_forever()
