"""Start the bundled inference server on loopback in a child process, wait until ready, stop it.

Used by `flashhead demo` and by the acceptance tests: the real `python -m inference` under uvicorn,
with the CPU reference backend unless told otherwise. Inherited FLASHHEAD_* variables are dropped
so the run does not depend on the caller's shell.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ops.errors import FlashheadError, UsageError

SERVER_MODULES = ("starlette", "uvicorn", "numpy", "PIL", "av", "soxr")


class LocalServerFailed(FlashheadError):
    """The local server did not start or did not become ready."""


@dataclass
class LocalServer:
    """A running child server; `stop()` ends it (SIGTERM, then SIGKILL after `grace_s`)."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    token: str | None = None

    def stop(self, grace_s: float = 15.0) -> int:
        """Stop the server; returns its exit status (negative: killed by that signal)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return int(self.process.returncode)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def require_server_extra() -> None:
    """UsageError naming the install command when the server's libraries are missing."""
    missing = [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"the inference server's libraries are not installed ({', '.join(missing)})",
                         "install the server extra: pip install -e '.[server]' (or 'flashhead-ops[server]')")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_local_server(log_path: Path, port: int = 0, env: dict[str, str] | None = None,
                       token: str | None = None, ready_timeout_s: float = 60.0) -> LocalServer:
    """Run `python -m inference` on 127.0.0.1:`port` (0: a free one) and wait for /readyz."""
    require_server_extra()
    port = port or free_port()
    _require_free(port)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("FLASHHEAD_")}
    child_env.update({"FLASHHEAD_HOST": "127.0.0.1", "FLASHHEAD_PORT": str(port),
                      "FLASHHEAD_BACKEND": "reference", **(env or {})})
    if token:
        child_env["FLASHHEAD_API_TOKEN"] = token
    log_path = log_path.resolve()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # Run from our own output folder: `-m` puts the working directory first on sys.path, and the
    # caller's might hold some other `inference` package.
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "inference"], env=child_env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=log_path.parent)
    server = LocalServer(f"http://127.0.0.1:{port}", port, process, log_path, token)
    try:
        _wait_ready(server, ready_timeout_s)
    except BaseException:
        server.stop(grace_s=5)
        raise
    return server


def _require_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise UsageError(f"port {port} on 127.0.0.1 is already in use",
                             "pass another --port, or leave it out to pick a free one") from None


def _wait_ready(server: LocalServer, timeout_s: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise LocalServerFailed(f"the local server exited with status {server.process.returncode} "
                                    "before it was ready", f"see its log: {server.log_path}",
                                    details={"output_tail": server.log_tail()})
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise LocalServerFailed(f"the local server was not ready after {timeout_s:g} s",
                            f"see its log: {server.log_path}", details={"output_tail": server.log_tail()})
