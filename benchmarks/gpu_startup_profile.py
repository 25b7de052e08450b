"""Where a start's seconds go: the flashhead backend's `load` and `warm_up` under cProfile.

Settings come from FLASHHEAD_* as the server reads them, with the benchmark stand-ins (gpu_shims.py) and
the server's torch-only imports. Run it after a start that filled the compile cache (gpu_server.py), so
it profiles a warm start:

    FLASHHEAD_BACKEND=flashhead FLASHHEAD_WEIGHTS=random FLASHHEAD_COMPILE=1 FLASHHEAD_REPO_DIR=... \\
        FLASHHEAD_COMPILE_CACHE_DIR=... python benchmarks/gpu_startup_profile.py --name gpu-startup-profile

Prints, and writes to $OUT (or benchmarks/results)/NAME.txt, each phase's seconds, the top functions of
`load` and of `warm_up` by cumulative and own time, and dynamo's compile times. The profiler slows Python-heavy
parts (tracing) more than the rest: read the shares, not the absolute seconds.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def top(profile: cProfile.Profile, count: int) -> str:
    text = io.StringIO()
    stats = pstats.Stats(profile, stream=text)
    stats.sort_stats("cumulative").print_stats(count)
    stats.sort_stats("tottime").print_stats(count // 2)  # own time: the kernels' launches, the tracer, the loader
    return text.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True)
    parser.add_argument("--top", type=int, default=45)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    sys.path.insert(0, str(HERE))
    from inference.server import TORCH_ONLY

    for key, value in TORCH_ONLY.items():
        os.environ.setdefault(key, value)
    import gpu_shims

    gpu_shims.install()
    started = time.perf_counter()
    from inference.backends import create_backend
    from inference.config import from_env

    backend = create_backend(from_env())
    sections = [f"server modules imported in {time.perf_counter() - started:.2f} s"]
    for phase, call in (("load", backend.load), ("warm_up", backend.warm_up)):
        profile = cProfile.Profile()
        phase_started = time.perf_counter()
        profile.runcall(call)
        sections.append(f"== {phase}: {time.perf_counter() - phase_started:.2f} s under the profiler\n"
                        + top(profile, args.top))
    import torch._dynamo.utils

    sections.insert(1, "phases (s): " + ", ".join(f"{k} {v:.2f}" for k, v in backend.timings.items()))
    sections.append("== dynamo compile times\n" + str(torch._dynamo.utils.compile_times(repr="str", aggregate=True)))
    report = "\n".join(sections)
    print(report)
    out = Path(os.environ.get("OUT") or HERE / "results")
    (out / f"{args.name}.txt").write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
