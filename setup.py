"""Build hook: a wheel carries the checkout's top-level `manifests/`, `playbooks/` and `constraints/` as package data.

They stay where the layout wants them (kubectl applies `manifests/` directly, the docs link
`playbooks/`); `build_py` copies them into the built `ops/_bundled/`, and `ops.bundled.bundled()`
finds them there in an installed wheel, or in the checkout for an editable install.
Everything else about the distribution is declared in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = ("manifests", "playbooks", "constraints")


class BuildPyWithBundledData(build_py):
    """`build_py`, then copy each BUNDLED folder to `<build_lib>/ops/_bundled/<folder>`."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's folders in place
        for name in BUNDLED:
            source = ROOT / name
            if not source.is_dir():
                raise SystemExit(f"setup.py: {source} is missing; the wheel must carry it")
            shutil.copytree(source, Path(self.build_lib) / "ops" / "_bundled" / name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithBundledData})
