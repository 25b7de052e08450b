"""FlashHead's own streaming loop on the GPU: the raw FPS our server is measured against.

Reproduces `generate_video.py --audio_encode_mode stream` of the cloned repository with its own
functions (`get_pipeline`, `get_base_data`, `get_audio_embedding`, `run_pipeline`): an 8 s `deque`
of audio samples, one chunk of new audio per call, frames copied to the host. `--weights random`
builds the real architecture with random parameters (inference/backends/flashhead/arch.py).

    python benchmarks/gpu_flashhead_loop.py --repo vendor/SoulX-FlashHead --mode compiled \
        --cache-dir /tmp/fh-cache --chunks 30 --name gpu-loop-lite-compiled

`--cache-dir` points TORCHINDUCTOR_CACHE_DIR / TRITON_CACHE_DIR there (as the server does under
{model_root}); run twice with the same directory to measure restart-to-ready with a warm cache.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys
import time
from collections import deque
from pathlib import Path

STARTED = time.time()
ROOT = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=ROOT / "vendor" / "SoulX-FlashHead")
    parser.add_argument("--model-type", choices=["lite", "pro"], default="lite")
    parser.add_argument("--mode", choices=["eager", "compiled"], default="compiled")
    parser.add_argument("--chunks", type=int, default=30, help="measured chunks after warm-up")
    parser.add_argument("--warmup", type=int, default=4, help="chunks run before measuring")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--name", default=None, help="result file name (default gpu-loop-<type>-<mode>)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.cache_dir:
        args.cache_dir = args.cache_dir.resolve()
        args.cache_dir.mkdir(parents=True, exist_ok=True)
        cache_was_empty = not any(args.cache_dir.iterdir())
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(args.cache_dir / "inductor")
        os.environ["TRITON_CACHE_DIR"] = str(args.cache_dir / "triton")
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_common

    repo = args.repo.resolve()
    shims = gpu_common.setup_flashhead(repo)
    import flash_head.src.pipeline.flash_head_pipeline as fh_pipeline
    import numpy as np
    import torch
    from flash_head import inference as fh
    from PIL import Image

    from inference.backends.flashhead.arch import parameter_count, random_weights

    compiled = args.mode == "compiled"
    fh_pipeline.COMPILE_MODEL = compiled  # FlashHead's own switches, read by FlashHeadPipeline.__init__
    fh_pipeline.COMPILE_VAE = compiled
    imported = time.time()
    with random_weights(args.model_type, "cuda"):
        pipeline = fh.get_pipeline(world_size=1, ckpt_dir="/nonexistent-random-weights",
                                   model_type=args.model_type, wav2vec_dir="/nonexistent-random-weights")
    model = getattr(pipeline.model, "_orig_mod", pipeline.model)
    params = parameter_count(model)
    image_path = Path("/tmp/flashhead-bench-portrait.png")
    Image.fromarray(gpu_common.portrait()).save(image_path)
    fh.get_base_data(pipeline, cond_image_path_or_dir=str(image_path), base_seed=42, use_face_crop=False)
    loaded = time.time()

    p = fh.get_infer_params()
    sample_rate, fps, frame_num = p["sample_rate"], p["tgt_fps"], p["frame_num"]
    motion_frames_num = p["motion_frames_num"]
    slice_len = frame_num - motion_frames_num
    slice_samples = slice_len * sample_rate // fps
    cached = sample_rate * p["cached_audio_duration"]
    audio_end_idx = p["cached_audio_duration"] * fps
    audio_start_idx = audio_end_idx - frame_num
    total = args.warmup + args.chunks
    audio = gpu_common.speech_like(total * slice_samples / sample_rate)
    slices = audio[: total * slice_samples].reshape(total, slice_samples)

    audio_dq: deque = deque([0.0] * cached, maxlen=cached)
    chunk_s, audio_s, model_s, logs = [], [], [], io.StringIO()
    ready_at = None
    loop_start = None
    for index, speech in enumerate(slices):
        if index == args.warmup:
            torch.cuda.synchronize()
            loop_start = time.time()
        torch.cuda.synchronize()
        t0 = time.time()
        with contextlib.redirect_stdout(logs):  # FlashHead prints per-step timings; keep them for the breakdown
            audio_dq.extend(speech.tolist())
            audio_array = np.array(audio_dq)
            embedding = fh.get_audio_embedding(pipeline, audio_array, audio_start_idx, audio_end_idx)
            torch.cuda.synchronize()
            t1 = time.time()
            video = fh.run_pipeline(pipeline, embedding)
            video = video[motion_frames_num:]
            frames = video.cpu()
        t2 = time.time()
        chunk_s.append(t2 - t0)
        audio_s.append(t1 - t0)
        model_s.append(t2 - t1)
        if index == 0:
            ready_at = t2
        print(f"chunk {index}: {t2 - t0:.3f}s (audio {t1 - t0:.3f}s)", flush=True)
    loop_s = time.time() - loop_start
    measured = chunk_s[args.warmup:]
    frames_out = args.chunks * slice_len
    breakdown = _breakdown(logs.getvalue(), args.warmup)

    document = {
        "benchmark": "flashhead_own_streaming_loop",
        **gpu_common.environment(),
        "model_type": args.model_type,
        "mode": args.mode,
        "parameters": params,
        "shims": shims,
        "frames_shape": list(frames.shape),
        "chunk_new_frames": slice_len,
        "chunks_measured": args.chunks,
        "fps": frames_out / loop_s,
        "chunk_ms_median": 1000 * gpu_common.percentile(measured, 50),
        "chunk_ms_p95": 1000 * gpu_common.percentile(measured, 95),
        "audio_embedding_ms_median": 1000 * gpu_common.percentile(audio_s[args.warmup:], 50),
        "pipeline_ms_median": 1000 * gpu_common.percentile(model_s[args.warmup:], 50),
        "breakdown_ms_median": breakdown,
        "first_chunks_ms": [round(1000 * s, 1) for s in chunk_s[: args.warmup]],
        "import_s": imported - STARTED,
        "load_s": loaded - imported,
        "restart_to_ready_s": (ready_at or loaded) - STARTED,
        "cache_dir": str(args.cache_dir) if args.cache_dir else None,
        "cache_was_empty": cache_was_empty if args.cache_dir else None,
        "gpu_memory_peak_gib": torch.cuda.max_memory_allocated() / 2**30,
    }
    name = args.name or f"gpu-loop-{args.model_type}-{args.mode}"
    gpu_common.write_result(name, document)
    print(f"{name}: {document['fps']:.1f} FPS, chunk median {document['chunk_ms_median']:.1f} ms, "
          f"ready after {document['restart_to_ready_s']:.1f} s", flush=True)


_PATTERNS = {
    "denoise_step": r"model denoise per step: ([\d.e-]+)s",
    "decode": r"decode video frames: ([\d.e-]+)s",
    "color_correction": r"color correction: ([\d.e-]+)s",
    "motion_encode": r"encode motion frames: ([\d.e-]+)s",
}


def _breakdown(log: str, warmup: int) -> dict[str, float]:
    """Median of FlashHead's own per-stage prints, skipping the warm-up chunks."""
    import numpy as np

    result = {}
    for stage, pattern in _PATTERNS.items():
        values = [float(v) for v in re.findall(pattern, log)]
        per_chunk = 4 if stage == "denoise_step" else 1
        values = values[warmup * per_chunk:]
        if values:
            result[stage] = round(1000 * float(np.median(values)), 2)
    return result


if __name__ == "__main__":
    main()
