"""What the server costs: the reference backend's raw loop vs the same backend streamed through the server.

The reference backend gets a fixed compute time per chunk (default 250 ms = 24 frames at 96 FPS,
FlashHead Lite's claim on an RTX 4090), so the model's speed is known and every difference is the
server's: scheduling, JPEG encoding, WebSocket I/O.

  1. raw loop FPS vs one stream's FPS through the server (audio sent as fast as accepted), side by
     side, interleaved; goal: server / raw >= 0.97;
  2. time to first frame with audio sent at real-time pace vs one chunk's audio + one chunk's
     compute; goal: <= 1.2x that;
  3. 1..8 concurrent streams, audio sent as fast as accepted and at real-time pace: aggregate
     FPS, p95 chunk latency (queue + generation) and, at real-time pace, how long after the last
     audio the last frame arrived (grows with the clip once the model cannot keep up).

Usage: python benchmarks/server_overhead.py [--chunk-ms 250] [--chunks 24] [--repeats 3]
Results: benchmarks/results/server_overhead.json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import write_result  # noqa: E402

from inference.backends.reference import ReferenceBackend  # noqa: E402
from inference.client import FlashheadClient  # noqa: E402

FPS_RATIO_GOAL = 0.97
TTFF_GOAL = 1.2


def speech(seconds: float, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.4 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 4 * t) > 0)
    return (wave * 32767).astype("<i2").tobytes()


def face_png() -> bytes:
    import io

    from PIL import Image

    ys, xs = np.mgrid[0:512, 0:512]
    image = np.zeros((512, 512, 3), np.uint8)
    image[:] = (40, 70, 160)
    image[((xs - 256) / 180) ** 2 + ((ys - 256) / 220) ** 2 <= 1] = (230, 190, 160)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def raw_loop_fps(chunk_ms: float, chunks: int) -> float:
    """The backend alone: encode_audio + generate_chunk back to back, as a server's worker would."""
    backend = ReferenceBackend(chunk_ms=chunk_ms)
    backend.load()
    import io

    from PIL import Image

    avatar = backend.prepare_avatar(np.asarray(Image.open(io.BytesIO(face_png())).convert("RGB")))
    stream = backend.new_stream(avatar, seed=0)
    audio = np.frombuffer(speech(backend.geometry.chunk_seconds * chunks), "<i2").astype(np.float32) / 32768
    size = backend.geometry.samples_per_chunk
    started = time.perf_counter()
    frames = 0
    for index in range(chunks):
        backend.encode_audio(stream, audio[index * size:(index + 1) * size])
        frames += len(backend.generate_chunk(stream))
    return frames / (time.perf_counter() - started)


def start_server(chunk_ms: float, max_streams: int) -> tuple[subprocess.Popen, str]:
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "FLASHHEAD_PORT": str(port), "FLASHHEAD_BACKEND": "reference",
           "FLASHHEAD_REFERENCE_CHUNK_MS": str(chunk_ms), "FLASHHEAD_MAX_STREAMS": str(max_streams),
           "FLASHHEAD_LOG_LEVEL": "warning",
           # Measure past the real-time capacity too (1..8 streams), so admit up to max_streams.
           "FLASHHEAD_ADMISSION": "fixed"}
    process = subprocess.Popen([sys.executable, "-m", "inference"], cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    process.kill()
    raise SystemExit("the server did not become ready")


async def stream_fps(client: FlashheadClient, avatar: str, seconds: float, realtime: bool) -> dict:
    result = await client.stream_audio(speech(seconds), avatar_id=avatar, realtime=realtime)
    assert result.first_audio_at is not None
    first, last = result.first_audio_at, result.frames[-1].received_at
    latencies = [stat.generation_ms + stat.queue_ms for stat in result.stats]
    return {"frames": len(result.frames), "fps": len(result.frames) / (last - first), "ttff_s": result.ttff_s,
            "latencies_ms": latencies, "first": first, "last": last,
            # Real-time pacing: how long after the last audio was sent the last frame arrived.
            "end_lag_s": last - (first + seconds)}


async def concurrent(client: FlashheadClient, avatar: str, streams: int, seconds: float, realtime: bool) -> dict:
    runs = await asyncio.gather(*(stream_fps(client, avatar, seconds, realtime) for _ in range(streams)))
    wall = max(run["last"] for run in runs) - min(run["first"] for run in runs)
    latencies = sorted(latency for run in runs for latency in run["latencies_ms"])
    return {"streams": streams, "aggregate_fps": sum(run["frames"] for run in runs) / wall,
            "p95_chunk_latency_ms": latencies[int(0.95 * (len(latencies) - 1))],
            "max_end_lag_s": max(run["end_lag_s"] for run in runs)}


async def measure(args: argparse.Namespace, url: str) -> dict:
    chunk_s = 24 / 25
    async with FlashheadClient(url) as client:
        avatar = await client.create_avatar(face_png())
        await stream_fps(client, avatar, chunk_s * 3, realtime=False)  # warm-up
        raw, served = [], []
        for _ in range(args.repeats):  # interleaved, so drift in machine load hits both alike
            raw.append(await asyncio.to_thread(raw_loop_fps, args.chunk_ms, args.chunks))
            served.append((await stream_fps(client, avatar, chunk_s * args.chunks, realtime=False))["fps"])
        ttff = [(await stream_fps(client, avatar, chunk_s * 2, realtime=True))["ttff_s"] for _ in range(args.repeats)]
        throughput = [await concurrent(client, avatar, n, chunk_s * 12, realtime=False) for n in range(1, 9)]
        realtime = [await concurrent(client, avatar, n, chunk_s * 5, realtime=True) for n in range(1, 9)]
    return {"raw": raw, "served": served, "ttff": ttff, "throughput": throughput, "realtime": realtime}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunk-ms", type=float, default=250.0, help="emulated compute time per chunk")
    parser.add_argument("--chunks", type=int, default=24, help="chunks per FPS run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    process, url = start_server(args.chunk_ms, max_streams=8)
    try:
        data = asyncio.run(measure(args, url))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    raw_fps, served_fps = statistics.median(data["raw"]), statistics.median(data["served"])
    ratio = served_fps / raw_fps
    ttff = statistics.median(data["ttff"])
    ttff_bound = 24 / 25 + args.chunk_ms / 1000
    print(f"emulated compute {args.chunk_ms:.0f} ms per 24-frame chunk (model speed {24000 / args.chunk_ms:.1f} FPS)")
    print(f"raw loop     {raw_fps:7.1f} FPS   runs {[round(x, 1) for x in data['raw']]}")
    print(f"via server   {served_fps:7.1f} FPS   runs {[round(x, 1) for x in data['served']]}")
    print(f"ratio        {ratio:7.3f}       (goal >= {FPS_RATIO_GOAL})")
    print(f"TTFF         {ttff:7.3f} s     = {ttff / ttff_bound:.2f}x (chunk audio 0.96 s + compute "
          f"{args.chunk_ms / 1000:.2f} s; goal <= {TTFF_GOAL}x)")
    print("streams | max speed: aggregate FPS  p95 chunk ms | real time: aggregate FPS  p95 chunk ms  end lag s")
    for fast, paced in zip(data["throughput"], data["realtime"], strict=True):
        print(f"{fast['streams']:7d} | {fast['aggregate_fps']:24.1f}  {fast['p95_chunk_latency_ms']:12.0f} | "
              f"{paced['aggregate_fps']:24.1f}  {paced['p95_chunk_latency_ms']:12.0f}  {paced['max_end_lag_s']:9.2f}")
    meets = ratio >= FPS_RATIO_GOAL and ttff / ttff_bound <= TTFF_GOAL
    path = write_result("server_overhead", {
        "chunk_ms": args.chunk_ms, "chunks_per_run": args.chunks, "repeats": args.repeats,
        "raw_loop_fps": data["raw"], "server_stream_fps": data["served"],
        "raw_loop_fps_median": raw_fps, "server_stream_fps_median": served_fps,
        "fps_ratio": ratio, "fps_ratio_goal": FPS_RATIO_GOAL,
        "ttff_s": data["ttff"], "ttff_median_s": ttff, "ttff_bound_s": ttff_bound,
        "ttff_ratio": ttff / ttff_bound, "ttff_ratio_goal": TTFF_GOAL,
        "concurrency_max_speed": data["throughput"], "concurrency_realtime": data["realtime"],
        "meets_goals": meets})
    print(f"written to {path}")
    return 0 if meets else 1


if __name__ == "__main__":
    sys.exit(main())
