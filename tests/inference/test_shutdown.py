"""SIGTERM drains: no new streams, running ones may finish within the grace period, the rest get 1001."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import httpx
import pytest

from inference.client import FlashheadClient, ServerError
from tests.inference.conftest import REPO, encode_image, face_image, speech_like


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
        assert events[-1]["type"] == "summary" and events[-1]["frames"] == 10

        # One that does not is ended with a typed error and close code 1001.
        with pytest.raises(ServerError) as ended:
            async for _ in lingering.events():
                pass
        assert ended.value.code == "shutting_down" and ended.value.close_code == 1001
    assert running.process.wait(timeout=20) == 0
    log = running.log_text()
    assert '"msg": "draining"' in log and "ending 1 streams at shutdown" in log


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
