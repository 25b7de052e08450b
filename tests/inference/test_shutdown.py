"""SIGTERM drains: no new streams, running ones may finish within the grace period, the rest get 1001."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time

import httpx
import pytest
import websockets

from inference import protocol
from inference.client import FlashheadClient, ServerError
from tests.inference.conftest import REPO, TOKEN, encode_image, face_image, speech_like


@pytest.mark.asyncio
async def test_sigterm_drains_then_exits_zero(server_factory) -> None:
    running = server_factory({"FLASHHEAD_GRACE_SECONDS": "1.5", "FLASHHEAD_LOG_LEVEL": "info"})
    async with FlashheadClient(running.url) as client:
        avatar = await client.create_avatar(encode_image(face_image(), "PNG"))
        finishing = await client.stream(avatar_id=avatar)
        lingering = await client.stream(avatar_id=avatar)
        await lingering.send_audio(speech_like(0.3).tobytes())

        running.process.send_signal(signal.SIGTERM)
        for _ in range(100):
            if httpx.get(running.url + "/readyz").status_code == 503:
                break
            await asyncio.sleep(0.02)
        ready = httpx.get(running.url + "/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "draining"
        with pytest.raises(ServerError) as refused:
            await client.stream(avatar_id=avatar)
        assert refused.value.code == "not_ready" and refused.value.close_code == 1013

        # A stream that ends within the grace period gets all its frames and its summary.
        await finishing.send_audio(speech_like(0.4).tobytes())
        await finishing.end()
        events = [event async for event in finishing.events()]
        assert isinstance(events[-1], protocol.Summary) and events[-1].frames == 10

        # One that does not is ended with a typed error and close code 1001.
        with pytest.raises(ServerError) as ended:
            async for _ in lingering.events():
                pass
        assert ended.value.code == "shutting_down" and ended.value.close_code == 1001
    assert running.process.wait(timeout=20) == 0
    log = running.log_text()
    assert '"msg": "draining"' in log and "ending 1 streams at shutdown" in log


@pytest.mark.asyncio
async def test_sigterm_ends_connections_still_waiting_for_start(server_factory) -> None:
    """Connected but no `start` yet (authenticated by header, or not yet): our error and 1001 at the end of
    the grace period, not uvicorn's 1012 later, and not a wait for the `start` deadline."""
    grace = 1.5
    running = server_factory({"FLASHHEAD_GRACE_SECONDS": str(grace), "FLASHHEAD_READY_TIMEOUT_S": "60"},
                             token=TOKEN)
    by_header = await websockets.connect(running.ws_url, additional_headers=running.headers)
    by_start = await websockets.connect(running.ws_url)  # would send its token in `start`
    await asyncio.sleep(0.3)
    signalled = time.monotonic()
    running.process.send_signal(signal.SIGTERM)
    for connection in (by_header, by_start):
        error = protocol.parse_server_message(await asyncio.wait_for(connection.recv(), timeout=grace + 5))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await connection.recv()
        assert isinstance(error, protocol.Error) and error.code == "shutting_down"
        assert closed.value.rcvd is not None and closed.value.rcvd.code == protocol.CloseCode.GOING_AWAY
        assert closed.value.rcvd.reason.startswith("shutting_down: ")
    assert time.monotonic() - signalled < grace + 2
    assert running.process.wait(timeout=20) == 0


def test_config_error_exits_2_with_the_remedy() -> None:
    env = {"FLASHHEAD_HOST": "0.0.0.0", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "inference"], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "refusing to serve 0.0.0.0 without an API token" in result.stderr
    assert "FLASHHEAD_API_TOKEN" in result.stderr and "Traceback" not in result.stderr
    bad = subprocess.run([sys.executable, "-m", "inference"], cwd=REPO, capture_output=True, text=True, timeout=60,
                         env={"FLASHHEAD_MAX_STREAMS": "lots", "PATH": "/usr/bin:/bin"})
    assert bad.returncode == 2 and "FLASHHEAD_MAX_STREAMS='lots' is not a valid int" in bad.stderr
