"""Build the flashhead backend's compile cache on this host's GPU, once: `python -m inference.compile_cache`.

A compiled server's first start compiles its graphs (minutes; 385 s measured with max batch 12);
with the cache present a start only loads them. The playbook's `compile_cache` step runs this
module on the host after `verify`, with the deployment's FLASHHEAD_* settings, so no server start
pays the compile. It loads the backend and runs its warm-up exactly as the server does, then writes
`flashhead-stamp.json` into the cache folder: what the cache was built for (torch, Triton, CUDA,
the GPU, FlashHead's and the engine's code, and the settings that shape the compiled graphs).

    python -m inference.compile_cache           # build, unless the stamp matches (then say so, exit 0)
    python -m inference.compile_cache --check   # exit 0 when the stamp matches, 1 when a build is due
    python -m inference.compile_cache --force   # build even when it matches

Each run prints one line `@@compile-cache {json}` (status, wanted and found stamps, seconds, phases).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from inference.config import ServerConfig, from_env
from inference.errors import ConfigError, InferenceError

STAMP = "flashhead-stamp.json"
ENGINE_CODE = Path(__file__).resolve().parent / "backends" / "flashhead"


def code_digest(*folders: Path) -> str:
    """sha256 over the Python files under `folders` (names and contents): the code the graphs come from."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            if "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def wanted_stamp(config: ServerConfig) -> dict[str, Any]:
    """What a cache built now, for `config`, on this GPU would be stamped with (imports torch)."""
    import torch

    try:
        import triton

        triton_version: str | None = triton.__version__
    except ImportError:
        triton_version = None
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    capability = ".".join(map(str, torch.cuda.get_device_capability(0))) if gpu else None
    return {
        "torch": torch.__version__, "cuda": torch.version.cuda, "triton": triton_version,
        "gpu": gpu, "compute_capability": capability,
        "flashhead_code": code_digest(config.resolved_repo_dir / "flash_head"),
        "engine_code": code_digest(ENGINE_CODE),
        "settings": {"model_type": config.model_type, "engine": config.engine, "max_batch": config.max_batch,
                     "cuda_graphs": config.cuda_graphs, "compile_scope": config.compile_scope,
                     "dit_dtype": config.dit_dtype,
                     "device": config.device},
    }


def found_stamp(config: ServerConfig) -> dict[str, Any] | None:
    """The stamp of the cache in the config's folder, or None when there is none (or it is unreadable)."""
    try:
        found = json.loads((config.resolved_compile_cache_dir / STAMP).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def build(config: ServerConfig) -> dict[str, Any]:
    """Load the backend and warm it up as the server does (this compiles and fills the cache); time it."""
    from inference.backends import create_backend

    started = time.perf_counter()
    backend = create_backend(config)
    backend.load()
    backend.warm_up()
    info = backend.info()
    backend.close()
    return {"seconds": round(time.perf_counter() - started, 2), "phases_s": info.get("startup_s"),
            "compile_cache": info.get("compile_cache")}


def write_stamp(config: ServerConfig, stamp: dict[str, Any]) -> None:
    path = config.resolved_compile_cache_dir / STAMP
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(stamp, indent=1, sort_keys=True) + "\n")
    os.replace(temporary, path)


def run(config: ServerConfig, check: bool = False, force: bool = False) -> tuple[int, dict[str, Any]]:
    """Check or build; returns (exit status, the report printed after `@@compile-cache`)."""
    if config.backend != "flashhead" or not config.compile:
        raise ConfigError("nothing to compile: the compile cache is for FLASHHEAD_BACKEND=flashhead with "
                          "FLASHHEAD_COMPILE=1", "set both as the deployment does, or skip this step")
    wanted, found = wanted_stamp(config), found_stamp(config)
    report: dict[str, Any] = {"cache_dir": str(config.resolved_compile_cache_dir), "wanted": wanted, "found": found}
    if found == wanted and not force:
        return 0, {**report, "status": "up to date"}
    if check:
        return 1, {**report, "status": "missing" if found is None else "stale"}
    report.update(build(config), status="built")
    write_stamp(config, wanted)
    return 0, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.compile_cache", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether a build is due (exit 1 if so)")
    parser.add_argument("--force", action="store_true", help="build even when the stamp matches")
    args = parser.parse_args(argv)
    try:
        status, report = run(from_env(), check=args.check, force=args.force)
    except InferenceError as error:
        print("@@compile-cache " + json.dumps({"status": "error", **error.to_dict()}), flush=True)
        print(f"error: {error.message}", file=sys.stderr)
        if error.remedy:
            print(f"  fix: {error.remedy}", file=sys.stderr)
        return 2
    print("@@compile-cache " + json.dumps(report), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
