"""The real server over WS /v1/stream: order and count, resampling, interrupt, capacity, disconnects."""

from __future__ import annotations

import asyncio
import json
import math

import numpy as np
import pytest
import websockets

from inference import protocol
from inference.client import FlashheadClient, ServerError
from tests.inference.conftest import TOKEN, RunningServer, encode_image, face_image, speech_like


async def _avatar(client: FlashheadClient) -> str:
    return await client.create_avatar(encode_image(face_image(), "PNG"))


async def _wait_active(server: RunningServer, count: int) -> None:
    for _ in range(500):
        if server.info()["active_streams"] == count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"active_streams never became {count}: {server.info()['active_streams']}")


@pytest.mark.asyncio
async def test_frames_in_order_and_count_with_24khz_input(server: RunningServer) -> None:
    seconds, rate = 2.5, 24000
    pcm = speech_like(seconds, rate).tobytes()
    async with FlashheadClient(server.url) as client:
        result = await client.stream_audio(pcm, sample_rate=rate, avatar_id=await _avatar(client))
    assert result.ready.sample_rate == rate and result.ready.model_sample_rate == 16000
    expected = math.ceil(seconds * 25)
    assert [frame.index for frame in result.frames] == list(range(expected))
    assert [frame.pts for frame in result.frames] == [i / 25 for i in range(expected)]
    assert result.summary is not None
    assert result.summary.frames == expected and result.summary.audio_seconds == seconds
    assert sum(stat.frames for stat in result.stats) == expected
    assert [stat.chunk for stat in result.stats] == list(range(len(result.stats)))
    assert all(frame.data[:2] == b"\xff\xd8" for frame in result.frames)  # JPEG
    assert result.frames[0].to_array().shape == (512, 512, 3)
    assert result.summary.ttff_ms is not None and result.ttff_s is not None


@pytest.mark.asyncio
async def test_mouth_follows_audio(server: RunningServer) -> None:
    """Silence then speech: the frames of the speech differ from those of the silence (rgb output)."""
    pcm = np.concatenate([np.zeros((16000, 1), np.int16), speech_like(1.0)]).tobytes()
    async with FlashheadClient(server.url) as client:
        result = await client.stream_audio(pcm, avatar_id=await _avatar(client), output="rgb")
    frames = [frame.to_array() for frame in result.frames]
    assert len(frames) == 50
    assert np.array_equal(frames[5], frames[20])  # silence: the mouth rests
    moving = [not np.array_equal(frames[20], frame) for frame in frames[30:]]
    assert sum(moving) > 10


@pytest.mark.asyncio
async def test_segments_multichannel_and_odd_packet_sizes(server: RunningServer) -> None:
    """Two utterances in odd-sized stereo packets: each segment gives ceil(seconds * 25) frames."""
    async with FlashheadClient(server.url) as client:
        session = await client.stream(avatar_id=await _avatar(client), sample_rate=48000, channels=2)
        for seconds in (0.5, 1.3):
            pcm = speech_like(seconds, 48000, channels=2).tobytes()
            for offset in range(0, len(pcm), 3331):  # not a multiple of a sample: split samples are kept
                await session.send_audio(pcm[offset:offset + 3331])
            await session.segment_end()
        await session.end()
        events = [event async for event in session.events()]
    frames = [event for event in events if not isinstance(event, protocol.Message)]
    acks = [event for event in events if isinstance(event, protocol.Playback)]
    assert len(frames) == math.ceil(0.5 * 25) + math.ceil(1.3 * 25)
    assert [frame.index for frame in frames] == list(range(len(frames)))
    assert [ack.frames_sent for ack in acks] == [13, 13 + 33]


@pytest.mark.asyncio
async def test_interrupt_drops_queued_audio(server_factory) -> None:
    """Barge-in after a TTS burst: 30 s of audio sent at once, then `interrupt` as the first frame arrives."""
    running = server_factory({"FLASHHEAD_REFERENCE_CHUNK_MS": "200"})
    async with FlashheadClient(running.url) as client:
        session = await client.stream(avatar_id=await _avatar(client))
        burst = speech_like(30.0).tobytes()  # 32 chunks, 6.4 s of model time
        await session.send_audio(burst[: len(burst) // 2])
        await session.send_audio(burst[len(burst) // 2:])
        first = None
        async for event in session.events():
            if not isinstance(event, protocol.Message):
                first = event
                break
        await session.interrupt()
        await session.send_audio(speech_like(0.4).tobytes())
        await session.end()
        events = [event async for event in session.events()]
    assert first is not None and first.index == 0
    ack = next(e for e in events if isinstance(e, protocol.Playback) and e.interrupted)
    frames = [e for e in events if not isinstance(e, protocol.Message)]
    summary = events[-1]
    assert isinstance(summary, protocol.Summary) and summary.interrupts == 1
    # The interrupt was read at once, not after the burst: at most the chunk in flight was sent before it.
    assert ack.frames_sent <= 48
    # After it, exactly the 10 frames of the new 0.4 s; indices stay contiguous.
    assert summary.frames == ack.frames_sent + 10
    assert [f.index for f in frames] == list(range(1, summary.frames))


@pytest.mark.asyncio
async def test_capacity_refusal_and_disconnect_frees_slot(server_factory) -> None:
    running = server_factory({"FLASHHEAD_MAX_STREAMS": "2"})
    async with FlashheadClient(running.url) as client:
        avatar = await _avatar(client)
        sessions = [await client.stream(avatar_id=avatar) for _ in range(2)]
        with pytest.raises(ServerError) as refused:
            await client.stream(avatar_id=avatar)
        assert refused.value.code == "at_capacity"
        assert refused.value.close_code == protocol.CloseCode.TRY_AGAIN_LATER
        # The raw close frame carries 1013 and a reason.
        async with websockets.connect(running.ws_url) as raw:
            error = json.loads(await raw.recv())
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await raw.recv()
        assert error["type"] == "error" and error["code"] == "at_capacity"
        assert closed.value.rcvd.code == 1013 and "capacity" in closed.value.rcvd.reason
        # One client vanishes mid-stream (no `end`): its slot is free again at once.
        await sessions[0].send_audio(speech_like(0.5).tobytes())
        await sessions[0].close()
        await _wait_active(running, 1)
        third = await client.stream(avatar_id=avatar)
        await third.send_audio(speech_like(0.2).tobytes())
        await third.end()
        assert len([e async for e in third.events() if not isinstance(e, protocol.Message)]) == 5
        await sessions[1].close()
    await _wait_active(running, 0)


@pytest.mark.asyncio
async def test_idle_frames_when_no_audio(server_factory) -> None:
    running = server_factory({"FLASHHEAD_IDLE_FRAMES": "1"})
    async with FlashheadClient(running.url) as client:
        session = await client.stream(avatar_id=await _avatar(client))
        stats = []
        async for event in session.events():
            if isinstance(event, protocol.Stats):
                stats.append(event)
                if len(stats) == 2:
                    break
        await session.close()
    assert all(stat.idle for stat in stats) and stats[0].frames == 24


@pytest.mark.asyncio
async def test_token_in_header_or_start(server_factory) -> None:
    running = server_factory(token=TOKEN)
    async with FlashheadClient(running.url, token=TOKEN) as client:
        avatar = await _avatar(client)
        result = await client.stream_audio(speech_like(0.2).tobytes(), avatar_id=avatar)
        assert len(result.frames) == 5
    async with websockets.connect(running.ws_url) as raw:  # browser style: token in `start`
        await raw.send(json.dumps({"type": "start", "avatar_id": avatar, "token": TOKEN}))
        assert json.loads(await raw.recv())["type"] == "ready"
    async with FlashheadClient(running.url) as anonymous:
        with pytest.raises(ServerError) as refused:
            await anonymous.stream(avatar_id=avatar)
    assert refused.value.code == "unauthorized"


@pytest.mark.asyncio
async def test_segment_of_whole_chunks_needs_no_padding_chunk(server: RunningServer) -> None:
    """0.96 s is exactly one chunk: `segment_end` adds no model call, yet its ack follows the last frame."""
    async with FlashheadClient(server.url) as client:
        session = await client.stream(avatar_id=await _avatar(client))
        await session.send_audio(speech_like(0.96).tobytes())
        await session.segment_end()
        await session.end()
        events = [event async for event in session.events()]
    kinds = ["frame" if not isinstance(event, protocol.Message) else event.TYPE for event in events]
    assert kinds == ["frame"] * 24 + ["stats", "playback", "summary"]
    assert isinstance(events[-1], protocol.Summary) and isinstance(events[-2], protocol.Playback)
    assert events[-1].chunks == 1 and events[-2].frames_sent == 24


@pytest.mark.asyncio
async def test_client_that_never_reads_is_held_back_not_buffered(server_factory) -> None:
    """10 minutes of audio from a client that reads nothing: the server queues at most
    FLASHHEAD_MAX_QUEUED_CHUNKS and generates only what the socket buffers take (the kernel's, not
    the process's), so its memory stays flat; unbounded queues would hold 625 chunks of RGB frames."""
    import httpx

    from tests.inference.test_leaks import _rss_mb

    running = server_factory({"FLASHHEAD_MAX_QUEUED_CHUNKS": "4"})
    pid = running.process.pid
    async with FlashheadClient(running.url) as client:
        avatar = await _avatar(client)
    baseline = _rss_mb(pid)
    packet = speech_like(0.04, 16000).tobytes()
    connection = await websockets.connect(running.ws_url, max_queue=1)
    try:
        await connection.send(json.dumps({"type": "start", "avatar_id": avatar, "output": "rgb"}))

        async def flood() -> None:
            for _ in range(15000):  # 600 s of audio, whatever the socket buffers take
                await connection.send(packet)

        flooding = asyncio.create_task(flood())
        samples = []
        for _ in range(4):
            await asyncio.sleep(0.75)
            metrics = (await asyncio.to_thread(httpx.get, running.url + "/metrics")).text
            values = {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines()
                      if line.startswith(("flashhead_queued_chunks ", "flashhead_chunks_generated_total "))}
            samples.append((values["flashhead_queued_chunks"], values["flashhead_chunks_generated_total"],
                            _rss_mb(pid)))
        flooding.cancel()
    finally:
        connection.transport.abort()  # a close handshake would wait behind megabytes of unread frames
    assert max(queued for queued, _, _ in samples) <= 4
    assert max(rss for _, _, rss in samples) - baseline < 150, samples  # one chunk of RGB frames is 19 MB
    await _wait_active(running, 0)


@pytest.mark.asyncio
async def test_anonymous_connections_hold_no_slot(server_factory) -> None:
    """With a token configured, connections that have not authenticated do not take stream slots."""
    running = server_factory({"FLASHHEAD_MAX_STREAMS": "1"}, token=TOKEN)
    anonymous = [await websockets.connect(running.ws_url) for _ in range(3)]
    async with FlashheadClient(running.url, token=TOKEN) as client:
        result = await client.stream_audio(speech_like(0.2).tobytes(), avatar_id=await _avatar(client))
        assert len(result.frames) == 5
        await anonymous[0].send(json.dumps({"type": "start", "avatar_id": "av_x", "token": "wrong-token-0123456789"}))
        error = json.loads(await anonymous[0].recv())
        assert error["code"] == "unauthorized"
    for connection in anonymous:
        await connection.close()


@pytest.mark.asyncio
async def test_frames_are_never_deflated(server: RunningServer) -> None:
    """JPEG frames do not compress; deflating them on the event loop capped all streams at ~90 FPS."""
    async with websockets.connect(server.ws_url, compression="deflate") as connection:
        offered = connection.request.headers.get("Sec-WebSocket-Extensions") if connection.request else None
        assert offered and "permessage-deflate" in offered  # the client asks for it...
        assert connection.response is not None
        assert "Sec-WebSocket-Extensions" not in connection.response.headers  # ...and the server declines
