"""A small Hugging Face Hub-compatible HTTP server on loopback, for the real huggingface_hub client.

It serves what `snapshot_download` / `hf_hub_download` / `HfApi.repo_info(files_metadata=True)` use:
  GET  /api/models/{repo}/revision/{rev}[?blobs=true]   repo info (sha, siblings with size/blobId/lfs)
  GET  /api/models/{repo}/tree/{rev}[/{path}]           tree listing (huggingface_hub 1.x/2.x)
  POST /api/models/{repo}/paths-info/{rev}              paths info
  HEAD/GET /{repo}/resolve/{rev}/{path}                 X-Repo-Commit, ETag / X-Linked-Etag (sha256
                                                        for LFS), X-Linked-Size, Range requests (206)
Test knobs: `require_token` (401 without `Authorization: Bearer <token>`), `faults` (drop the
connection after N bytes of a file, K times), `throttle_bps` (file bodies sent at that many bytes a
second, like a slow link), `stall_s` (file bodies start only after that many seconds), and a request
log with the headers seen and, for file bodies, when they finished.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

REPOS_JSON = Path(__file__).resolve().parents[1] / "fixtures" / "hf" / "repos.json"


@dataclass
class RepoFile:
    path: str
    content: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def blob_id(self) -> str:
        if self.lfs:  # the git blob of an LFS file is its pointer
            return hashlib.sha1(f"blob {len(self.pointer)}\0".encode() + self.pointer).hexdigest()
        return hashlib.sha1(f"blob {len(self.content)}\0".encode() + self.content).hexdigest()

    @property
    def pointer(self) -> bytes:
        return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\n"
                f"size {len(self.content)}\n").encode()

    def entry(self, expand: bool = True) -> dict:
        data = {"type": "file", "path": self.path, "rfilename": self.path, "size": len(self.content),
                "oid": self.blob_id, "blobId": self.blob_id}
        if self.lfs:
            data["size"] = len(self.content)
            data["lfs"] = {"oid": self.sha256, "sha256": self.sha256, "size": len(self.content),
                           "pointerSize": len(self.pointer)}
        return data


@dataclass
class Repo:
    repo_id: str
    commit: str
    files: dict[str, RepoFile]


def load_repos(path: Path = REPOS_JSON) -> dict[str, Repo]:
    """The fixture repos, with content generated from each repo's seed."""
    spec = json.loads(path.read_text())["repos"]
    repos = {}
    for repo_id, repo in spec.items():
        rng = random.Random(repo["seed"])
        files = {}
        for name, meta in repo["files"].items():
            if meta.get("lfs"):
                content = rng.randbytes(meta["size"])
            else:
                content = (json.dumps({"file": name, "repo": repo_id}) + "\n").encode().ljust(meta["size"], b" ")
            files[name] = RepoFile(name, content, bool(meta.get("lfs")))
        commit = hashlib.sha1(json.dumps(sorted((n, f.sha256) for n, f in files.items())).encode()).hexdigest()
        repos[repo_id] = Repo(repo_id, commit, files)
    return repos


@dataclass
class Fault:
    drop_after: int  # bytes sent before the connection is cut
    times: int  # how many GETs of the file are cut


@dataclass
class HubServer:
    repos: dict[str, Repo]
    require_token: str | None = None
    faults: dict[str, Fault] = field(default_factory=dict)  # "repo/path" -> Fault
    throttle_bps: int | None = None
    stall_s: float = 0.0
    log: list[dict] = field(default_factory=list)
    httpd: ThreadingHTTPServer | None = None
    address: str = "127.0.0.1"  # or this machine's side of the test network of netns hosts

    @property
    def url(self) -> str:
        assert self.httpd is not None
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        hub = self

        class Handler(_Handler):
            server_hub = hub

        self.httpd = ThreadingHTTPServer((self.address, 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()

    def requests_for(self, path_suffix: str, method: str = "GET") -> list[dict]:
        return [r for r in self.log if r["method"] == method and r["path"].endswith(path_suffix)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_hub: HubServer
    _entry: dict

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._route(body=False)

    def do_GET(self) -> None:
        self._route(body=True)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._post_body = self.rfile.read(length).decode()
        self._route(body=True)

    def _route(self, body: bool) -> None:
        hub = self.server_hub
        url = urlsplit(self.path)
        path = unquote(url.path)
        self._entry = {"method": self.command, "path": path, "range": self.headers.get("Range"),
                       "authorization": self.headers.get("Authorization"), "started": time.monotonic()}
        hub.log.append(self._entry)
        if hub.require_token and self.headers.get("Authorization") != f"Bearer {hub.require_token}":
            return self._json(401, {"error": "Invalid credentials"}, body, {"X-Error-Code": "RepoNotFound"})
        parts = path.strip("/").split("/")
        query = parse_qs(url.query)
        if parts[:2] == ["api", "models"] and len(parts) >= 6:
            repo = hub.repos.get(f"{parts[2]}/{parts[3]}")
            if repo is None:
                return self._json(404, {"error": "Repository not found"}, body, {"X-Error-Code": "RepoNotFound"})
            kind, revision, rest = parts[4], parts[5], "/".join(parts[6:])
            if revision not in ("main", repo.commit):
                return self._json(404, {"error": f"Invalid rev id: {revision}"}, body,
                                  {"X-Error-Code": "RevisionNotFound"})
            if kind == "revision":
                return self._json(200, self._info(repo, query.get("blobs", ["false"])[0].lower() == "true"), body)
            if kind == "tree":
                entries = [f.entry() for f in repo.files.values() if f.path.startswith(rest)]
                return self._json(200, entries, body)
            if kind == "paths-info":
                wanted = parse_qs(getattr(self, "_post_body", "")).get("paths", [])
                return self._json(200, [repo.files[p].entry() for p in wanted if p in repo.files], body)
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._file(hub, f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), body)
        return self._json(404, {"error": "not found"}, body)

    def _info(self, repo: Repo, blobs: bool) -> dict:
        siblings = [f.entry() if blobs else {"rfilename": f.path} for f in repo.files.values()]
        for sibling in siblings:
            sibling.pop("path", None), sibling.pop("type", None), sibling.pop("oid", None)
        return {"_id": repo.commit[:24], "id": repo.repo_id, "modelId": repo.repo_id, "sha": repo.commit,
                "private": False, "disabled": False, "gated": False, "tags": [], "downloads": 0, "likes": 0,
                "lastModified": "2026-02-12T00:00:00.000Z", "createdAt": "2026-02-12T00:00:00.000Z",
                "siblings": siblings}

    def _file(self, hub: HubServer, repo_id: str, revision: str, name: str, body: bool) -> None:
        repo = hub.repos.get(repo_id)
        if repo is None or revision not in ("main", repo.commit):
            return self._json(404, {"error": "not found"}, body, {"X-Error-Code": "RevisionNotFound"})
        file = repo.files.get(name)
        if file is None:
            return self._json(404, {"error": "Entry not found"}, body,
                              {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": repo.commit})
        content = file.content
        headers = {"X-Repo-Commit": repo.commit, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream",
                   "ETag": f'"{file.sha256 if file.lfs else file.blob_id}"'}
        if file.lfs:
            headers["X-Linked-Etag"] = f'"{file.sha256}"'
            headers["X-Linked-Size"] = str(len(content))
        status, start = 200, 0
        wanted = self.headers.get("Range")
        if wanted and wanted.startswith("bytes="):
            start = int(wanted[6:].split("-")[0] or 0)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
        payload = content[start:]
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if not body:
            return
        fault = hub.faults.get(f"{repo_id}/{name}")
        if fault and fault.times > 0:
            fault.times -= 1
            self.wfile.write(payload[:fault.drop_after])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        entry = self._entry
        time.sleep(hub.stall_s)
        if hub.throttle_bps:
            block = max(hub.throttle_bps // 20, 1)
            for offset in range(0, len(payload), block):
                self.wfile.write(payload[offset:offset + block])
                self.wfile.flush()
                time.sleep(0.05)
        else:
            self.wfile.write(payload)
        entry["finished"] = time.monotonic()

    def _json(self, status: int, data: object, body: bool, headers: dict | None = None) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(payload)
