"""A small hub-compatible HTTP server on 127.0.0.1 for tests: the real huggingface_hub client downloads from it.

It answers what ``hf_hub_download`` needs (read from huggingface_hub's ``file_download.py`` /
``utils/_http.py``, version 2.4):

* ``HEAD``/``GET /{repo_id}/resolve/{revision}/{filename}`` with ``X-Repo-Commit`` (the commit the revision
  resolves to; required), ``ETag`` (required; names the blob in the cache) and ``Content-Length``;
* like the Hub, large files (``*.safetensors``) answer with a 302 to a "CDN" on another origin
  (``http://localhost:PORT/lfs/<sha256>``) carrying ``X-Linked-Etag`` / ``X-Linked-Size``; the client does not
  follow cross-origin redirects on HEAD and downloads from the ``Location``;
* errors as ``404`` with ``X-Error-Code`` ``RepoNotFound`` / ``RevisionNotFound`` / ``EntryNotFound``, which
  huggingface_hub maps to its typed errors.

Revisions are commits (40 hex digits) or branch/tag names (``main`` and any you add).
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class _Repo:
    commits: dict[str, Path] = field(default_factory=dict)  # commit → folder holding that commit's files
    refs: dict[str, str] = field(default_factory=dict)  # branch or tag → commit


class HubServer:
    """Serves model directories stored under ``root`` as Hub repositories; records every request."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.repos: dict[str, _Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.overrides: dict[tuple[str, str, str], bytes] = {}  # (repo, commit, filename) → bytes served instead
        self.lie_about_etag = False  # serve overridden bytes under the ETag of the real file (a bad mirror)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # ------------------------------------------------------------------ repository content
    def publish(self, repo_id: str, folder: Path, *, branch: str = "main", tags: tuple[str, ...] = ()) -> str:
        """Commit a copy of ``folder``'s files to ``repo_id``; move ``branch`` (and ``tags``) to it; return the commit."""
        repo = self.repos.setdefault(repo_id, _Repo())
        h = hashlib.sha1(repo_id.encode())
        h.update(str(len(repo.commits)).encode())
        for p in sorted(Path(folder).iterdir()):
            h.update(p.name.encode())
            h.update(p.read_bytes())
        commit = h.hexdigest()
        dest = self.root / repo_id / commit
        shutil.copytree(folder, dest)
        repo.commits[commit] = dest
        for ref in (branch, *tags):
            repo.refs[ref] = commit
        return commit

    def count(self, method: str, fragment: str = "") -> int:
        return sum(1 for m, p in self.requests if m == method and fragment in p)

    # ------------------------------------------------------------------ request handling
    def _resolve(self, repo_id: str, revision: str) -> str | None:
        repo = self.repos[repo_id]
        if revision in repo.commits:
            return revision
        return repo.refs.get(revision)

    def _blob(self, repo_id: str, commit: str, filename: str) -> tuple[bytes, str]:
        """(bytes served, sha256 of the committed file)."""
        real = (self.repos[repo_id].commits[commit] / filename).read_bytes()
        served = self.overrides.get((repo_id, commit, filename), real)
        sha = hashlib.sha256(real if self.lie_about_etag else served).hexdigest()
        return served, sha


def _handler(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: stop() really takes the server down

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "GET" and body:
                self.wfile.write(body)

        def _error(self, code: str, message: str, commit: str | None = None) -> None:
            headers = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "text/plain"}
            if commit:
                headers["X-Repo-Commit"] = commit
            self._send(404, headers, message.encode())

        def _serve(self) -> None:
            path = urlsplit(self.path).path
            hub.requests.append((self.command, path))
            parts = path.lstrip("/").split("/")
            if parts[0] == "lfs" and len(parts) == 2:  # the "CDN": blobs by sha256
                for repo_id, repo in hub.repos.items():
                    for commit, folder in repo.commits.items():
                        for f in folder.iterdir():
                            data, sha = hub._blob(repo_id, commit, f.name)
                            if sha == parts[1]:
                                return self._send(200, {"ETag": f'"{sha}"', "Content-Type": "application/octet-stream"},
                                                  data)
                return self._send(404, {}, b"no such blob")
            if len(parts) < 5 or parts[2] != "resolve":
                return self._error("RepoNotFound", f"Unsupported path {path}")
            repo_id, revision, filename = "/".join(parts[:2]), unquote(parts[3]), unquote("/".join(parts[4:]))
            if repo_id not in hub.repos:
                return self._error("RepoNotFound", f"Repository {repo_id} not found")
            commit = hub._resolve(repo_id, revision)
            if commit is None:
                return self._error("RevisionNotFound", f"Invalid rev id: {revision}")
            if not (hub.repos[repo_id].commits[commit] / filename).is_file():
                return self._error("EntryNotFound", f"{filename} does not exist at {commit}", commit)
            data, sha = hub._blob(repo_id, commit, filename)
            headers = {"X-Repo-Commit": commit, "Content-Type": "application/octet-stream"}
            if filename.endswith(".safetensors"):  # LFS file: redirect to the CDN like the Hub does
                headers |= {"Location": f"http://localhost:{hub.port}/lfs/{sha}", "X-Linked-Etag": f'"{sha}"',
                            "X-Linked-Size": str(len(data)), "ETag": f'"{hashlib.sha1(data).hexdigest()}"'}
                return self._send(302, headers)
            headers["ETag"] = f'"{sha}"'
            return self._send(200, headers, data)

        do_GET = _serve
        do_HEAD = _serve

    return Handler
