"""`accept fps --gpus N` against a fleet: real servers (reference backend) behind a balancer that routes
by readiness as a Service does; aggregate capacity, streams per pod and refusals in the report."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator

import pytest

from ops.acceptance.localserver import LocalServer
from tests.conftest import run_cli
from tests.inference.loadbalancer import ReadinessBalancer


@pytest.fixture
def fleet(start_server: Callable[..., LocalServer]) -> Iterator[tuple[list[LocalServer], ReadinessBalancer]]:
    """Two servers of two stream slots each ("one pod per GPU") behind the balancer, on its own loop."""
    servers = [start_server(FLASHHEAD_MAX_STREAMS="2", FLASHHEAD_INSTANCE=f"pod-{n}") for n in range(2)]
    balancer = ReadinessBalancer([server.url for server in servers])
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(balancer.start(), loop).result(30)
    yield servers, balancer
    asyncio.run_coroutine_threadsafe(balancer.stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_fps_against_a_fleet_fills_every_pod_and_reports_streams_per_pod(
        fleet: tuple[list[LocalServer], ReadinessBalancer]) -> None:
    _servers, balancer = fleet
    # No speed threshold (this machine's cores are shared): what is judged is where the streams went.
    result = run_cli("accept", "fps", "--url", balancer.url, "--gpus", "2", "--streams", "4", "--duration", "3",
                     "--warmup", "1", "--output", "json", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    measured = data["measurements"]["4-stream-throughput"]
    assert measured["streams"] == 4 and measured["capacity"] == {"per_pod": 2, "pods": 2, "total": 4}
    assert measured["streams_per_pod"] == {"pod-0": 2, "pod-1": 2}
    assert isinstance(measured["refusals"], int)
    checks = {check["name"]: check for check in data["checks"]}
    assert checks["4-stream-throughput.pods"]["ok"] is True
    assert checks["4-stream-throughput.pods"]["detail"] == "2 pod(s): pod-0: 2, pod-1: 2"
    assert checks["4-stream-throughput.frames"]["ok"] is True


def test_fps_refuses_a_run_larger_than_the_fleet_before_streaming(
        fleet: tuple[list[LocalServer], ReadinessBalancer]) -> None:
    _servers, balancer = fleet
    result = run_cli("accept", "fps", "--url", balancer.url, "--profile", "rtx4090-lite-gpus", "--gpus", "2",
                     "--duration", "1", "--output", "json", timeout=120)
    assert result.returncode == 1
    [check] = [c for c in json.loads(result.stdout)["checks"] if c["name"] == "realtime-per-gpu-2-gpus.streams"]
    assert check["detail"].startswith("2 pods of 2 streams each allow 4; realtime-per-gpu-2-gpus needs 6")


@pytest.mark.asyncio
async def test_the_probe_takes_a_full_pod_as_warm(start_server: Callable[..., LocalServer]) -> None:
    """A pod at capacity answers /readyz 503 `full` (so it leaves the endpoints): the model is warm all the same."""
    from inference.client import FlashheadClient
    from ops.acceptance.assets import FACE_PNG
    from ops.acceptance.checks import AcceptanceReport
    from ops.acceptance.target import Target, probe

    server = start_server(FLASHHEAD_MAX_STREAMS="1")
    target = Target.from_options(server.url, None)
    async with FlashheadClient(server.url) as client:
        session = await client.stream(image=FACE_PNG.read_bytes())
        try:
            report = AcceptanceReport("fps", server.url)
            await probe(client, target, report)
        finally:
            await session.close()
    ready = next(check for check in report.checks if check.name == "ready")
    assert ready.ok and ready.detail == "GET /readyz → 503 full (model warm; no room for another stream now)"
