"""The input side of a stream: PCM16 in, control messages (segment_end, interrupt, end) applied.

Backpressure: `Session.push` waits while the stream's queue of audio chunks is full, and this
loop stops reading the socket meanwhile, so TCP slows a client that sends far ahead.
"""

from __future__ import annotations

import time

from inference import protocol
from inference.api.stream_output import FrameOutput
from inference.api.stream_wire import StreamWire
from inference.errors import BadInput, TooLarge
from inference.sessions import PcmInput, Session


class AudioInput:
    """Reads the client's messages until `end` (returns) or an error (raises)."""

    def __init__(self, wire: StreamWire, session: Session, pcm: PcmInput, output: FrameOutput, max_message: int):
        self.wire = wire
        self.session = session
        self.pcm = pcm
        self.output = output
        self.max_message = max_message

    async def run(self) -> None:
        while True:
            message = await self.wire.receive()
            if message.get("bytes") is not None:
                await self.on_audio(message["bytes"])
                continue
            typed = self.wire.parse(message.get("text") or "")
            if isinstance(typed, protocol.SegmentEnd):
                await self.end_segment()
            elif isinstance(typed, protocol.Interrupt):
                self.session.interrupt()
                self.pcm.reset()
                self.session.segment_origin = self.pcm.offset
                await self.output.send_playback("interrupted")
            elif isinstance(typed, protocol.End):
                self.output.ending = True
                await self.end_segment()
                await self.session.end()
                return
            else:  # a second `start`
                raise BadInput("the stream has already started", "open a new connection for a new stream")

    async def on_audio(self, pcm: bytes) -> None:
        if len(pcm) > self.max_message:
            raise TooLarge(f"an audio message of {len(pcm)} bytes exceeds {self.max_message} "
                           "(FLASHHEAD_MAX_MESSAGE_BYTES)", "send smaller packets (20-100 ms each is typical)")
        if self.output.stats.first_audio_at is None and pcm:
            self.output.stats.first_audio_at = time.monotonic()
        await self.session.push(self.pcm.push(pcm))

    async def end_segment(self) -> None:
        input_samples = self.pcm.segment_input
        await self.session.push(self.pcm.end_segment())
        if self.session.pending.size or self.session.segment_samples:
            await self.session.flush(input_samples)
        self.session.segment_origin = self.pcm.offset
