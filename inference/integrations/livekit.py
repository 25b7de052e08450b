"""LiveKit Agents: a `VideoGenerator` over the FlashHead server, and the agent-side `AvatarSession`.

On the avatar side, `AvatarRunner` reads the agent's audio (`DataStreamAudioReceiver`), pushes it
into `FlashheadVideoGenerator` and publishes what it yields through its `AVSynchronizer`: each
512x512 video frame followed by its own 40 ms of audio, `AudioSegmentEnd` after a segment's last
frame, idle frames (video only) while no audio comes. `clear_buffer()` is the server's `interrupt`.
On the agent side, `FlashheadAvatarSession.start` asks a dispatcher (`livekit_dispatcher`) to send
an avatar worker into the room and routes the agent's audio to it (`DataStreamAudioOutput`), as
LiveKit's hosted-avatar plugins do. Needs `flashhead-ops[livekit]`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from livekit import api, rtc
from livekit.agents.voice.avatar import AudioSegmentEnd, AvatarOptions, DataStreamAudioOutput, VideoGenerator
from livekit.agents.voice.room_io import ATTRIBUTE_PUBLISH_ON_BEHALF

from inference.client import FlashheadClient
from inference.integrations.avatar_stream import AvatarStream, PairedFrame

AVATAR_IDENTITY = "flashhead-avatar"


def avatar_options(sample_rate: int = 24000, channels: int = 1) -> AvatarOptions:
    """The output the server makes: 512x512 at 25 fps; audio published at `sample_rate`."""
    return AvatarOptions(video_width=512, video_height=512, video_fps=25, audio_sample_rate=sample_rate,
                         audio_channels=channels)


class FlashheadVideoGenerator(VideoGenerator):
    """Talking-head video for the audio pushed in, from one FlashHead stream (opened on first use).

    Audio at any rate is resampled to `options.audio_sample_rate` (what the room's AudioSource
    takes) before it goes to the server, so each frame's paired slice is ready to publish.
    """

    def __init__(self, client: FlashheadClient, *, avatar_id: str | None = None, image: bytes | None = None,
                 options: AvatarOptions | None = None, idle_frames: bool = True, output: str = "jpeg"):
        self.options = options or avatar_options()
        self.stream = AvatarStream(client, avatar_id=avatar_id, image=image,
                                   sample_rate=self.options.audio_sample_rate, channels=self.options.audio_channels,
                                   output=output, idle_frames=idle_frames)
        self.resampler: rtc.AudioResampler | None = None
        self.resampler_rate = 0

    async def push_audio(self, frame: rtc.AudioFrame | AudioSegmentEnd) -> None:
        if isinstance(frame, AudioSegmentEnd):
            if self.resampler is not None:
                for piece in self.resampler.flush():
                    await self.stream.send(bytes(piece.data))
                self.resampler, self.resampler_rate = None, 0
            await self.stream.end_segment()
            return
        for piece in self.resample(frame):
            await self.stream.send(bytes(piece.data))

    def resample(self, frame: rtc.AudioFrame) -> list[rtc.AudioFrame]:
        rate, channels = self.options.audio_sample_rate, self.options.audio_channels
        if frame.num_channels != channels:
            raise ValueError(f"audio frames have {frame.num_channels} channels; the avatar publishes {channels}")
        if frame.sample_rate == rate:
            return [frame]
        if self.resampler is None or self.resampler_rate != frame.sample_rate:
            self.resampler = rtc.AudioResampler(frame.sample_rate, rate, num_channels=channels)
            self.resampler_rate = frame.sample_rate
        return list(self.resampler.push(frame))

    async def clear_buffer(self) -> None:
        self.resampler, self.resampler_rate = None, 0
        await self.stream.interrupt()

    def __aiter__(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        return self.frames()

    async def frames(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        async for item in self.stream:
            if not isinstance(item, PairedFrame):
                yield AudioSegmentEnd()
                continue
            rgb = await asyncio.to_thread(item.rgb) if item.frame.output == "jpeg" else item.frame.data
            yield rtc.VideoFrame(self.options.video_width, self.options.video_height, rtc.VideoBufferType.RGB24, rgb)
            if item.audio:
                yield rtc.AudioFrame(item.audio, item.sample_rate, item.channels, item.samples)

    async def aclose(self) -> None:
        await self.stream.aclose()


class FlashheadAvatarSession:
    """The agent's side: send a FlashHead avatar worker into the room and route the agent's audio to it.

        avatar = FlashheadAvatarSession(dispatcher_url="http://avatar-dispatcher:8089")
        await avatar.start(session, room=ctx.room)

    The worker joins as `avatar_identity` with a token minted here (LIVEKIT_API_KEY/SECRET) that
    lets it publish on behalf of the agent, like LiveKit's hosted-avatar plugins.
    """

    def __init__(self, *, dispatcher_url: str, avatar_identity: str = AVATAR_IDENTITY,
                 avatar_id: str | None = None):
        self.dispatcher_url = dispatcher_url.rstrip("/")
        self.avatar_identity = avatar_identity
        self.avatar_id = avatar_id

    async def start(self, agent_session: object, room: rtc.Room, *, livekit_url: str, api_key: str,
                    api_secret: str) -> None:
        token = (api.AccessToken(api_key=api_key, api_secret=api_secret)
                 .with_kind("agent").with_identity(self.avatar_identity).with_name(self.avatar_identity)
                 .with_grants(api.VideoGrants(room_join=True, room=room.name))
                 .with_attributes({ATTRIBUTE_PUBLISH_ON_BEHALF: room.local_participant.identity})
                 .to_jwt())
        launch = {"room_name": room.name, "url": livekit_url, "token": token, "avatar_id": self.avatar_id}
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(f"{self.dispatcher_url}/launch", json=launch)
        response.raise_for_status()
        agent_session.output.audio = DataStreamAudioOutput(  # type: ignore[attr-defined]
            room=room, destination_identity=self.avatar_identity, wait_remote_track=rtc.TrackKind.KIND_VIDEO)
