"""Verdicts derived from facts: can this host run FlashHead with CUDA 12.8 and FlashAttention 2?"""

from __future__ import annotations

# CUDA 12.8 needs an R570 or newer driver on Linux (CUDA 12.8 release notes, table 3).
MIN_DRIVER_FOR_CUDA_12_8 = (570, 26)
# FlashAttention 2 runs on Ampere, Ada and Hopper (sm_80 and up).
MIN_COMPUTE_CAPABILITY_FA2 = (8, 0)


def version_tuple(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return None


def derive(facts: dict) -> dict:
    gpu = facts["gpu"]
    driver = version_tuple(gpu.get("driver"))
    capabilities = [version_tuple(g["compute_capability"]) for g in gpu["gpus"]]
    cuda_12_8 = [t for t in facts["cuda"]["toolkits"] if t["version"] == "12.8"]
    free = facts["disk"].get("free_bytes")
    return {
        "nvidia_gpu": gpu["present"],
        "driver_supports_cuda_12_8": None if driver is None else driver[:2] >= MIN_DRIVER_FOR_CUDA_12_8,
        "flash_attn2_supported": None if not capabilities
        else all(c is not None and c[:2] >= MIN_COMPUTE_CAPABILITY_FA2 for c in capabilities),
        "cuda_12_8_installed": bool(cuda_12_8),
        "os_supported": facts["os"]["supported"],
        "free_disk_gib": None if free is None else round(free / 2**30, 1),
    }


GIB = 2**30
# What the host needs at model_root, measured on the released artefacts (README, "Disk").
VENV_BYTES = 12 * GIB  # torch 2.7.1 cu128 + torchvision + flash-attn + FlashHead requirements
CHECKPOINT_BYTES = {"lite": 7 * GIB, "pro": 7 * GIB}  # model + VAE; wav2vec2-base adds 0.4 GiB
WAV2VEC2_BYTES = GIB // 2
COMPILE_CACHE_BYTES = 2 * GIB
MARGIN = 1.2


def required_disk_bytes(vars: dict) -> int:
    """Free space needed at model_root for the venv, checkpoints and compile caches, with margin."""
    types = vars.get("checkpoint_types") or [vars.get("model_type", "lite")]
    needed = VENV_BYTES + WAV2VEC2_BYTES + COMPILE_CACHE_BYTES + sum(CHECKPOINT_BYTES[t] for t in types)
    return int(needed * MARGIN)
