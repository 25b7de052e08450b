"""Three probes kept apart: alive, warm, and room for one more stream (the readiness that routes)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx
import pytest
from starlette.testclient import TestClient

from inference.app import create_app
from inference.backends.reference import ReferenceBackend
from inference.client import FlashheadClient
from inference.config import from_env
from tests.inference.conftest import RunningServer, encode_image, face_image


def _gauge(text: str, name: str) -> float:
    return float(next(line.split()[1] for line in text.splitlines() if line.startswith(name + " ")))


async def _until(check, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_a_full_server_is_not_ready_but_alive_and_warm(server_factory) -> None:
    running: RunningServer = server_factory({"FLASHHEAD_MAX_STREAMS": "1"})
    body = httpx.get(running.url + "/readyz").json()
    assert body == {"status": "ready", "active_streams": 0, "stream_capacity": 1, "instance": socket.gethostname()}
    async with FlashheadClient(running.url) as client:
        session = await client.stream(image=encode_image(face_image(), "PNG"))
        assert session.ready.instance == socket.gethostname()
        full = httpx.get(running.url + "/readyz")
        assert full.status_code == 503 and full.json()["status"] == "full"
        assert full.json()["active_streams"] == full.json()["stream_capacity"] == 1
        for path in ("/livez", "/healthz", "/startupz", "/v2/health/ready"):
            assert httpx.get(running.url + path).status_code == 200, path
        assert await client.ready()  # warm, though full: wait_ready does not hang on a busy server
        metrics = await client.metrics()
        assert _gauge(metrics, "flashhead_active_streams") == 1 and _gauge(metrics, "flashhead_stream_capacity") == 1
        await session.close()
        await _until(lambda: httpx.get(running.url + "/readyz").status_code == 200)
    assert (await _info(running))["server"]["instance"] == socket.gethostname()


async def _info(running: RunningServer) -> dict:
    async with FlashheadClient(running.url) as client:
        return await client.info()


class SlowLoadingBackend(ReferenceBackend):
    """Loads only once the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def load(self) -> None:
        self.release.wait(30)
        super().load()


def test_a_loading_server_is_alive_but_neither_warm_nor_ready() -> None:
    backend = SlowLoadingBackend()
    with TestClient(create_app(from_env({}), backend=backend)) as client:
        assert client.get("/livez").status_code == 200
        for path in ("/readyz", "/startupz"):
            answer = client.get(path)
            assert answer.status_code == 503 and answer.json()["status"] == "loading", path
        backend.release.set()
        deadline = time.monotonic() + 10
        while client.get("/startupz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert client.get("/readyz").json()["status"] == "ready"
