"""A WS /v1/stream session shaped for avatar adapters: PCM16 in at one rate, each video frame out
with its own slice of that audio, segment ends after their last frame, stale frames gone after an
interrupt. Protocol 2 does the pairing (docs/protocol.md); this keeps the audio the frames point at.
No third-party imports beyond the client's (Pillow only to decode JPEG frames).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from inference import protocol
from inference.client import FlashheadClient, Frame, StreamSession
from inference.retry import RetryPolicy


@dataclass(frozen=True)
class PairedFrame:
    """A video frame and the PCM16 audio it shows (empty for an idle frame)."""

    frame: Frame
    audio: bytes
    sample_rate: int
    channels: int

    @property
    def samples(self) -> int:
        return len(self.audio) // (2 * self.channels)

    def rgb(self, width: int = 512, height: int = 512) -> bytes:
        """The frame as packed RGB24 bytes (decoding a JPEG frame with Pillow)."""
        if self.frame.output == "rgb":
            return self.frame.data
        from PIL import Image

        with Image.open(io.BytesIO(self.frame.data)) as image:
            return image.convert("RGB").tobytes()


@dataclass(frozen=True)
class SegmentEnd:
    """The segment's last frame has been yielded (or the segment had no audio)."""

    epoch: int


class SentAudio:
    """The PCM16 sent since the last interrupt, addressed by sample offsets of the whole stream."""

    def __init__(self, channels: int):
        self.bytes_per_sample = 2 * channels
        self.origin = 0  # stream offset of data[0]
        self.data = bytearray()

    @property
    def end(self) -> int:
        return self.origin + len(self.data) // self.bytes_per_sample

    def add(self, pcm: bytes) -> None:
        self.data += pcm

    def take(self, start: int, end: int) -> bytes:
        """The samples [start, end) (those already forgotten are left out); everything before `end` is
        forgotten (frames come in order)."""
        first = max(0, start - self.origin) * self.bytes_per_sample
        last = max(0, end - self.origin) * self.bytes_per_sample
        piece = bytes(self.data[first:last])
        del self.data[:last]
        self.origin = max(self.origin, end)
        return piece

    def forget(self) -> None:
        """After an interrupt: the audio sent so far will never be shown."""
        self.origin = self.end
        self.data.clear()


class AvatarStream:
    """One avatar stream for an adapter; iterate it for `PairedFrame`s and `SegmentEnd`s.

    `sample_rate`/`channels` describe the PCM16 given to `send`; the audio paired with each frame
    comes back at the same rate. `max_frames` bounds the frames waiting to be taken (beyond it the
    server is slowed by backpressure, not memory).
    """

    def __init__(self, client: FlashheadClient, *, avatar_id: str | None = None, image: bytes | None = None,
                 sample_rate: int = 24000, channels: int = 1, output: str = "jpeg", idle_frames: bool = True,
                 seed: int | None = None, max_frames: int = 48, retry: RetryPolicy | None = None):
        self.client = client
        self.retry = retry  # None: inference.retry's default (8 tries within 30 s)
        self.start_args: dict[str, Any] = {"avatar_id": avatar_id, "image": image, "sample_rate": sample_rate,
                                           "channels": channels, "output": output, "idle_frames": idle_frames,
                                           "seed": seed}
        self.sample_rate, self.channels = sample_rate, channels
        self.sent = SentAudio(channels)
        self.items: asyncio.Queue[PairedFrame | SegmentEnd | BaseException] = asyncio.Queue(max_frames)
        self.session: StreamSession | None = None
        self.reader: asyncio.Task[None] | None = None
        self.segment_open = False  # audio sent since the last segment end
        self.showing = False  # a frame of the current segment was yielded and its end was not
        self.stale_frames = 0  # frames dropped because an interrupt came after they were generated
        self.opening = asyncio.Lock()  # the sending and the iterating side may both open it first

    async def open(self) -> StreamSession:
        """Connect (once). A server at capacity (503, close 1013) is retried with backoff, so behind a
        Service the next try reaches a pod with room (inference/retry.py); ServerError when it still
        refuses or refuses for another reason, RuntimeError if the server is too old."""
        async with self.opening:
            if self.session is None:
                session = await self.client.stream_retrying(self.retry, **self.start_args, version=2)
                if session.ready.protocol < 2:
                    await session.close()
                    raise RuntimeError("the server speaks protocol 1: frame/audio pairing needs a newer server")
                self.session = session
                self.reader = asyncio.create_task(self.read(session), name="flashhead-avatar-reader")
            return self.session

    @property
    def epoch(self) -> int:
        return self.session.epoch if self.session else 0

    async def send(self, pcm: bytes) -> None:
        """PCM16 little-endian at `sample_rate` (whole samples)."""
        session = await self.open()
        if pcm:
            self.sent.add(pcm)
            self.segment_open = True
            await session.send_audio(pcm)

    async def end_segment(self) -> None:
        """The utterance is over: a SegmentEnd follows its last frame (at once if it had no audio)."""
        session = await self.open()
        if self.segment_open:
            self.segment_open = False
            await session.segment_end()
        else:
            await self.items.put(SegmentEnd(self.epoch))

    async def interrupt(self) -> None:
        """Barge-in: frames of the audio sent so far are not yielded any more."""
        if self.session is None:
            return
        self.segment_open = self.showing = False
        self.sent.forget()
        await self.session.interrupt()

    async def __aiter__(self) -> AsyncIterator[PairedFrame | SegmentEnd]:
        await self.open()
        while True:
            item = await self.items.get()
            if isinstance(item, BaseException):
                raise item
            if item_epoch(item) < self.epoch:  # queued before the interrupt
                self.stale_frames += isinstance(item, PairedFrame)
                continue
            if isinstance(item, PairedFrame) and item.audio:
                self.showing = True
            elif isinstance(item, SegmentEnd):
                self.showing = False
            yield item

    async def read(self, session: StreamSession) -> None:
        ended_by_flag = False
        try:
            async for event in session.events():
                if isinstance(event, Frame):
                    if session.is_stale(event):
                        self.stale_frames += 1
                        continue
                    assert event.audio_start is not None and event.audio_end is not None
                    audio = self.sent.take(event.audio_start, event.audio_end)
                    await self.items.put(PairedFrame(event, audio, self.sample_rate, self.channels))
                    ended_by_flag = event.segment_end
                    if event.segment_end:
                        await self.items.put(SegmentEnd(event.epoch))
                elif isinstance(event, protocol.Playback) and event.event == "segment_done":
                    # The last frame lacked the flag only when the segment ended on a chunk boundary.
                    if not ended_by_flag and (event.epoch or 0) >= session.epoch:
                        await self.items.put(SegmentEnd(session.epoch))
                    ended_by_flag = False
        except Exception as error:  # noqa: BLE001 - handed to the iterating side, which raises it
            await self.items.put(error)

    async def aclose(self) -> None:
        """Close the connection at once (the server frees the slot)."""
        if self.reader:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader
        if self.session:
            await self.session.close()


def item_epoch(item: PairedFrame | SegmentEnd) -> int:
    return item.frame.epoch if isinstance(item, PairedFrame) else item.epoch
