"""The Pipecat video service in a real Pipecat pipeline (pipecat.tests.utils.run_test) against the real
server (reference backend): paired image/audio frames, an interruption, the held TTSStoppedFrame."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pipecat", reason="flashhead-ops[pipecat] is not installed (.ci/run installs it)")
from pipecat.frames.frames import (  # noqa: E402
    InterruptionFrame,
    OutputImageRawFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.tests.utils import SleepFrame, run_test  # noqa: E402

from inference.client import FlashheadClient  # noqa: E402
from inference.integrations.pipecat import FlashheadVideoService  # noqa: E402
from tests.inference.conftest import encode_image, face_image, speech_like  # noqa: E402


def tts_frames(samples: np.ndarray, rate: int, ms: int = 40) -> list[TTSAudioRawFrame]:
    step = rate * ms // 1000
    return [TTSAudioRawFrame(audio=samples[i:i + step].tobytes(), sample_rate=rate, num_channels=1)
            for i in range(0, len(samples), step)]


@pytest.mark.asyncio
async def test_an_utterance_cut_off_by_an_interruption_then_a_reply(server_factory) -> None:
    running = server_factory({"FLASHHEAD_REFERENCE_CHUNK_MS": "100"})
    async with FlashheadClient(running.url) as client:
        avatar = await client.create_avatar(encode_image(face_image(), "PNG"))
    first = speech_like(4.0, 24000)[:, 0]
    reply = speech_like(0.5, 16000)[:, 0] // 2  # TTS at 16 kHz: resampled to the pipeline's 24 kHz
    service = FlashheadVideoService(base_url=running.url, avatar_id=avatar, sample_rate=24000, idle_frames=False)
    frames = [TTSStartedFrame(), *tts_frames(first, 24000), SleepFrame(1.5), InterruptionFrame(),
              TTSStartedFrame(), *tts_frames(reply, 16000), TTSStoppedFrame()]
    down, _ = await run_test(service, frames_to_send=frames, start_timeout=10)
    names = [type(frame).__name__ for frame in down]
    cut = names.index("InterruptionFrame")
    before, after = down[:cut], down[cut + 1:]
    # Before the interruption: frames of the first utterance, each image followed by its 40 ms.
    pairs = [f for f in before if isinstance(f, OutputImageRawFrame | TTSAudioRawFrame)]
    assert len(pairs) >= 10 and [type(f).__name__ for f in pairs] == ["OutputImageRawFrame", "TTSAudioRawFrame"] * (
        len(pairs) // 2)
    assert all(f.size == (512, 512) and f.format == "RGB" and len(f.image) == 512 * 512 * 3
               for f in pairs if isinstance(f, OutputImageRawFrame))
    assert b"".join(f.audio for f in pairs if isinstance(f, TTSAudioRawFrame)) == first.tobytes()[
        : sum(len(f.audio) for f in pairs if isinstance(f, TTSAudioRawFrame))]
    # After it: only the reply (0.5 s = 13 frames at 25 fps), then the held TTSStoppedFrame.
    images = [f for f in after if isinstance(f, OutputImageRawFrame)]
    audio = [f for f in after if isinstance(f, TTSAudioRawFrame)]
    assert len(images) == 13 and all(a.sample_rate == 24000 for a in audio)
    assert sum(len(a.audio) for a in audio) // 2 == 12000  # 0.5 s at 24 kHz: the resampler is flushed at the end
    assert [type(f).__name__ for f in after if not isinstance(f, TTSStartedFrame)][-1] == "TTSStoppedFrame"
    assert names.count("TTSStoppedFrame") == 1
    pts = [f.pts for f in images]
    assert pts == sorted(pts) and pts[1] - pts[0] == 40_000_000  # ns, 25 fps
