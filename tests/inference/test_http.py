"""The real server over HTTP: probes, info, metrics, avatars, generate (checked with ffprobe)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import httpx
import numpy as np
import pytest

from inference import protocol
from inference.client import FlashheadClient, ServerError
from tests.inference.conftest import (
    TOKEN,
    RunningServer,
    encode_image,
    encoded_audio,
    face_image,
    ffprobe,
    speech_like,
    wav_bytes,
)


def test_probes_and_aliases(server: RunningServer) -> None:
    for path in ("/healthz", "/v2/health/live", "/readyz", "/v2/health/ready"):
        response = httpx.get(server.url + path)
        assert response.status_code == 200, path
    assert httpx.get(server.url + "/readyz").json()["status"] == "ready"


def test_info_reports_geometry_and_capacity(server: RunningServer) -> None:
    info = server.info()
    assert info["backend"] == "reference"
    assert (info["fps"], info["width"], info["height"], info["chunk_frames"]) == (25, 512, 512, 24)
    assert info["samples_per_chunk"] == 15360
    assert info["capacity"]["max_streams"] == 3
    assert info["ready"] is True and "numpy" in info["versions"]
    lag = info["event_loop_lag_ms"]
    assert lag["samples"] > 0 and 0 <= lag["p50"] <= lag["p95"] <= lag["max"]


def test_metrics_exposition(server: RunningServer) -> None:
    text = httpx.get(server.url + "/metrics").text
    for name in ("flashhead_frames_generated_total", "flashhead_chunk_generation_seconds_bucket",
                 "flashhead_queue_wait_seconds_bucket", "flashhead_time_to_first_frame_seconds_bucket",
                 "flashhead_active_streams", "flashhead_queued_chunks", "flashhead_rejected_streams_total",
                 "flashhead_event_loop_lag_seconds_bucket"):
        assert name in text or name.replace("_total", "") in text, name
    assert "flashhead_gpu_memory_used_bytes 0.0" in text  # no GPU: never sampled


@pytest.mark.asyncio
async def test_avatar_lifecycle(server: RunningServer) -> None:
    png = encode_image(face_image(), "PNG")
    async with FlashheadClient(server.url) as client:
        avatar = await client.create_avatar(png)
        assert avatar.startswith("av_")
        again = httpx.post(server.url + "/v1/avatars", files={"image": ("face.png", png)})
        assert again.status_code == 200 and again.json()["avatar_id"] == avatar  # same photo, same id
        described = await client.get_avatar(avatar)
        assert (described["width"], described["height"]) == (320, 400)
        assert avatar in [item["avatar_id"] for item in await client.list_avatars()]
        await client.delete_avatar(avatar)
        with pytest.raises(ServerError) as missing:
            await client.get_avatar(avatar)
        assert missing.value.status == 404 and missing.value.code == "not_found"


@pytest.mark.asyncio
async def test_generate_mp4_matches_audio(server: RunningServer, tmp_path: Path) -> None:
    seconds, rate = 2.3, 44100
    audio = wav_bytes(speech_like(seconds, rate, channels=2), rate)
    async with FlashheadClient(server.url) as client:
        avatar = await client.create_avatar(encode_image(face_image(), "JPEG"))
        mp4 = await client.generate(audio, avatar_id=avatar)
    probe = ffprobe(mp4, tmp_path)
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    sound = next(s for s in probe["streams"] if s["codec_type"] == "audio")
    assert (video["codec_name"], video["pix_fmt"], video["width"], video["height"]) == ("h264", "yuv420p", 512, 512)
    assert video["r_frame_rate"] == "25/1"
    assert int(video["nb_read_frames"]) == math.ceil(seconds * 25)
    assert sound["codec_name"] == "aac" and sound["channels"] == 1
    assert abs(float(video["duration"]) - seconds) <= 0.04  # within one frame of the audio
    assert abs(float(sound["duration"]) - seconds) <= 0.04
    assert mp4.index(b"moov") < mp4.index(b"mdat")  # faststart


@pytest.mark.asyncio
@pytest.mark.parametrize(("suffix", "rate", "channels"), [("mp3", 22050, 1), ("flac", 48000, 2), ("ogg", 32000, 1),
                                                          ("m4a", 24000, 2)])
async def test_generate_accepts_audio_formats(server: RunningServer, tmp_path: Path, suffix: str, rate: int,
                                              channels: int) -> None:
    audio = encoded_audio(1.0, rate, channels, suffix, tmp_path)
    async with FlashheadClient(server.url) as client:
        mp4 = await client.generate(audio, image=encode_image(face_image(), "PNG"))
    probe = ffprobe(mp4, tmp_path)
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    # Lossy encoders pad the start (encoder delay), so allow a few frames more than 25.
    assert 25 <= int(video["nb_read_frames"]) <= 28


@pytest.mark.asyncio
async def test_heic_and_exif_rotation(server: RunningServer) -> None:
    from PIL import Image

    upright = face_image(200, 300)
    # Stored rotated by 90°, with EXIF orientation 6 ("rotate 90 CW to display"): the server must undo it.
    stored = np.ascontiguousarray(np.rot90(upright, k=1))
    exif = Image.Exif()
    exif[0x0112] = 6
    jpeg = encode_image(stored, "JPEG", exif=exif.tobytes(), quality=95)
    heic = encode_image(upright, "HEIF", quality=90)
    webp = encode_image(upright, "WEBP", quality=90)
    async with FlashheadClient(server.url) as client:
        for data in (jpeg, heic, webp):
            avatar = await client.get_avatar(await client.create_avatar(data))
            assert (avatar["width"], avatar["height"]) == (200, 300)
        session = await client.stream(image=jpeg, output="rgb")
        await session.send_audio(np.zeros(640, np.int16).tobytes())
        await session.end()
        frames = [event async for event in session.events() if not isinstance(event, protocol.Message)]
    first = frames[0].to_array()
    # 200x300 covers 512x768 then crops the middle: the red marker (top-left of the upright photo) is cut,
    # so check orientation by the face: a portrait oval is taller than wide in the upright frame.
    skin = np.all(np.abs(first.astype(int) - (230, 190, 160)) < 30, axis=2)
    rows, cols = np.nonzero(skin)
    assert rows.max() - rows.min() > cols.max() - cols.min()


@pytest.mark.asyncio
async def test_generate_refused_at_capacity(server_factory) -> None:
    running = server_factory({"FLASHHEAD_MAX_STREAMS": "1", "FLASHHEAD_REFERENCE_CHUNK_MS": "300"})
    audio = wav_bytes(speech_like(3.0), 16000)
    image = encode_image(face_image(), "PNG")
    async with FlashheadClient(running.url) as client:
        first = asyncio.create_task(client.generate(audio, image=image))
        while running.info()["active_streams"] < 1:
            await asyncio.sleep(0.02)
        with pytest.raises(ServerError) as refused:
            await client.generate(audio, image=image)
        assert refused.value.status == 503 and refused.value.code == "at_capacity"
        assert refused.value.retry_after is not None and refused.value.retry_after >= 1
        assert len(await first) > 1000
    assert 'flashhead_rejected_streams_total{reason="capacity"} 1.0' in httpx.get(running.url + "/metrics").text


def test_token_required_except_probes(server_factory) -> None:
    running = server_factory(token=TOKEN)
    assert httpx.get(running.url + "/healthz").status_code == 200
    assert httpx.get(running.url + "/readyz").status_code == 200
    refused = httpx.get(running.url + "/v1/info")
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
    assert refused.headers["www-authenticate"] == "Bearer"
    assert httpx.get(running.url + "/v1/info", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(running.url + "/v1/info", headers=running.headers).status_code == 200
    assert TOKEN not in running.log_text()


@pytest.mark.asyncio
async def test_avatar_cache_is_bounded(server_factory) -> None:
    running = server_factory({"FLASHHEAD_AVATAR_CACHE": "2"})
    async with FlashheadClient(running.url) as client:
        ids = [await client.create_avatar(encode_image(face_image(100 + 10 * i, 120), "PNG")) for i in range(3)]
        assert len(set(ids)) == 3
        assert [item["avatar_id"] for item in await client.list_avatars()] == ids[1:]
        with pytest.raises(ServerError) as evicted:
            await client.get_avatar(ids[0])
        assert evicted.value.status == 404
        assert (await client.info())["avatars"] == 2


@pytest.mark.asyncio
async def test_generate_client_gone_frees_the_slot(server_factory) -> None:
    """A client that gives up on a long generate stops it: the slot frees and the model stops early."""
    running = server_factory({"FLASHHEAD_REFERENCE_CHUNK_MS": "100"})
    audio = wav_bytes(speech_like(60.0), 16000)  # 63 chunks: 6.3 s of model time
    async with FlashheadClient(running.url) as client:
        request = asyncio.create_task(client.generate(audio, image=encode_image(face_image(), "PNG")))
        while running.info()["active_streams"] < 1:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
    for _ in range(200):
        if running.info()["active_streams"] == 0:
            break
        await asyncio.sleep(0.05)
    assert running.info()["active_streams"] == 0
    chunks = next(float(line.split()[1]) for line in httpx.get(running.url + "/metrics").text.splitlines()
                  if line.startswith("flashhead_chunks_generated_total"))
    assert chunks < 60
