"""Run one WS /v1/stream session through `inference.client` and record its timeline.

Throughput mode sends audio as fast as the server accepts it (the WebSocket's flow control is the
backpressure); realtime mode paces packets at 1× against the monotonic clock, as a microphone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ops.acceptance.audio import BYTES_PER_SAMPLE, SAMPLE_RATE
from ops.acceptance.timing import Timeline

if TYPE_CHECKING:
    from inference import protocol
    from inference.client import FlashheadClient, StreamSession

REALTIME_PACKET_S = 0.04  # one video frame of audio per packet, as voice pipelines send it
THROUGHPUT_PACKET_S = 0.48  # half a Lite chunk: few messages, the server never starves


@dataclass
class StreamRun:
    """What one stream session produced."""

    timeline: Timeline
    ready: protocol.Ready | None = None
    stats: list[protocol.Stats] = field(default_factory=list)
    summary: protocol.Summary | None = None
    samples: int = 0

    def summary_fields(self) -> dict[str, Any]:
        """The server's summary as plain fields (empty when none came)."""
        return {k: v for k, v in self.summary.to_dict().items() if k != "type"} if self.summary else {}


async def stream_clip(client: FlashheadClient, pcm: bytes, *, realtime: bool, avatar_id: str | None = None,
                      image: bytes | None = None, seed: int | None = 0,
                      on_refusal: Callable[[BaseException, int], None] | None = None) -> StreamRun:
    """Stream 16 kHz mono PCM16 `pcm`, end the session, and return every frame's arrival time.

    A stream refused for capacity (503, close 1013) is retried with backoff (inference/retry.py), as
    behind a Service the next try reaches a pod with room; `on_refusal` hears each refusal."""
    # Idle frames (silence fillers) would count as generated frames: measure speech only.
    session = await client.stream_retrying(avatar_id=avatar_id, image=image, sample_rate=SAMPLE_RATE, seed=seed,
                                           idle_frames=False, on_refusal=on_refusal)
    ready = session.ready
    timeline = Timeline(SAMPLE_RATE, fps=ready.fps, chunk_frames=ready.chunk_frames)
    run = StreamRun(timeline, ready, samples=len(pcm) // BYTES_PER_SAMPLE)
    sender = asyncio.create_task(_send(session, pcm, timeline, realtime))
    try:
        await _receive(session, run)
        await sender
    finally:
        sender.cancel()
        await session.close()
    return run


async def _send(session: StreamSession, pcm: bytes, timeline: Timeline, realtime: bool) -> None:
    packet_s = REALTIME_PACKET_S if realtime else THROUGHPUT_PACKET_S
    step = int(SAMPLE_RATE * packet_s) * BYTES_PER_SAMPLE
    started = time.monotonic()
    for offset in range(0, len(pcm), step):
        if realtime:
            due = started + offset / BYTES_PER_SAMPLE / SAMPLE_RATE
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        packet = pcm[offset:offset + step]
        await session.send_audio(packet)
        timeline.sent.append(((offset + len(packet)) // BYTES_PER_SAMPLE, time.monotonic()))
    await session.end()


async def _receive(session: StreamSession, run: StreamRun) -> None:
    from inference import protocol
    from inference.client import Frame

    async for event in session.events():
        if isinstance(event, Frame):
            run.timeline.frames.append((event.index, event.chunk, event.received_at))
        elif isinstance(event, protocol.Stats):
            run.stats.append(event)
        elif isinstance(event, protocol.Summary):
            run.summary = event
