"""A no-op re-run of `flashhead provision` on a provisioned host over real SSH, side by side with an
equivalent minimal Ansible play (ansible-core) doing the same checks over the same sshd.

The host is the test host of tests/provision (a real OpenSSH sshd on loopback, the test login user,
local git daemon, loopback HF hub, wheelhouse); it is provisioned once, then both tools check it
in turns. The Ansible play checks what our checks check: paths exist (venv python, state dir),
packages present (apt, check mode), git at the pinned commit, checkpoint files present and sized.
Goal (issue 3): ≤ 3 s and ≥ 5× faster than Ansible. Needs root (it starts sshd and adds the test user).

With `--hosts N` (N > 1): N test hosts, each a sshd in its own network namespace (tests/provision/
fleet_stage.py), provisioned once as the group `gpu`; then `flashhead provision gpu --forks N` (a
no-op on every host, in parallel) against the same Ansible play with `forks=N` over the same hosts.
Goal (issue 16): ≥ 10× faster. Results in benchmarks/results/provision_noop_fleet.json.
Usage: python benchmarks/provision_noop.py [--runs N] [--hosts N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import summary, time_command, write_result  # noqa: E402

from tests.provision.hf_server import HubServer, load_repos  # noqa: E402
from tests.provision.stage import TOKEN, download_wheelhouse, make_host, new_shared_dir, serve_git, skip_args  # noqa: E402
from tests.sshd import start_sshd  # noqa: E402

GOAL_SECONDS, GOAL_RATIO = 3.0, 5.0
STANDIN_PATH = f"{Path(__file__).resolve().parent.parent / 'tests' / 'fixtures' / 'bin'}:/usr/local/sbin:" \
               "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def ansible_play(v: dict, manifest_files: dict[str, int]) -> str:
    """The same checks as our play, as an Ansible play over the group `gpu`; each host's model_root is
    its inventory variable `root` (the checkpoint paths are relative to `root/models`)."""
    stats = "\n".join(f"    - {{path: {json.dumps('models/' + path)}, size: {size}}}"
                      for path, size in manifest_files.items())
    return f"""- hosts: gpu
  gather_facts: false
  vars:
    files:
{stats}
  tasks:
    - name: venv python and state dir exist
      ansible.builtin.stat: {{path: "{{{{ item }}}}"}}
      loop: ["{{{{ root }}}}/.venv/bin/python", "{{{{ root }}}}/.flashhead"]
      register: paths
      failed_when: not paths.stat.exists
    - name: system packages present
      ansible.builtin.apt: {{name: {json.dumps(v['system_packages'])}, state: present}}
      check_mode: true
      register: apt
      failed_when: apt.changed
    - name: repo at the pinned commit
      ansible.builtin.git:
        repo: {v['flashhead_repo_url']}
        dest: "{{{{ root }}}}/SoulX-FlashHead"
        version: {v['flashhead_commit']}
        update: false
      check_mode: true
      register: repo
      failed_when: repo.changed
    - name: checkpoint files present with their sizes
      ansible.builtin.stat: {{path: "{{{{ root }}}}/{{{{ item.path }}}}", get_checksum: false}}
      loop: "{{{{ files }}}}"
      register: stats
      failed_when: not stats.stat.exists or stats.stat.size != item.size
"""


def checkpoint_files(model_root: Path) -> dict[str, int]:
    """The checkpoint files the play downloaded (from its manifests), with their sizes."""
    files = {}
    for manifest in (model_root / "models").glob("*/.flashhead-manifest.json"):
        for name, entry in json.loads(manifest.read_text())["files"].items():
            files[f"{manifest.parent.name}/{name}"] = entry["size"]
    return files


def ansible_env(work: Path, known_hosts: Path) -> dict[str, str]:
    return {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_SSH_ARGS": f"-o UserKnownHostsFile={known_hosts} -o ControlMaster=auto "
                                "-o ControlPersist=60s", "ANSIBLE_LOCAL_TEMP": str(work / "tmp")}


def inventory_line(name: str, sshd, root: Path) -> str:
    return (f"{name} ansible_host={sshd.address} ansible_port={sshd.port} ansible_user={sshd.user} "
            f"ansible_ssh_private_key_file={sshd.client_key} ansible_python_interpreter=/usr/bin/python3 "
            f"root={root}\n")


def interleaved(ours: list[str], ours_env: dict, theirs: list[str], theirs_env: dict,
                runs: int) -> tuple[list[float], list[float]]:
    """Both commands timed in turns, so drift in machine load hits both alike (after one warm-up each)."""
    subprocess.run(theirs, check=True, env=theirs_env, capture_output=True)  # warm: control sockets, caches
    time_command(ours, env=ours_env)
    ours_s, theirs_s = [], []
    for _ in range(runs):
        ours_s.append(time_command(ours, env=ours_env))
        theirs_s.append(time_command(theirs, env=theirs_env))
    return ours_s, theirs_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--hosts", type=int, default=1, help="N > 1: N hosts in parallel (forks=N in both)")
    args = parser.parse_args()
    playbook_bin = shutil.which("ansible-playbook") or str(Path(sys.executable).parent / "ansible-playbook")
    if not Path(playbook_bin).exists():
        sys.exit("ansible-playbook not found: pip install ansible-core (it is in the [dev] extra)")
    if args.hosts > 1:
        from provision_noop_fleet import run_fleet

        return run_fleet(args.hosts, args.runs, playbook_bin)
    shared = new_shared_dir()
    sshd = start_sshd(shared / "sshd", setenv={"PATH": STANDIN_PATH})
    hub = HubServer(load_repos(), require_token=TOKEN).start()
    git = serve_git(shared)
    try:
        from ops.tasks.project_wheel import build_wheel

        wheel = build_wheel(out=shared / "built")
        host = make_host(sshd, shared, "bench", download_wheelhouse(shared / "wheelhouse", wheel), git, hub, wheel)
        first = host.provision(*skip_args())
        if first.returncode != 0:
            sys.exit(f"provisioning the benchmark host failed:\n{first.stdout}\n{first.stderr}")
        files = checkpoint_files(host.model_root)
        work = shared / "ansible"
        work.mkdir()
        (work / "play.yaml").write_text(ansible_play(host.vars, files))
        (work / "inventory.ini").write_text("[gpu]\n" + inventory_line("test", sshd, host.model_root))
        ansible = [playbook_bin, "-i", str(work / "inventory.ini"), str(work / "play.yaml")]
        flashhead = [sys.executable, "-m", "ops.cli.main", "--inventory", str(host.inventory), "provision",
                     "gpu-test", *skip_args()]
        ours, theirs = interleaved(flashhead, {**os.environ, **host.env()}, ansible,
                                   ansible_env(work, sshd.known_hosts), args.runs)
        check = host.provision(*skip_args(), "--output", "json")
        report = json.loads(check.stdout)
        assert report["changed"] == [], report["changed"]
    finally:
        git.stop()
        hub.stop()
        sshd.stop()
        subprocess.run(["rm", "-rf", str(shared)], check=False)
    ours_s, theirs_s = summary(ours), summary(theirs)
    ratio = theirs_s["median"] / ours_s["median"]
    steps = [s["name"] for s in report["steps"]]
    print(f"flashhead provision (no-op, {len(steps)} steps)  median {ours_s['median']:.2f} s  "
          f"(min {ours_s['min']:.2f})")
    print(f"ansible-playbook (same checks)        median {theirs_s['median']:.2f} s  (min {theirs_s['min']:.2f})")
    print(f"ratio {ratio:.1f}× faster (goal ≥ {GOAL_RATIO:.0f}×), "
          f"no-op {ours_s['median']:.2f} s (goal ≤ {GOAL_SECONDS:.0f} s)")
    meets = ours_s["median"] <= GOAL_SECONDS and ratio >= GOAL_RATIO
    path = write_result("provision_noop", {
        "flashhead_provision_noop": ours_s, "ansible_playbook_same_checks": theirs_s, "ratio": ratio,
        "steps": steps, "checkpoint_files_checked": len(files), "goal_seconds": GOAL_SECONDS,
        "goal_ratio": GOAL_RATIO, "meets_goal": meets,
        "note": "both over real SSH to the same loopback sshd; flashhead timed as the CLI process (start-up "
                "included), ansible with ControlPersist and gather_facts off; GPU steps left out of both"})
    print(f"written to {path}")
    return 0 if meets else 1


if __name__ == "__main__":
    sys.exit(main())
