"""The model_root layout: where everything the server runs from lives under one directory.

    {model_root}/
      .venv/                        the host venv (bin/python runs `-m inference`)
      SoulX-FlashHead/              the FlashHead source at the pinned commit
      models/
        SoulX-FlashHead-1_3B/       checkpoints (Model_Lite/ VAE_LTX/ or Model_Pro/ VAE_Wan/)
        wav2vec2-base-960h/         the audio encoder
      .cache/torch-compile/         the compile cache, the only thing the server writes:
        inductor/                   TORCHINDUCTOR_CACHE_DIR
        triton/                     TRITON_CACHE_DIR
      .flashhead/                   the playbook's state (lock, events.jsonl, state.json)

This module is the one owner of those names: the server's settings (`inference.config`) derive
their defaults from it and the deploy parameters (`ops.deploy.params`) write the manifests' paths
from it. Everything but the compile cache is read-only to the server, so a deployment can mount
`model_root` read-only and give the compile cache (`compile_cache`, or any directory set by
FLASHHEAD_COMPILE_CACHE_DIR) its own writable mount. It imports nothing beyond the standard
library: the operator's light install reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath, PurePosixPath

DEFAULT_ROOT = PurePosixPath("/opt/models/flashhead")
VENV = ".venv"
REPO = "SoulX-FlashHead"
MODELS = "models"
CHECKPOINTS = "SoulX-FlashHead-1_3B"
WAV2VEC = "wav2vec2-base-960h"
COMPILE_CACHE = ".cache/torch-compile"
INDUCTOR = "inductor"
TRITON = "triton"
STATE = ".flashhead"


@dataclass(frozen=True)
class Layout:
    """The paths under one model_root (POSIX paths: the root is on a Linux host or in a pod)."""

    root: PurePosixPath = DEFAULT_ROOT

    @classmethod
    def of(cls, root: str | PurePath) -> Layout:
        return cls(PurePosixPath(root))

    @property
    def venv(self) -> PurePosixPath:
        return self.root / VENV

    @property
    def python(self) -> PurePosixPath:
        """The venv's interpreter: the server's command is `{python} -m inference`."""
        return self.venv / "bin" / "python"

    @property
    def repo(self) -> PurePosixPath:
        return self.root / REPO

    @property
    def models(self) -> PurePosixPath:
        """The checkpoint directory (FLASHHEAD_CHECKPOINT_DIR's default)."""
        return self.root / MODELS

    @property
    def compile_cache(self) -> PurePosixPath:
        """The compile cache (FLASHHEAD_COMPILE_CACHE_DIR's default): the one writable directory."""
        return self.root / COMPILE_CACHE

    @property
    def state(self) -> PurePosixPath:
        return self.root / STATE


def checkpoints(models: PurePath) -> PurePosixPath:
    """FlashHead's checkpoints inside a checkpoint directory."""
    return PurePosixPath(models) / CHECKPOINTS


def wav2vec(models: PurePath) -> PurePosixPath:
    """The wav2vec2 audio encoder inside a checkpoint directory."""
    return PurePosixPath(models) / WAV2VEC


def inductor_cache(compile_cache: PurePath) -> PurePosixPath:
    """TORCHINDUCTOR_CACHE_DIR inside a compile cache directory."""
    return PurePosixPath(compile_cache) / INDUCTOR


def triton_cache(compile_cache: PurePath) -> PurePosixPath:
    """TRITON_CACHE_DIR inside a compile cache directory."""
    return PurePosixPath(compile_cache) / TRITON
