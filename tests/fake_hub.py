"""A fake of the Hugging Face Hub's HTTP API, just enough for ``huggingface_hub`` 2.4 uploads.

This mocks the Hub HTTP API only: the real ``huggingface_hub`` client code runs unchanged and
talks HTTP to a local server (stdlib ``http.server`` in a thread). Endpoints, as the client calls
them (see ``huggingface_hub/hf_api.py`` and ``_commit_api.py``):

- ``POST /api/repos/create``: JSON ``{name, organization, type, visibility?}``; 409 (with the
  repository's ``url``) when it exists, which ``create_repo(exist_ok=True)`` accepts.
- ``POST /api/{type}s/{repo_id}/branch/{branch}``: 409 when the branch exists.
- ``POST /api/validate-yaml``: the README's metadata; 400 when it is not a YAML mapping.
- ``POST /api/{type}s/{repo_id}/preupload/{revision}``: answers ``uploadMode: "regular"`` for
  every file, so the contents arrive inline (base64) in the commit payload and neither LFS nor
  Xet storage is involved.
- ``POST /api/{type}s/{repo_id}/commit/{revision}``: NDJSON, a ``header`` line then one ``file``
  line per file; answers ``{commitUrl, commitOid}``.

Unknown repositories and revisions get 404, as on the Hub, so a client that forgets to create
the repository or the branch fails here too. Every request is logged (method, path, headers with
lower-case names). Anything else gets 404 (the client's optional ``GET /api/agent-harnesses``
lookup included, which it tolerates).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import yaml


@dataclass
class FakeRepo:
    repo_type: str
    repo_id: str
    private: bool
    branches: dict[str, dict[str, bytes]] = field(default_factory=lambda: {"main": {}})
    commits: list[dict] = field(default_factory=list)


class FakeHub:
    """``with FakeHub() as hub:`` serves on ``hub.endpoint``; inspect ``hub.repos`` afterwards."""

    def __init__(self):
        self.repos: dict[tuple[str, str], FakeRepo] = {}
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeHub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def files(self, repo_id: str, repo_type: str = "dataset", revision: str = "main") -> dict[str, bytes]:
        """The files at ``revision`` of a repository, path -> bytes."""
        return dict(self.repos[(repo_type, repo_id)].branches[revision])


def _handler_for(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status >= 400:
                self.send_header("X-Error-Message", body.get("error", ""))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._log()
            self._reply(404, {"error": f"fake hub does not serve GET {self.path}"})

        def do_POST(self):
            body = self._log()
            path = unquote(urlsplit(self.path).path)
            with hub.lock:
                status, answer = self._route(path, body)
            self._reply(status, answer)

        def _log(self) -> bytes:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {key.lower(): value for key, value in self.headers.items()}
            hub.requests.append({"method": self.command, "path": self.path, "headers": headers})
            return body

        def _route(self, path: str, body: bytes) -> tuple[int, dict]:
            if path == "/api/repos/create":
                return self._create_repo(json.loads(body))
            if path == "/api/validate-yaml":
                return self._validate_yaml(json.loads(body))
            parts = path.split("/")
            # /api/{type}s/{owner}/{name}/{action}/{revision...}
            if len(parts) >= 7 and parts[1] == "api" and parts[2].endswith("s"):
                repo_type, repo_id, action = parts[2][:-1], f"{parts[3]}/{parts[4]}", parts[5]
                revision = "/".join(parts[6:])
                repo = hub.repos.get((repo_type, repo_id))
                if repo is None:
                    return 404, {"error": f"Repository Not Found: {repo_type} {repo_id}"}
                if action == "branch":
                    return self._create_branch(repo, revision, json.loads(body or b"{}"))
                if revision not in repo.branches:
                    return 404, {"error": f"Revision Not Found: {revision}"}
                if action == "preupload":
                    return self._preupload(json.loads(body))
                if action == "commit":
                    return self._commit(repo, revision, body)
            return 404, {"error": f"fake hub does not serve POST {path}"}

        def _create_repo(self, payload: dict) -> tuple[int, dict]:
            repo_type = payload.get("type") or "model"
            repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
            prefix = "" if repo_type == "model" else f"{repo_type}s/"
            url = f"{hub.endpoint}/{prefix}{repo_id}"
            if (repo_type, repo_id) in hub.repos:
                # The Hub names the existing repository in its 409 answer; the client reads "url".
                return 409, {"error": "You already created this repo", "url": url}
            hub.repos[(repo_type, repo_id)] = FakeRepo(repo_type, repo_id, payload.get("visibility") == "private")
            return 200, {"url": url}

        def _create_branch(self, repo: FakeRepo, branch: str, payload: dict) -> tuple[int, dict]:
            if branch in repo.branches:
                return 409, {"error": f"Branch {branch} already exists"}
            start = payload.get("startingPoint") or "main"
            repo.branches[branch] = dict(repo.branches[start])
            return 200, {}

        def _validate_yaml(self, payload: dict) -> tuple[int, dict]:
            content = payload["content"]
            if content.startswith("---"):
                try:
                    metadata = yaml.safe_load(content.split("---")[1])
                except yaml.YAMLError as err:
                    return 400, {"error": "invalid YAML", "errors": [{"message": str(err)}]}
                if not isinstance(metadata, dict):
                    return 400, {"error": "invalid YAML", "errors": [{"message": "metadata is not a mapping"}]}
            return 200, {"errors": [], "warnings": []}

        def _preupload(self, payload: dict) -> tuple[int, dict]:
            files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in payload["files"]]
            return 200, {"files": files, "commitOid": "0" * 40}

        def _commit(self, repo: FakeRepo, revision: str, body: bytes) -> tuple[int, dict]:
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            header = lines[0]
            if header.get("key") != "header":
                return 400, {"error": "first NDJSON line must be the header"}
            added: dict[str, bytes] = {}
            for line in lines[1:]:
                if line["key"] != "file" or line["value"].get("encoding") != "base64":
                    return 400, {"error": f"fake hub accepts only inline base64 files, got {line['key']}"}
                added[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
            repo.branches[revision].update(added)
            oid = hashlib.sha1(json.dumps([revision, sorted(added), len(repo.commits)]).encode()).hexdigest()
            repo.commits.append({"revision": revision, "summary": header["value"]["summary"], "files": sorted(added)})
            prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
            return 200, {"commitUrl": f"{hub.endpoint}/{prefix}{repo.repo_id}/commit/{oid}", "commitOid": oid}

    return Handler
