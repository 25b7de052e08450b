"""The generated media corpus through the real server: every member gets a valid 2xx or a clear 4xx,
the server stays alive after each, and its memory stays below a stated bound.

Bounds (reference backend, FLASHHEAD_MEDIA_WORKERS=2): the server process's peak RSS stays under
SERVER_PEAK_MB whatever it is sent; each media worker's peak stays under WORKER_PEAK_MB.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.inference.conftest import RunningServer, encode_image, face_image, start_server
from tests.inference.corpus import Member, audio_members, image_members

MAX_SECONDS = 20.0
MAX_PIXELS = 40_000_000
MAX_ASPECT = 8.0
SERVER_PEAK_MB = 300
WORKER_PEAK_MB = 300


@pytest.fixture(scope="module")
def corpus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("corpus"), {"FLASHHEAD_MAX_AUDIO_SECONDS": str(MAX_SECONDS),
                                                                "FLASHHEAD_MAX_STREAMS": "2"})
    yield running
    running.stop()


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _check_answer(server: RunningServer, member: Member, response: httpx.Response, failures: list[str]) -> bool:
    """Common checks: no 5xx, a typed 4xx body, the expected status; True when the answer is a 2xx."""
    name = member.name
    if response.status_code >= 500:
        failures.append(f"{name}: {response.status_code} {response.text[:200]}")
        return False
    if response.status_code >= 400:
        body = response.json()
        if not (body.get("code") and body.get("message") and body.get("remedy")):
            failures.append(f"{name}: untyped error body {body}")
        if member.expect == "ok":
            failures.append(f"{name}: expected 2xx, got {response.status_code} {body.get('message')}")
        elif member.expect == "error" and response.status_code != member.status:
            failures.append(f"{name}: expected {member.status}, got {response.status_code} {body.get('message')}")
        missing = [word for word in member.mentions if word not in body.get("message", "")]
        if missing:
            failures.append(f"{name}: message {body.get('message')!r} does not mention {missing}")
        return False
    if member.expect == "error":
        failures.append(f"{name}: expected {member.status}, got {response.status_code}")
        return False
    return True


def _check_alive(server: RunningServer, member: Member, failures: list[str]) -> None:
    if server.process.poll() is not None:
        raise AssertionError(f"the server died after {member.name!r}:\n{server.log_text()[-3000:]}")
    if httpx.get(server.url + "/healthz", timeout=10).status_code != 200:
        failures.append(f"{member.name}: /healthz failed after it")


def _check_mp4(member: Member, response: httpx.Response, failures: list[str]) -> None:
    import av

    seconds = float(response.headers["x-audio-seconds"])
    frames = int(response.headers["x-frames"])
    if frames != math.ceil(round(seconds * 16000) / 640):
        failures.append(f"{member.name}: {frames} frames for {seconds} s")
    if member.expect == "ok" and abs(seconds - member.seconds) > member.tolerance:
        failures.append(f"{member.name}: decoded {seconds} s, expected {member.seconds} s")
    with av.open(io.BytesIO(response.content)) as container:
        video = sum(1 for _ in container.decode(video=0))
        has_audio = bool(container.streams.audio)
    if video != frames or not has_audio:
        failures.append(f"{member.name}: the MP4 has {video} frames (header says {frames}), audio: {has_audio}")


def test_audio_corpus(corpus_server: RunningServer, tmp_path: Path) -> None:
    members = audio_members(tmp_path, MAX_SECONDS)
    photo = encode_image(face_image(), "PNG")
    answer = httpx.post(corpus_server.url + "/v1/avatars", files={"image": ("f.png", photo)}, timeout=30)
    avatar = answer.json()["avatar_id"]
    failures: list[str] = []
    with httpx.Client(base_url=corpus_server.url, timeout=120) as client:
        for member in members:
            response = client.post("/v1/generate", data={"avatar_id": avatar},
                                   files={"audio": ("clip", member.data)})
            if _check_answer(corpus_server, member, response, failures):
                _check_mp4(member, response, failures)
            _check_alive(corpus_server, member, failures)
    assert not failures, "\n".join(failures)
    assert len(members) > 100
    _check_memory(corpus_server)


def test_image_corpus(corpus_server: RunningServer, tmp_path: Path) -> None:
    members = image_members(tmp_path, MAX_PIXELS, MAX_ASPECT)
    failures: list[str] = []
    with httpx.Client(base_url=corpus_server.url, timeout=120) as client:
        for member in members:
            response = client.post("/v1/avatars", files={"image": ("photo", member.data)})
            if _check_answer(corpus_server, member, response, failures) and member.expect == "ok":
                described = response.json()
                if (described["width"], described["height"]) != member.size:
                    failures.append(f"{member.name}: {described['width']}x{described['height']}, "
                                    f"expected {member.size[0]}x{member.size[1]}")
            _check_alive(corpus_server, member, failures)
    assert not failures, "\n".join(failures)
    _check_memory(corpus_server)


def _check_memory(server: RunningServer) -> None:
    peak_mb = _status_kb(server.process.pid, "VmHWM") / 1024
    workers = [pid for pid in _descendants(server.process.pid) if _status_kb(pid, "VmHWM")]
    worker_peaks = [_status_kb(pid, "VmHWM") / 1024 for pid in workers]
    print(f"server peak RSS {peak_mb:.0f} MB; media worker peaks {[round(p) for p in worker_peaks]} MB")
    assert peak_mb < SERVER_PEAK_MB
    assert worker_peaks and max(worker_peaks) < WORKER_PEAK_MB
