"""Backends: the models the server can run, chosen by FLASHHEAD_BACKEND.

Each backend lives in its own module and is imported only when selected, so the reference
backend never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from inference.backends.base import LITE, PRO, Backend, ChunkGeometry
from inference.errors import ConfigError

# name -> "module:class"
BACKENDS: dict[str, str] = {
    "reference": "inference.backends.reference:ReferenceBackend",
    "flashhead": "inference.backends.flashhead:FlashheadBackend",
}

__all__ = ["BACKENDS", "LITE", "PRO", "Backend", "ChunkGeometry", "create_backend"]


def create_backend(config: Any) -> Backend:
    """Construct the backend named by `config.backend` (no model loading yet)."""
    target = BACKENDS.get(config.backend)
    if target is None:
        raise ConfigError(f"unknown backend {config.backend!r}",
                          f"set FLASHHEAD_BACKEND to one of: {', '.join(BACKENDS)}")
    module_name, class_name = target.split(":")
    backend_class: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return backend_class.from_config(config)
