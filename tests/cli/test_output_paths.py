"""An output option writes a regular file it was asked for and touches nothing else.

For every output option of the CLI and every kind of path that is not a regular file (a device
like /dev/null, a FIFO, a folder, a symlink to a file elsewhere, a dangling symlink, a symlink to
a folder) the command exits 2 before doing its work and the thing is left exactly as it was.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from ops.errors import OutputPathError
from ops.output import write_output_file
from tests.conftest import run_cli


def char_device(path: Path, elsewhere: Path) -> None:
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
    path.chmod(0o666)  # (mknod applies the umask)


def fifo(path: Path, elsewhere: Path) -> None:
    os.mkfifo(path, 0o600)


def folder(path: Path, elsewhere: Path) -> None:
    path.mkdir()
    (path / "kept").write_text("kept")


def symlink_to_file(path: Path, elsewhere: Path) -> None:
    elsewhere.write_text("not yours")
    elsewhere.chmod(0o600)
    path.symlink_to(elsewhere)


def dangling_symlink(path: Path, elsewhere: Path) -> None:
    path.symlink_to(elsewhere)


def symlink_to_folder(path: Path, elsewhere: Path) -> None:
    elsewhere.mkdir()
    path.symlink_to(elsewhere)


KINDS: dict[str, Callable[[Path, Path], None]] = {
    "character device": char_device, "FIFO": fifo, "folder": folder, "symlink to a file": symlink_to_file,
    "dangling symlink": dangling_symlink, "symlink to a folder": symlink_to_folder}

# option -> the command line that writes there (each exits 2 before any real work when refused)
OPTIONS: dict[str, Callable[[Path], list[str]]] = {
    "export-script --out": lambda p: ["export-script", "@local", "--out", str(p)],
    "accept smoke --report": lambda p: ["accept", "smoke", "--url", "http://127.0.0.1:9", "--report", str(p)],
    "accept smoke --junit": lambda p: ["accept", "smoke", "--url", "http://127.0.0.1:9", "--junit", str(p)],
    "accept smoke --clip": lambda p: ["accept", "smoke", "--url", "http://127.0.0.1:9", "--clip", str(p)],
    "accept fps --report": lambda p: ["accept", "fps", "--url", "http://127.0.0.1:9", "--report", str(p)],
    "accept fps --junit": lambda p: ["accept", "fps", "--url", "http://127.0.0.1:9", "--junit", str(p)],
    "demo --out (its files)": lambda p: ["demo", "--out", str(p.parent)],
}


def snapshot(path: Path) -> tuple:
    """What must not change: type, mode, owner, link target, content of what the path names."""
    info = os.lstat(path)
    link = os.readlink(path) if stat.S_ISLNK(info.st_mode) else None
    content = path.read_bytes() if stat.S_ISLNK(info.st_mode) and path.is_file() else None
    listing = sorted(os.listdir(path)) if path.is_dir() else None
    return info.st_mode, info.st_uid, info.st_rdev, info.st_ino, link, content, listing


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_an_output_option_refuses_what_is_not_a_regular_file(option: str, kind: str, tmp_path: Path) -> None:
    work = tmp_path / "out"
    work.mkdir()
    target = work / ("server.log" if option.startswith("demo") else "target")
    elsewhere = tmp_path / "elsewhere"
    KINDS[kind](target, elsewhere)
    before = snapshot(target), (snapshot(elsewhere) if os.path.lexists(elsewhere) else None)
    done = run_cli(*OPTIONS[option](target), "-o", "json", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    error = json.loads(done.stdout)
    assert error["error"] == "OutputPathError" and str(target) in error["message"] and "refusing" in error["message"]
    after = snapshot(target), (snapshot(elsewhere) if os.path.lexists(elsewhere) else None)
    assert after == before
    assert sorted(p.name for p in work.iterdir()) == [target.name]  # no temp file left behind


def test_a_regular_file_is_replaced_atomically_with_the_mode_asked(tmp_path: Path) -> None:
    target = tmp_path / "provision.sh"
    target.write_text("old")
    target.chmod(0o600)
    other_link = tmp_path / "hard-link"
    os.link(target, other_link)
    done = run_cli("export-script", "@local", "--out", str(target), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert target.read_text().startswith("#!/usr/bin/env bash") and stat.S_IMODE(target.stat().st_mode) == 0o755
    assert other_link.read_text() == "old"  # a new file was renamed in: the old inode is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard-link", "provision.sh"]


def test_the_writer_itself_refuses_a_device(tmp_path: Path) -> None:
    device = tmp_path / "null"
    char_device(device, tmp_path / "unused")
    with pytest.raises(OutputPathError, match="character device"):
        write_output_file(device, "x")
    assert stat.S_ISCHR(os.lstat(device).st_mode) and stat.S_IMODE(os.lstat(device).st_mode) == 0o666
