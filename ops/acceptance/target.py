"""Where the server is and how to talk to it; the probes every run starts with."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ops.acceptance.checks import AcceptanceReport
from ops.acceptance.errors import ServerUnavailable, translate
from ops.errors import ConnectionFailed, FlashheadError, UsageError

if TYPE_CHECKING:
    import httpx

    from inference.client import FlashheadClient


@dataclass(frozen=True)
class Target:
    """A server URL, its bearer token (read from an environment variable, never argv) and timeouts."""

    url: str
    token: str | None = None
    token_env: str | None = None
    timeout_s: float = 300.0
    wait_ready_s: float = 0.0

    @classmethod
    def from_options(cls, url: str, token_env: str | None, timeout_s: float = 300.0,
                     wait_ready_s: float = 0.0) -> Target:
        """Validate the URL and read the token from `token_env` (missing variable = usage error)."""
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--url {url!r} is not an http(s) URL", "e.g. --url http://127.0.0.1:8000")
        token = None
        if token_env:
            token = os.environ.get(token_env)
            if not token:
                raise UsageError(f"--token-env {token_env}: the variable is not set or empty",
                                 f"export {token_env}=<the server's FLASHHEAD_API_TOKEN> first")
        return cls(url.rstrip("/"), token, token_env, timeout_s, wait_ready_s)

    def client(self) -> FlashheadClient:
        from inference.client import FlashheadClient

        return FlashheadClient(self.url, token=self.token, timeout=self.timeout_s)

    def error(self, exc: BaseException) -> FlashheadError:
        return translate(exc, self.url, self.token_env)


class RunStopped(Exception):
    """Nothing more can be measured (unreachable, refused, not serving); carries the user's error."""

    def __init__(self, error: FlashheadError):
        super().__init__(error.message)
        self.error = error


async def probe(client: FlashheadClient, target: Target, report: AcceptanceReport) -> dict[str, Any]:
    """Checks `live`, `ready` and `info`; returns /v1/info. Raises RunStopped when the server cannot serve."""
    deadline = time.monotonic() + target.wait_ready_s
    for name, path, passed in (("live", "/healthz", "GET /healthz → 200"),
                               ("ready", "/readyz", "GET /readyz → 200 (model warm)")):
        started = time.perf_counter()
        answer = await _poll(client, path, deadline)
        if isinstance(answer, BaseException):
            raise _stop(report, name, target.error(answer), started)
        if answer.status_code != 200 and not _warm_but_full(answer):
            raise _stop(report, name, _status_error(answer, target), started)
        if answer.status_code != 200:
            passed = "GET /readyz → 503 full (model warm; no room for another stream now)"
        report.add(name, True, passed, seconds=_since(started))

    started = time.perf_counter()
    try:
        info = await client.info()
    except Exception as exc:  # noqa: BLE001
        raise _stop(report, "info", target.error(exc), started) from None
    report.server = info
    report.add("info", True, _describe_info(info), measured=_info_facts(info), seconds=_since(started))
    return info


async def _poll(client: FlashheadClient, path: str, deadline: float) -> httpx.Response | BaseException:
    """GET `path` until it answers 200 (or 401/403, which waiting cannot fix) or `deadline` passes."""
    while True:
        answer: httpx.Response | BaseException
        try:
            answer = await client.http.get(path)
        except Exception as exc:  # noqa: BLE001 - handed back to be turned into a message
            answer = exc
        done = not isinstance(answer, BaseException) and (answer.status_code in (200, 401, 403)
                                                          or _warm_but_full(answer))
        if done or time.monotonic() >= deadline:
            return answer
        await asyncio.sleep(0.5)


def _warm_but_full(response: httpx.Response) -> bool:
    """/readyz's 503 `full`: the model is warm, the pod just has no room now (readiness routes on it)."""
    return response.status_code == 503 and (_server_reason(response) or "").startswith("full")


def _stop(report: AcceptanceReport, name: str, error: FlashheadError, started: float) -> RunStopped:
    report.add(name, False, error.message, remedy=error.remedy, seconds=_since(started),
               error=isinstance(error, ConnectionFailed))
    return RunStopped(error)


def _status_error(response: httpx.Response, target: Target) -> FlashheadError:
    from inference.client import ServerError

    status = response.status_code
    code = {401: "unauthorized", 403: "unauthorized", 503: "not_ready"}.get(status, "http")
    message = f"GET {response.request.url.path} answered {status}"
    if status == 503:
        message += " (model still loading or warming, or the server is draining)"
    reason = _server_reason(response)
    if reason:
        message += f"; the server says: {reason}"
    retry = response.headers.get("retry-after")
    error = target.error(ServerError(code, message, status=status,
                                     retry_after=float(retry) if retry and retry.isdigit() else None))
    if isinstance(error, ServerUnavailable) and target.wait_ready_s:
        error.message += f"; still not ready after waiting {target.wait_ready_s:g} s"
    return error


def _server_reason(response: httpx.Response) -> str | None:
    """The `status` / `message` of a JSON error body (e.g. a failed model load), if any."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    parts = [str(body[key]) for key in ("status", "message") if body.get(key)]
    return ": ".join(parts)[:300] or None


def _describe_info(info: dict[str, Any]) -> str:
    facts = _info_facts(info)
    return (f"{facts.get('backend')} {facts.get('model_type') or ''}, {facts.get('fps')} fps "
            f"{facts.get('width')}×{facts.get('height')}, {facts.get('chunk_frames')} frames/chunk, "
            f"{facts.get('active_streams')}/{facts.get('max_streams')} streams busy")


def _info_facts(info: dict[str, Any]) -> dict[str, Any]:
    keys = ("backend", "model_type", "fps", "width", "height", "chunk_frames", "max_streams", "active_streams")
    flat = {**info, **(info.get("geometry") or {}), **(info.get("capacity") or {})}
    return {key: flat.get(key) for key in keys if key in flat}


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)
