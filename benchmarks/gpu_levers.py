"""Where a batched chunk's GPU time goes, and what each speed lever changes: one process, one GPU.

    python benchmarks/gpu_levers.py --repo vendor/SoulX-FlashHead --batches 1,12,16 --name gpu-levers-lite

Lite on the compiled fast engine (CUDA graphs, `blocks` scope), random weights. For each batch size:
the chunk's phases timed apart (wav2vec2 audio embeddings, the 4 DiT steps, VAE decode + colour +
motion re-encode, nvJPEG and the host copy), each lever on and off:

- `cudnn_benchmark`: cuDNN picks the fastest algorithm per convolution shape (the VAE's 3-D convs);
- `vae_channels_last`: the VAE's weights in channels-last (NDHWC) memory, so cuDNN's convolutions skip
  the NCDHW <-> NDHWC transposes the profile shows; its frames compared with bf16's like FP8's;
- `jpeg_overlap`: chunk k's nvJPEG + host copy on a thread (the engine's `start_jpeg`, as the server runs
  it) while chunk k+1's audio, DiT and VAE run: the period of back-to-back chunks against the serial one;
- `dit_fp8`: FLASHHEAD_DIT_DTYPE=fp8 (engines/fp8.py), its frames compared with bf16's on the same
  weights, photos, audio and seeds: relative L2 per frame and the worst frame;
- the attention kernels torch's SDPA offers at the DiT's self-attention shape (flash, cuDNN,
  memory-efficient), timed alone.

A torch-profiler table of one B = max chunk (bf16 and fp8) shows which kernels hold the time.
Results: benchmarks/results/<name>.json (and the profiler tables as <name>-profile-*.txt under $OUT).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=ROOT / "vendor" / "SoulX-FlashHead")
    parser.add_argument("--batches", default="1,12,16")
    parser.add_argument("--chunks", type=int, default=5, help="timed chunks per batch size and lever")
    parser.add_argument("--deviation-chunks", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/flashhead-levers-cache"))
    parser.add_argument("--name", default="gpu-levers-lite")
    parser.add_argument("--device", default="cuda", help="cpu: a dry run against a (fake) repository, eager")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_batching
    import gpu_common

    gpu_common.setup_flashhead(args.repo.resolve())
    os.chdir(ROOT)
    import torch

    from inference.backends.flashhead.backend import FlashheadBackend, persist_compile_cache
    from inference.backends.flashhead.engines.base import EngineSettings
    from inference.backends.flashhead.engines.fp8 import quantize_dit
    from inference.backends.flashhead.paths import FlashheadPaths

    torch._dynamo.config.cache_size_limit = 64
    persist_compile_cache(args.cache_dir)
    on_gpu = args.device == "cuda"
    paths = FlashheadPaths(args.repo.resolve(), *dry_run_checkpoints(on_gpu), args.cache_dir)
    settings = EngineSettings(compile=on_gpu, compile_scope="blocks")
    weights = "random" if on_gpu else "checkpoints"
    backend = FlashheadBackend(paths, "lite", args.device, weights=weights, engine="fast", settings=settings)
    started = time.perf_counter()
    backend.load()
    batches = [int(b) for b in args.batches.split(",") if b]
    document: dict = {"benchmark": "flashhead_speed_levers", **gpu_common.environment(), "model_type": "lite",
                      "engine": "fast", "compile_scope": "blocks", "cuda_graphs": True, "load_s": 0.0,
                      "phases_ms": {}, "deviation_fp8_vs_bf16": None, "attention_ms": None}
    document["load_s"] = time.perf_counter() - started

    def save() -> None:
        gpu_common.write_result(args.name, document)

    streams = gpu_batching.make_streams(backend, max(batches), gpu_common)
    if on_gpu:
        document["attention_ms"] = attention_kernels(torch, max(batches))
        print("attention", document["attention_ms"], flush=True)
        save()
    for lever in ("bf16", "bf16+cudnn_benchmark"):
        torch.backends.cudnn.benchmark = lever.endswith("cudnn_benchmark")
        document["phases_ms"][lever] = phases(backend, streams, batches, args.chunks, gpu_batching, gpu_common)
        save()
    bf16_frames = frames_for_deviation(backend, gpu_batching, gpu_common, args.deviation_chunks)
    write_profile(backend, streams[:max(batches)], "bf16", args.name, gpu_batching, gpu_common)
    if on_gpu:
        document["jpeg_overlap_period_ms"] = jpeg_overlap(backend, streams, batches, args.chunks, gpu_batching,
                                                          gpu_common)
        save()
    vae = backend.pipeline.vae.model
    # FlashHead's compiled VAE asserts the weight strides it was traced with: trace again from here (the FX graph
    # cache keeps the DiT's recompile short), then every graph sees channels-last weights from its first call.
    torch._dynamo.reset()
    vae.to(memory_format=torch.channels_last_3d)
    try:
        document["phases_ms"]["bf16+cudnn_benchmark+vae_channels_last"] = phases(
            backend, streams, batches, args.chunks, gpu_batching, gpu_common)
        channels_last_frames = frames_for_deviation(backend, gpu_batching, gpu_common, args.deviation_chunks)
        document["deviation_vae_channels_last_vs_bf16"] = deviation(bf16_frames, channels_last_frames)
        print("deviation channels-last", {k: v for k, v in document["deviation_vae_channels_last_vs_bf16"].items()
                                          if k != "per_frame"}, flush=True)
    except Exception as error:  # noqa: BLE001 - a lever that fails is a result; the FP8 part still runs
        document["vae_channels_last_error"] = str(error).splitlines()[0]
        print("channels-last failed:", document["vae_channels_last_error"], flush=True)
    torch._dynamo.reset()
    vae.to(memory_format=torch.contiguous_format)
    save()
    converted = quantize_dit(backend.engine.model)
    print(f"fp8: {converted} linear layers converted", flush=True)
    fp8_frames = frames_for_deviation(backend, gpu_batching, gpu_common, args.deviation_chunks)
    document["deviation_fp8_vs_bf16"] = deviation(bf16_frames, fp8_frames)
    print("deviation", {k: v for k, v in document["deviation_fp8_vs_bf16"].items() if k != "per_frame"}, flush=True)
    save()
    document["phases_ms"]["fp8+cudnn_benchmark"] = phases(backend, streams, batches, args.chunks, gpu_batching,
                                                          gpu_common)
    save()
    write_profile(backend, streams[:max(batches)], "fp8", args.name, gpu_batching, gpu_common)
    document["summary"] = summary(document["phases_ms"], backend.geometry)
    save()
    for row in document["summary"]:
        print(row, flush=True)


def dry_run_checkpoints(on_gpu: bool) -> tuple[Path, Path]:
    """No checkpoints on the GPU (random weights); for a CPU dry run, the empty folders a fake repository reads."""
    if on_gpu:
        return Path("/nonexistent"), Path("/nonexistent")
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="levers-"))
    for folder in ("Model_Lite", "VAE_LTX", "wav2vec"):
        (root / folder).mkdir()
        (root / folder / "config.json").write_text("{}")
    return root, root / "wav2vec"


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def phases(backend, streams, batches: list[int], chunks: int, gpu_batching, gpu_common) -> dict:  # noqa: ANN001
    """Per batch size: the median of each phase over `chunks` chunks (the first two, warm-up, not counted)."""
    import torch

    engine, result = backend.engine, {}
    for batch in batches:
        group = streams[:batch]
        samples: dict[str, list[float]] = {}
        for chunk in range(chunks + 2):
            for index, stream in enumerate(group):
                backend.encode_audio(stream, gpu_batching.chunk_audio(backend, index, chunk, gpu_common))
            marks = [time.perf_counter()]
            with torch.no_grad():
                context = engine.audio_embeddings(group)
                sync()
                marks.append(time.perf_counter())
                latents = engine.denoise(group, context)
                sync()
                marks.append(time.perf_counter())
                frames = engine.decode(group, latents)
                sync()
                marks.append(time.perf_counter())
                if engine.jpeg is not None:
                    engine.encode_jpeg(frames, 85)
                else:
                    frames.cpu()
                marks.append(time.perf_counter())
            for stream in group:
                stream.audio_fed = False
            if chunk < 2:
                continue
            for name, (a, b) in zip(("audio", "dit", "vae", "jpeg_and_copy"), zip(marks, marks[1:], strict=False),
                                    strict=True):
                samples.setdefault(name, []).append(1000 * (b - a))
            samples.setdefault("chunk", []).append(1000 * (marks[-1] - marks[0]))
        result[str(batch)] = {name: gpu_common.percentile(values, 50) for name, values in samples.items()}
        print(f"B={batch}", {k: round(v, 1) for k, v in result[str(batch)].items()}, flush=True)
    return result


def jpeg_overlap(backend, streams, batches: list[int], chunks: int, gpu_batching, gpu_common) -> dict:  # noqa: ANN001
    """Per batch size: the median period of back-to-back chunks, in ms: serial; each chunk's nvJPEG + copy on a
    thread while the next chunk computes on the default stream (`overlapped_default_stream`); and the same with
    the chunks computed on a stream of their own (`overlapped`, what the server does: torchvision's nvJPEG waits
    for the legacy default stream before each image, so compute there serialises with it)."""
    from concurrent.futures import ThreadPoolExecutor

    import torch

    engine, result = backend.engine, {}
    compute = torch.cuda.current_stream()  # the backend's own, made current by backend.load (the server's)
    default = torch.cuda.default_stream()
    variants = {"serial": compute, "overlapped_default_stream": default, "overlapped": compute}
    with ThreadPoolExecutor(max_workers=1) as pool, torch.no_grad():
        for batch in batches:
            group, periods = streams[:batch], {}
            for variant, stream in variants.items():
                pending, marks = None, []
                with torch.cuda.stream(stream):
                    for chunk in range(chunks + 2):
                        for index, lane in enumerate(group):
                            backend.encode_audio(lane, gpu_batching.chunk_audio(backend, index, chunk, gpu_common))
                        finish = engine.start_jpeg(group, 85)
                        if pending is not None:
                            pending.result()
                        pending = pool.submit(finish)
                        if variant == "serial":
                            pending.result()
                        marks.append(time.perf_counter())
                    pending.result()
                gaps = [1000 * (b - a) for a, b in zip(marks[2:], marks[3:], strict=False)]
                periods[variant] = gpu_common.percentile(gaps, 50)
            result[str(batch)] = periods
            print(f"B={batch} jpeg overlap", {k: round(v, 1) for k, v in periods.items()}, flush=True)
    return result


def frames_for_deviation(backend, gpu_batching, gpu_common, chunks: int) -> list:  # noqa: ANN001
    """Two fresh streams (own photo, audio, seed), `chunks` chunks batched: uint8 frames on the host."""
    return gpu_batching.run_chunks(backend, gpu_batching.make_streams(backend, 2, gpu_common, seed0=900), chunks,
                                   gpu_common, batched=True)


def deviation(reference: list, other: list) -> dict:
    """Relative L2 of each frame (uint8, as served) against the reference, and the worst frame."""
    import numpy as np

    per_frame = []
    for stream_ref, stream_other in zip(reference, other, strict=True):
        for chunk_ref, chunk_other in zip(stream_ref, stream_other, strict=True):
            for a, b in zip(chunk_other, chunk_ref, strict=True):
                a, b = a.astype(np.float64), b.astype(np.float64)
                per_frame.append(float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12)))
    return {"frames": len(per_frame), "worst_frame_rel_l2": max(per_frame),
            "median_frame_rel_l2": float(np.median(per_frame)), "per_frame": per_frame}


def attention_kernels(torch, batch: int) -> dict:  # noqa: ANN001
    """SDPA at the DiT's self-attention shape (B x 12 heads x 1280 tokens x 128) per kernel, in ms."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = (torch.randn(batch, 12, 1280, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    result = {}
    for name, kernel in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
                         ("efficient", SDPBackend.EFFICIENT_ATTENTION)):
        try:
            with sdpa_kernel([kernel]):
                for _ in range(3):
                    torch.nn.functional.scaled_dot_product_attention(q, k, v)
                sync()
                t0 = time.perf_counter()
                for _ in range(20):
                    torch.nn.functional.scaled_dot_product_attention(q, k, v)
                sync()
                result[name] = 1000 * (time.perf_counter() - t0) / 20
        except RuntimeError as error:
            result[name] = f"unavailable: {str(error)[:120]}"
    return result


def write_profile(backend, streams, label: str, name: str, gpu_batching, gpu_common) -> None:  # noqa: ANN001
    """One chunk of all `streams` under torch's profiler: the kernels by GPU time, as a table under $OUT."""
    from torch.profiler import ProfilerActivity, profile

    for index, stream in enumerate(streams):
        backend.encode_audio(stream, gpu_batching.chunk_audio(backend, index, 50, gpu_common))
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        backend.generate_chunks(streams)
        sync()
    table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=30, max_name_column_width=90)
    out = Path(os.environ.get("OUT", "/tmp"))
    (out / f"{name}-profile-{label}.txt").write_text(table)
    print(f"profile {label} (B={len(streams)}):\n" + "\n".join(table.splitlines()[:16]), flush=True)


def summary(phases_ms: dict, geometry) -> list[dict]:  # noqa: ANN001
    """Per lever and batch: chunk ms, ms per stream-chunk, and whether B streams keep real time."""
    rows = []
    for lever, by_batch in phases_ms.items():
        for batch, times in by_batch.items():
            chunk_s = times["chunk"] / 1000
            rows.append({"lever": lever, "batch": int(batch), "chunk_ms": round(times["chunk"], 1),
                         "dit_ms": round(times["dit"], 1), "vae_ms": round(times["vae"], 1),
                         "ms_per_stream_chunk": round(times["chunk"] / int(batch), 1),
                         "realtime": chunk_s < geometry.chunk_seconds})
    return rows


if __name__ == "__main__":
    main()
