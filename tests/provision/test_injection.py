"""No playbook var reaches a shell unquoted: every var of the shipped playbook, hostile, in check and
apply mode, over the real sshd and in the exported script, and a marker file is never created.

The vars are enumerated from playbooks/flashhead.yaml (a var added there is covered without a change
here). Each example takes one shell payload (`$(touch MARKER)`, backticks, `;`, `|`, newlines,
quotes, `${IFS}` …, with fuzzed shell characters around it) and puts it into every var, shaped like
the var's default: text gets it appended, a path is rebased into a sandbox and gets it, a list gets
it as an extra item, a mapping in each value. A var whose type or format refuses the value is the
"validated" half of the class: load_play must refuse it naming the var, before anything connects.
Every other var is set hostile at once, and then, over the real sshd:
  check    the runner's check of every step (as `provision --check` runs them);
  apply    every step's apply script, as the runner sends it, every line executed (errexit off);
  export   the exported script with FLASHHEAD_CHECK_ONLY=1, then each of its step apply functions.
Apply runs with stand-ins for the tools that would reach the network or install packages
(apt-get, dpkg, curl, git, uv, the venv's python), and root steps run in a private mount namespace
whose /etc/apt/sources.list.d is a sandbox folder, so a hostile value changes nothing outside the
sandbox even where it is (correctly) used as data.
"""

from __future__ import annotations

import shutil
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ops.connectors.base import Command, quote
from ops.connectors.ssh import SSHConnector
from ops.errors import UsageError
from ops.playbook.context import Context
from ops.playbook.export import render_script
from ops.playbook.hoststate import HostState
from ops.playbook.load import default_playbook, load_play
from ops.playbook.runner import APPLY_PREAMBLE, RunOptions, run_play, upload
from ops.tasks import load_task
from tests.conftest import STANDIN_BIN
from tests.provision.conftest import ssh_connector
from tests.sshd import SSHServer

RAW_VARS: dict[str, Any] = yaml.safe_load(default_playbook().read_text())["vars"]
DEFAULTS = load_play(None).vars  # expanded: "{model_root}/.venv" is a path here
NAMES = sorted(RAW_VARS)
TEMPLATES = ["$(touch {m})", "`touch {m}`", ";touch {m};", "|touch {m}", "&&touch {m}", "\ntouch {m}\n",
             "'$(touch {m})'", "\"$(touch {m})\"", "';touch {m};'", "\";touch {m};\"", "$(touch${{IFS}}{m})",
             "\\$(touch {m})", "${{x:-$(touch {m})}}", "$'\\n'touch {m}", ">{m}", "{{a,b}}$(touch {m})"]
FILLER = st.text(alphabet=" \t'\"`$(){}[];|&<>*?~!#\\=,%^", max_size=6)  # no '/' and no '.': no traversal
STUBS = {
    "apt-get": "exit 0", "dpkg": "exit 0", "curl": "exit 0", "git": "exit 0", "uv": "exit 0",
    "python": 'case "$*" in *plan*) echo "url stub" ;; esac; exit 0',
}


def shaped(name: str, default: Any, payload: str, sandbox: Path, wheel: Path) -> Any:
    """`payload` in var `name`, in the shape of its default; paths and URLs kept inside the sandbox."""
    if name == "inference_wheel":  # a file here whose folder carries the payload
        folder = sandbox / ("w" + payload.replace("/", "_"))
        folder.mkdir(parents=True, exist_ok=True)
        return str(shutil.copy(wheel, folder / wheel.name))
    if isinstance(default, (bool, int, float)):
        return payload  # the wrong type: refused
    if isinstance(default, list):
        return [*default, payload]
    if isinstance(default, dict):
        return {key: shaped(name, value, payload, sandbox, wheel) for key, value in default.items()}
    text = str(default)
    if text.startswith("/"):
        return f"{sandbox}{text}{payload}"
    if "://" in text or name in ("apt_mirror", "pip_index_url", "pip_extra_index_url"):
        return f"http://127.0.0.1:9/{payload}"
    return text + payload


def baseline(sandbox: Path, wheel: Path) -> dict[str, Any]:
    """Safe values for what is not hostile: everything on this machine, nothing on the network."""
    return {"model_root": f"{sandbox}/opt/models/flashhead", "cuda_home": f"{sandbox}/usr/local/cuda-12.8",
            "python": "/usr/bin/python3", "use_uv": "always", "disk_gib": {"venv": 0.001},
            "hf_endpoint": "http://127.0.0.1:9", "inference_wheel": str(wheel), "verify_gpu": False}


class StubbedSSH(SSHConnector):
    """The real SSH connector; every script runs with the stand-ins first on PATH, and root scripts in
    a private mount namespace whose apt sources folder is the sandbox's (see the module docstring)."""

    def __init__(self, *args: Any, stubs: Path, apt_sources: Path, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.prefix = f"export PATH={quote(stubs)}:\"$PATH\"\n"
        self.apt_sources = apt_sources

    def run(self, command: Command, *, sudo: bool = False, **options: Any) -> Any:  # type: ignore[override]
        if isinstance(command, str):
            command = self.prefix + command
            if sudo:
                command = ("unshare -m -- bash -c 'mount --bind \"$1\" /etc/apt/sources.list.d && "
                           f"exec bash -c \"$2\"' _ {quote(self.apt_sources)} {quote(command)}")
        return super().run(command, sudo=sudo, **options)


def make_sandbox(root: Path, play_vars: dict[str, Any]) -> tuple[Path, Path]:
    """Stand-ins on a PATH folder, a venv python stand-in and an nvcc where the play looks for them."""
    stubs, apt_sources = root / "stubs", root / "apt-sources"
    for folder in (stubs, apt_sources):
        folder.mkdir(parents=True, exist_ok=True)
    for name, body in STUBS.items():
        (stubs / name).write_text(f"#!/bin/bash\n{body}\n")
    places = {Path(play_vars["venv"]) / "bin" / "python": stubs / "python",
              Path(play_vars["cuda_home"]) / "bin" / "nvcc": STANDIN_BIN / "nvcc-standin"}
    for target, source in places.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO)
    return stubs, apt_sources


def apply_every_step(conn: SSHConnector, play: Any, sandbox_ctx: Context) -> None:
    """What Runner._apply sends for each step, with errexit off so that every line is executed."""
    for spec in play.steps:
        task = load_task(spec.task)
        ctx = sandbox_ctx
        ctx.args, ctx.step = spec.args, spec.name
        task.check_script(ctx)  # as the runner does first (a task may configure itself there)
        for path, content in task.files(ctx).items():
            upload(conn, path, content)
        script = APPLY_PREAMBLE + "set +e\n" + task.apply_script(ctx, None)
        conn.run(script, sudo=task.sudo_apply, env=task.apply_env(ctx) or None, check=False)


@pytest.fixture(scope="module")
def injection_host(sshd_server: SSHServer, shared_dir: Path, project_wheel: Path) -> dict[str, Any]:
    base = shared_dir / "injection"
    base.mkdir(mode=0o777)
    base.chmod(0o777)
    return {"sshd": sshd_server, "base": base, "wheel": project_wheel}


def every_template(test: Any) -> Any:
    """Each payload template once as written, then fuzzed ones (shell characters around a template)."""
    for template in TEMPLATES:
        test = example(template=template, before="", after="")(test)
    return test


@settings(max_examples=4, deadline=None, print_blob=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@every_template
@given(template=st.sampled_from(TEMPLATES), before=FILLER, after=FILLER)
def test_no_var_of_the_playbook_reaches_a_shell_unquoted(injection_host: dict[str, Any], template: str,
                                                         before: str, after: str) -> None:
    sshd, wheel = injection_host["sshd"], injection_host["wheel"]
    marker = Path(f"/tmp/flashhead-injected-{uuid.uuid4().hex}")
    payload = before + template.format(m=marker) + after
    root = injection_host["base"] / uuid.uuid4().hex
    sandbox = root / "sandbox"
    base = baseline(sandbox, wheel)
    accepted: dict[str, Any] = {}
    for name in NAMES:
        value = shaped(name, DEFAULTS[name], payload, sandbox, wheel)
        try:
            load_play(None, {**base, name: value})
        except UsageError as refused:  # validated: refused before anything connects, naming the var
            assert f"var {name}" in refused.message, refused.message
            continue
        accepted[name] = value
    # free text is quoted, not refused: these must be in the hostile run (paths refuse control characters)
    free = {"system_packages", "supported_os", "flashhead_ckpt_patterns", "wav2vec_patterns", "pip_find_links"}
    paths = {"model_root", "state_dir", "venv", "cuda_home", "flashhead_dir", "models_dir"}
    urls = {"flashhead_repo_url", "hf_endpoint", "cuda_repo_url", "pip_index_url", "apt_mirror"}
    assert free | (paths if payload.isprintable() else set()) | (urls if "IFS" in template and not any(
        c.isspace() for c in payload) else set()) <= set(accepted), sorted(set(NAMES) - set(accepted))
    play = load_play(None, {**base, **accepted})
    stubs, apt_sources = make_sandbox(root, play.vars)
    host = ssh_connector(sshd).host
    options = {"known_hosts": str(sshd.known_hosts), "ssh_config": str(sshd.ssh_config)}
    with StubbedSSH(host, stubs=stubs, apt_sources=apt_sources, **options) as conn:
        # check: every step's check, as `provision --check` runs them
        checked = run_play(conn, play, RunOptions(mode="check"))
        # on a failure, sshd's own account of the session
        assert len(checked.steps) == len(play.steps), (checked.error, sshd.log()[-4000:])
        # apply: every step's apply script
        ctx = Context(conn, play.vars, HostState(conn, str(play.vars["state_dir"])), {"HF_TOKEN": "hf_x" * 3})
        apply_every_step(conn, play, ctx)
        # export: the script's checks (check only), then each of its step apply functions
        script = render_script(play, "gpu-test")
        path = root / "exported.sh"
        path.write_text(script)
        path.chmod(0o755)
        conn.run(f"FLASHHEAD_CHECK_ONLY=1 bash {quote(path)}", check=False)
        functions = script[:script.index("\nrun_step ")]
        applies = root / "exported-applies.sh"
        applies.write_text(functions + "".join(f"\nstep_{spec.name}_apply" for spec in play.steps) + "\n")
        conn.run(f"bash {quote(applies)}", sudo=True, check=False)
    assert not marker.exists(), f"a var reached a shell unquoted: {payload!r}"
    assert list(apt_sources.iterdir()) in ([], [apt_sources / "flashhead-mirror.list"])
