"""A tiny stand-in HTTP server on loopback that misbehaves on purpose (broken MP4, 503, …).

Real acceptance runs talk to the real server; this one exists to show what users see when a
server answers wrongly, which the real server never does on purpose.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INFO = {"backend": "standin", "model_type": "lite", "fps": 25, "width": 512, "height": 512, "chunk_frames": 24,
        "capacity": {"max_streams": 3}, "active_streams": 0}


def make_handler(routes: dict[str, tuple[int, dict[str, str], bytes]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            status, headers, body = routes.get(self.path, (404, {"content-type": "text/plain"}, b"not found"))
            self.send_response(status)
            for key, value in {**headers, "content-length": str(len(body))}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def json_route(data: object, status: int = 200, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json", **headers}, json.dumps(data).encode()


def healthy_routes() -> dict[str, tuple[int, dict[str, str], bytes]]:
    """Probes, info and avatars like the real server; no /v1/generate and no /v1/stream."""
    return {"/healthz": json_route({"status": "alive"}), "/readyz": json_route({"status": "ready"}),
            "/v1/info": json_route(INFO), "/v1/avatars": json_route({"avatar_id": "av_standin"}, 201)}


@contextmanager
def standin_server(routes: dict[str, tuple[int, dict[str, str], bytes]]) -> Iterator[str]:
    """Serve `routes` (path -> status, headers, body) on 127.0.0.1; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(routes))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
