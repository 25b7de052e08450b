"""Pipecat: `FlashheadVideoService`, a talking head for a pipeline, shaped like `SimliVideoService`.

Put it after the TTS service: it takes the `TTSAudioRawFrame`s, sends them to the FlashHead server,
and pushes each `OutputImageRawFrame` (512x512 RGB, `pts` = the frame's stream time in ns) followed
by the `TTSAudioRawFrame` it shows, so the transport plays audio and video together.
`InterruptionFrame` drops the audio not yet shown (the server's `interrupt`); `TTSStoppedFrame`
ends the utterance and is passed on after the utterance's last frame. Needs `flashhead-ops[pipecat]`.

    video = FlashheadVideoService(base_url="http://127.0.0.1:8000", avatar_id="av_…")
    pipeline = Pipeline([transport.input(), stt, llm, tts, video, transport.output()])
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import numpy as np
import soxr
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    OutputImageRawFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup
from pipecat.services.ai_service import AIService

from inference.client import FlashheadClient
from inference.integrations.avatar_stream import AvatarStream, PairedFrame


class UtteranceResampler:
    """PCM16 mono from the TTS's rate to the service's, flushed at each utterance's end (a stream
    resampler that is never flushed would hold back the last ~20 ms, and play it in the next one)."""

    def __init__(self, rate: int):
        self.rate = rate
        self.stream: soxr.ResampleStream | None = None
        self.input_rate = 0

    def push(self, pcm: bytes, input_rate: int) -> bytes:
        if input_rate == self.rate:
            return pcm
        if self.stream is None or self.input_rate != input_rate:
            self.stream, self.input_rate = soxr.ResampleStream(input_rate, self.rate, 1, dtype="int16"), input_rate
        return bytes(self.stream.resample_chunk(np.frombuffer(pcm, np.int16)).tobytes())

    def flush(self) -> bytes:
        tail = b"" if self.stream is None else bytes(self.stream.resample_chunk(np.zeros(0, np.int16), last=True))
        self.stream = None
        return tail


class FlashheadVideoService(AIService):
    """Talking-head video from a FlashHead server for the TTS audio that passes through."""

    def __init__(self, *, base_url: str, token: str | None = None, avatar_id: str | None = None,
                 image: bytes | None = None, sample_rate: int | None = None, idle_frames: bool = True,
                 drain_timeout_s: float = 30.0, **kwargs: Any):
        """`sample_rate`: the audio the service pushes (default: the pipeline's output rate); TTS audio
        at another rate is resampled to it. `drain_timeout_s`: how long an EndFrame waits for the
        frames of audio already sent."""
        super().__init__(**kwargs)
        self._base_url, self._token = base_url, token
        self._avatar_id, self._image = avatar_id, image
        self._sample_rate = sample_rate
        self._idle_frames = idle_frames
        self._drain_timeout_s = drain_timeout_s
        self._client: FlashheadClient | None = None
        self._stream: AvatarStream | None = None
        self._video_task: asyncio.Task[None] | None = None
        self._resampler: UtteranceResampler | None = None
        self._stopped_frames: list[TTSStoppedFrame] = []  # passed on after their utterance's last frame
        self._open_segments = 0
        self._drained = asyncio.Event()

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]  # as SimliVideoService
        await super().setup(setup)
        self._sample_rate = self._sample_rate or setup.audio_out_sample_rate or 24000

    async def _ensure_stream(self) -> AvatarStream:
        if self._stream is None:
            assert self._sample_rate is not None
            self._client = FlashheadClient(self._base_url, token=self._token)
            self._stream = AvatarStream(self._client, avatar_id=self._avatar_id, image=self._image,
                                        sample_rate=self._sample_rate, output="rgb", idle_frames=self._idle_frames)
            self._resampler = UtteranceResampler(self._sample_rate)
            await self._stream.open()
            self._video_task = self.create_task(self._push_video(self._stream))
        return self._stream

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            stream = await self._ensure_stream()
            if frame.num_channels != 1:
                await self.push_error(error_msg=f"FlashheadVideoService takes mono TTS audio, "
                                                f"got {frame.num_channels} channels")
                return
            assert self._resampler is not None
            await stream.send(self._resampler.push(frame.audio, frame.sample_rate))
        elif isinstance(frame, TTSStoppedFrame) and self._stream is not None and self._stream.segment_open:
            assert self._resampler is not None
            await self._stream.send(self._resampler.flush())
            self._stopped_frames.append(frame)
            self._open_segments += 1
            self._drained.clear()
            await self._stream.end_segment()
        elif isinstance(frame, InterruptionFrame):
            if self._stream is not None and self._resampler is not None:
                self._resampler.flush()
                await self._stream.interrupt()
            await self._release_stopped()
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    async def _push_video(self, stream: AvatarStream) -> None:
        async for item in stream:
            if isinstance(item, PairedFrame):
                image = OutputImageRawFrame(image=item.frame.data, size=(512, 512), format="RGB")
                image.pts = round(item.frame.pts * 1e9)
                await self.push_frame(image)
                if item.audio:
                    await self.push_frame(TTSAudioRawFrame(audio=item.audio, sample_rate=item.sample_rate,
                                                           num_channels=item.channels))
            else:
                await self._release_stopped(one=True)

    async def _release_stopped(self, one: bool = False) -> None:
        """Pass on the held TTSStoppedFrame(s): after an utterance's last frame, or all on a barge-in."""
        while self._stopped_frames:
            await self.push_frame(self._stopped_frames.pop(0))
            self._open_segments -= 1
            if one:
                break
        if not self._stopped_frames:
            self._open_segments = 0
            self._drained.set()

    async def stop(self, frame: EndFrame) -> None:
        """Let the frames of audio already sent come out (up to drain_timeout_s), then close."""
        if self._open_segments:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._drained.wait(), self._drain_timeout_s)
        await super().stop(frame)
        await self._close()

    async def cancel(self, frame: CancelFrame) -> None:
        await super().cancel(frame)
        await self._close()

    async def cleanup(self) -> None:
        await super().cleanup()
        await self._close()

    async def _close(self) -> None:
        if self._video_task is not None:
            await self.cancel_task(self._video_task)
            self._video_task = None
        if self._stream is not None:
            await self._stream.aclose()
            self._stream = None
        if self._client is not None:
            await self._client.close()
            self._client = None
