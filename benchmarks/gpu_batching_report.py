"""Batched vs unbatched scheduler through the server, side by side, from two `gpu_server.py` runs.

    python benchmarks/gpu_server.py --max-batch 1  --name gpu-batching-server-unbatched ...
    python benchmarks/gpu_server.py --max-batch 12 --name gpu-batching-server-batched ...
    python benchmarks/gpu_batching_report.py

Both sides are measured on the same machine in one lease; a side may name several runs (`--unbatched
a,b`: their scenarios together, later runs win). Prints a table per B (aggregate FPS, per-stream
real-time FPS, p95 chunk latency, time to first frame) and writes
benchmarks/results/gpu-batching-server-lite.json. Needs no GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
import gpu_common  # noqa: E402
from gpu_server import digest  # noqa: E402

from ops.acceptance.fps import REALTIME_FPS_ALLOWANCE  # noqa: E402

CHUNK_SECONDS = 0.96
REALTIME_FPS = 25 * (1 - REALTIME_FPS_ALLOWANCE)  # what `accept fps` counts as keeping up


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batched", default="gpu-batching-server-batched")
    parser.add_argument("--unbatched", default="gpu-batching-server-unbatched,gpu-batching-server-unbatched-more")
    parser.add_argument("--baseline", default="gpu-loop-lite-compiled-h200",
                        help="FlashHead's own loop (gpu_flashhead_loop.py) for the single-stream ratio")
    parser.add_argument("--name", default="gpu-batching-server-lite")
    return parser.parse_args()


def load(names: str) -> dict[str, Any]:
    """One run, or several of the same server settings with their scenarios merged; none: an empty side."""
    if not names:
        return {"scenarios": {}, "max_batch": None, "runs": []}
    runs = [json.loads((gpu_common.RESULTS / f"{name}.json").read_text()) for name in names.split(",")]
    merged = {**runs[0], "scenarios": {}, "runs": [{"name": name, "when": run["when"]}
                                                   for name, run in zip(names.split(","), runs, strict=True)]}
    for run in runs:
        if run["max_batch"] != merged["max_batch"]:
            raise SystemExit(f"{names}: runs with different max_batch cannot be merged")
        merged["scenarios"].update(run["scenarios"])
    return merged


def realtime_row(found: dict[str, Any]) -> dict[str, Any]:
    """The worst stream of a realtime scenario: what decides whether every stream kept up."""
    fps, p95, ttff = found.get("per_stream_fps"), found.get("p95_chunk_latency_ms"), found.get("ttff_s")
    if not fps:
        return {"ok": False, "error": found.get("raw", "no measurement")}
    worst = {"min_fps": min(fps), "max_p95_chunk_latency_ms": max(p95), "max_ttff_s": max(ttff),
             "stalls": sum(found.get("stalls") or [])}
    worst["realtime"] = worst["min_fps"] >= REALTIME_FPS and worst["max_p95_chunk_latency_ms"] < 1000 * CHUNK_SECONDS
    return worst


def compare(batched: dict[str, Any], unbatched: dict[str, Any]) -> dict[str, Any]:
    sizes = sorted({int(key.split(":")[1]) for run in (batched, unbatched) for key in run["scenarios"]})
    table: dict[str, Any] = {}
    for size in sizes:
        row: dict[str, Any] = {}
        for label, run in (("batched", batched), ("unbatched", unbatched)):
            scenarios = run["scenarios"]
            throughput, realtime = scenarios.get(f"throughput:{size}"), scenarios.get(f"realtime:{size}")
            if throughput:
                row.setdefault("aggregate_fps", {})[label] = digest(throughput).get("aggregate_fps")
            if realtime:
                row.setdefault("realtime", {})[label] = realtime_row(digest(realtime))
        fps = row.get("aggregate_fps", {})
        if fps.get("batched") and fps.get("unbatched"):
            row["batched_over_unbatched"] = round(fps["batched"] / fps["unbatched"], 3)
        table[str(size)] = row
    return table


def main() -> None:
    args = parse_args()
    batched, unbatched = load(args.batched), load(args.unbatched)
    table = compare(batched, unbatched)
    document: dict[str, Any] = {
        "benchmark": "flashhead_batching_through_server",
        **{key: batched.get(key) for key in ("gpu", "driver", "versions", "weights", "model_type", "engine",
                                             "compile", "compile_scope", "max_streams")},
        "runs": {"batched": {"max_batch": batched["max_batch"], "runs": batched["runs"]},
                 "unbatched": {"max_batch": unbatched["max_batch"], "runs": unbatched["runs"]}},
        "by_streams": table}
    baseline_path = gpu_common.RESULTS / f"{args.baseline}.json"
    baseline = json.loads(baseline_path.read_text()) if baseline_path.exists() else None
    for label, side in (("batched", batched), ("unbatched", unbatched)):
        if not side["runs"]:
            continue
        realtime = [int(size) for size, row in table.items() if row.get("realtime", {}).get(label, {}).get("realtime")]
        document[f"max_realtime_streams_{label}"] = max(realtime, default=0)
        single = table.get("1", {}).get("aggregate_fps", {}).get(label)
        if single and baseline:
            document.setdefault("single_stream_over_flashhead_loop", {})[label] = {
                "server_fps": single, "loop_fps": baseline["fps"], "loop_gpu": baseline.get("gpu"),
                "ratio": round(single / baseline["fps"], 3)}
    gpu_common.write_result(args.name, document)
    print(render(table))
    print(json.dumps({k: v for k, v in document.items() if k.startswith(("max_realtime", "single_stream"))}, indent=1))


def render(table: dict[str, Any]) -> str:
    lines = ["| B | aggregate FPS batched / unbatched (ratio) | realtime batched: min FPS, p95 ms, TTFF s | "
             "realtime unbatched: min FPS, p95 ms, TTFF s |", "| --- | --- | --- | --- |"]
    for size, row in table.items():
        fps = row.get("aggregate_fps", {})
        cells = [f"{_n(fps.get('batched'))} / {_n(fps.get('unbatched'))} ({_n(row.get('batched_over_unbatched'))})"]
        for label in ("batched", "unbatched"):
            rt = row.get("realtime", {}).get(label)
            if rt is None:
                cells.append("not run")
                continue
            cells.append(f"{_n(rt.get('min_fps'))}, {_n(rt.get('max_p95_chunk_latency_ms'))}, "
                         f"{_n(rt.get('max_ttff_s'))}" + ("" if rt.get("realtime") else " (not real time)"))
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _n(value: Any) -> str:
    if value is None:
        return "not run"
    return f"{value:.0f}" if isinstance(value, float) and value >= 100 else f"{value:.3g}" if isinstance(value, float) \
        else str(value)


if __name__ == "__main__":
    main()
