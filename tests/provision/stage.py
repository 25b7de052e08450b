"""Staging for provisioning tests and benchmarks: a dir the test user can read, a wheelhouse, a git
daemon serving the FlashHead-layout fixture repo, and a host description (model_root + inventory).
Plain functions, so benchmarks/ can stage the same host without pytest."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.conftest import FIXTURES, run_cli
from tests.provision.hf_server import HubServer
from tests.sshd import SSHServer, free_port

TOKEN = "hf_TESTtoken_9f8e7d6c5b4a3210"  # the secret the tests hunt for in logs and argv
GPU_STEPS = ("cuda_toolkit", "torch", "flash_attn", "compile_cache")  # need a GPU / NVIDIA's repo: check mode only


def new_shared_dir() -> Path:
    """A directory under /tmp the unprivileged test login user can read (pytest's tmp is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="flashhead-prov-", dir="/tmp"))
    path.chmod(0o755)
    return path


def download_wheelhouse(out: Path, wheel: Path) -> Path:
    """Wheels for everything the play pip-installs in a test run (huggingface_hub, the fixture repo's
    requirements, the server extra of this project's wheel)."""
    from ops.tasks.project_wheel import extra_requirements, server_constraints

    out.mkdir(parents=True, exist_ok=True)
    requirements = ["huggingface-hub==0.36.2", "loguru>=0.7", *extra_requirements(wheel, "server")]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d", str(out),
                    "-c", str(server_constraints()), *requirements], check=True, capture_output=True)
    out.chmod(0o755)
    return out


@dataclass
class GitSource:
    url: str
    commits: list[str]  # oldest first; the play pins the last
    work: Path
    daemon: subprocess.Popen

    def stop(self) -> None:
        self.daemon.terminate()
        self.daemon.wait(5)


def serve_git(shared_dir: Path, address: str = "127.0.0.1") -> GitSource:
    """The fixture repo (FlashHead's layout) with two commits, served by `git daemon` on loopback (or
    on `address`, this machine's side of a test network)."""
    base, work = shared_dir / "git", shared_dir / "work"
    shutil.copytree(FIXTURES / "flashhead_repo", work)
    git = ["git", "-C", str(work), "-c", "user.name=fixture", "-c", "user.email=fixture@example.invalid"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first"], check=True)
    (work / "generate_video.py").write_text('"""Fixture entry point at FlashHead\'s path (second commit)."""\n')
    subprocess.run([*git, "commit", "-q", "-am", "second"], check=True)
    commits = subprocess.run([*git, "rev-list", "--reverse", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.split()
    base.mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(base / "SoulX-FlashHead.git")], check=True)
    port = free_port(address)
    daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", f"--listen={address}",
                               f"--port={port}", f"--base-path={base}", str(base)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"git://{address}:{port}/SoulX-FlashHead.git"
    for _ in range(100):
        if subprocess.run(["git", "ls-remote", url], capture_output=True).returncode == 0:
            break
        time.sleep(0.05)
    return GitSource(url, commits, work, daemon)


@dataclass
class ProvisionHost:
    """A model_root on the sshd test host and the inventory that points the play at local sources."""

    sshd: SSHServer
    model_root: Path
    inventory: Path
    vars: dict

    def env(self) -> dict[str, str]:
        return {**self.sshd.env(), "FLASHHEAD_HF_TOKEN": TOKEN, "HF_TOKEN": ""}

    def provision(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return run_cli("--inventory", str(self.inventory), "provision", "gpu-test", *args, env=self.env(),
                       timeout=timeout)

    def write_inventory(self, **changes: object) -> None:
        self.vars.update(changes)
        self.inventory.write_text(yaml.safe_dump(
            {"hosts": {"gpu-test": self.sshd.inventory_host(vars=self.vars)}}))


def make_host(sshd: SSHServer, shared_dir: Path, name: str, wheelhouse: Path, git_source: GitSource,
              hub: HubServer, wheel: Path) -> ProvisionHost:
    root = new_model_root(shared_dir, name)
    variables = {"model_root": str(root), **source_vars(wheelhouse, git_source, hub, wheel)}
    host = ProvisionHost(sshd, root, shared_dir / "hosts" / name / "inventory.yaml", variables)
    host.write_inventory()
    return host


def new_model_root(shared_dir: Path, name: str) -> Path:
    """`shared_dir/hosts/NAME/flashhead`, not yet created: the play's preflight creates it."""
    root = shared_dir / "hosts" / name / "flashhead"
    root.parent.mkdir(parents=True)
    root.parent.chmod(0o777)  # the login user may create model_root here (preflight does, with sudo)
    return root


def source_vars(wheelhouse: Path, git_source: GitSource, hub: HubServer, wheel: Path) -> dict:
    """The play's vars that point a test host at the local sources (wheelhouse, git daemon, hub)."""
    return {
        "python": "/usr/bin/python3", "use_uv": "never",
        "pip_find_links": str(wheelhouse), "pip_no_index": True,
        "system_packages": ["git", "procps"],  # present on the test host (.ci/run installs them)
        "disk_gib": {"venv": 0.2, "checkpoints_lite": 0.05, "wav2vec2": 0.01, "caches": 0},
        "flashhead_repo_url": git_source.url, "flashhead_commit": git_source.commits[-1],
        "hf_endpoint": hub.url, "inference_wheel": str(wheel), "verify_gpu": False,
        "verify_imports": ["flash_head.inference", "inference"],
    }


def skip_args() -> list[str]:
    return [arg for step in GPU_STEPS for arg in ("--skip", step)]


def ssh_connector(sshd: SSHServer):
    """A real SSH connection to the test host as the login user."""
    from ops.connectors.ssh import SSHConnector
    from ops.inventory import Host

    host = Host(name="gpu-test", address=sshd.address, user=sshd.user, port=sshd.port,
                identity_file=str(sshd.client_key))
    return SSHConnector(host, known_hosts=str(sshd.known_hosts), ssh_config=str(sshd.ssh_config))
