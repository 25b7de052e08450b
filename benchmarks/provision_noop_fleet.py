"""`provision_noop.py --hosts N`: the no-op re-run on N hosts in parallel, ours against ansible-core.

N test hosts (sshd in network namespaces on a bridge, tests/provision/fleet_stage.py) are provisioned
once as the group `gpu`; then `flashhead provision gpu --forks N` and `ansible-playbook` with
`forks=N` (the same checks as provision_noop.py's single-host play) run in turns over the same hosts.
Goal (issue 16): ≥ 10× faster. Results in benchmarks/results/provision_noop_fleet.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from common import summary, write_result
from provision_noop import ansible_env, ansible_play, checkpoint_files, interleaved, inventory_line

from tests.provision.fleet_stage import start_fleet
from tests.provision.stage import download_wheelhouse, new_shared_dir, skip_args

GOAL_RATIO = 10.0


def run_fleet(hosts: int, runs: int, playbook_bin: str) -> int:
    shared = new_shared_dir()
    from ops.tasks.project_wheel import build_wheel

    wheel = build_wheel(out=shared / "built")
    fleet = start_fleet(hosts, shared, download_wheelhouse(shared / "wheelhouse", wheel), wheel)
    try:
        first = fleet.cli("provision", "gpu", "--forks", str(hosts), *skip_args(), timeout=1800)
        if first.returncode != 0:
            sys.exit(f"provisioning the benchmark hosts failed:\n{first.stdout}\n{first.stderr}")
        files = checkpoint_files(fleet.roots[fleet.names[0]])
        work = shared / "ansible"
        work.mkdir()
        (work / "play.yaml").write_text(ansible_play(fleet.group_vars, files))
        (work / "inventory.ini").write_text("[gpu]\n" + "".join(
            inventory_line(name, server, fleet.roots[name]) for name, server in zip(fleet.names, fleet.servers,
                                                                                     strict=True)))
        ansible = [playbook_bin, "-i", str(work / "inventory.ini"), "--forks", str(hosts), str(work / "play.yaml")]
        flashhead = [sys.executable, "-m", "ops.cli.main", "--inventory", str(fleet.inventory), "provision", "gpu",
                     "--forks", str(hosts), *skip_args()]
        ours, theirs = interleaved(flashhead, {**os.environ, **fleet.env()}, ansible,
                                   ansible_env(work, fleet.known_hosts), runs)
        check = fleet.cli("provision", "gpu", "--forks", str(hosts), "--output", "json", *skip_args())
        documents = [json.loads(line) for line in check.stdout.splitlines()]
        assert check.returncode == 0 and all(d["result"]["changed"] == [] for d in documents), check.stdout
    finally:
        fleet.stop()
        subprocess.run(["rm", "-rf", str(shared)], check=False)
    ours_s, theirs_s = summary(ours), summary(theirs)
    ratio = theirs_s["median"] / ours_s["median"]
    steps = [s["name"] for s in documents[0]["result"]["steps"]]
    print(f"flashhead provision gpu --forks {hosts} (no-op, {hosts} hosts × {len(steps)} steps)  "
          f"median {ours_s['median']:.2f} s  (min {ours_s['min']:.2f})")
    print(f"ansible-playbook --forks {hosts} (same checks)  median {theirs_s['median']:.2f} s  "
          f"(min {theirs_s['min']:.2f})")
    print(f"ratio {ratio:.1f}× faster (goal ≥ {GOAL_RATIO:.0f}×)")
    path = write_result("provision_noop_fleet", {
        "hosts": hosts, "forks": hosts, "flashhead_provision_noop": ours_s, "ansible_playbook_same_checks": theirs_s,
        "ratio": ratio, "steps": steps, "checkpoint_files_checked_per_host": len(files), "goal_ratio": GOAL_RATIO,
        "meets_goal": ratio >= GOAL_RATIO,
        "note": f"{hosts} sshd hosts in network namespaces on one bridge, each with its own model_root; both tools "
                "over real SSH to the same hosts with forks = hosts; flashhead timed as the CLI process (start-up "
                "included), ansible with ControlPersist and gather_facts off; GPU steps left out of both"})
    print(f"written to {path}")
    return 0 if ratio >= GOAL_RATIO else 1
