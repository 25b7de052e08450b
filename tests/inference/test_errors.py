"""A crashing backend never crashes the server: typed 500 / `internal` or `backend` errors, then it goes on."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import numpy as np
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from inference.app import create_app
from inference.backends.reference import ReferenceBackend, ReferenceStream
from inference.config import from_env
from tests.inference.conftest import encode_image, face_image, speech_like


class CrashingBackend(ReferenceBackend):
    """Fails on photos 123 px wide (prepare) and on streams seeded 13 (generate)."""

    def prepare_avatar(self, image: np.ndarray):  # type: ignore[no-untyped-def]
        if image.shape[1] == 123:
            raise RuntimeError("CUDA out of memory (simulated)")
        return super().prepare_avatar(image)

    def new_stream(self, avatar, seed: int) -> ReferenceStream:  # type: ignore[no-untyped-def]
        stream = super().new_stream(avatar, seed)
        stream.chunks = -1000 if seed == 13 else 0
        return stream

    def generate_chunk(self, stream: ReferenceStream) -> np.ndarray:
        if stream.chunks < 0:
            raise RuntimeError("device-side assert (simulated)")
        return super().generate_chunk(stream)


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = create_app(from_env({}), backend=CrashingBackend())
    with TestClient(app, raise_server_exceptions=False) as test_client:
        for _ in range(200):
            if test_client.get("/readyz").status_code == 200:
                break
            time.sleep(0.02)
        yield test_client


def test_unexpected_http_failure_is_a_typed_500(client: TestClient) -> None:
    response = client.post("/v1/avatars", files={"image": ("f", encode_image(face_image(123, 200), "PNG"))})
    assert response.status_code == 500
    assert response.json()["code"] == "internal" and "CUDA" not in response.text  # details stay in the log
    assert client.post("/v1/avatars", files={"image": ("f", encode_image(face_image(), "PNG"))}).status_code == 201


def test_unexpected_stream_failure_is_a_typed_error(client: TestClient) -> None:
    import base64

    image = base64.b64encode(encode_image(face_image(123, 200), "PNG")).decode()
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text(json.dumps({"type": "start", "image": image}))
        error = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert error["code"] == "internal" and closed.value.code == 1011


def test_backend_failure_mid_stream_ends_only_that_stream(client: TestClient) -> None:
    avatar = client.post("/v1/avatars", files={"image": ("f", encode_image(face_image(), "PNG"))}).json()["avatar_id"]
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text(json.dumps({"type": "start", "avatar_id": avatar, "seed": 13}))
        assert ws.receive_json()["type"] == "ready"
        ws.send_bytes(speech_like(1.0).tobytes())
        error = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert error["code"] == "backend" and closed.value.code == 1011
    with client.websocket_connect("/v1/stream") as ws:  # the next stream works
        ws.send_text(json.dumps({"type": "start", "avatar_id": avatar, "output": "rgb"}))
        ws.receive_json()
        ws.send_bytes(speech_like(0.2).tobytes())
        ws.send_text(json.dumps({"type": "end"}))
        frames = [ws.receive_bytes() for _ in range(5)]
        assert all(len(frame) == 20 + 512 * 512 * 3 for frame in frames)
        assert [json.loads(ws.receive_text())["type"] for _ in range(3)] == ["stats", "playback", "summary"]
