"""Protocol 2 over the real server: frame spans pair each frame with its audio, epochs mark barge-in,
the segment's last frame is flagged; a protocol 1 client gets exactly what it always got."""

from __future__ import annotations

import asyncio
import json
import math
import struct

import numpy as np
import pytest
import websockets

from inference import protocol
from inference.client import FlashheadClient, Frame
from tests.inference.conftest import RunningServer, encode_image, face_image, speech_like


async def _avatar(client: FlashheadClient) -> str:
    return await client.create_avatar(encode_image(face_image(), "PNG"))


@pytest.mark.asyncio
@pytest.mark.parametrize("rate", [16000, 22050, 24000, 48000])
async def test_frame_spans_tile_each_segment_at_the_clients_rate(server: RunningServer, rate: int) -> None:
    lengths = [int(rate * 0.5) + 7, int(rate * 1.3), rate * 96 // 100]  # the last: exactly one 0.96 s chunk
    async with FlashheadClient(server.url) as client:
        session = await client.stream(avatar_id=await _avatar(client), sample_rate=rate)
        assert session.ready.protocol == 2
        for samples in lengths:
            pcm = speech_like(samples / rate, rate)[:samples].tobytes()
            for offset in range(0, len(pcm), 1234):  # odd packet sizes
                await session.send_audio(pcm[offset:offset + 1234])
            await session.segment_end()
        await session.end()
        events = [event async for event in session.events()]
    frames = [event for event in events if isinstance(event, Frame)]
    origin = 0
    for samples in lengths:
        count = math.ceil(samples * 25 / rate)
        segment, frames = frames[:count], frames[count:]
        assert segment[0].audio_start == origin and segment[-1].audio_end == origin + samples
        assert sum(f.audio_end - f.audio_start for f in segment) == samples  # type: ignore[operator]
        assert all(a.audio_end == b.audio_start for a, b in zip(segment, segment[1:], strict=False))
        # Within a segment a frame's span starts within one sample of its own time in the segment.
        first_pts = segment[0].pts
        assert all(abs((f.audio_start - origin) / rate - (f.pts - first_pts)) < 1 / rate + 1e-6  # type: ignore[operator]
                   for f in segment)
        flagged = [f.segment_end for f in segment]
        # The last frame carries the flag unless the segment ended exactly on a chunk boundary (then
        # only the `segment_done` ack marks it: the frame had left before the end was known).
        on_boundary = math.ceil(samples * 16000 / rate) % 15360 == 0
        assert flagged == [False] * (count - 1) + [not on_boundary]
        assert all(f.epoch == 0 and not f.idle for f in segment)
        origin += samples
    assert frames == []
    acks = [event for event in events if isinstance(event, protocol.Playback)]
    assert [ack.event for ack in acks] == ["segment_done"] * 3 and {ack.epoch for ack in acks} == {0}


@pytest.mark.asyncio
async def test_interrupt_changes_the_epoch_and_the_next_segment_starts_after_all_audio_sent(server_factory) -> None:
    running = server_factory({"FLASHHEAD_REFERENCE_CHUNK_MS": "200"})
    rate = 24000
    async with FlashheadClient(running.url) as client:
        session = await client.stream(avatar_id=await _avatar(client), sample_rate=rate)
        burst = speech_like(10.0, rate).tobytes()
        await session.send_audio(burst)
        events = session.events()
        async for event in events:
            if isinstance(event, Frame):
                break
        await session.interrupt()
        reply = speech_like(0.4, rate).tobytes()
        await session.send_audio(reply)
        await session.end()
        after = [event async for event in events]
    stale = [e for e in after if isinstance(e, Frame) and session.is_stale(e)]
    fresh = [e for e in after if isinstance(e, Frame) and not session.is_stale(e)]
    ack = next(e for e in after if isinstance(e, protocol.Playback) and e.interrupted)
    assert ack.epoch == 1 and session.epoch == 1
    # Stale frames are only those already sent before the server read the interrupt: less than a chunk.
    assert len(stale) <= 24 and all(f.epoch == 0 for f in stale)
    assert after.index(ack) > max((after.index(f) for f in stale), default=-1)
    # The reply's frames: epoch 1, spans from the first sample after the whole burst (the dropped audio counts).
    assert [f.epoch for f in fresh] == [1] * 10
    assert fresh[0].audio_start == 10 * rate and fresh[-1].audio_end == 10 * rate + len(reply) // 2
    assert fresh[-1].segment_end
    print(f"stale frames after interrupt: {len(stale)}")


@pytest.mark.asyncio
async def test_idle_frames_are_flagged_and_show_no_audio(server: RunningServer) -> None:
    async with FlashheadClient(server.url) as client:
        session = await client.stream(avatar_id=await _avatar(client), sample_rate=48000, idle_frames=True)
        frames: list[Frame] = []
        async for event in session.events():
            if isinstance(event, Frame):
                frames.append(event)
                if len(frames) == 24:
                    break
        await session.send_audio(speech_like(0.2, 48000).tobytes())
        await session.end()
        rest = [e async for e in session.events() if isinstance(e, Frame)]
    assert all(f.idle and f.audio_start == f.audio_end == 0 for f in frames)
    spoken = [f for f in rest if not f.idle]
    assert len(spoken) == 5 and spoken[0].audio_start == 0 and spoken[-1].audio_end == 9600


@pytest.mark.asyncio
async def test_a_protocol_1_client_gets_v1_headers_and_messages(server: RunningServer) -> None:
    """A client written against protocol 1 (no `protocol` in start, a 20-byte header it checks for version 1)."""
    async with FlashheadClient(server.url) as client:
        avatar = await _avatar(client)
    async with websockets.connect(server.ws_url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", "avatar_id": avatar, "sample_rate": 24000}))
        ready = json.loads(await ws.recv())
        await ws.send(speech_like(0.3, 24000).tobytes())
        await ws.send(json.dumps({"type": "interrupt"}))
        await ws.send(speech_like(0.2, 24000).tobytes())
        await ws.send(json.dumps({"type": "end"}))
        binary, text = [], []
        while True:
            message = await asyncio.wait_for(ws.recv(), 30)
            if isinstance(message, bytes):
                binary.append(message)
            else:
                text.append(json.loads(message))
                if text[-1]["type"] == "summary":
                    break
    assert ready["type"] == "ready" and ready["protocol"] == 1
    headers = [struct.unpack_from("<2sBBIIQ", message) for message in binary]
    assert all(magic == b"FH" and version == 1 and fmt == 0 for magic, version, fmt, *_ in headers)
    assert all(message[20:22] == b"\xff\xd8" for message in binary)  # the JPEG starts right after 20 bytes
    assert [index for _, _, _, index, _, _ in headers] == list(range(len(binary)))
    assert all("epoch" not in message for message in text)
    assert text[-1]["frames"] == len(binary)
    # The v1 parser of protocol.py reads them too, as before.
    assert all(Frame.parse(message).audio_start is None for message in binary)
    assert np.all([Frame.parse(message).epoch == 0 for message in binary])
