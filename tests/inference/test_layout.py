"""The model_root layout has one owner: the settings derive from it, and it imports nothing heavy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from inference import layout
from inference.config import from_env
from inference.errors import ConfigError

ROOTS = ["/opt/models/flashhead", "/data/flashhead", "/srv/a b/fh", "/x"]
TOKEN = "t" * 24


@pytest.mark.parametrize("root", ROOTS)
def test_settings_derive_every_path_from_the_layout(root: str) -> None:
    config = from_env({"FLASHHEAD_MODEL_ROOT": root})
    tree = layout.Layout.of(root)
    assert config.layout == tree
    assert config.resolved_repo_dir == Path(root, "SoulX-FlashHead") == Path(tree.repo)
    assert config.resolved_checkpoint_dir == Path(root, "models") == Path(tree.models)
    assert config.resolved_compile_cache_dir == Path(root, ".cache/torch-compile") == Path(tree.compile_cache)
    assert tree.python == PurePosixPath(root, ".venv/bin/python")
    inductor = layout.inductor_cache(config.resolved_compile_cache_dir)
    assert inductor == PurePosixPath(root, ".cache/torch-compile/inductor")
    assert layout.triton_cache(tree.compile_cache) == PurePosixPath(root, ".cache/torch-compile/triton")
    assert layout.checkpoints(tree.models) == PurePosixPath(root, "models/SoulX-FlashHead-1_3B")
    assert layout.wav2vec(tree.models) == PurePosixPath(root, "models/wav2vec2-base-960h")


def test_explicit_paths_win_over_the_layout() -> None:
    config = from_env({"FLASHHEAD_MODEL_ROOT": "/ro/fh", "FLASHHEAD_COMPILE_CACHE_DIR": "/var/cache/flashhead",
                       "FLASHHEAD_REPO_DIR": "/opt/flashhead/SoulX-FlashHead", "FLASHHEAD_CHECKPOINT_DIR": "/ckpt"})
    assert config.resolved_compile_cache_dir == Path("/var/cache/flashhead")
    assert config.resolved_repo_dir == Path("/opt/flashhead/SoulX-FlashHead")
    assert config.resolved_checkpoint_dir == Path("/ckpt")


def test_the_layout_imports_nothing_heavy() -> None:
    code = ("import sys, inference.layout; heavy = {'numpy', 'starlette', 'uvicorn', 'torch', 'yaml', 'kubernetes'}; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


@pytest.mark.parametrize("content", [TOKEN, f"{TOKEN}\n", f"  {TOKEN}\r\n", f"\n{TOKEN}\t\n"])
def test_the_token_file_is_read_and_stripped(tmp_path: Path, content: str) -> None:
    token = tmp_path / "token"
    token.write_text(content)
    config = from_env({"FLASHHEAD_HOST": "0.0.0.0", "FLASHHEAD_API_TOKEN_FILE": str(token)})
    assert config.api_token == TOKEN
    assert TOKEN not in str(config.public()) and TOKEN not in repr(config)


def _bad(tmp_path: Path, case: str) -> str:
    path = tmp_path / "token"
    if case == "missing":
        return str(tmp_path / "absent")
    if case == "directory":
        path.mkdir()
    elif case == "empty":
        path.write_text(" \n")
    elif case == "huge":
        path.write_text("x" * 5000)
    elif case == "binary":
        path.write_bytes(b"\xff\xfe\x00token")
    elif case == "short":
        path.write_text("abc\n")
    return str(path)


@pytest.mark.parametrize(("case", "words"), [
    ("missing", "cannot read it (No such file or directory)"),
    ("directory", "cannot read it (Is a directory)"),
    ("empty", "is empty"),
    ("huge", "larger than 4096 bytes"),
    ("binary", "not UTF-8"),
    ("short", "shorter than 16 characters"),
])
def test_a_bad_token_file_stops_the_server_naming_the_file(tmp_path: Path, case: str, words: str) -> None:
    path = _bad(tmp_path, case)
    with pytest.raises(ConfigError) as caught:
        from_env({"FLASHHEAD_HOST": "0.0.0.0", "FLASHHEAD_API_TOKEN_FILE": path})
    assert words in caught.value.message
    assert case == "short" or path in caught.value.message


def test_token_and_token_file_together_are_refused(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    with pytest.raises(ConfigError, match="both FLASHHEAD_API_TOKEN and FLASHHEAD_API_TOKEN_FILE"):
        from_env({"FLASHHEAD_API_TOKEN": TOKEN, "FLASHHEAD_API_TOKEN_FILE": str(token)})


def test_the_playbook_places_everything_where_the_layout_says() -> None:
    """The playbook's path vars and checkpoint dirs are YAML defaults; they must equal the layout's."""
    from ops.playbook.load import load_play

    play = load_play(None, {"model_root": "/srv/fh"})
    tree = layout.Layout.of("/srv/fh")
    assert {name: PurePosixPath(play.vars[name]) for name in ("venv", "flashhead_dir", "models_dir", "state_dir")} == {
        "venv": tree.venv, "flashhead_dir": tree.repo, "models_dir": tree.models, "state_dir": tree.state}
    dirs = {PurePosixPath(item["dir"]) for spec in play.steps for item in spec.args.get("snapshots", [])
            if isinstance(item, dict) and "dir" in item}
    assert dirs == {layout.checkpoints(tree.models), layout.wav2vec(tree.models)}
