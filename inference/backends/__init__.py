"""Backends: the models the server can run, chosen by FLASHHEAD_BACKEND.

This module is the one list of backend names and model types: the server's config, its command
line, `flashhead serve` and the deployment parameters all read `BACKEND_NAMES` and `MODEL_TYPES`
from here. It imports nothing heavy (no NumPy, no torch); each backend lives in its own module and
is imported only when selected, so the reference backend never imports torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inference.backends.base import Backend
    from inference.config import ServerConfig

# name -> "module:class"
BACKENDS: dict[str, str] = {
    "reference": "inference.backends.reference:ReferenceBackend",
    "flashhead": "inference.backends.flashhead.backend:FlashheadBackend",
}
BACKEND_NAMES: tuple[str, ...] = tuple(BACKENDS)
# FlashHead's released models (their chunk geometry: inference.backends.base.GEOMETRIES)
MODEL_TYPES: tuple[str, ...] = ("lite", "pro")

__all__ = ["BACKENDS", "BACKEND_NAMES", "MODEL_TYPES", "Backend", "create_backend"]


def create_backend(config: ServerConfig) -> Backend:
    """Construct the backend named by `config.backend` (no model loading yet)."""
    from inference.backends.base import Backend
    from inference.errors import ConfigError

    target = BACKENDS.get(config.backend)
    if target is None:
        raise ConfigError(f"unknown backend {config.backend!r}",
                          f"set FLASHHEAD_BACKEND to one of: {', '.join(BACKENDS)}")
    module_name, class_name = target.split(":")
    backend_class = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(backend_class, type) and issubclass(backend_class, Backend)):
        raise TypeError(f"{target} is not a Backend")
    return backend_class.from_config(config)


def __getattr__(name: str) -> object:
    """`Backend` from inference.backends.base, imported on first use (it needs NumPy)."""
    if name == "Backend":
        from inference.backends.base import Backend

        return Backend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
