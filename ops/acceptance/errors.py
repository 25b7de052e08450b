"""Turn what the HTTP/WebSocket layers raise into errors the user can act on.

Unreachable and 401 stop a run (exit 3: nothing can be measured); a 503 (not ready, at
capacity) is a failed acceptance (exit 1) with the server's reason and Retry-After.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ops.errors import AuthenticationFailed, CheckFailed, ConnectionFailed, FlashheadError

if TYPE_CHECKING:
    from inference.client import ServerError


class ServerUnavailable(CheckFailed):
    """The server answered 503 (still loading, draining, or every stream slot busy)."""


def translate(error: BaseException, url: str, token_env: str | None) -> FlashheadError:
    """A FlashheadError with a remedy for `error` raised while talking to the server at `url`."""
    import httpx
    from websockets.exceptions import InvalidHandshake, InvalidStatus

    from inference.client import ServerError

    if isinstance(error, FlashheadError):
        return error
    if isinstance(error, ServerError):
        return _from_server_error(error, url, token_env)
    if isinstance(error, InvalidStatus):
        status = error.response.status_code
        return _from_status(status, f"WebSocket upgrade refused with HTTP {status}", url, token_env, None)
    if isinstance(error, httpx.TimeoutException):
        return ConnectionFailed(f"{url} did not answer in time ({type(error).__name__})",
                                "check the server's logs and load; raise --timeout for slow first requests")
    if isinstance(error, InvalidHandshake):
        return CheckFailed(f"the WebSocket handshake with {url}/v1/stream failed: {error}",
                           "is this a FlashHead server? a proxy or ingress in front must pass WebSocket upgrades "
                           "(Connection: Upgrade) to /v1/stream")
    if isinstance(error, (httpx.TransportError, OSError, TimeoutError)):
        return unreachable(url, error)
    return FlashheadError(f"unexpected answer from {url}: {type(error).__name__}: {error}",
                          "run again with -v and check the server's logs")


def unreachable(url: str, error: BaseException) -> ConnectionFailed:
    """Nothing answers at `url`."""
    reason = str(error) or type(error).__name__
    return ConnectionFailed(
        f"cannot reach the server at {url}: {reason}",
        "check the URL and port; is the server running (`flashhead deploy status`, `kubectl get pods`)? "
        "for a cluster service use `kubectl port-forward svc/flashhead 8000:8000` and --url http://127.0.0.1:8000")


# What to do about each 503 reason the server gives (code in the JSON error or the close reason).
UNAVAILABLE_REMEDIES = {
    "at_capacity": "every stream slot is busy: retry when streams finish, or raise FLASHHEAD_MAX_STREAMS "
                   "on the server if the GPU has headroom",
    "not_ready": "the model is still loading or warming: wait until /readyz answers 200 "
                 "(`--wait-ready SECONDS` waits for it)",
    "shutting_down": "the server is draining (SIGTERM, e.g. a rollout): run again once the new pod is ready",
}


def _from_server_error(error: ServerError, url: str, token_env: str | None) -> FlashheadError:
    remedy = error.remedy or UNAVAILABLE_REMEDIES.get(error.code)
    if error.status is not None:
        return _from_status(error.status, f"{error.code}: {error.message}", url, token_env, error.retry_after,
                            remedy)
    if error.code == "unauthorized":
        return _from_status(401, error.message, url, token_env, None)
    if error.code in UNAVAILABLE_REMEDIES:
        return _from_status(503, f"{error.code}: {error.message}", url, token_env, error.retry_after, remedy)
    return CheckFailed(f"the server failed the request: {error.code}: {error.message}"
                       + (f" (WebSocket close {error.close_code})" if error.close_code else ""),
                       error.remedy or "check the server's logs")


def _from_status(status: int, what: str, url: str, token_env: str | None, retry_after: float | None,
                 remedy: str | None = None) -> FlashheadError:
    if status in (401, 403):
        where = f"${token_env}" if token_env else "the environment variable named by --token-env"
        return AuthenticationFailed(
            f"{url} refused our credentials (HTTP {status}): {what}",
            f"put the server's API token (FLASHHEAD_API_TOKEN on the server) in {where}; "
            "it is sent as `Authorization: Bearer …` and never on the command line")
    if status == 503:
        retry = f"; it asks to retry after {retry_after:g} s" if retry_after else ""
        return ServerUnavailable(
            f"{url} is not serving (HTTP 503): {what}{retry}",
            remedy or UNAVAILABLE_REMEDIES["not_ready"])
    return CheckFailed(f"{url} answered HTTP {status}: {what}", remedy or "check the server's logs")
