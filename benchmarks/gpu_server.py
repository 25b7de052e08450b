"""FlashHead through our server on the GPU: restart-to-ready, `flashhead accept` smoke, profiles and scenarios.

    python benchmarks/gpu_server.py --model-type pro --smoke --profile rtx4090-pro \
        --scenarios realtime:1 --name gpu-server-pro-fast
    python benchmarks/gpu_server.py --compile --fresh-cache --restarts 2 --scenarios "" --name gpu-restarts

Starts the real server (benchmarks/gpu_serve.py = `python -m inference` + the benchmark stand-ins)
with the flashhead backend and `FLASHHEAD_WEIGHTS=random`, times spawn -> /readyz, runs `flashhead
accept smoke` (`--smoke`), `accept fps --profile NAME` (`--profile`) and `accept fps` for each
scenario, stops it, and with `--restarts N` starts it again N times with the same compile cache
(restart-to-ready with a warm cache; `--fresh-cache` empties it first, so the first start is the
cold one, side by side). Each start's phases (`/v1/info` -> backend_info.startup_s) are recorded.
Results: benchmarks/results/<name>.json with model_type, engine, the acceptance reports and the
FlashHead loop baseline (gpu-loop-*.json) where there is one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
    parser.add_argument("--model-type", choices=["lite", "pro"], default="lite")
    parser.add_argument("--engine", choices=["auto", "fast", "pipeline"], default="auto")
    parser.add_argument("--smoke", action="store_true", help="run `flashhead accept smoke` first")
    parser.add_argument("--profile", default=None, help="run `flashhead accept fps --profile NAME`")
    parser.add_argument("--fresh-cache", action="store_true", help="empty the compile cache before the first start")
    parser.add_argument("--lazy-graphs", action="store_true", help="FLASHHEAD_WARM_ALL_BATCHES=0 on restarts")
    parser.add_argument("--provision-cache", action="store_true",
                        help="before the first start, build the compile cache as the playbook step does (then again: "
                             "skipped), so every server start is a warm one")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--compile-scope", choices=["model", "blocks"], default="model")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/flashhead-server-cache"))
    parser.add_argument("--max-streams", type=int, default=4)
    parser.add_argument("--max-batch", type=int, default=1)
    parser.add_argument("--scenarios", default="throughput:1,realtime:1,realtime:2,realtime:3,realtime:4")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--restarts", type=int, default=0)
    parser.add_argument("--baseline", default=None,
                        help="FlashHead's loop (a gpu_flashhead_loop.py result) measured on this machine, this run")
    parser.add_argument("--name", required=True)
    parser.add_argument("--ready-timeout", type=float, default=540.0)
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(args: argparse.Namespace, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "FLASHHEAD_BACKEND": "flashhead", "FLASHHEAD_WEIGHTS": "random",
            "FLASHHEAD_REPO_DIR": str(args.repo.resolve()), "FLASHHEAD_MODEL_ROOT": "/tmp/flashhead-model-root",
            "FLASHHEAD_ENGINE": args.engine, "FLASHHEAD_MODEL_TYPE": args.model_type,
            "FLASHHEAD_COMPILE": "1" if args.compile else "0", "FLASHHEAD_COMPILE_SCOPE": args.compile_scope,
            "FLASHHEAD_COMPILE_CACHE_DIR": str(args.cache_dir.resolve()), "FLASHHEAD_PORT": str(port),
            "FLASHHEAD_MAX_STREAMS": str(args.max_streams), "FLASHHEAD_MAX_BATCH": str(args.max_batch),
            "FLASHHEAD_LOG_LEVEL": "info", "PYTHONUNBUFFERED": "1",
            "FLASHHEAD_ADMISSION": "fixed", **(extra or {})}  # measure past the real-time capacity too


def provision_cache(args: argparse.Namespace, log: Path) -> dict:
    """The playbook's compile_cache step, twice: the build (cold), then the check that skips it."""
    runs = []
    for _ in range(2):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_serve.py"), "compile-cache"], cwd=ROOT,
                              env=server_env(args, 8000), capture_output=True, text=True, check=False)
        with log.open("a") as handle:
            handle.write(done.stdout + done.stderr)
        line = next((x for x in done.stdout.splitlines() if x.startswith("@@compile-cache ")), "@@compile-cache {}")
        report = json.loads(line.split(" ", 1)[1])
        runs.append({"exit_code": done.returncode, "seconds": time.perf_counter() - started,
                     "status": report.get("status"), "build_s": report.get("seconds"),
                     "phases_s": report.get("phases_s"), "compile_cache": report.get("compile_cache"),
                     "stamp": report.get("wanted")})
        print("compile-cache", json.dumps({k: v for k, v in runs[-1].items() if k != "stamp"}), flush=True)
    return {"build": runs[0], "again": runs[1]}


def start(args: argparse.Namespace, log: Path,
          extra: dict[str, str] | None = None) -> tuple[subprocess.Popen, str, float]:
    import httpx

    port = free_port()
    env = server_env(args, port, extra)
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
    return run_accept(["fps", "--mode", mode, "--streams", str(streams), "--duration", str(duration),
                       "--warmup", str(warmup)], url, report)


def run_accept(verb: list[str], url: str, report: Path) -> dict:
    """`flashhead accept VERB ...` against the server; its exit code and JSON report."""
    command = [sys.executable, "-m", "ops.cli.main", "accept", *verb, "--url", url,
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
    if args.fresh_cache and args.cache_dir.exists():
        shutil.rmtree(args.cache_dir)
    provisioning = provision_cache(args, log) if args.provision_cache else None
    if provisioning:
        gpu_common.write_result(args.name, {"benchmark": "flashhead_through_server", "model_type": args.model_type,
                                            "compile_scope": args.compile_scope, "provisioning": provisioning})
    process, url, ready_s = start(args, log)
    info = httpx.get(url + "/v1/info", timeout=10).json()
    document = {"benchmark": "flashhead_through_server", **gpu_common.environment(), "model_type": args.model_type,
                "engine": info["backend_info"].get("engine"), "compile": args.compile,
                "compile_scope": args.compile_scope if args.compile else None, "max_batch": args.max_batch,
                "max_streams": args.max_streams, "restart_to_ready_s": [ready_s],
                "startup_phases_s": [info["backend_info"].get("startup_s")],
                "first_start_cache": ("built by the compile_cache step" if provisioning else
                                      "empty" if args.fresh_cache else "as found"),
                "provisioning": provisioning, "info": info, "scenarios": {},
                "acceptance": {}}
    try:
        if args.smoke:
            document["acceptance"]["smoke"] = run_accept(["smoke"], url, Path("/tmp") / f"{args.name}-smoke.json")
            print("smoke", json.dumps(smoke_digest(document["acceptance"]["smoke"])), flush=True)
            gpu_common.write_result(args.name, document)
        if args.profile:
            result = run_accept(["fps", "--profile", args.profile], url, Path("/tmp") / f"{args.name}-profile.json")
            document["acceptance"][args.profile] = result
            print(args.profile, json.dumps(digest(result))[:800], flush=True)
            gpu_common.write_result(args.name, document)
        for item in filter(None, args.scenarios.split(",")):
            mode, streams = item.split(":")
            report = Path("/tmp") / f"{args.name}-{mode}-{streams}.json"
            result = accept(url, mode, int(streams), args.duration, report, args.warmup)
            result["info"] = httpx.get(url + "/v1/info", timeout=10).json()
            result["batch_stages"] = batch_stages(httpx.get(url + "/metrics", timeout=10).text)
            document["scenarios"][item] = result
            print(item, json.dumps(digest(result))[:800], flush=True)
            gpu_common.write_result(args.name, document)
        document["info_after"] = httpx.get(url + "/v1/info", timeout=10).json()
        gpu_common.write_result(args.name, document)
    finally:
        stop(process)
    document["info_restarts"] = []
    plans = [({}, "warm")] * args.restarts
    if args.lazy_graphs:
        plans.append(({"FLASHHEAD_WARM_ALL_BATCHES": "0"}, "warm, graphs of batch > 2 recorded on first use"))
    document["restarts"] = []
    for extra, label in plans:
        process, url, ready_s = start(args, log, extra)
        document["restart_to_ready_s"].append(ready_s)
        backend_info = httpx.get(url + "/v1/info", timeout=10).json()["backend_info"]
        document["info_restarts"].append(backend_info)
        document["startup_phases_s"].append(backend_info.get("startup_s"))
        document["restarts"].append({"cache": label, "ready_s": ready_s, "phases_s": backend_info.get("startup_s"),
                                     "compile_cache": backend_info.get("compile_cache")})
        print("restart", label, round(ready_s, 1), json.dumps(backend_info.get("startup_s")), flush=True)
        stop(process)
        gpu_common.write_result(args.name, document)
    baseline_path = gpu_common.RESULTS / f"{args.baseline}.json"  # a ratio only within one machine (docs/gpu.md)
    if args.baseline and baseline_path.exists() and args.model_type == "lite":
        baseline = json.loads(baseline_path.read_text())["fps"]
        throughput = digest(document["scenarios"].get("throughput:1", {})).get("aggregate_fps")
        document["baseline"] = {"name": args.baseline, "fps": baseline}
        if throughput:
            document["server_over_flashhead_loop"] = throughput / baseline
    document["digest"] = {k: digest(v) for k, v in document["scenarios"].items()}
    gpu_common.write_result(args.name, document)
    print(json.dumps({k: document.get(k) for k in ("restart_to_ready_s", "server_over_flashhead_loop", "digest")},
                     indent=1), flush=True)


def batch_stages(metrics: str) -> dict[str, dict[str, dict[str, float]]]:
    """Per batch size, each stage's batches and mean seconds since the server started (`/metrics`)."""
    from prometheus_client.parser import text_string_to_metric_families

    sums: dict[tuple[str, str], dict[str, float]] = {}
    for family in text_string_to_metric_families(metrics):
        if family.name == "flashhead_batch_stage_seconds":
            for sample in family.samples:
                if sample.name.endswith(("_sum", "_count")):
                    key = (sample.labels["batch_size"], sample.labels["stage"])
                    sums.setdefault(key, {})[sample.name.rsplit("_", 1)[1]] = sample.value
    stages: dict[str, dict[str, dict[str, float]]] = {}
    for (size, stage), value in sorted(sums.items(), key=lambda item: (int(item[0][0]), item[0][1])):
        count = value.get("count", 0.0)
        stages.setdefault(size, {})[stage] = {"batches": count,
                                              "mean_s": round(value.get("sum", 0.0) / count, 4) if count else 0.0}
    return stages


def smoke_digest(result: dict) -> dict:
    """Each smoke check's pass/fail and detail."""
    checks = (result.get("report") or {}).get("checks") or []
    return {"exit_code": result.get("exit_code"),
            "checks": {c.get("name"): [c.get("ok", c.get("passed")), str(c.get("detail", ""))[:120]] for c in checks}
            if isinstance(checks, list) else checks}


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
