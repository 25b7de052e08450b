"""Soak: N real-time streams for T minutes, with and without a stream of hostile requests beside them.

The reference backend emulates a GPU's chunk time (FLASHHEAD_REFERENCE_CHUNK_MS), the streams send
speech at real-time pace in 40 ms packets, and a hostile client keeps sending what broke the
server before: 8- and 64-channel audio, a 16x100000 PNG, a PNG declaring 50000x50000, long 192 kHz
audio past the limit, one sample at 48 kHz, a body trickled a byte at a time, silent TCP
connections, broken WebSocket messages and tokens that are not ASCII. Each side runs on a fresh
server; both sides are printed together:

  RSS of the server (and of its media workers) at start (after one warm-up round of every
  request on both sides) and end, and every 15 s between, p95 chunk latency of the
  streams (queue + generation, from their `stats`), frames, stream errors, 5xx answers, and
  how the hostile requests were answered. Goals: RSS flat within 5 %, no 5xx, p95 unchanged.

Usage: python benchmarks/server_soak.py [--streams 4] [--minutes 3] [--chunk-ms 100]
Results: benchmarks/results/server_soak.json
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import wave
import zlib
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import write_result  # noqa: E402

from inference import protocol  # noqa: E402
from inference.client import FlashheadClient  # noqa: E402

MAX_AUDIO_SECONDS = 60


def speech(seconds: float, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    wave_ = 0.4 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 4 * t) > 0)
    return (wave_ * 32767).astype("<i2").tobytes()


def wav(pcm: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(pcm.shape[1])
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.astype("<i2").tobytes())
    return buffer.getvalue()


def png(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + \
        chunk(b"IEND", b"")


def face_png() -> bytes:
    from PIL import Image

    ys, xs = np.mgrid[0:512, 0:512]
    image = np.zeros((512, 512, 3), np.uint8)
    image[:] = (40, 70, 160)
    image[((xs - 256) / 180) ** 2 + ((ys - 256) / 220) ** 2 <= 1] = (230, 190, 160)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def long_flac(seconds: float) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "long.flac"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=192000:cl=mono", "-t",
                        str(seconds), str(target)], check=True)
        return target.read_bytes()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def family_rss_mb(pid: int) -> float:
    """The server and every process under it (fork server, media workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += rss_mb(current)
        todo.extend(children.get(current, []))
    return total


def start_server(chunk_ms: float, streams: int) -> tuple[subprocess.Popen[bytes], str, Path]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = Path(tempfile.mkstemp(prefix="soak-", suffix=".log")[1])
    env = {**os.environ, "FLASHHEAD_PORT": str(port), "FLASHHEAD_BACKEND": "reference",
           "FLASHHEAD_REFERENCE_CHUNK_MS": str(chunk_ms), "FLASHHEAD_MAX_STREAMS": str(streams + 2),
           "FLASHHEAD_ADMISSION": "fixed", "FLASHHEAD_LOG_LEVEL": "warning",
           "FLASHHEAD_MAX_AUDIO_SECONDS": str(MAX_AUDIO_SECONDS), "FLASHHEAD_BODY_DEADLINE_S": "10",
           "FLASHHEAD_HEADER_TIMEOUT_S": "5"}
    process = subprocess.Popen([sys.executable, "-m", "inference"], cwd=ROOT, env=env, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return process, url, log
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(log.read_text())


async def realtime_stream(url: str, avatar: str, until: float, latencies: list[float], errors: Counter[str]) -> int:
    """Stream speech at real-time pace in 40 ms packets until `until`; returns frames received."""
    frames = 0
    packet = speech(0.04)
    async with FlashheadClient(url) as client:
        while time.monotonic() < until:
            try:
                session = await client.stream(avatar_id=avatar, idle_frames=False)
                started = time.monotonic()

                async def send(session=session, started=started) -> None:  # type: ignore[no-untyped-def]
                    sent = 0
                    while time.monotonic() < min(until, started + 30):  # a new stream every 30 s
                        await asyncio.sleep(max(0.0, started + sent * 0.04 - time.monotonic()))
                        await session.send_audio(packet)
                        sent += 1
                    await session.end()

                sender = asyncio.create_task(send())
                async for event in session.events():
                    if isinstance(event, protocol.Stats):
                        latencies.append(event.generation_ms + event.queue_ms)
                    elif not isinstance(event, protocol.Message):
                        frames += 1
                await sender
                await session.close()
            except Exception as error:  # noqa: BLE001 - counted, the soak goes on
                errors[type(error).__name__ + ": " + str(error)[:80]] += 1
                await asyncio.sleep(1)
    return frames


async def hostile(url: str, avatar: str, until: float, answers: Counter[str]) -> None:
    """Cycle through the requests that once crashed, stalled or bloated the server (one round when
    `until` has passed already: the warm-up both sides get)."""
    host, port = url.removeprefix("http://").split(":")
    tone = (np.sin(np.arange(4800) / 10) * 8000).astype(np.int16)[:, None]
    uploads = [("audio 8 ch", "audio", wav(np.repeat(tone, 8, axis=1), 48000)),
               ("audio 64 ch", "audio", wav(np.repeat(tone, 64, axis=1), 48000)),
               ("one sample", "audio", wav(tone[:1], 48000)),
               (f"{MAX_AUDIO_SECONDS + 20} s of 192 kHz", "audio", long_flac(MAX_AUDIO_SECONDS + 20)),
               ("png 16x100000", "image", png(16, 100000)), ("png declaring 50000x50000", "image",
                                                                  png_declaring(50000, 50000))]
    step = 0
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        while time.monotonic() < until or step < len(uploads):
            name, field, data = uploads[step % len(uploads)]
            if field == "audio":
                response = await client.post("/v1/generate", data={"avatar_id": avatar}, files={"audio": ("a", data)})
            else:
                response = await client.post("/v1/avatars", files={"image": ("i", data)})
            answers[f"{name}: {response.status_code}"] += 1
            if step % 3 == 0 or time.monotonic() >= until:
                answers[await trickle(host, int(port))] += 1
                silent = [socket.create_connection((host, int(port))) for _ in range(20)]
                answers[await ws_garbage(url.replace("http", "ws") + "/v1/stream")] += 1
                await asyncio.sleep(1)
                for sock in silent:
                    sock.close()
            step += 1
            await asyncio.sleep(0.5)


async def trickle(host: str, port: int) -> str:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"POST /v1/generate HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                 b"Content-Length: 100000\r\n\r\n")
    try:
        for _ in range(40):
            writer.write(b"-")
            await writer.drain()
            try:
                answer = await asyncio.wait_for(reader.read(200), timeout=0.5)
            except asyncio.TimeoutError:
                continue
            return "trickled body: " + answer.split(b"\r\n")[0].decode(errors="replace")
        return "trickled body: no answer"
    except OSError:
        return "trickled body: closed"
    finally:
        writer.close()


async def ws_garbage(url: str) -> str:
    async with websockets.connect(url) as connection:
        await connection.send(json.dumps({"type": "start", "avatar_id": "av_x", "token": "\ud800"}))
        try:
            while True:
                await connection.recv()
        except websockets.ConnectionClosed as closed:
            return f"ws garbage: close {closed.rcvd.code if closed.rcvd else 1006}"


async def side(streams: int, minutes: float, chunk_ms: float, with_hostile: bool) -> dict:
    process, url, log = start_server(chunk_ms, streams)
    try:
        async with FlashheadClient(url) as client:
            avatar = await client.create_avatar(face_png())
            warm = await client.stream_audio(speech(1.0), avatar_id=avatar)
            assert warm.summary is not None
        # Both sides first serve one round of every request (the first generate alone adds ~20 MB of
        # encoder and thread state that stays: warm-up, not growth), then RSS is taken.
        await hostile(url, avatar, time.monotonic(), Counter())
        await asyncio.sleep(1)
        rss_start, family_start = rss_mb(process.pid), family_rss_mb(process.pid)
        until = time.monotonic() + minutes * 60
        timeline: list[float] = []

        async def sample() -> None:
            while time.monotonic() < until:
                timeline.append(round(rss_mb(process.pid), 1))
                await asyncio.sleep(15)
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        answers: Counter[str] = Counter()
        work = [realtime_stream(url, avatar, until, latencies, errors) for _ in range(streams)]
        if with_hostile:
            work.append(hostile(url, avatar, until, answers))  # type: ignore[arg-type]
        work.append(sample())  # type: ignore[arg-type]
        results = await asyncio.gather(*work)
        await asyncio.sleep(2)
        rss_end, family_end = rss_mb(process.pid), family_rss_mb(process.pid)
        alive = httpx.get(url + "/healthz").status_code == 200
        server_errors = sum(count for answer, count in answers.items() if answer.rsplit(": ", 1)[-1].startswith("5")
                            and "uploads" not in answer)
        latencies.sort()
        return {"hostile": with_hostile, "streams": streams, "minutes": minutes, "alive": alive,
                "rss_start_mb": round(rss_start, 1), "rss_end_mb": round(rss_end, 1),
                "rss_change": round(rss_end / rss_start - 1, 4), "rss_every_15s_mb": timeline,
                "with_workers_start_mb": round(family_start, 1), "with_workers_end_mb": round(family_end, 1),
                "frames": sum(int(r) for r in results[:streams]), "chunks": len(latencies),
                "p50_chunk_ms": round(statistics.median(latencies), 1) if latencies else None,
                "p95_chunk_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 1) if latencies else None,
                "stream_errors": dict(errors), "server_5xx": server_errors, "hostile_answers": dict(answers),
                "tracebacks_in_log": log.read_text(errors="replace").count("Traceback")}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--chunk-ms", type=float, default=100.0, help="emulated model time per 0.96 s chunk")
    args = parser.parse_args()
    calm = asyncio.run(side(args.streams, args.minutes, args.chunk_ms, with_hostile=False))
    hostile_side = asyncio.run(side(args.streams, args.minutes, args.chunk_ms, with_hostile=True))
    for name, result in (("without hostile traffic", calm), ("with hostile traffic", hostile_side)):
        print(f"{name}: RSS {result['rss_start_mb']} -> {result['rss_end_mb']} MB ({result['rss_change']:+.1%}), "
              f"with workers {result['with_workers_start_mb']} -> {result['with_workers_end_mb']} MB; "
              f"p95 chunk {result['p95_chunk_ms']} ms (p50 {result['p50_chunk_ms']}); frames {result['frames']}; "
              f"stream errors {sum(result['stream_errors'].values())}; 5xx {result['server_5xx']}; "
              f"alive {result['alive']}")
        print(f"  RSS every 15 s: {result['rss_every_15s_mb']}")
    ratio = (hostile_side["p95_chunk_ms"] or 0) / (calm["p95_chunk_ms"] or 1)
    print(f"p95 chunk latency with / without hostile traffic: {ratio:.2f}x")
    print("hostile answers:", json.dumps(hostile_side["hostile_answers"], indent=1))
    path = write_result("server_soak", {"settings": vars(args), "without_hostile": calm, "with_hostile": hostile_side,
                                        "p95_ratio": round(ratio, 3),
                                        "goals": {"rss_flat_within": 0.05, "server_5xx": 0, "p95_ratio_at_most": 1.1}})
    print(f"written: {path}")


if __name__ == "__main__":
    main()
