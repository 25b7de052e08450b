"""Stand-ins for FlashHead imports that the benchmark device lacks (never used on a provisioned host).

FlashHead's model imports `xfuser` at module level but uses it only for multi-GPU sequence
parallelism, and its pipeline imports `mediapipe` only for optional face cropping. A provisioned
host installs both from FlashHead's requirements; the lent benchmark machine has neither and no
network, so the GPU benchmarks inject these inert modules into `sys.modules` before importing
FlashHead. Single-GPU code paths never call them; if one does, it raises.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def _unavailable(name: str):
    def call(*_args, **_kwargs):
        raise RuntimeError(f"{name} is a benchmark stand-in: multi-GPU / face crop are not available here")
    return call


def _module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    module.__path__ = []  # a package, so submodules resolve
    return module


def install() -> list[str]:
    """Insert the stand-ins for modules that are not importable; return the names inserted."""
    inserted: list[str] = []
    if importlib.util.find_spec("xfuser") is None:
        distributed = _module(
            "xfuser.core.distributed",
            get_sequence_parallel_rank=lambda: 0,
            get_sequence_parallel_world_size=lambda: 1,
            get_sp_group=_unavailable("xfuser.get_sp_group"),
            init_distributed_environment=_unavailable("xfuser.init_distributed_environment"),
            initialize_model_parallel=_unavailable("xfuser.initialize_model_parallel"),
            get_world_group=_unavailable("xfuser.get_world_group"),
        )
        long_ctx = _module("xfuser.core.long_ctx_attention",
                           xFuserLongContextAttention=_unavailable("xFuserLongContextAttention"))
        for module in (_module("xfuser"), _module("xfuser.core"), distributed, long_ctx):
            sys.modules[module.__name__] = module
        inserted.append("xfuser")
    if importlib.util.find_spec("mediapipe") is None:
        sys.modules["mediapipe"] = _module("mediapipe", solutions=types.SimpleNamespace())
        inserted.append("mediapipe")
    return inserted
