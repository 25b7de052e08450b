"""Shared helpers of the GPU benchmarks: environment facts, synthetic inputs, result files.

Run on the GPU machine only (they import torch). Every benchmark writes one JSON document to
benchmarks/results/gpu-*.json with the GPU, driver, torch version, model type and `weights`.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 16000
RESULTS = Path(__file__).resolve().parent / "results"


def setup_flashhead(repo: Path) -> list[str]:
    """Make the cloned FlashHead importable as its own scripts do (cwd = repo root); insert stand-ins."""
    sys.path.insert(0, str(repo))
    os.chdir(repo)  # flash_head/inference.py reads configs/infer_params.yaml relative to the cwd
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import gpu_shims

    return gpu_shims.install()


def environment() -> dict[str, Any]:
    """GPU name, driver, torch/CUDA versions, Python: the header of every result file."""
    import torch

    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, check=False)
    except FileNotFoundError:  # a dry run on a machine without the NVIDIA driver
        smi = subprocess.CompletedProcess([], 127, "", "")
    name, driver, memory = ([s.strip() for s in smi.stdout.splitlines()[0].split(",")]
                            if smi.returncode == 0 and smi.stdout.strip() else (None, None, None))
    versions = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version()}
    for package in ("torchvision", "transformers", "diffusers", "triton"):
        try:
            versions[package] = __import__(package).__version__
        except ImportError:
            versions[package] = None
    return {"gpu": name or (torch.cuda.get_device_name() if torch.cuda.is_available() else None),
            "driver": driver, "gpu_memory_mib": int(memory) if memory and memory.isdigit() else None,
            "versions": versions, "weights": "random", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Deterministic voiced-speech-like audio (harmonics with syllable-rate envelope), float32 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6.28)), 0, None) ** 2
    audio = 0.3 * voiced * envelope + 0.01 * rng.standard_normal(t.size)
    return audio.astype(np.float32)


def portrait(size: int = 512, seed: int = 0) -> np.ndarray:
    """A deterministic RGB test image (gradient + a face-like ellipse), uint8 HxWx3."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    image = np.stack([x * 200 + 30, y * 180 + 40, (1 - x) * 160 + 50], axis=-1)
    face = ((x - 0.5) / 0.28) ** 2 + ((y - 0.45) / 0.36) ** 2 < 1
    image[face] = [220, 180, 150]
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def write_result(name: str, document: dict[str, Any], out_dir: Path | None = None) -> Path:
    """Write benchmarks/results/<name>.json (and a copy under $OUT when set); return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, sort_keys=False) + "\n"
    path = RESULTS / f"{name}.json"
    path.write_text(text)
    for extra in filter(None, (out_dir, os.environ.get("OUT"))):
        Path(extra).mkdir(parents=True, exist_ok=True)
        (Path(extra) / f"{name}.json").write_text(text)
    return path
