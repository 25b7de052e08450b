"""1000 aborted streams: the server's open files and memory come back to their baseline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from pathlib import Path

import pytest
import websockets

from tests.inference.conftest import RunningServer, encode_image, face_image, speech_like

CONCURRENCY = 4


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def _aborted_stream(url: str, avatar: str, number: int) -> None:
    """Connect and vanish without a close frame, at a different point each time."""
    connection = await websockets.connect(url)
    try:
        stage = number % 4
        if stage >= 1:
            await connection.send(json.dumps({"type": "start", "avatar_id": avatar, "sample_rate": 24000}))
            await connection.recv()
        if stage == 2:
            await connection.send(speech_like(0.3, 24000).tobytes())
        if stage == 3:  # a whole chunk: generation is in flight or its frames are being sent
            await connection.send(speech_like(1.0, 24000).tobytes())
            await connection.recv()
    finally:
        connection.transport.abort()


async def _abort_many(url: str, avatar: str, count: int) -> None:
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(number: int) -> None:
        async with limit:
            # Refused at capacity while a slot was being freed: also a disconnect to survive.
            with contextlib.suppress(websockets.ConnectionClosed):
                await _aborted_stream(url, avatar, number)

    await asyncio.gather(*(one(number) for number in range(count)))


async def _settle(server: RunningServer, pid: int, baseline_fds: int) -> int:
    fds = _fds(pid)
    for _ in range(200):
        if server.info()["active_streams"] == 0 and (fds := _fds(pid)) <= baseline_fds:
            break
        await asyncio.sleep(0.05)
    return fds


@pytest.mark.asyncio
async def test_thousand_aborted_streams_leave_no_trace(server_factory) -> None:
    running = server_factory({"FLASHHEAD_MAX_STREAMS": "8", "FLASHHEAD_LOG_LEVEL": "error"})
    pid = running.process.pid
    from inference.client import FlashheadClient

    async with FlashheadClient(running.url) as client:
        avatar = await client.create_avatar(encode_image(face_image(), "PNG"))
    await _abort_many(running.ws_url, avatar, 100)  # warm the allocator and thread pools
    baseline_fds = await _settle(running, pid, 10**6)
    baseline_rss = _rss_mb(pid)

    started = time.monotonic()
    await _abort_many(running.ws_url, avatar, 1000)
    fds = await _settle(running, pid, baseline_fds)
    rss = _rss_mb(pid)

    info = running.info()
    assert info["active_streams"] == 0
    assert fds <= baseline_fds, f"open files {baseline_fds} -> {fds}"
    # One leaked stream holds >= 24 frames of 768 KB (19 MB); a few MB of slack is allocator noise.
    assert rss - baseline_rss < 20, f"RSS {baseline_rss:.0f} MB -> {rss:.0f} MB"
    async with FlashheadClient(running.url) as client:  # and it still serves
        result = await client.stream_audio(speech_like(0.4).tobytes(), avatar_id=avatar)
    assert len(result.frames) == 10
    print(f"1000 aborted streams in {time.monotonic() - started:.1f} s; fds {baseline_fds}->{fds}; "
          f"RSS {baseline_rss:.0f}->{rss:.0f} MB")
