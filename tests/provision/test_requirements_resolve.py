"""The flashhead_repo step's resolver run: FlashHead's requirements against a venv whose torch the play
installed first. A real `pip install --dry-run --report` over a local wheelhouse reproduces FlashHead's
two known conflicts: a pin of a torch requirement at another version (nvidia-nccl-cu12==2.27.3 where
torch 2.7.1 needs 2.26.2) and a package that would replace torch (xformers built for another torch).
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ops.tasks.requirements import RESOLVE


def wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A minimal pure-Python wheel (one empty module) with these Requires-Dist lines."""
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": "",
        f"{info}/METADATA": "\n".join(["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
                                       *(f"Requires-Dist: {r}" for r in requires)]) + "\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in files) + f"{info}/RECORD,,\n"
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return path


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A venv with the stand-in torch 2.7.1 (needing nvidia-nccl-cu12==2.26.2) installed, and the wheelhouse."""
    root = tmp_path_factory.mktemp("resolve")
    house = root / "wheels"
    house.mkdir()
    wheel(house, "torch", "2.7.1", ("nvidia-nccl-cu12==2.26.2", "typing-extensions>=4.0"))
    wheel(house, "torch", "2.7.0", ("nvidia-nccl-cu12==2.26.2",))
    for version in ("2.26.2", "2.27.3"):
        wheel(house, "nvidia-nccl-cu12", version)
    wheel(house, "typing-extensions", "4.1.0")
    wheel(house, "typing-extensions", "4.9.0")
    wheel(house, "xformers", "0.0.31", ("torch==2.7.0",))
    wheel(house, "imageio", "2.37.0", ("typing-extensions>=4.5",))
    wheel(house, "uses-nccl", "1.0", ("nvidia-nccl-cu12==2.26.2",))
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    python = root / "venv" / "bin" / "python"
    options = ["--no-index", "--find-links", str(house)]
    subprocess.run([str(python), "-m", "pip", "install", "-q", *options, "torch==2.7.1", "typing-extensions==4.1.0"],
                   check=True)
    return python, options


def resolve(venv: tuple[Path, list[str]], tmp_path: Path, lines: list[str]) -> tuple[int, dict, list[str]]:
    python, options = venv
    filtered = tmp_path / "requirements.filtered.txt"
    filtered.write_text("\n".join(lines) + "\n")
    done = subprocess.run([str(python), "-", "resolve", str(filtered), json.dumps(["torch", "torchvision"]),
                           json.dumps(options)], input=RESOLVE, capture_output=True, text=True, timeout=300)
    report = next(json.loads(x.split(" ", 1)[1]) for x in done.stdout.splitlines() if x.startswith("@@resolved "))
    return done.returncode, report, filtered.read_text().split()


def test_pins_that_would_break_torch_are_reported_and_skipped(venv, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    status, report, left = resolve(venv, tmp_path, ["nvidia-nccl-cu12==2.27.3", "xformers==0.0.31", "imageio"])
    assert status == 0, report
    assert left == ["imageio"]
    skipped = "\n".join(report["skipped"])
    assert "nvidia-nccl-cu12==2.27.3" in skipped and "torch 2.7.1 needs nvidia-nccl-cu12==2.26.2" in skipped
    assert "xformers==0.0.31" in skipped and "replace the installed torch with 2.7.0" in skipped
    # what is left installs without touching torch; a harmless upgrade of a torch requirement stays
    assert "typing-extensions==4.9.0" in report["install"]
    assert not any(x.startswith("torch==") for x in report["install"])


def test_a_conflict_pip_cannot_resolve_drops_the_pin_that_fights_torch(venv, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    status, report, left = resolve(venv, tmp_path, ["nvidia-nccl-cu12==2.27.3", "uses-nccl==1.0"])
    assert status == 0, report
    assert left == ["uses-nccl==1.0"] and "nvidia-nccl-cu12==2.27.3" in report["skipped"][0]


def test_a_consistent_file_is_left_as_it_is(venv, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    status, report, left = resolve(venv, tmp_path, ["imageio", "uses-nccl==1.0"])
    assert (status, report["skipped"], left) == (0, [], ["imageio", "uses-nccl==1.0"])


def test_a_requirement_that_does_not_exist_fails_with_pips_words(venv, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    status, report, _ = resolve(venv, tmp_path, ["no-such-package==1.0"])
    assert status == 3 and "no-such-package" in report["error"]
