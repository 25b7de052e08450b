"""The flashhead backend's fast engine on the GPU: correctness against FlashHead, and batching across streams.

    python benchmarks/gpu_batching.py --mode eager --check            # equality checks (no compile)
    python benchmarks/gpu_batching.py --mode compiled --batches 1,2,4,8,12
    python benchmarks/gpu_batching.py --mode compiled --batches 1,8 --check-compiled  # + graphs vs eager, nvJPEG

Checks (`--check`): the fast engine for one stream against FlashHead's own `run_pipeline` path
(the pipeline engine) with the same avatar, audio and seed; and B streams in one batched call
against each stream run alone. Reported as relative L2 and max/mean absolute differences of the
uint8 frames (bf16 model: small differences are rounding, amplified by the 4-step sampler).
`--check-compiled` (after the timing): the compiled DiT replayed as CUDA graphs against the same
engine eager, over consecutive chunks (a graph output read after it was overwritten would show
here), and the nvJPEG files decoded against the host frames.

Timing: chunk time per batch size B (ring update + wav2vec2 + 4 DiT steps + decode + colour +
motion re-encode + one host copy), aggregate and per-stream FPS, against the unbatched
interleaving (B streams one chunk each in turn) and FlashHead's own loop (benchmarks/results/
gpu-loop-lite-compiled*.json, same machine kind). Results: benchmarks/results/gpu-batching-*.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=ROOT / "vendor" / "SoulX-FlashHead")
    parser.add_argument("--model-type", choices=["lite", "pro"], default="lite")
    parser.add_argument("--mode", choices=["eager", "compiled"], default="compiled")
    parser.add_argument("--batches", default="1,2,4,8,12")
    parser.add_argument("--chunks", type=int, default=6, help="measured chunks per batch size")
    parser.add_argument("--check", action="store_true", help="run the equality checks")
    parser.add_argument("--check-compiled", action="store_true", help="graphs vs eager and nvJPEG checks")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--name", default=None)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.cache_dir:
        args.cache_dir = args.cache_dir.resolve()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_common

    repo = args.repo.resolve()
    gpu_common.setup_flashhead(repo)
    os.chdir(ROOT)
    import torch

    torch._dynamo.config.cache_size_limit = 64
    from inference.backends.flashhead.backend import FlashheadBackend
    from inference.backends.flashhead.engines.base import EngineSettings
    from inference.backends.flashhead.engines.pipeline import PipelineEngine
    from inference.backends.flashhead.paths import FlashheadPaths

    compiled = args.mode == "compiled"
    cache = args.cache_dir or Path("/tmp/flashhead-compile-cache")
    paths = FlashheadPaths(repo, Path("/nonexistent"), Path("/nonexistent"), cache)
    settings = EngineSettings(compile=compiled)
    backend = FlashheadBackend(paths, args.model_type, "cuda", weights="random", engine="fast", settings=settings)
    started = time.perf_counter()
    backend.load()
    load_s = time.perf_counter() - started
    document = {"benchmark": "flashhead_fast_engine_batching", **gpu_common.environment(),
                "model_type": args.model_type, "engine": "fast", "mode": args.mode, "load_s": load_s,
                "startup_s": dict(backend.timings)}
    if args.check:
        assert backend.flashhead is not None
        document["checks"] = checks(backend, PipelineEngine(backend.flashhead, settings), gpu_common)
        print(json.dumps(document["checks"], indent=1), flush=True)
    batches = [int(b) for b in args.batches.split(",") if b]
    name = args.name or f"gpu-batching-{args.model_type}-{args.mode}"
    if batches:
        document["timing"] = {}
        timing(backend, batches, args.chunks, gpu_common, document["timing"],
               lambda: gpu_common.write_result(name, document))
        document["summary"] = summary(document["timing"], gpu_common)
        print(json.dumps(document["summary"], indent=1), flush=True)
    if args.check_compiled:
        document["compiled_checks"] = compiled_checks(backend, gpu_common)
        print(json.dumps(document["compiled_checks"], indent=1), flush=True)
    gpu_common.write_result(name, document)


# ---- correctness ---------------------------------------------------------------------------------

AVATARS: dict[int, object] = {}


def make_streams(backend, count: int, gpu_common, seed0: int = 100):  # noqa: ANN001, ANN201
    """`count` fresh streams on avatars 0..count-1 (each photo prepared once), seeds seed0 + index."""
    streams = []
    for index in range(count):
        if index not in AVATARS:
            AVATARS[index] = backend.prepare_avatar(gpu_common.portrait(seed=index))
        streams.append(backend.new_stream(AVATARS[index], seed0 + index))
    return streams


def chunk_audio(backend, stream_index: int, chunk: int, gpu_common):  # noqa: ANN001, ANN201
    n = backend.geometry.samples_per_chunk
    audio = gpu_common.speech_like(4.0, seed=stream_index)
    start = (chunk * n) % (len(audio) - n)
    return audio[start:start + n] * (0.5 + 0.1 * stream_index)


def compare(a, b) -> dict:  # noqa: ANN001
    import numpy as np

    a, b = a.astype(np.float64), b.astype(np.float64)
    return {"rel_l2": float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12)),
            "max_abs": float(np.abs(a - b).max()), "mean_abs": float(np.abs(a - b).mean())}


def run_chunks(backend, streams, chunks: int, gpu_common, batched: bool):  # noqa: ANN001, ANN201
    frames = {id(s): [] for s in streams}
    for chunk in range(chunks):
        for index, stream in enumerate(streams):
            backend.encode_audio(stream, chunk_audio(backend, index, chunk, gpu_common))
        if batched:
            results = backend.generate_chunks(streams)
        else:
            results = [backend.generate_chunks([stream])[0] for stream in streams]
        for stream, result in zip(streams, results, strict=True):
            frames[id(stream)].append(result)
    return [frames[id(s)] for s in streams]


def checks(backend, pipeline_engine, gpu_common) -> dict:  # noqa: ANN001
    chunks = 3
    fast_engine = backend.engine
    # 1. fast engine (one stream) vs FlashHead's own run_pipeline path, same avatar/audio/seed.
    (fast,) = run_chunks(backend, make_streams(backend, 1, gpu_common), chunks, gpu_common, batched=False)
    backend.engine = pipeline_engine
    (flash,) = run_chunks(backend, make_streams(backend, 1, gpu_common), chunks, gpu_common, batched=False)
    backend.engine = fast_engine
    result = {"fast_vs_flashhead_pipeline": [compare(f, g) for f, g in zip(fast, flash, strict=True)]}
    # 2. B streams batched vs each alone (fresh streams with the same seeds and inputs).
    for count in (2, 4) if backend.model_type == "lite" else (2,):
        alone = run_chunks(backend, make_streams(backend, count, gpu_common), chunks, gpu_common, batched=False)
        together = run_chunks(backend, make_streams(backend, count, gpu_common), chunks, gpu_common, batched=True)
        result[f"batched_{count}_vs_alone"] = [
            compare(t, a) for stream_t, stream_a in zip(together, alone, strict=True)
            for t, a in zip(stream_t, stream_a, strict=True)]
    # 3. Determinism: the same stream twice alone gives the same frames; a re-prepared photo too.
    again = backend.prepare_avatar(gpu_common.portrait(seed=0))
    result["same_photo_twice_latent_max_abs"] = float((again.latent - AVATARS[0].latent).abs().max())
    first = run_chunks(backend, make_streams(backend, 1, gpu_common), 2, gpu_common, batched=False)[0]
    second = run_chunks(backend, make_streams(backend, 1, gpu_common), 2, gpu_common, batched=False)[0]
    result["same_stream_twice"] = [compare(a, b) for a, b in zip(first, second, strict=True)]
    for key, values in list(result.items()):
        if not isinstance(values, list):
            continue
        result[key + "_worst_rel_l2"] = max(v["rel_l2"] for v in values)
    return result


def compiled_checks(backend, gpu_common) -> dict:  # noqa: ANN001
    """The compiled engine (CUDA graphs) against itself eager; its nvJPEG files against its host frames."""
    import io

    import numpy as np
    from PIL import Image

    engine, chunks = backend.engine, 3
    result: dict = {"cuda_graphs": engine.cuda_graphs, "nvjpeg": engine.encodes_jpeg,
                    "compile_scope": backend.settings.compile_scope}
    for count in (1, 2):
        graphs = run_chunks(backend, make_streams(backend, count, gpu_common), chunks, gpu_common, batched=True)
        # Either scope's compiled part swapped out: the whole forward (`model`) or the one block (`blocks`).
        compiled = engine.forward, engine.run_block
        engine.forward, engine.run_block, engine.cuda_graphs = engine._forward, engine._block, False
        try:
            eager = run_chunks(backend, make_streams(backend, count, gpu_common), chunks, gpu_common, batched=True)
        finally:
            (engine.forward, engine.run_block), engine.cuda_graphs = compiled, result["cuda_graphs"]
        result[f"graphs_vs_eager_{count}"] = [compare(g, e) for stream_g, stream_e in zip(graphs, eager, strict=True)
                                              for g, e in zip(stream_g, stream_e, strict=True)]
    if engine.encodes_jpeg:
        streams = make_streams(backend, 2, gpu_common)
        host = run_chunks(backend, streams, 1, gpu_common, batched=True)
        streams = make_streams(backend, 2, gpu_common)
        for index, stream in enumerate(streams):
            backend.encode_audio(stream, chunk_audio(backend, index, 0, gpu_common))
        started = time.perf_counter()
        files = backend.generate_jpeg_chunks(streams, 85)
        result["jpeg_chunk_ms_2"] = 1000 * (time.perf_counter() - started)
        decoded = [np.stack([np.asarray(Image.open(io.BytesIO(f)).convert("RGB")) for f in stream_files])
                   for stream_files in files]
        result["jpeg_vs_host"] = [compare(d, h[0]) for d, h in zip(decoded, host, strict=True)]
        result["jpeg_kib_per_frame"] = sum(len(f) for stream_files in files for f in stream_files) / 1024 / (
            2 * len(files[0]))
    for key, values in list(result.items()):
        if isinstance(values, list):
            result[key + "_worst_rel_l2"] = max(v["rel_l2"] for v in values)
    return result


# ---- timing --------------------------------------------------------------------------------------

def timing(backend, batches: list[int], chunks: int, gpu_common, results: dict, save) -> dict:  # noqa: ANN001
    """Fill `results` per batch size (saving after each, so a cut-off run still reports)."""
    import torch

    streams = make_streams(backend, max(batches), gpu_common)
    for warm in (1, 2):  # compile batch 1, then the dynamic-batch graph (used by every B >= 2)
        started = time.perf_counter()
        run_chunks(backend, streams[:warm], 2, gpu_common, batched=True)
        results.setdefault("compile_s", {})[str(warm)] = time.perf_counter() - started
    chunk_index = 10
    for batch in batches:
        group = streams[:batch]
        run_chunks(backend, group, 2, gpu_common, batched=True)  # warm this shape (and record its graph)
        times = []
        for _ in range(chunks):
            for index, stream in enumerate(group):
                backend.encode_audio(stream, chunk_audio(backend, index, chunk_index, gpu_common))
            chunk_index += 1
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            backend.generate_chunks(group)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        # The unbatched interleaving scheduler: the same B streams, one chunk each in turn.
        interleaved = []
        for _ in range(max(1, chunks // 2)):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for index, stream in enumerate(group):
                backend.encode_audio(stream, chunk_audio(backend, index, chunk_index, gpu_common))
                backend.generate_chunks([stream])
            torch.cuda.synchronize()
            interleaved.append(time.perf_counter() - t0)
            chunk_index += 1
        frames = backend.geometry.new_frames
        median = gpu_common.percentile(times, 50)
        round_median = gpu_common.percentile(interleaved, 50)
        results[str(batch)] = {
            "chunk_ms_median": 1000 * median, "chunk_ms_p95": 1000 * gpu_common.percentile(times, 95),
            "aggregate_fps": batch * frames / median, "per_stream_fps": frames / median,
            "unbatched_round_ms_median": 1000 * round_median,
            "unbatched_aggregate_fps": batch * frames / round_median,
            "unbatched_per_stream_fps": frames / round_median,
            "batched_over_unbatched": round_median / median,
            "realtime": frames / median >= backend.geometry.fps and median < backend.geometry.chunk_seconds,
            "gpu_memory_peak_gib": torch.cuda.max_memory_allocated() / 2**30,
        }
        print(f"B={batch}: {results[str(batch)]}", flush=True)
        save()
    return results


def summary(timing_result: dict, gpu_common) -> dict:  # noqa: ANN001
    baseline = {}
    for name in ("gpu-loop-lite-compiled-cold", "gpu-loop-lite-compiled-warm"):
        path = gpu_common.RESULTS / f"{name}.json"
        if path.exists():
            baseline[name] = json.loads(path.read_text())["fps"]
    single = timing_result.get("1", {}).get("aggregate_fps")
    realtime = [int(b) for b, r in timing_result.items() if b.isdigit() and r["realtime"]]
    out = {"single_stream_fps": single, "flashhead_loop_fps": baseline,
           "single_stream_over_flashhead_loop": {k: single / v for k, v in baseline.items()} if single else None,
           "max_realtime_batch_measured": max(realtime) if realtime else None}
    if "4" in timing_result:
        out["batched_over_unbatched_at_4"] = timing_result["4"]["batched_over_unbatched"]
    return out


if __name__ == "__main__":
    main()
