"""FlashHead through our server on the GPU: restart-to-ready, `flashhead accept fps` throughput and realtime.

    python benchmarks/gpu_server.py --engine fast --compile --cache-dir /tmp/cc \
        --scenarios throughput:1,realtime:1,realtime:2,realtime:3,realtime:4 --name gpu-server-lite-fast

Starts the real server (benchmarks/gpu_serve.py = `python -m inference` + the benchmark stand-ins)
with the flashhead backend and `FLASHHEAD_WEIGHTS=random`, times spawn -> /readyz, runs the
acceptance verb for each scenario, stops it, and with `--restarts N` starts it again N times with
the same compile cache (restart-to-ready with a warm cache). Results: benchmarks/results/<name>.json
with the FlashHead loop baseline (gpu-loop-*.json) and the server/loop ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_common  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=ROOT / "vendor" / "SoulX-FlashHead")
    parser.add_argument("--engine", choices=["fast", "pipeline"], default="fast")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/flashhead-server-cache"))
    parser.add_argument("--max-streams", type=int, default=4)
    parser.add_argument("--max-batch", type=int, default=1)
    parser.add_argument("--scenarios", default="throughput:1,realtime:1,realtime:2,realtime:3,realtime:4")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--restarts", type=int, default=0)
    parser.add_argument("--baseline", default="gpu-loop-lite-compiled-cold")
    parser.add_argument("--name", required=True)
    parser.add_argument("--ready-timeout", type=float, default=540.0)
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(args: argparse.Namespace, log: Path) -> tuple[subprocess.Popen, str, float]:
    import httpx

    port = free_port()
    env = {**os.environ, "FLASHHEAD_BACKEND": "flashhead", "FLASHHEAD_WEIGHTS": "random",
           "FLASHHEAD_REPO_DIR": str(args.repo.resolve()), "FLASHHEAD_MODEL_ROOT": "/tmp/flashhead-model-root",
           "FLASHHEAD_ENGINE": args.engine, "FLASHHEAD_COMPILE": "1" if args.compile else "0",
           "FLASHHEAD_COMPILE_CACHE_DIR": str(args.cache_dir.resolve()), "FLASHHEAD_PORT": str(port),
           "FLASHHEAD_MAX_STREAMS": str(args.max_streams), "FLASHHEAD_MAX_BATCH": str(args.max_batch),
           "FLASHHEAD_LOG_LEVEL": "warning", "PYTHONUNBUFFERED": "1",
           "FLASHHEAD_ADMISSION": "fixed"}  # measure past the real-time capacity too
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "gpu_serve.py")], cwd=ROOT, env=env,
                               stdout=log.open("ab"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    while time.perf_counter() - started < args.ready_timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return process, url, time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    process.kill()
    raise RuntimeError(f"server not ready after {args.ready_timeout} s:\n{log.read_text()[-4000:]}")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()


def accept(url: str, mode: str, streams: int, duration: float, report: Path, warmup: float = 2.0) -> dict:
    command = [sys.executable, "-m", "ops.cli.main", "accept", "fps", "--url", url, "--mode", mode,
               "--streams", str(streams), "--duration", str(duration), "--warmup", str(warmup),
               "--report", str(report), "--output", "json"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    try:
        body = json.loads(report.read_text())
    except (OSError, ValueError):
        body = {"stdout": done.stdout[-3000:], "stderr": done.stderr[-3000:]}
    return {"exit_code": done.returncode, "report": body}


def main() -> None:
    args = parse_args()
    import httpx

    out = Path(os.environ.get("OUT", "/tmp"))
    log = out / f"{args.name}-server.log"
    process, url, ready_s = start(args, log)
    info = httpx.get(url + "/v1/info", timeout=10).json()
    document = {"benchmark": "flashhead_through_server", **gpu_common.environment(), "model_type": "lite",
                "engine": args.engine, "compile": args.compile, "max_batch": args.max_batch,
                "max_streams": args.max_streams, "restart_to_ready_s": [ready_s], "info": info, "scenarios": {}}
    try:
        for item in filter(None, args.scenarios.split(",")):
            mode, streams = item.split(":")
            report = Path("/tmp") / f"{args.name}-{mode}-{streams}.json"
            result = accept(url, mode, int(streams), args.duration, report, args.warmup)
            result["info"] = httpx.get(url + "/v1/info", timeout=10).json()
            document["scenarios"][item] = result
            print(item, json.dumps(digest(result))[:800], flush=True)
            gpu_common.write_result(args.name, document)
        document["info_after"] = httpx.get(url + "/v1/info", timeout=10).json()
        gpu_common.write_result(args.name, document)
    finally:
        stop(process)
    document["info_restarts"] = []
    for _ in range(args.restarts):
        process, url, ready_s = start(args, log)
        document["restart_to_ready_s"].append(ready_s)
        document["info_restarts"].append(httpx.get(url + "/v1/info", timeout=10).json()["backend_info"])
        stop(process)
        gpu_common.write_result(args.name, document)
    baseline_path = gpu_common.RESULTS / f"{args.baseline}.json"
    if baseline_path.exists():
        baseline = json.loads(baseline_path.read_text())["fps"]
        throughput = digest(document["scenarios"].get("throughput:1", {})).get("aggregate_fps")
        document["baseline"] = {"name": args.baseline, "fps": baseline}
        if throughput:
            document["server_over_flashhead_loop"] = throughput / baseline
    document["digest"] = {k: digest(v) for k, v in document["scenarios"].items()}
    gpu_common.write_result(args.name, document)
    print(json.dumps({k: document.get(k) for k in ("restart_to_ready_s", "server_over_flashhead_loop", "digest")},
                     indent=1), flush=True)


def digest(result: dict) -> dict:
    """The numbers that matter from an `accept fps` report."""
    report = result.get("report", {})
    found: dict = {"exit_code": result.get("exit_code"), "ok": report.get("ok")}
    for scenario in (report.get("measurements") or {}).values():
        per_stream = scenario.get("per_stream", [])
        found.update({
            "aggregate_fps": scenario.get("aggregate_fps"),
            "per_stream_fps": [s.get("fps") for s in per_stream],
            "p95_chunk_latency_ms": [s.get("p95_chunk_latency_ms") for s in per_stream],
            "server_p95_generation_ms": [s.get("server_p95_generation_ms") for s in per_stream],
            "ttff_s": [s.get("time_to_first_frame_s") for s in per_stream],
            "stalls": [s.get("stalls") for s in per_stream]})
    info = result.get("info") or {}
    found["event_loop_lag_ms"] = info.get("event_loop_lag_ms")
    found["chunk_seconds_by_batch"] = (info.get("capacity") or {}).get("chunk_seconds_by_batch")
    found["safe_streams"] = (info.get("capacity") or {}).get("safe_streams")
    if "aggregate_fps" not in found:
        found["raw"] = json.dumps(report)[:1500]
    return found


if __name__ == "__main__":
    main()
