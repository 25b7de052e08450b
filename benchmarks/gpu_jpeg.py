"""JPEG encoding cost of a chunk's frames: the server's per-frame Pillow path vs nvJPEG on the GPU.

Random-weight frames are noise, which JPEG compresses poorly: this measures how much of the
server's per-frame cost comes from that (noise vs a smooth portrait), and what a batched GPU
encoder (torchvision.io.encode_jpeg on CUDA tensors) would cost instead. Results:
benchmarks/results/gpu-jpeg.json.
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_common  # noqa: E402


def pillow_ms(frames: np.ndarray, quality: int = 85) -> tuple[float, float]:
    from PIL import Image

    sizes, started = [], time.perf_counter()
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
        sizes.append(buffer.tell())
    return 1000 * (time.perf_counter() - started) / len(frames), float(np.mean(sizes)) / 1024


def gpu_ms(frames: np.ndarray, quality: int = 85) -> tuple[float, float]:
    import torch
    from torchvision.io import encode_jpeg

    batch = [torch.from_numpy(f).permute(2, 0, 1).contiguous().cuda() for f in frames]
    encode_jpeg(batch, quality=quality)
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(5):
        out = encode_jpeg(batch, quality=quality)
    torch.cuda.synchronize()
    return 1000 * (time.perf_counter() - started) / (5 * len(frames)), float(np.mean([len(o) for o in out])) / 1024


def main() -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (24, 512, 512, 3), dtype=np.uint8)
    face = np.stack([gpu_common.portrait(seed=i) for i in range(24)])
    result = {"benchmark": "jpeg_encode_per_frame", **gpu_common.environment(), "quality": 85}
    for name, frames in (("noise", noise), ("portrait", face)):
        ms, kib = pillow_ms(frames)
        result[f"pillow_{name}"] = {"ms_per_frame": ms, "kib_per_frame": kib}
        try:
            ms, kib = gpu_ms(frames)
            result[f"nvjpeg_{name}"] = {"ms_per_frame": ms, "kib_per_frame": kib}
        except Exception as error:  # noqa: BLE001 - report why the GPU path is unavailable
            result[f"nvjpeg_{name}"] = {"error": str(error)[:300]}
    gpu_common.write_result("gpu-jpeg", result)
    print(result, flush=True)


if __name__ == "__main__":
    main()
