"""Capacity routing: real servers (reference backend, two stream slots each) behind a load balancer that
honours readiness as a Service's endpoints do. New streams go to pods with room; a full pod takes none;
the client's retry covers the probe's lag and a moment with no room at all."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import pytest_asyncio

from inference.client import FlashheadClient, ServerError, StreamSession
from inference.retry import RetryPolicy
from tests.inference.conftest import RunningServer, encode_image, face_image
from tests.inference.loadbalancer import ReadinessBalancer

SLOTS = 2
PODS = 3


@pytest.fixture
def pods(server_factory: Callable[..., RunningServer]) -> list[RunningServer]:
    return [server_factory({"FLASHHEAD_MAX_STREAMS": str(SLOTS), "FLASHHEAD_INSTANCE": f"pod-{n}"})
            for n in range(PODS)]


@pytest_asyncio.fixture
async def balancer(pods: list[RunningServer]) -> AsyncIterator[ReadinessBalancer]:
    lb = ReadinessBalancer([pod.url for pod in pods])
    await lb.start()
    yield lb
    await lb.stop()


def active(pod: RunningServer) -> int:
    return int(httpx.get(pod.url + "/readyz").json()["active_streams"])


@pytest.mark.asyncio
async def test_new_streams_skip_a_full_pod_and_wait_for_room_when_all_are_full(
        pods: list[RunningServer], balancer: ReadinessBalancer) -> None:
    image = encode_image(face_image(), "PNG")
    refusals: list[int] = []
    sessions: list[StreamSession] = []
    async with FlashheadClient(pods[0].url) as direct, FlashheadClient(balancer.url) as client:
        try:
            sessions += [await direct.stream(image=image) for _ in range(SLOTS)]  # pod-0 is full
            await balancer.next_poll()
            for _ in range((PODS - 1) * SLOTS):
                session = await client.stream_retrying(image=image, on_refusal=lambda e, n: refusals.append(n))
                sessions.append(session)
                await balancer.next_poll()  # a probe period passes between arrivals
            landed = Counter(s.ready.instance for s in sessions[SLOTS:])
            assert landed == {"pod-1": SLOTS, "pod-2": SLOTS}, "no stream lands on the full pod-0"
            assert refusals == [], "with the endpoints current, no pod refuses"

            # Every pod is full: the balancer has no endpoint and answers 503; the retry gives up in bounds.
            with pytest.raises(Exception) as caught:
                await client.stream_retrying(RetryPolicy(attempts=3, base_s=0.05, cap_s=0.1), image=image,
                                             on_refusal=lambda e, n: refusals.append(n))
            assert "503" in str(caught.value) and refusals == [1, 2, 3] and balancer.unrouted >= 3

            # A stream ends on pod-1: the next arrival waits (retrying) until its readiness says room.
            await sessions.pop(SLOTS).close()
            refusals.clear()
            late = await client.stream_retrying(image=image, on_refusal=lambda e, n: refusals.append(n))
            sessions.append(late)
            assert late.ready.instance == "pod-1"
            assert [active(pod) for pod in pods] == [SLOTS] * PODS
        finally:
            for session in sessions:
                await session.close()


@pytest.mark.asyncio
async def test_a_burst_of_streams_fills_every_pod_and_none_is_lost(pods: list[RunningServer],
                                                                   balancer: ReadinessBalancer) -> None:
    """All arrive at once, faster than readiness can follow: pods refuse the excess (1013), the clients
    retry with backoff, and every stream opens; no pod ever holds more than its slots."""
    image = encode_image(face_image(), "PNG")
    refusals: list[ServerError] = []
    async with FlashheadClient(balancer.url) as client:
        sessions = await asyncio.gather(*(
            client.stream_retrying(RetryPolicy(attempts=20, deadline_s=60), image=image,
                                   on_refusal=lambda e, n: refusals.append(e))  # type: ignore[arg-type]
            for _ in range(PODS * SLOTS)))
        try:
            assert Counter(s.ready.instance for s in sessions) == {f"pod-{n}": SLOTS for n in range(PODS)}
            assert [active(pod) for pod in pods] == [SLOTS] * PODS
            assert all(getattr(e, "close_code", None) == 1013 or "503" in str(e) for e in refusals)
        finally:
            for session in sessions:
                await session.close()
