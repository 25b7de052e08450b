"""The output thread's work for one B-stream chunk, on the GPU: is it right, and what does it cost where.

    python benchmarks/gpu_output_stage.py --repo vendor/SoulX-FlashHead --batch 16 --name gpu-output-stage-lite

Lite, the fast engine eager (the output stage does not depend on the compile), random weights. One chunk of
B streams is computed on the model thread's own CUDA stream (as the server runs it), then:

- correctness: the JPEG files the output thread makes (`start_jpeg`'s path: the host waits for the chunk,
  nvJPEG encodes from another thread) are byte for byte the files of the serial path and of an encoding
  from the legacy default stream; the frames `start_frames` copies on another thread equal the serial copy;
- cost, side by side (median of `--repeats`): nvJPEG + copy of the files from the model's stream, from the
  default stream and on the output thread; the copy of the raw frames alone; Pillow encoding the same frames
  in 1, 4 and 16 threads (the host-JPEG alternative, `FLASHHEAD_JPEG_ON_DEVICE=0`), for the model's noise
  frames and for a portrait-like frame (real faces compress about 8x smaller than noise).

Results: benchmarks/results/<name>.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=ROOT / "vendor" / "SoulX-FlashHead")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quality", type=int, default=85)
    parser.add_argument("--name", default="gpu-output-stage-lite")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    import gpu_batching
    import gpu_common

    gpu_common.setup_flashhead(args.repo.resolve())
    os.chdir(ROOT)
    import numpy as np
    import torch

    from inference.backends.flashhead.backend import FlashheadBackend
    from inference.backends.flashhead.engines.base import EngineSettings
    from inference.backends.flashhead.engines.fast import _planar
    from inference.backends.flashhead.paths import FlashheadPaths
    from inference.media import encode_jpeg

    paths = FlashheadPaths(args.repo.resolve(), Path("/nonexistent"), Path("/nonexistent"), Path("/tmp/unused-cache"))
    backend = FlashheadBackend(paths, "lite", "cuda", weights="random", engine="fast", settings=EngineSettings())
    backend.load()
    engine = backend.engine
    streams = gpu_batching.make_streams(backend, args.batch, gpu_common)
    for index, stream in enumerate(streams):
        backend.encode_audio(stream, gpu_batching.chunk_audio(backend, index, 0, gpu_common))
    with torch.no_grad():
        frames = engine._frames(streams)
    torch.cuda.synchronize()
    document: dict = {"benchmark": "flashhead_output_stage", **gpu_common.environment(), "model_type": "lite",
                      "batch": args.batch, "frames": int(frames.shape[0] * frames.shape[1]), "quality": args.quality}
    q, output = args.quality, ThreadPoolExecutor(max_workers=1, thread_name_prefix="output")

    def on_output_thread(finish):  # noqa: ANN001, ANN202 - the server's path: the host waits, then the call
        return output.submit(engine._after_chunk(finish)).result()

    serial = engine.encode_jpeg(frames, q)
    with torch.cuda.stream(torch.cuda.default_stream()):
        default_stream = engine.encode_jpeg(frames, q)
    planar = _planar(frames)
    threaded = on_output_thread(lambda: engine._encode(planar, q))
    host_serial = list(frames.cpu().numpy())
    host_threaded = on_output_thread(lambda: list(frames.cpu().numpy()))
    document["correct"] = {
        "jpeg_output_thread_equals_serial": threaded == serial,
        "jpeg_default_stream_equals_serial": default_stream == serial,
        "frames_output_thread_equal_serial": all(np.array_equal(a, b) for a, b in zip(host_threaded, host_serial,
                                                                                     strict=True)),
        "jpeg_kib_per_frame": sum(len(f) for files in serial for f in files) / 1024 / document["frames"]}
    print("correct", document["correct"], flush=True)

    def timed(work) -> float:  # noqa: ANN001 - median ms over the repeats, after one untimed run
        work()
        samples = []
        for _ in range(args.repeats):
            torch.cuda.synchronize()
            started = time.perf_counter()
            work()
            samples.append(1000 * (time.perf_counter() - started))
        return gpu_common.percentile(samples, 50)

    def from_default_stream() -> None:
        with torch.cuda.stream(torch.cuda.default_stream()):
            engine.encode_jpeg(frames, q)

    def output_thread_path() -> None:  # planar on the model's stream, the encoding on the output thread
        planar = _planar(frames)
        on_output_thread(lambda: engine._encode(planar, q))

    costs = {
        "nvjpeg_from_model_stream": timed(lambda: engine.encode_jpeg(frames, q)),
        "nvjpeg_from_default_stream": timed(from_default_stream),
        "nvjpeg_on_output_thread": timed(output_thread_path),
        "copy_raw_frames": timed(lambda: frames.cpu().numpy()),
    }
    face = np.ascontiguousarray(gpu_common.portrait(size=int(frames.shape[2]), seed=1))
    for label, images in (("noise", [frame for chunk in host_serial for frame in chunk]),
                          ("portrait", [face] * document["frames"])):
        for threads in (1, 4, 16):
            with ThreadPoolExecutor(max_workers=threads) as pool:
                costs[f"pillow_{label}_{threads}_threads"] = timed(
                    lambda pool=pool, images=images: list(pool.map(lambda image: encode_jpeg(image, q), images)))
    document["costs_ms"] = costs
    document["portrait_kib_per_frame"] = len(encode_jpeg(face, q)) / 1024
    for name, ms in costs.items():
        print(f"{name}: {ms:.1f} ms", flush=True)
    gpu_common.write_result(args.name, document)


if __name__ == "__main__":
    main()
