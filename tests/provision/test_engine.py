"""The playbook engine's pure parts: var expansion, `when`, loading errors, redaction, step parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.connectors.base import Result
from ops.errors import RemoteCommandFailed, SessionLost, UsageError
from ops.playbook.context import Context
from ops.playbook.expand import evaluate_when, expand, expand_vars
from ops.playbook.hoststate import HostState
from ops.playbook.load import load_play, select_steps
from ops.playbook.redact import MASK, Redactor
from ops.playbook.runner import _name_failed_command, _timed_run
from ops.tasks.flash_attn import FlashAttn
from ops.tasks.verify import Verify


def test_vars_refer_to_vars_and_keep_their_types():
    variables = expand_vars({"root": "/opt/fh", "venv": "{root}/.venv", "py": "{venv}/bin/python",
                             "pkgs": ["git"], "packages": "{pkgs}", "script": "echo ${HOME} {not_a_var}"})
    assert variables["py"] == "/opt/fh/.venv/bin/python"
    assert variables["packages"] == ["git"]
    assert variables["script"] == "echo ${HOME} {not_a_var}"
    assert expand({"a": ["{root}", 3]}, variables) == {"a": ["/opt/fh", 3]}


def test_a_var_that_refers_to_itself_is_a_usage_error():
    with pytest.raises(UsageError, match="recursively"):
        expand_vars({"a": "{b}", "b": "{a}"})


@pytest.mark.parametrize("condition, expected", [
    (None, True), ("model_type == 'pro'", False), ("model_type in ['lite', 'pro'] and not gpu", True),
    ("model_type != 'lite' or gpu", False),
])
def test_when_conditions(condition, expected):
    assert evaluate_when(condition, {"model_type": "lite", "gpu": False}) is expected


@pytest.mark.parametrize("condition", ["__import__('os').system('true')", "model_type.upper() == 'LITE'",
                                       "unknown == 1", "model_type =="])
def test_when_refuses_anything_but_comparisons(condition):
    with pytest.raises(UsageError):
        evaluate_when(condition, {"model_type": "lite"})


def test_overrides_win_and_are_parsed_where_the_default_is_not_text():
    play = load_play(None, {"model_root": "/data/fh", "pip_no_index": "true", "disk_gib": '{"venv": 1}'})
    assert play.vars["venv"] == "/data/fh/.venv" and play.vars["pip_no_index"] is True
    assert play.vars["disk_gib"] == {"venv": 1}
    assert play.vars["torch_version"] == "2.7.1" and play.vars["flash_attn_version"] == "2.8.0.post2"
    assert play.vars["flashhead_commit"] == "12467cef31a9554cd9682a0521e6e87deaef9810"


def test_bad_playbooks_name_the_file_and_the_step(tmp_path: Path):
    bad = tmp_path / "play.yaml"
    bad.write_text("vars: {}\nsteps:\n  - {name: x, task: nope}\n")
    with pytest.raises(UsageError, match=r"steps\[0\] \(x\): unknown task 'nope'"):
        load_play(bad)
    bad.write_text("vars: {}\nsteps:\n  - {name: v, task: venv}\n  - {name: v, task: venv}\n")
    with pytest.raises(UsageError, match="repeated: v"):
        load_play(bad)
    with pytest.raises(UsageError, match="cannot read"):
        load_play(tmp_path / "missing.yaml")


def test_step_selection():
    play = load_play(None)
    assert [s.name for s in select_steps(play, ("venv", "verify"))] == ["venv", "verify"]
    assert "torch" not in [s.name for s in select_steps(play, skip=("torch",))]
    with pytest.raises(UsageError, match="no step named 'tourch'"):
        select_steps(play, ("tourch",))


def test_secrets_are_masked_everywhere():
    redactor = Redactor(["hf_secret123"])
    assert redactor.data({"a": ["x hf_secret123 y"], "b": 1}) == {"a": [f"x {MASK} y"], "b": 1}


def test_a_failed_apply_names_the_command_that_failed():
    error = RemoteCommandFailed("set -e\n...long script...", 1,
                                "Cloning...\nfatal: unable to connect\n@@failed: git clone --quiet u d (exit 128)")
    _name_failed_command(error)
    assert error.details["command"] == "git clone --quiet u d" and error.details["exit_status"] == 128
    assert error.message == "command failed with exit status 128: git clone --quiet u d"


def fake_context(step: str, recorded: dict) -> Context:
    state = HostState(conn=None, state_dir="/x")  # type: ignore[arg-type]
    state.data["steps"][step] = recorded
    return Context(conn=None, vars={"flash_attn_version": "2.8.0.post2"}, hoststate=state, step=step)  # type: ignore[arg-type]


def test_flash_attn_is_reinstalled_when_torch_changed_under_it():
    ctx = fake_context("flash_attn", {"torch": "2.7.1+cu128"})
    same = Result("c", 0, '@@versions {"flash-attn": "2.8.0.post2", "torch": "2.7.1+cu128"}\n', "")
    assert FlashAttn().parse_check(ctx, same).done
    moved = Result("c", 0, '@@versions {"flash-attn": "2.8.0.post2", "torch": "2.8.0+cu128"}\n', "")
    state = FlashAttn().parse_check(ctx, moved)
    assert not state.done and "torch changed from 2.7.1+cu128 to 2.8.0+cu128" in state.summary


def test_verify_explains_an_abi_mismatch():
    line = ('@@verify {"name": "import flash_attn", "ok": false, "detail": "ImportError: flash_attn_2_cuda.so: '
            'undefined symbol: _ZN3c105ErrorC2ENS_14SourceLocationE"}\n')
    state = Verify().parse_check(fake_context("verify", {}), Result("c", 1, line, ""))
    assert not state.done and "ABI mismatch" in state.summary and "c10::Error" in state.summary


def test_the_wheel_ships_the_playbooks_and_manifests_unchanged(project_wheel):
    import zipfile

    root = Path(__file__).resolve().parents[2]
    with zipfile.ZipFile(project_wheel) as wheel:
        shipped = {name[len("ops/_bundled/"):]: wheel.read(name) for name in wheel.namelist()
                   if name.startswith("ops/_bundled/")}
    on_disk = {str(p.relative_to(root)): p.read_bytes() for folder in ("playbooks", "manifests", "constraints")
               for p in (root / folder).rglob("*") if p.is_file()}
    assert shipped == on_disk


def test_requirements_against_the_play_pins(tmp_path: Path):
    import json
    import subprocess
    import sys

    from ops.tasks.requirements import PROGRAM

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("loguru>=0.7\ntorch==2.5.1  # theirs\ntransformers==4.40.0\nscikit-image   \n# note\n"
                            "pkg @ git+https://example.invalid/pkg.git\ndecord; platform_machine == 'x86_64'\n")
    out = tmp_path / "filtered.txt"

    def run(mode: str, path: Path) -> tuple[int, dict]:
        done = subprocess.run([sys.executable, "-", mode, str(path), str(out),
                               json.dumps({"torch": "2.7.1", "transformers": "4.57.3"}), json.dumps(["torch"])],
                              input=PROGRAM, capture_output=True, text=True)
        return done.returncode, json.loads(done.stdout.split("@@requirements ", 1)[1])

    status, found = run("write", requirements)
    assert status == 1  # nothing of it is installed in this interpreter
    assert out.read_text().splitlines() == ["loguru>=0.7", "transformers==4.57.3", "scikit-image",
                                            "pkg @ git+https://example.invalid/pkg.git",
                                            "decord; platform_machine == 'x86_64'"]
    assert found["conflicts"] == [
        "requirements.txt wants torch==2.5.1, the play pins torch==2.7.1: keeping the play's",
        "requirements.txt wants transformers==4.40.0, the play pins transformers==4.57.3: keeping the play's"]
    assert run("check", tmp_path / "absent.txt") == (0, {"install": [], "conflicts": [], "missing": []})


@pytest.mark.parametrize("output, words", [
    ("sudo: a password is required", "passwordless sudo"),
    ("ERROR: No matching distribution found for torch==2.7.1", "pip_index_url"),
    ("fatal: unable to connect to github.com:\ngithub.com: Name or service not known", "flashhead_repo_url"),
    ("huggingface_hub.errors.GatedRepoError: 401 Client Error", "HF_TOKEN"),
    ("OSError: [Errno 28] No space left on device", "free space"),
    ("something else", "re-run"),
])
def test_failed_commands_come_with_a_remedy(output, words):
    from ops.playbook.remedies import remedy_for

    error = RemoteCommandFailed("script", 1, output + "\n@@failed: step-command (exit 1)")
    _name_failed_command(error)
    assert words in (error.remedy or "") and remedy_for(output) == error.remedy


def test_step_names_are_bash_identifiers_and_export_comments_stay_comments(tmp_path: Path):
    from ops.playbook.export import render_script

    bad = tmp_path / "play.yaml"
    bad.write_text("vars: {}\nsteps:\n  - {name: 'x; touch /tmp/pwned', task: verify}\n")
    with pytest.raises(UsageError, match="must be letters, digits and '_'"):
        load_play(bad)
    script = render_script(load_play(None), "gpu\ntouch /tmp/pwned\r", name="a\nrm -rf x.sh")
    header = script.split("set -uo pipefail")[0]
    assert all(line.startswith("#") for line in header.splitlines())


@pytest.mark.parametrize("var, value, words", [
    ("cuda_version", "12.8; touch /tmp/x", "is not a version"),
    ("flashhead_commit", "main", "is not a 40-hex git commit"),
    ("pip_no_index", "maybe", "is not true or false"),
    ("disk_gib", {"venv": "lots"}, "disk_gib.venv: 'lots' is not a number"),
    ("use_uv", "alwys", "is not auto, always or never"),
    ("model_type", "huge", "is not lite or pro"),
    ("system_packages", "git", "is not a list"),
    ("python", "python3 -c 'x'", "is not a program name"),
])
def test_a_var_of_the_wrong_type_or_format_is_refused_naming_it(var, value, words):
    with pytest.raises(UsageError) as refused:
        load_play(None, {var: value})
    assert refused.value.message.startswith(f"var {var}") and words in refused.value.message


class _LosesSessions:
    """A context whose first `losses` commands end without an exit status, as a cut SSH session does."""

    def __init__(self, losses: int):
        self.losses, self.calls = losses, 0

    def run(self, script: str, **_: object) -> Result:
        self.calls += 1
        if self.calls <= self.losses:
            raise SessionLost(script, "")
        return Result(script, 0, "@@ok\n", "")


def test_a_check_whose_session_is_lost_runs_once_more_and_says_so():
    ctx = _LosesSessions(losses=1)
    result, _seconds, warning = _timed_run(ctx, "true")  # type: ignore[arg-type]
    assert ctx.calls == 2 and result.ok and "lost once" in (warning or "")
    clean = _LosesSessions(losses=0)
    assert _timed_run(clean, "true")[2] is None and clean.calls == 1  # type: ignore[arg-type]


def test_a_check_lost_twice_fails_as_before():
    ctx = _LosesSessions(losses=2)
    with pytest.raises(SessionLost):
        _timed_run(ctx, "true")  # type: ignore[arg-type]
    assert ctx.calls == 2
