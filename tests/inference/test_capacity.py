"""Admission by measured speed: a stream is refused when one more would make streams fall behind."""

from __future__ import annotations

import asyncio

import pytest

from inference import protocol
from inference.capacity import ChunkTimes, safe_streams
from inference.client import FlashheadClient, ServerError
from tests.inference.conftest import encode_image, face_image, speech_like


def test_chunk_times_keep_a_recent_median_per_batch_size() -> None:
    times = ChunkTimes()
    for seconds in (0.5, 0.1, 0.1, 0.1):
        times.record(1, seconds)
    times.record(4, 0.3)
    assert times.medians() == {1: 0.1, 4: 0.3}
    assert safe_streams(times.medians(), 0.96, 4) == 11


@pytest.mark.asyncio
async def test_streams_beyond_the_realtime_capacity_are_refused(server_factory) -> None:
    # 300 ms of model time per 0.96 s chunk: two streams taking turns fit (0.6 s), three do not (0.9 s
    # > 90 % of 0.96 s), although max_streams would allow eight.
    running = server_factory({"FLASHHEAD_REFERENCE_CHUNK_MS": "300", "FLASHHEAD_MAX_STREAMS": "8"})
    async with FlashheadClient(running.url) as client:
        avatar = await client.create_avatar(encode_image(face_image(), "PNG"))
        assert (await client.info())["capacity"]["safe_streams"] is None  # nothing measured yet
        first = await client.stream(avatar_id=avatar)
        await first.send_audio(speech_like(2.0).tobytes())
        while not (await client.info())["capacity"]["chunk_seconds_by_batch"]:
            await asyncio.sleep(0.05)
        capacity = (await client.info())["capacity"]
        assert capacity["admission"] == "realtime"
        assert capacity["safe_streams"] == capacity["stream_limit"] == 2
        second = await client.stream(avatar_id=avatar)
        with pytest.raises(ServerError) as refused:
            await client.stream(avatar_id=avatar)
        assert refused.value.code == "at_capacity"
        assert refused.value.close_code == protocol.CloseCode.TRY_AGAIN_LATER
        assert "real time" in str(refused.value)
        for session in (first, second):
            await session.close()


@pytest.mark.asyncio
async def test_fixed_admission_ignores_speed(server_factory) -> None:
    running = server_factory({"FLASHHEAD_REFERENCE_CHUNK_MS": "300", "FLASHHEAD_MAX_STREAMS": "3",
                              "FLASHHEAD_ADMISSION": "fixed"})
    async with FlashheadClient(running.url) as client:
        avatar = await client.create_avatar(encode_image(face_image(), "PNG"))
        first = await client.stream(avatar_id=avatar)
        await first.send_audio(speech_like(1.0).tobytes())
        while not (await client.info())["capacity"]["chunk_seconds_by_batch"]:
            await asyncio.sleep(0.05)
        sessions = [first] + [await client.stream(avatar_id=avatar) for _ in range(2)]
        assert (await client.info())["capacity"]["stream_limit"] == 3
        for session in sessions:
            await session.close()
