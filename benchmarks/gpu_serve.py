"""`python -m inference` for the GPU benchmark machine: installs the benchmark stand-ins first.

The lent benchmark machine lacks xfuser and mediapipe (FlashHead imports them, uses them only for
multi-GPU and face cropping; see gpu_shims.py). A provisioned host runs `python -m inference`
directly. Settings come from FLASHHEAD_* as usual. `gpu_serve.py compile-cache [--check]` runs
`python -m inference.compile_cache` (the playbook's compile_cache step) the same way.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    sys.path.insert(0, str(HERE))
    import gpu_shims

    gpu_shims.install()
    if sys.argv[1:2] == ["compile-cache"]:  # the playbook step's module, with the same stand-ins
        from inference.compile_cache import main as build_cache

        sys.exit(build_cache(sys.argv[2:]))
    from inference.__main__ import main

    sys.exit(main(sys.argv[1:]))
