"""The output side of a stream: generated chunks -> frames, `stats`, `playback` acks and the `summary`.

Frames of a chunk arrive encoded as the stream asked (JPEG files from the scheduler, or raw RGB) and
are sent in order; a chunk of an older epoch (generated before an interrupt) is dropped mid-way. The
idler queues a chunk of silence whenever less than one chunk of frames is ahead of real-time playback
and nothing else is queued.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from inference import protocol
from inference.api.stream_stats import StreamStats
from inference.api.stream_wire import StreamWire
from inference.errors import BackendError
from inference.protocol import FrameHeader
from inference.runtime import Runtime
from inference.scheduler import ChunkResult, Frames
from inference.sessions import Session

log = logging.getLogger("inference.stream")


class FrameOutput:
    """Sends what the session generates until its end marker, then the summary and close 1000."""

    def __init__(self, wire: StreamWire, rt: Runtime, session: Session, stream_id: str, output: str,
                 version: int = 1):
        self.wire = wire
        self.rt = rt
        self.session = session
        self.stream_id = stream_id
        self.output = output
        self.version = version  # the agreed protocol: 2 adds epochs, flags and audio spans
        self.stats = StreamStats()
        self.ending = False

    async def run(self) -> None:
        while True:
            result = await self.session.next_result()
            if result is None:
                summary = self.summary()
                await self.wire.send(summary)
                await self.wire.close(protocol.CloseCode.NORMAL)
                log.info("stream done", extra={k: v for k, v in summary.to_dict().items() if k != "type"})
                return
            if result.error is not None or result.frames is None:
                raise BackendError(f"the backend failed: {result.error}", "see the server log")
            await self.send_chunk(result)

    async def send_chunk(self, result: ChunkResult) -> None:
        epoch, stats = result.job.epoch, self.stats
        if result.job.samples is None:  # a segment-end marker: nothing was generated
            await self.send_playback("segment_done")
            return
        assert result.frames is not None
        started, sent, count = time.perf_counter(), 0, len(result.frames)
        async for payload in self.encoded(result.frames):
            async with self.wire.lock:  # index, epoch check and count agree with any ack sent meanwhile
                if epoch != self.session.epoch:
                    return  # interrupted: the rest of this chunk is dropped
                header = self.header(result, sent, last=sent == count - 1)
                await self.wire.ws.send_bytes(header.pack() + payload)
                stats.frames_sent += 1
            sent += 1
            if stats.first_frame_at is None:
                stats.first_frame_at = time.monotonic()
                if stats.ttff_s is not None:
                    self.rt.metrics.ttff.observe(stats.ttff_s)
        self.rt.metrics.frames.labels("idle" if result.job.idle else "stream").inc(sent)
        stats.chunk_sent(result.generation_s, result.queue_s, result.job.idle)
        await self.wire.send(protocol.Stats(
            chunk=result.index, frames=sent, first_frame=stats.frames_sent - sent, idle=result.job.idle,
            generation_ms=round(result.generation_s * 1000, 2), queue_ms=round(result.queue_s * 1000, 2),
            send_ms=round((time.perf_counter() - started) * 1000, 2), batch_size=result.batch_size,
            epoch=epoch if self.version >= 2 else None))
        if result.job.segment_end:
            await self.send_playback("segment_done")

    def header(self, result: ChunkResult, offset: int, last: bool) -> FrameHeader:
        """The header of the chunk's frame number `offset` (sent as the stream's frame `frames_sent`)."""
        index, fps = self.stats.frames_sent, self.rt.geometry.fps
        if self.version < 2:
            return FrameHeader(index, result.index, round(index * 1e6 / fps), self.output)
        job = result.job
        start, end = job.span.frame(offset) if job.span else (0, 0)
        flags = (protocol.FLAG_SEGMENT_END if job.segment_end and last else 0) | (protocol.FLAG_IDLE if job.idle else 0)
        return FrameHeader(index, result.index, round(index * 1e6 / fps), self.output, version=self.version,
                           epoch=job.epoch, flags=flags, audio_start=start, audio_end=end)

    async def send_playback(self, event: str) -> None:
        """A `playback` ack; its position counts exactly the frames sent before it."""
        async with self.wire.lock:
            frames = self.stats.frames_sent
            await self.wire.send_unlocked(protocol.Playback(
                event=event, interrupted=event == "interrupted", position=frames / self.rt.geometry.fps,
                frames_sent=frames, epoch=self.session.epoch if self.version >= 2 else None))

    async def idle(self) -> None:
        """Queue a chunk of silence whenever less than one chunk of frames is ahead of playback."""
        geometry = self.rt.geometry
        while not self.ending:
            playing_since = self.stats.first_frame_at or time.monotonic()
            ahead = self.stats.frames_sent - (time.monotonic() - playing_since) * geometry.fps
            if self.session.is_idle(geometry.chunk_seconds) and ahead < geometry.new_frames:
                await self.session.push_idle()
            await asyncio.sleep(geometry.chunk_seconds / 4)

    async def encoded(self, frames: Frames) -> AsyncIterator[bytes]:
        """The chunk's frames as sent: JPEG files (the scheduler encoded them, on the device or the host) as they
        are, raw RGB frames as their bytes."""
        if isinstance(frames, list):
            for payload in frames:
                yield payload
            return
        if self.output != "rgb":  # the scheduler encodes every JPEG stream's frames: a bug if not
            raise BackendError("a JPEG stream received unencoded frames", "see the server log")
        for frame in frames:
            yield frame.tobytes()

    def summary(self) -> protocol.Summary:
        audio_seconds = self.session.audio_samples / self.rt.geometry.sample_rate
        return protocol.Summary(stream_id=self.stream_id,
                                **self.stats.summary(self.rt.geometry.fps, audio_seconds, self.session.interrupts))
