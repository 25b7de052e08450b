"""Does the model thread starve the server's event loop? The fast engine with and without its launch window.

    python benchmarks/gpu_launch_window.py --mode eager --batches 1,8

While the fast engine generates chunks on the main thread (as the server's model thread does), a
second thread runs an asyncio loop with the server's own `LoopLag` sampler: how late the loop
wakes from a 20 ms sleep. With `launch_ahead=0` the model thread queues kernels until CUDA's
launch queue is full and then blocks inside a launch holding the GIL; with `launch_ahead=1` it
waits on a CUDA event with the GIL released. Reports chunk time and loop lag for each, side by
side in one process. Results: benchmarks/results/gpu-launch-window-<mode>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=ROOT / "vendor" / "SoulX-FlashHead")
    parser.add_argument("--mode", choices=["eager", "compiled"], default="eager")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--depths", default="0,1", help="launch_ahead values to compare")
    return parser.parse_args()


class LagProbe:
    """An asyncio loop on its own thread sampling its wake-up lag, as the server's loop does."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Histogram

        from inference.loop_lag import LoopLag

        histogram = Histogram("probe_lag_seconds", "lag", registry=CollectorRegistry())
        self.lag = LoopLag(histogram)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> LagProbe:
        self.thread.start()
        self.task = asyncio.run_coroutine_threadsafe(self.lag.run(), self.loop)
        return self

    def __exit__(self, *exc: object) -> None:
        self.task.cancel()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def main() -> None:
    args = parse_args()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_common
    from gpu_batching import chunk_audio, make_streams

    gpu_common.setup_flashhead(args.repo.resolve())
    os.chdir(ROOT)
    import torch

    from inference.backends.flashhead import FlashheadBackend, FlashheadPaths
    from inference.backends.flashhead_engine import LaunchWindow

    paths = FlashheadPaths(args.repo.resolve(), Path("/nonexistent"), Path("/nonexistent"),
                           Path("/tmp/flashhead-compile-cache"))
    backend = FlashheadBackend(paths, "lite", "cuda", compile=args.mode == "compiled", weights="random",
                               engine="fast")
    backend.load()
    batches = [int(b) for b in args.batches.split(",") if b]
    streams = make_streams(backend, max(batches), gpu_common)
    document = {"benchmark": "flashhead_launch_window", **gpu_common.environment(), "model_type": "lite",
                "mode": args.mode, "runs": {}}
    chunk = 0
    for batch in batches:
        for depth in (int(d) for d in args.depths.split(",")):
            backend.engine.window = LaunchWindow(depth)
            group = streams[:batch]

            def one_chunk(group=group) -> float:
                nonlocal chunk
                for index, stream in enumerate(group):
                    backend.encode_audio(stream, chunk_audio(backend, index, chunk, gpu_common))
                chunk += 1
                torch.cuda.synchronize()
                started = time.perf_counter()
                backend.generate_chunks(group)
                return time.perf_counter() - started

            one_chunk()  # warm this shape
            with LagProbe() as probe:
                time.sleep(0.2)
                times = [one_chunk() for _ in range(args.chunks)]
            run = {"batch": batch, "launch_ahead": depth,
                   "chunk_ms_median": round(1000 * gpu_common.percentile(times, 50), 1),
                   "loop_lag_ms": probe.lag.summary()}
            document["runs"][f"B{batch}-ahead{depth}"] = run
            print(json.dumps(run), flush=True)
    gpu_common.write_result(f"gpu-launch-window-{args.mode}", document)


if __name__ == "__main__":
    main()
