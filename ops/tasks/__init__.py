"""Task types a playbook step can use: name → `module:Class`, imported only when a play uses it."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ops.tasks.base import Task

TASKS: dict[str, str] = {
    "preflight": "ops.tasks.preflight:Preflight",
    "apt": "ops.tasks.apt:AptPackages",
    "cuda_toolkit": "ops.tasks.cuda_toolkit:CudaToolkit",
    "venv": "ops.tasks.venv:Venv",
    "pip_packages": "ops.tasks.pip:PipPackages",
    "flash_attn": "ops.tasks.flash_attn:FlashAttn",
    "git_checkout": "ops.tasks.git:GitCheckout",
    "hf_snapshot": "ops.tasks.hf_snapshot:HfSnapshots",
    "project_wheel": "ops.tasks.project_wheel:ProjectWheel",
    "verify": "ops.tasks.verify:Verify",
    "compile_cache": "ops.tasks.compile_cache:CompileCache",
}


def load_task(name: str) -> Task:
    """Instantiate the task type `name`."""
    module_name, attribute = TASKS[name].split(":")
    task: Task = getattr(importlib.import_module(module_name), attribute)()
    return task
