"""Host JPEG encoding of a B = 16 chunk: can the host's cores take the work nvJPEG does on the GPU?

Sixteen realtime streams make 384 frames (512×512) every 0.96 s. nvJPEG encodes them in 314–384 ms of
GPU time beside the model, time the model needs (docs/gpu.md, sixth run). A host path must encode the
same 384 frames on the output thread within the 0.96 s, while the model thread keeps the GIL busy.

Side by side in one run, each in 1…N threads: Pillow (the server's host path before), simplejpeg (through
`inference.media.output.encode_jpeg`, the server's host path now) and imagecodecs (both libjpeg-turbo with
the GIL released) when it is installed. All encode at quality 85 with 4:2:0 chroma, as Pillow and nvJPEG do. The frames
are the acceptance avatar shifted a little per frame (a drawn face in flat colours: smaller files than a
photographed face), and noise (what random weights make).
Every file is decoded again: its size and its PSNR against the frame are reported with the time.
Results: benchmarks/results/host-jpeg-<label>.json.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_common  # noqa: E402

from inference.media.output import encode_jpeg as server_jpeg  # noqa: E402

CHUNK_FRAMES = 16 * 24  # a B = 16 chunk: 16 streams × 24 frames
CHUNK_SECONDS = 0.96
QUALITY = 85
Encoder = Callable[[np.ndarray], bytes]


def pillow_jpeg(frame: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=QUALITY)
    return buffer.getvalue()


def encoders() -> dict[str, Encoder | str]:
    """Each encoder by name, or why it is not here."""
    found: dict[str, Encoder | str] = {"pillow": pillow_jpeg, "simplejpeg": lambda frame: server_jpeg(frame, QUALITY)}
    try:
        import imagecodecs

        found["imagecodecs"] = lambda frame: imagecodecs.jpeg8_encode(frame, level=QUALITY, subsampling="420")
    except ImportError:
        found["imagecodecs"] = "not installed"
    return found


def host() -> dict:
    """The machine and the encoders' versions (no GPU involved)."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    versions = {}
    for package in ("numpy", "pillow", "simplejpeg", "imagecodecs"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {"cpu": model, "cpus": os.cpu_count(), "python": platform.python_version(), "versions": versions,
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def face_frames(count: int, size: int = 512) -> np.ndarray:
    from PIL import Image

    avatar = Image.open(ROOT / "ops/acceptance/assets/face.png").convert("RGB")
    scale = size * 1.1 / min(avatar.size)
    avatar = avatar.resize((round(avatar.width * scale), round(avatar.height * scale)), Image.BICUBIC)
    pixels = np.asarray(avatar)
    margin = (pixels.shape[0] - size, pixels.shape[1] - size)
    return np.stack([np.ascontiguousarray(pixels[(i * 3) % margin[0]:][:size, (i * 5) % margin[1]:][:, :size])
                     for i in range(count)])


def noise_frames(count: int, size: int = 512) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def psnr(frame: np.ndarray, data: bytes) -> float:
    from PIL import Image

    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)
    mse = float(np.mean((decoded - frame.astype(np.float64)) ** 2))
    return 10 * np.log10(255**2 / mse) if mse else float("inf")


@contextmanager
def python_busy() -> Iterator[None]:
    """A thread that runs Python all the time and so wants the GIL, as the server's model thread and
    event loop do beside the output thread."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(1000))

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def chunk_ms(encode: Encoder, frames: np.ndarray, threads: int, repeats: int, busy: bool) -> float:
    """Median milliseconds to encode the chunk's frames with `threads` threads."""
    times = []
    with ThreadPoolExecutor(max_workers=threads) as pool, python_busy() if busy else nullcontext():
        list(pool.map(encode, frames[:threads]))  # warm the threads and the encoder
        for _ in range(repeats):
            started = time.perf_counter()
            list(pool.map(encode, frames))
            times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cpus = os.cpu_count() or 1
    default_threads = sorted({n for n in (1, 2, 4, 8, 16) if n <= cpus} | {cpus})
    parser.add_argument("--threads", default=",".join(map(str, default_threads)))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--label", default="local")
    args = parser.parse_args()
    threads = [int(n) for n in args.threads.split(",")]
    found = encoders()
    frame_sets = {"face": face_frames(CHUNK_FRAMES), "noise": noise_frames(CHUNK_FRAMES)}
    results: dict[str, dict] = {}
    print(f"{CHUNK_FRAMES} frames 512x512 per chunk, budget {CHUNK_SECONDS * 1000:.0f} ms; {cpus} cores")
    for name, encode in found.items():
        if isinstance(encode, str):
            results[name] = {"error": encode}
            print(f"{name:12} {encode}")
            continue
        results[name] = {}
        for kind, frames in frame_sets.items():
            files = [encode(frame) for frame in frames[:24]]
            quality = {"kib_per_frame": round(statistics.mean(map(len, files)) / 1024, 1),
                       "psnr_db": round(statistics.mean(psnr(f, d) for f, d in zip(frames, files, strict=False)), 2)}
            results[name][kind] = quality
            for busy in (False, True):
                by_threads = {str(n): round(chunk_ms(encode, frames, n, args.repeats, busy), 1) for n in threads}
                results[name][kind]["chunk_ms_by_threads" + ("_beside_python" if busy else "")] = by_threads
                line = "  ".join(f"{n}t {ms:7.1f}" for n, ms in by_threads.items())
                print(f"{name:12} {kind:6} {quality['kib_per_frame']:6.1f} KiB {quality['psnr_db']:5.1f} dB  "
                      f"{'beside Python' if busy else 'alone':13} chunk ms: {line}", flush=True)
    base = {kind: results["pillow"][kind]["chunk_ms_by_threads_beside_python"]["1"] for kind in frame_sets}
    for result in results.values():
        for kind in frame_sets:
            if kind in result:  # what counts in the server: the best thread count beside a busy model thread
                best = min(result[kind]["chunk_ms_by_threads_beside_python"].values())
                result[kind]["best_beside_python_vs_pillow_1_thread"] = round(base[kind] / best, 2)
                result[kind]["fits_chunk_budget_beside_python"] = best < CHUNK_SECONDS * 1000
    document = {"benchmark": "host_jpeg", **host(), "quality": QUALITY,
                "subsampling": "4:2:0", "chunk_frames": CHUNK_FRAMES, "chunk_budget_ms": CHUNK_SECONDS * 1000,
                "encoders": results}
    print(gpu_common.write_result(f"host-jpeg-{args.label}", document))


if __name__ == "__main__":
    main()
