"""The media worker pool: a crash, a memory overrun or a timeout fails that job only; the worker is replaced."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from inference.errors import BadInput, InferenceError, TooLarge, UnsupportedMedia
from inference.media.pool import MediaPool
from tests.inference import pool_jobs


@pytest_asyncio.fixture
async def pool() -> AsyncIterator[MediaPool]:
    started = MediaPool(size=2, memory_mb=256, timeout_s=3)
    await started.start()
    yield started
    await started.stop()


@pytest.mark.asyncio
async def test_a_segfault_fails_its_job_only(pool: MediaPool) -> None:
    before = {worker.process.pid for worker in pool.workers}
    slow = asyncio.create_task(pool.run(pool_jobs.sleep, 0.5))  # another request, on the other worker
    with pytest.raises(UnsupportedMedia, match="SIGSEGV") as crashed:
        await pool.run(pool_jobs.crash)
    assert crashed.value.remedy and "re-encode" in crashed.value.remedy
    assert await slow == 0.5
    assert pool.replaced == 1 and len(pool.workers) == 2
    assert {worker.process.pid for worker in pool.workers} != before
    assert await pool.run(pool_jobs.allocate, 1) == 2**20  # the replacement works
    assert pool.idle.qsize() == 2


@pytest.mark.asyncio
async def test_memory_overrun_is_too_large_and_the_worker_stays(pool: MediaPool) -> None:
    with pytest.raises(TooLarge, match="FLASHHEAD_MEDIA_MEMORY_MB"):
        await pool.run(pool_jobs.allocate, 512)
    assert await pool.run(pool_jobs.allocate, 128) == 128 * 2**20  # within the budget: fine
    assert pool.replaced == 0  # a MemoryError is an answer, not a crash


@pytest.mark.asyncio
async def test_timeout_kills_and_replaces_the_worker(pool: MediaPool) -> None:
    with pytest.raises(TooLarge, match="longer than 3 s"):
        await pool.run(pool_jobs.sleep, 30)
    assert pool.replaced == 1
    assert await pool.run(pool_jobs.sleep, 0.01) == 0.01


@pytest.mark.asyncio
async def test_errors_come_back_typed_with_their_remedy(pool: MediaPool) -> None:
    with pytest.raises(BadInput, match="no such thing") as refused:
        await pool.run(pool_jobs.refuse, "no such thing")
    assert refused.value.remedy == "a remedy that survives the trip back"
    with pytest.raises(InferenceError, match="internal server error") as bug:
        await pool.run(pool_jobs.bug)
    assert bug.value.status == 500
    assert pool.replaced == 0


@pytest.mark.asyncio
async def test_a_cancelled_request_gives_its_worker_back(pool: MediaPool) -> None:
    waiting = asyncio.create_task(pool.run(pool_jobs.sleep, 0.3))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    results = await asyncio.gather(*(pool.run(pool_jobs.sleep, 0.05) for _ in range(4)))
    assert results == [0.05] * 4
    for _ in range(100):  # the cancelled job's worker comes back when that job ends (0.3 s after it began)
        if pool.idle.qsize() == 2:
            break
        await asyncio.sleep(0.02)
    assert pool.idle.qsize() == 2 and pool.replaced == 0


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(field)


@pytest.mark.asyncio
async def test_long_audio_memory_comes_back(tmp_path) -> None:
    """599 s of 192 kHz silence (the request that took 1.96 GB and kept 1.6 GB): decoded to 16 kHz while
    decoding, in a worker whose memory goes back to its baseline after each of several in a row."""
    import subprocess

    from inference.media import AudioLimits, decode_audio

    flac = tmp_path / "long.flac"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=192000:cl=mono", "-t", "599",
                    str(flac)], check=True)
    data = flac.read_bytes()
    pool = MediaPool(size=1, memory_mb=1024, timeout_s=60)
    await pool.start()
    try:
        pid = next(iter(pool.workers)).process.pid
        baseline = _status_mb(pid, "VmRSS")
        after = []
        for _ in range(4):
            samples = await pool.run(decode_audio, data, AudioLimits(64 * 2**20, 600))
            assert samples.size == 599 * 16000
            after.append(_status_mb(pid, "VmRSS"))
        peak = _status_mb(pid, "VmHWM")
    finally:
        await pool.stop()
    print(f"worker RSS baseline {baseline:.0f} MB, after each decode {[round(x) for x in after]} MB, peak {peak:.0f}")
    assert max(after) < baseline + 60  # the 38 MB result and the decoder's buffers went back
    assert peak < baseline + 300
