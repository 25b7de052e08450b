"""The adapters' stream (shared by LiveKit and Pipecat) waits for room on a full server instead of
failing the agent's turn: capacity refusals are retried with backoff, other refusals are not."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from inference.client import FlashheadClient, ServerError, StreamSession
from inference.integrations.avatar_stream import AvatarStream
from inference.retry import RetryPolicy
from tests.inference.conftest import encode_image, face_image


@contextlib.asynccontextmanager
async def full_server(server_factory) -> AsyncIterator[tuple[FlashheadClient, str, StreamSession]]:
    """A one-slot server whose slot is taken: the client, an avatar, and the session holding the slot."""
    running = server_factory({"FLASHHEAD_MAX_STREAMS": "1"})
    async with FlashheadClient(running.url) as client:
        avatar = await client.create_avatar(encode_image(face_image(), "PNG"))
        holder = await client.stream(avatar_id=avatar, sample_rate=24000)
        try:
            yield client, avatar, holder
        finally:
            await holder.close()


@pytest.mark.asyncio
async def test_a_full_server_is_retried_until_a_slot_frees(server_factory) -> None:
    async with full_server(server_factory) as (client, avatar, holder):
        stream = AvatarStream(client, avatar_id=avatar, retry=RetryPolicy(attempts=20, deadline_s=20, base_s=0.1,
                                                                          cap_s=0.5))
        opening = asyncio.create_task(stream.open())
        started = time.monotonic()
        await asyncio.sleep(1.0)
        assert not opening.done(), "the second stream opened while the only slot was taken"
        await holder.close()
        session = await asyncio.wait_for(opening, 20)
        assert session.ready.protocol == 2 and time.monotonic() - started >= 1.0
        await session.close()


@pytest.mark.asyncio
async def test_a_server_that_stays_full_is_a_capacity_error_after_the_policy(server_factory) -> None:
    async with full_server(server_factory) as (client, avatar, _):
        stream = AvatarStream(client, avatar_id=avatar, retry=RetryPolicy(attempts=3, deadline_s=5, base_s=0.1,
                                                                          cap_s=0.2))
        with pytest.raises(ServerError) as refused:
            await asyncio.wait_for(stream.open(), 20)
        assert refused.value.close_code == 1013 or refused.value.status == 503, refused.value


@pytest.mark.asyncio
async def test_a_refusal_that_is_not_about_capacity_is_not_retried(server_factory) -> None:
    running = server_factory()
    async with FlashheadClient(running.url) as client:
        stream = AvatarStream(client, avatar_id="av_unknown", retry=RetryPolicy(attempts=8, deadline_s=30))
        started = time.monotonic()
        with pytest.raises(ServerError):
            await stream.open()
        assert time.monotonic() - started < 5
