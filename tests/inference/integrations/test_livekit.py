"""The LiveKit VideoGenerator against the real server (reference backend), and AvatarRunner end to end
with a stand-in room (no LiveKit server can run here: see docs/integrations.md for the manual check)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("livekit.agents", reason="flashhead-ops[livekit] is not installed (.ci/run installs it)")
from livekit import rtc  # noqa: E402
from livekit.agents.voice.avatar import AudioSegmentEnd, AvatarRunner, QueueAudioOutput  # noqa: E402

from inference.client import FlashheadClient  # noqa: E402
from inference.integrations.livekit import FlashheadVideoGenerator, avatar_options  # noqa: E402
from tests.inference.conftest import RunningServer, encode_image, face_image, speech_like  # noqa: E402

Item = rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd


def audio_frames(samples: np.ndarray, rate: int, ms: int = 20) -> list[rtc.AudioFrame]:
    step = rate * ms // 1000
    return [rtc.AudioFrame(samples[i:i + step].tobytes(), rate, 1, len(samples[i:i + step]))
            for i in range(0, len(samples), step)]


async def collect_until(source: AsyncIterator[Item], ends: int, timeout: float = 60) -> list[Item]:
    items: list[Item] = []

    async def run() -> None:
        async for item in source:
            items.append(item)
            if sum(isinstance(i, AudioSegmentEnd) for i in items) == ends:
                return

    await asyncio.wait_for(run(), timeout)
    return items


async def generator(client: FlashheadClient, **kwargs: Any) -> FlashheadVideoGenerator:
    avatar = await client.create_avatar(encode_image(face_image(), "PNG"))
    return FlashheadVideoGenerator(client, avatar_id=avatar, **kwargs)


@pytest.mark.asyncio
@pytest.mark.parametrize("rate", [16000, 24000, 48000])
async def test_each_frame_comes_with_its_own_audio_at_any_input_rate(server: RunningServer, rate: int) -> None:
    speech = speech_like(1.3, rate)[:, 0]
    async with FlashheadClient(server.url) as client:
        gen = await generator(client, idle_frames=False)
        iterator = gen.__aiter__()
        for frame in audio_frames(speech, rate):
            await gen.push_audio(frame)
        await gen.push_audio(AudioSegmentEnd())
        items = await collect_until(iterator, 1)
        sent = gen.stream.sent.end  # samples at 24 kHz the server got (after LiveKit's resampler)
        await gen.aclose()
    videos = [i for i in items if isinstance(i, rtc.VideoFrame)]
    audios = [i for i in items if isinstance(i, rtc.AudioFrame)]
    assert abs(sent - 1.3 * 24000) <= 24000 * 0.01  # the resampler keeps the duration
    assert len(videos) == math.ceil(sent * 25 / 24000)
    assert all(v.width == 512 and v.height == 512 and v.type == rtc.VideoBufferType.RGB24 for v in videos)
    # Video, its audio, video, its audio ... and the segment end right after the last audio.
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["VideoFrame", "AudioFrame"] * len(videos) + ["AudioSegmentEnd"]
    assert sum(a.samples_per_channel for a in audios) == sent  # pairing: nothing lost, nothing doubled
    assert all(a.sample_rate == 24000 and a.samples_per_channel == 960 for a in audios[:-1])
    assert 0 < audios[-1].samples_per_channel <= 960
    if rate == 24000:  # no resampling: the paired audio is the pushed audio, byte for byte
        assert b"".join(bytes(a.data) for a in audios) == speech.tobytes()


@pytest.mark.asyncio
async def test_clear_buffer_mid_segment_drops_the_stale_frames(server_factory) -> None:
    running = server_factory({"FLASHHEAD_REFERENCE_CHUNK_MS": "200"})
    first, reply = speech_like(6.0, 24000)[:, 0], (speech_like(0.4, 24000)[:, 0] // 2)
    async with FlashheadClient(running.url) as client:
        gen = await generator(client, idle_frames=False)
        iterator = gen.__aiter__()
        for frame in audio_frames(first, 24000):
            await gen.push_audio(frame)
        before = [await iterator.__anext__() for _ in range(10)]  # five frames of the first utterance
        await gen.clear_buffer()
        for frame in audio_frames(reply, 24000):
            await gen.push_audio(frame)
        await gen.push_audio(AudioSegmentEnd())
        after = await collect_until(iterator, 1)
        stale = gen.stream.stale_frames
        await gen.aclose()
    assert [type(i).__name__ for i in before] == ["VideoFrame", "AudioFrame"] * 5
    # After clear_buffer only the reply: its 10 frames, each with its own audio, then its end.
    audios = [i for i in after if isinstance(i, rtc.AudioFrame)]
    assert [type(i).__name__ for i in after] == ["VideoFrame", "AudioFrame"] * 10 + ["AudioSegmentEnd"]
    assert b"".join(bytes(a.data) for a in audios) == reply.tobytes()
    assert stale <= 48  # what was generated or on the way when the interrupt came: at most the chunk in flight
    print(f"stale frames dropped after clear_buffer: {stale}")


@pytest.mark.asyncio
async def test_idle_frames_while_no_audio_arrives(server: RunningServer) -> None:
    async with FlashheadClient(server.url) as client:
        gen = await generator(client, idle_frames=True)
        iterator = gen.__aiter__()
        items = [await asyncio.wait_for(iterator.__anext__(), 10) for _ in range(30)]
        await gen.aclose()
    assert all(isinstance(i, rtc.VideoFrame) for i in items)  # video only: nothing to play


class StandInPublication:
    async def wait_for_subscription(self) -> None:
        return None


class StandInParticipant:
    identity = "flashhead-avatar"

    def __init__(self) -> None:
        self.tracks: list[Any] = []

    async def publish_track(self, track: Any, options: Any) -> StandInPublication:
        self.tracks.append(track)
        return StandInPublication()


class StandInRoom(rtc.EventEmitter[str]):
    """What AvatarRunner uses of a connected rtc.Room: isconnected, local_participant.publish_track."""

    def __init__(self) -> None:
        super().__init__()
        self.local_participant = StandInParticipant()

    def isconnected(self) -> bool:
        return True


@pytest.mark.asyncio
async def test_avatar_runner_publishes_synchronised_frames_and_reports_playback(server_factory) -> None:
    running = server_factory({"FLASHHEAD_REFERENCE_CHUNK_MS": "100"})
    options = avatar_options(24000)
    room = StandInRoom()
    receiver = QueueAudioOutput(sample_rate=24000)
    finished: list[Any] = []
    receiver.on("playback_finished", finished.append)
    async with FlashheadClient(running.url) as client:
        gen = await generator(client, options=options, idle_frames=False)
        runner = AvatarRunner(room, audio_recv=receiver, video_gen=gen, options=options)  # type: ignore[arg-type]
        pushed: list[Any] = []
        push = runner.av_sync.push

        async def counting_push(frame: Any, timestamp: float | None = None) -> None:
            pushed.append(frame)
            await push(frame, timestamp)

        runner.av_sync.push = counting_push  # type: ignore[method-assign]
        await runner.start()
        for frame in audio_frames(speech_like(0.6, 24000)[:, 0], 24000):
            await receiver.capture_frame(frame)
        receiver.flush()
        await asyncio.wait_for(_until(lambda: finished), 30)
        # A second utterance, cut off: clear_buffer -> interrupt -> playback finished, interrupted.
        for frame in audio_frames(speech_like(5.0, 24000)[:, 0], 24000):
            await receiver.capture_frame(frame)
        await asyncio.wait_for(_until(lambda: len(pushed) > 40), 30)
        receiver.clear_buffer()
        await asyncio.wait_for(_until(lambda: len(finished) == 2), 30)
        await runner.aclose()
        await gen.aclose()
    assert [kind.kind for kind in room.local_participant.tracks] == [rtc.TrackKind.KIND_AUDIO, rtc.TrackKind.KIND_VIDEO]
    # 0.6 s: 15 frames, each followed by its audio; then the next utterance's frames, each with its audio.
    assert [type(f).__name__ for f in pushed[:40]] == ["VideoFrame", "AudioFrame"] * 20
    assert not finished[0].interrupted and finished[0].playback_position == pytest.approx(0.6, abs=0.001)
    assert finished[1].interrupted and 0 < finished[1].playback_position < 5.0


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.02)


@pytest.mark.parametrize(("env", "message"), [
    ({}, "LIVEKIT_URL and LIVEKIT_TOKEN"),
    ({"LIVEKIT_URL": "wss://127.0.0.1:7880", "LIVEKIT_TOKEN": "t"}, "exactly one of FLASHHEAD_AVATAR_ID"),
    ({"LIVEKIT_URL": "wss://127.0.0.1:7880", "LIVEKIT_TOKEN": "t", "FLASHHEAD_AVATAR_IMAGE": "/nonexistent.png"},
     "is not a file"),
    ({"LIVEKIT_URL": "wss://127.0.0.1:7880", "LIVEKIT_TOKEN": "t", "FLASHHEAD_AVATAR_ID": "av",
      "FLASHHEAD_AUDIO_SAMPLE_RATE": "fast"}, "FLASHHEAD_AUDIO_SAMPLE_RATE"),
])
def test_the_worker_names_a_missing_setting(env: dict[str, str], message: str, capsys: pytest.CaptureFixture) -> None:
    from inference.integrations.livekit_worker import main

    assert main(env) == 2
    assert message in capsys.readouterr().err
