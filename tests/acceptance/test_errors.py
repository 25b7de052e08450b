"""What the user reads for each way a server can refuse: exit code, message and remedy."""

from __future__ import annotations

import httpx
import pytest

from inference.client import ServerError
from ops.acceptance.errors import ServerUnavailable, translate
from ops.errors import AuthenticationFailed, CheckFailed, ConnectionFailed, ExitCode

URL = "http://gpu-1.internal:8000"


@pytest.mark.parametrize(("error", "kind", "exit_code", "in_message", "in_remedy"), [
    (httpx.ConnectError("[Errno 111] Connection refused"), ConnectionFailed, ExitCode.CONNECTION,
     "cannot reach the server", "port-forward"),
    (httpx.ReadTimeout("timed out"), ConnectionFailed, ExitCode.CONNECTION, "did not answer in time", "--timeout"),
    (ServerError("unauthorized", "missing or wrong bearer token", status=401), AuthenticationFailed,
     ExitCode.CONNECTION, "refused our credentials (HTTP 401)", "$MY_TOKEN"),
    (ServerError("unauthorized", "missing or wrong bearer token", close_code=1008), AuthenticationFailed,
     ExitCode.CONNECTION, "HTTP 401", "never on the command line"),
    (ServerError("not_ready", "loading", status=503, retry_after=5), ServerUnavailable, ExitCode.CHECK_FAILED,
     "retry after 5 s", "/readyz"),
    (ServerError("at_capacity", "3 of 3 streams busy", close_code=1013), ServerUnavailable,
     ExitCode.CHECK_FAILED, "HTTP 503", "FLASHHEAD_MAX_STREAMS"),
    (ServerError("shutting_down", "server shutting down", close_code=1001), ServerUnavailable,
     ExitCode.CHECK_FAILED, "shutting_down", "draining"),
    (ServerError("bad_input", "audio could not be decoded", status=415), CheckFailed, ExitCode.CHECK_FAILED,
     "HTTP 415", "logs"),
    (ServerError("backend", "the backend failed", close_code=1011), CheckFailed, ExitCode.CHECK_FAILED,
     "WebSocket close 1011", "logs"),
])
def test_each_refusal_gets_its_exit_code_message_and_remedy(error: BaseException, kind: type, exit_code: ExitCode,
                                                            in_message: str, in_remedy: str) -> None:
    translated = translate(error, URL, "MY_TOKEN")
    assert type(translated) is kind
    assert translated.exit_code == exit_code
    assert in_message in translated.message
    assert in_remedy in (translated.remedy or "")
