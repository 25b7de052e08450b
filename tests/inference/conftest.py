"""Fixtures: a real `python -m inference` server on a free loopback port, and media samples."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-token-0123456789abcdef"


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    token: str | None = None

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/v1/stream"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def info(self) -> dict:
        return httpx.get(self.url + "/v1/info", headers=self.headers, timeout=10).json()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(tmp: Path, env: dict[str, str] | None = None, token: str | None = None,
                 wait_ready: bool = True) -> RunningServer:
    """Start the real server in a subprocess and wait until /readyz answers 200."""
    for _attempt in range(3):
        port = free_port()
        log = tmp / f"server-{port}.log"
        full_env = {**os.environ, "FLASHHEAD_PORT": str(port), "FLASHHEAD_HOST": "127.0.0.1",
                    "FLASHHEAD_BACKEND": "reference", "FLASHHEAD_LOG_LEVEL": "warning", **(env or {})}
        if token:
            full_env["FLASHHEAD_API_TOKEN"] = token
        with log.open("wb") as handle:
            process = subprocess.Popen([sys.executable, "-m", "inference"], cwd=REPO, env=full_env,
                                       stdout=handle, stderr=subprocess.STDOUT)
        server = RunningServer(f"http://127.0.0.1:{port}", process, log, token)
        if not wait_ready:
            return server
        if _wait(server):
            return server
        if "address already in use" not in server.log_text().lower():
            server.stop(signal.SIGKILL)
            raise RuntimeError(f"server did not become ready:\n{server.log_text()}")
    raise RuntimeError("no free port after 3 attempts")


def _wait(server: RunningServer, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            if httpx.get(server.url + "/readyz", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    return False


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The shared reference-backend server (3 stream slots)."""
    running = start_server(tmp_path_factory.mktemp("server"), {"FLASHHEAD_MAX_STREAMS": "3"})
    yield running
    running.stop()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """Start dedicated servers with their own settings; all are stopped after the test."""
    started: list[RunningServer] = []

    def factory(env: dict[str, str] | None = None, token: str | None = None, wait_ready: bool = True) -> RunningServer:
        running = start_server(tmp_path, env, token, wait_ready)
        started.append(running)
        return running

    yield factory
    for running in started:
        if running.process.poll() is None:
            running.stop(signal.SIGKILL)


# ---- media samples -------------------------------------------------------------------------------------------

def face_image(width: int = 320, height: int = 400) -> np.ndarray:
    """A synthetic portrait: a light oval face with dark eyes on a blue background (asymmetric on purpose)."""
    ys, xs = np.mgrid[0:height, 0:width]
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = (40, 70, 160)
    face = ((xs - width / 2) / (width * 0.35)) ** 2 + ((ys - height * 0.5) / (height * 0.4)) ** 2 <= 1
    image[face] = (230, 190, 160)
    for ex in (0.38, 0.62):
        eye = ((xs - width * ex) / (width * 0.05)) ** 2 + ((ys - height * 0.4) / (height * 0.03)) ** 2 <= 1
        image[eye] = (20, 20, 20)
    image[: height // 10, : width // 10] = (255, 0, 0)  # a red top-left marker to check orientation
    return image


def encode_image(image: np.ndarray, fmt: str, **save: object) -> bytes:
    from PIL import Image
    from pillow_heif import register_heif_opener

    register_heif_opener()
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **save)
    return buffer.getvalue()


def speech_like(seconds: float, rate: int = 16000, channels: int = 1) -> np.ndarray:
    """int16 samples: a 180 Hz buzz gated at 4 Hz (syllables), shape (n, channels)."""
    t = np.arange(int(round(seconds * rate))) / rate
    signal_ = 0.4 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 4 * t) > 0)
    mono = (signal_ * 32767).astype(np.int16)
    return np.repeat(mono[:, None], channels, axis=1)


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(samples.shape[1])
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(samples.astype("<i2").tobytes())
    return buffer.getvalue()


def encoded_audio(seconds: float, rate: int, channels: int, suffix: str, tmp: Path) -> bytes:
    """Encode speech-like audio with ffmpeg into mp3/flac/ogg/m4a."""
    source = tmp / f"src-{rate}-{channels}.wav"
    source.write_bytes(wav_bytes(speech_like(seconds, rate, channels), rate))
    target = tmp / f"out-{rate}-{channels}.{suffix}"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), str(target)], check=True)
    return target.read_bytes()


def ffprobe(data: bytes, tmp: Path) -> dict:
    import json

    path = tmp / "probe.mp4"
    path.write_bytes(data)
    output = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-count_frames", "-of", "json",
                             str(path)], check=True, capture_output=True, text=True).stdout
    return dict(json.loads(output))
