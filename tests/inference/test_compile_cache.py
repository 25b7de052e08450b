"""`python -m inference.compile_cache` (the playbook's compile_cache step): when it builds, what it stamps.

The build itself (load + warm-up of the compiled model) needs a GPU: benchmarks/gpu_server.py
--provision-cache runs it there. Here the build is replaced by a recorder, and everything around it
is real: the stamp of this machine's torch, the code digests, the settings, the exit statuses.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the stamp names the installed torch (CI installs the CPU build)")

from inference import compile_cache  # noqa: E402
from inference.config import ServerConfig  # noqa: E402
from inference.errors import ConfigError  # noqa: E402

FAKE_REPO = Path(__file__).resolve().parents[1] / "fixtures" / "fake_flashhead"


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[ServerConfig]:
    made: list[ServerConfig] = []

    def build(config: ServerConfig) -> dict[str, object]:
        made.append(config)
        return {"seconds": 1.0, "phases_s": {"warm_up_s": 1.0}, "compile_cache": {}}

    monkeypatch.setattr(compile_cache, "build", build)
    return made


def settings(tmp_path: Path, **changes: object) -> ServerConfig:
    repo = tmp_path / "repo"
    if not repo.exists():
        shutil.copytree(FAKE_REPO, repo)
    return ServerConfig(backend="flashhead", compile=True, model_root=tmp_path, repo_dir=repo,
                        device="cpu").replace(**changes)


def test_builds_once_then_is_up_to_date(tmp_path: Path, builds: list[ServerConfig]) -> None:
    config = settings(tmp_path)
    assert compile_cache.run(config, check=True)[1]["status"] == "missing"
    status, report = compile_cache.run(config)
    assert status == 0 and report["status"] == "built" and len(builds) == 1
    stamp = json.loads((tmp_path / ".cache" / "torch-compile" / compile_cache.STAMP).read_text())
    assert stamp == report["wanted"] and stamp["torch"] and stamp["settings"]["model_type"] == "lite"
    for check in (True, False):
        status, report = compile_cache.run(config, check=check)
        assert (status, report["status"]) == (0, "up to date")
    assert len(builds) == 1
    assert compile_cache.run(config, force=True)[1]["status"] == "built" and len(builds) == 2


@pytest.mark.parametrize("change", ["model_type", "max_batch", "cuda_graphs", "engine", "compile_scope",
                                    "dit_dtype", "flashhead_code"])
def test_a_change_that_shapes_the_graphs_makes_it_stale(tmp_path: Path, builds: list[ServerConfig],
                                                        change: str) -> None:
    compile_cache.run(settings(tmp_path))
    options: dict[str, dict[str, object]] = {"model_type": {"model_type": "pro"}, "max_batch": {"max_batch": 4},
                                             "cuda_graphs": {"cuda_graphs": False}, "engine": {"engine": "pipeline"},
                                             "compile_scope": {"compile_scope": "model"},
                                             "dit_dtype": {"dit_dtype": "fp8"}}
    changes = options.get(change, {})
    if change == "flashhead_code":
        model = tmp_path / "repo" / "flash_head" / "src" / "modules" / "flash_head_model.py"
        model.write_text(model.read_text() + "\n# patched\n")
    config = settings(tmp_path, **changes)
    status, report = compile_cache.run(config, check=True)
    assert (status, report["status"]) == (1, "stale")
    assert compile_cache.run(config)[1]["status"] == "built" and len(builds) == 2


def test_an_unreadable_stamp_counts_as_missing(tmp_path: Path, builds: list[ServerConfig]) -> None:
    config = settings(tmp_path)
    stamp = config.resolved_compile_cache_dir / compile_cache.STAMP
    stamp.parent.mkdir(parents=True)
    stamp.write_text("{not json")
    assert compile_cache.run(config, check=True)[1]["status"] == "missing"


@pytest.mark.parametrize("changes", [{"compile": False}, {"backend": "reference"}])
def test_nothing_to_build_without_a_compiled_flashhead_backend(tmp_path: Path, builds: list[ServerConfig],
                                                               changes: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="FLASHHEAD_COMPILE=1"):
        compile_cache.run(settings(tmp_path, **changes))
    assert not builds


def test_main_prints_one_report_line_and_exits_by_status(tmp_path: Path, builds: list[ServerConfig],
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    config = settings(tmp_path)
    for name, value in {"BACKEND": "flashhead", "COMPILE": "1", "MODEL_ROOT": str(tmp_path),
                        "REPO_DIR": str(config.resolved_repo_dir), "DEVICE": "cpu"}.items():
        monkeypatch.setenv(f"FLASHHEAD_{name}", value)
    assert compile_cache.main(["--check"]) == 1
    assert compile_cache.main([]) == 0
    assert compile_cache.main(["--check"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("@@compile-cache ")]
    assert [json.loads(line.split(" ", 1)[1])["status"] for line in lines] == ["missing", "built", "up to date"]
    monkeypatch.setenv("FLASHHEAD_COMPILE", "0")
    assert compile_cache.main([]) == 2
