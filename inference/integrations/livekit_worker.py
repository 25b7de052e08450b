"""One FlashHead avatar in one LiveKit room: `python -m inference.integrations.livekit_worker`.

Joins the room, receives the agent's audio over LiveKit data streams (`DataStreamAudioReceiver`),
and publishes the talking head through `AvatarRunner` until the agent leaves or the room closes.
Everything comes from the environment, so no token shows in a process list:

    LIVEKIT_URL, LIVEKIT_TOKEN          the room to join (the dispatcher sets them)
    FLASHHEAD_URL                       the inference server (default http://127.0.0.1:8000)
    FLASHHEAD_API_TOKEN                 its bearer token, if it has one
    FLASHHEAD_AVATAR_ID | FLASHHEAD_AVATAR_IMAGE   an uploaded avatar, or a photo file to upload
    FLASHHEAD_AUDIO_SAMPLE_RATE         the published audio's rate (default 24000)
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from livekit import rtc
from livekit.agents.voice.avatar import AvatarRunner, DataStreamAudioReceiver

from inference.client import FlashheadClient
from inference.integrations.livekit import FlashheadVideoGenerator, avatar_options

log = logging.getLogger("flashhead.livekit")


class WorkerConfigError(ValueError):
    """A missing or invalid setting; the message names it."""


@dataclass(frozen=True)
class WorkerConfig:
    livekit_url: str
    livekit_token: str
    flashhead_url: str
    flashhead_token: str | None
    avatar_id: str | None
    avatar_image: Path | None
    sample_rate: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WorkerConfig:
        missing = [name for name in ("LIVEKIT_URL", "LIVEKIT_TOKEN") if not env.get(name)]
        if missing:
            raise WorkerConfigError(f"set {' and '.join(missing)} (the room to join)")
        avatar_id, image = env.get("FLASHHEAD_AVATAR_ID") or None, env.get("FLASHHEAD_AVATAR_IMAGE") or None
        if (avatar_id is None) == (image is None):
            raise WorkerConfigError("set exactly one of FLASHHEAD_AVATAR_ID or FLASHHEAD_AVATAR_IMAGE")
        if image is not None and not Path(image).is_file():
            raise WorkerConfigError(f"FLASHHEAD_AVATAR_IMAGE={image} is not a file")
        rate = env.get("FLASHHEAD_AUDIO_SAMPLE_RATE", "24000")
        if not rate.isdigit() or not 8000 <= int(rate) <= 48000:
            raise WorkerConfigError("FLASHHEAD_AUDIO_SAMPLE_RATE must be an integer from 8000 to 48000")
        return cls(env["LIVEKIT_URL"], env["LIVEKIT_TOKEN"], env.get("FLASHHEAD_URL", "http://127.0.0.1:8000"),
                   env.get("FLASHHEAD_API_TOKEN") or None, avatar_id, Path(image) if image else None, int(rate))


async def run_avatar(room: rtc.Room, generator: FlashheadVideoGenerator, stop: asyncio.Event) -> None:
    """Publish `generator`'s frames in `room` until `stop` is set (the agent left, the room closed)."""
    runner = AvatarRunner(room, audio_recv=DataStreamAudioReceiver(room), video_gen=generator,
                          options=generator.options)

    def on_participant_left(participant: rtc.RemoteParticipant) -> None:
        if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            log.info("the agent left the room", extra={"identity": participant.identity})
            stop.set()

    room.on("participant_disconnected", on_participant_left)
    room.on("disconnected", lambda *_: stop.set())
    await runner.start()
    try:
        await stop.wait()
    finally:
        await runner.aclose()
        await generator.aclose()


async def serve(config: WorkerConfig) -> None:
    async with FlashheadClient(config.flashhead_url, token=config.flashhead_token) as client:
        avatar_id = config.avatar_id
        if avatar_id is None:
            assert config.avatar_image is not None
            avatar_id = await client.create_avatar(config.avatar_image)
        generator = FlashheadVideoGenerator(client, avatar_id=avatar_id, options=avatar_options(config.sample_rate))
        room = rtc.Room()
        await room.connect(config.livekit_url, config.livekit_token)
        log.info("joined the room", extra={"room": room.name})
        try:
            await run_avatar(room, generator, asyncio.Event())
        finally:
            await room.disconnect()


def main(env: Mapping[str, str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = WorkerConfig.from_env(os.environ if env is None else env)
    except WorkerConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
