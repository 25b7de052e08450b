"""Where the files the tool ships live: `manifests/`, `playbooks/` and `constraints/` of this project.

An installed wheel carries them as package data (`ops/_bundled/`, copied there by setup.py's build
step); an editable install or a checkout reads the top-level folders in place. Every reader asks
`bundled()`, so both installs find the same files through one function.
"""

from __future__ import annotations

from pathlib import Path

from ops.errors import UsageError

PACKAGED = Path(__file__).resolve().parent / "_bundled"
CHECKOUT = Path(__file__).resolve().parent.parent


def bundled(name: str) -> Path:
    """The shipped folder `name` (`manifests`, `playbooks` or `constraints`): the wheel's copy, else the checkout's."""
    for root in (PACKAGED, CHECKOUT):
        if (root / name).is_dir():
            return root / name
    raise UsageError(f"this install of flashhead-ops lacks its {name}/ folder (looked in {PACKAGED} and {CHECKOUT})",
                     "reinstall it from a wheel built by `pip wheel .` (which bundles it), or from a checkout")
