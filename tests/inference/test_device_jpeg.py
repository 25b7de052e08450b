"""A backend that encodes JPEG on its device: the server sends its files as they are and encodes none itself."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from inference import protocol
from inference.app import create_app
from inference.backends.reference import ReferenceBackend, ReferenceStream
from inference.config import from_env
from tests.inference.conftest import encode_image, face_image, speech_like

QUALITY = 70


class DeviceJpegBackend(ReferenceBackend):
    """The reference renderer whose JPEG files carry a comment naming the quality it was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.jpeg_qualities: list[int] = []

    @property
    def encodes_jpeg(self) -> bool:
        return True

    def generate_jpeg_chunks(self, streams: list[ReferenceStream], quality: int) -> list[list[bytes]]:
        self.jpeg_qualities.append(quality)
        return [[_tagged_jpeg(frame, quality) for frame in frames] for frames in self.generate_chunks(streams)]


def _tagged_jpeg(frame: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality, comment=f"device q{quality}")
    return buffer.getvalue()


def _host_encoder_must_not_run(frame: np.ndarray, quality: int) -> bytes:
    raise AssertionError("the server encoded a frame the backend had encoded")


@pytest.fixture
def backend() -> DeviceJpegBackend:
    return DeviceJpegBackend()


@pytest.fixture
def client(backend: DeviceJpegBackend) -> Iterator[TestClient]:
    app = create_app(from_env({"FLASHHEAD_JPEG_QUALITY": str(QUALITY)}), backend=backend)
    with TestClient(app) as test_client:
        for _ in range(200):
            if test_client.get("/readyz").status_code == 200:
                break
            time.sleep(0.02)
        yield test_client


def _stream(client: TestClient, output: str, seconds: float) -> list[bytes]:
    avatar = client.post("/v1/avatars", files={"image": ("f", encode_image(face_image(), "PNG"))}).json()["avatar_id"]
    frames = []
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text(json.dumps({"type": "start", "avatar_id": avatar, "output": output}))
        assert ws.receive_json()["type"] == "ready"
        ws.send_bytes(speech_like(seconds).tobytes())
        ws.send_text(json.dumps({"type": "end"}))
        while True:
            message = ws.receive()
            if message.get("bytes"):
                frames.append(message["bytes"][protocol.FRAME_HEADER.size:])
            elif json.loads(message["text"])["type"] == "summary":
                return frames


def test_jpeg_streams_get_the_backends_files_unchanged(client: TestClient, backend: DeviceJpegBackend,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("inference.media.output.encode_jpeg", _host_encoder_must_not_run)
    frames = _stream(client, "jpeg", 1.5)
    assert len(frames) == 38  # ceil(1.5 s * 25 fps): the last chunk's `keep` applies to the files too
    assert backend.jpeg_qualities and set(backend.jpeg_qualities) == {QUALITY}
    image = Image.open(io.BytesIO(frames[0]))
    assert image.size == (512, 512) and image.info["comment"] == f"device q{QUALITY}".encode()


def test_rgb_streams_still_get_raw_frames(client: TestClient, backend: DeviceJpegBackend) -> None:
    frames = _stream(client, "rgb", 0.5)
    assert len(frames) == 13 and all(len(frame) == 512 * 512 * 3 for frame in frames)
    assert backend.jpeg_qualities == []

