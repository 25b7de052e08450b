"""`flashhead deploy` as users run it: flags, JSON output, exit codes, messages (real entry point)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli
from tests.deploy import controller as ctl
from tests.deploy.controlplane import Node
from tests.deploy.kube import Kube


def deploy(kube: Kube | None, *args: str, kubeconfig: Path | None = None):  # type: ignore[no-untyped-def]
    config = kubeconfig or (kube.kubeconfig if kube else None)
    flags = ["--kubeconfig", str(config)] if config else []
    return run_cli("deploy", *args, *flags, env={"KUBECONFIG": ""})


def flat(text: str) -> str:
    """Terminal output with rich's line wrapping undone."""
    return " ".join(text.split())


def test_render_prints_yaml_and_json() -> None:
    text = run_cli("deploy", "render", "--set", "node=rtx4090", "--set", "model_type=pro")
    assert text.returncode == 0, text.stderr
    objects = [o for o in yaml.safe_load_all(text.stdout) if o]
    assert [o["kind"] for o in objects] == ["ServiceAccount", "ConfigMap", "Service", "NetworkPolicy", "Deployment"]
    as_json = run_cli("deploy", "render", "--overlay", "image", "--set", f"image={ctl.pinned('flashhead:0.1.0')}",
                      "-n", "team-a", "--output", "json")
    data = json.loads(as_json.stdout)
    assert data["namespace"] == "team-a" and data["overlay"] == "image"
    assert "PodDisruptionBudget" in [o["kind"] for o in data["objects"]]


def test_render_refuses_bad_values_with_exit_2() -> None:
    result = run_cli("deploy", "render", "--set", "replicas=3", "--output", "json")
    assert result.returncode == 2
    assert "at most one pod per GPU, and the host has 1" in json.loads(result.stdout)["message"]


@pytest.mark.parametrize(("knobs", "code"), [({"FAKE_GPU_COUNT": "4"}, 0), ({"FAKE_GPU_FAIL": "1"}, 2)])
def test_gpus_from_facts_runs_one_pod_per_gpu_the_host_lists(tmp_path: Path, knobs: dict[str, str],
                                                             code: int) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("hosts:\n  gpu-4: {connector: local, node: gpu-4-node}\n")
    fake_bin = Path(__file__).resolve().parents[1] / "fixtures" / "bin"
    result = run_cli("-i", str(inventory), "deploy", "render", "--host", "gpu-4", "--gpus-from-facts", "-o", "json",
                     env={**knobs, "PATH": f"{fake_bin}:{os.environ['PATH']}"})
    assert result.returncode == code, result.stderr
    data = json.loads(result.stdout)
    if code == 0:
        assert data["values"]["gpus"] == 4 and data["values"]["node"] == "gpu-4-node"
        [deployment] = [o for o in data["objects"] if o["kind"] == "Deployment"]
        assert deployment["spec"]["replicas"] == 4
    else:
        assert data["message"].startswith("--gpus-from-facts: host gpu-4 shows no GPU: nvidia-smi failed")
        assert "--set gpus=N" in data["remedy"]


def test_gpus_from_facts_needs_a_host() -> None:
    result = run_cli("deploy", "render", "--gpus-from-facts", "-o", "json")
    assert result.returncode == 2 and "needs --host" in json.loads(result.stdout)["message"]


def test_apply_diff_history_status_rollback_delete(kube: Kube) -> None:
    kube.control_plane([Node("rtx4090")])
    applied = deploy(kube, "apply", "--set", "node=rtx4090", "--timeout", "30s", "-o", "json")
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["revision"] == 1
    assert deploy(kube, "diff", "--set", "node=rtx4090").returncode == 0
    pending = deploy(kube, "diff", "--set", "node=rtx4090", "--set", "max_streams=1", "-o", "json")
    assert pending.returncode == 4
    actions = {c["key"]: c["action"] for c in json.loads(pending.stdout)["changes"]}
    assert actions["ConfigMap/flashhead"] == "update" and actions["Service/flashhead"] == "unchanged"
    assert deploy(kube, "apply", "--set", "node=rtx4090", "--set", "max_streams=1", "--no-wait").returncode == 0
    listed = json.loads(deploy(kube, "history", "-o", "json").stdout)["revisions"]
    assert [(r["revision"], r["status"]) for r in listed] == [(1, "superseded"), (2, "pending")]
    rolled = deploy(kube, "rollback", "--no-wait", "-o", "json")
    assert rolled.returncode == 0 and json.loads(rolled.stdout)["revision"] == 3
    shown = deploy(kube, "status")
    assert shown.returncode == 0 and "endpoint: http://flashhead.flashhead.svc:8000" in shown.stdout
    deleted = json.loads(deploy(kube, "delete", "-o", "json").stdout)
    assert "Deployment/flashhead" in deleted["deleted"]


def test_wait_failure_exits_7_with_the_reason(kube: Kube) -> None:
    assert deploy(kube, "apply", "--set", "node=rtx4090", "--no-wait").returncode == 0
    ctl.replicaset(kube, "aaa111", 1)
    ctl.rollout_started(kube)
    ctl.pod(kube, "flashhead-aaa111-x1", "aaa111", ctl.waiting("CrashLoopBackOff", restartCount=4,
                                                               lastState={"terminated": {"exitCode": 1}}))
    kube.server.logs["flashhead-aaa111-x1"] = "RuntimeError: CUDA error: no kernel image is available\n"
    human = deploy(kube, "wait", "--timeout", "2m")
    assert human.returncode == 7
    assert "CrashLoopBackOff" in human.stderr and "no kernel image is available" in flat(human.stderr)
    machine = json.loads(deploy(kube, "wait", "--timeout", "2m", "-o", "json").stdout)
    assert machine["error"] == "RolloutFailed" and machine["exit_code"] == 7
    assert "no kernel image" in machine["details"]["output_tail"]


def test_cluster_errors_exit_6_with_a_remedy(kube: Kube, tmp_path: Path) -> None:
    missing = deploy(None, "status", "-o", "json", kubeconfig=tmp_path / "none.yaml")
    assert missing.returncode == 6 and "no kubeconfig" in json.loads(missing.stdout)["message"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    refused = tmp_path / "refused.yaml"
    refused.write_text(kube.kubeconfig.read_text().replace(kube.url, f"http://127.0.0.1:{port}"))
    unreachable = deploy(None, "history", kubeconfig=refused)
    assert unreachable.returncode == 6
    assert f"cannot reach the Kubernetes API at http://127.0.0.1:{port}: connection refused" in flat(
        unreachable.stderr)
    kube.server.forbidden["get", "configmaps"] = 'configmaps is forbidden: User "dev" cannot get resource'
    denied = json.loads(deploy(kube, "history", "-o", "json").stdout)
    assert denied["exit_code"] == 6 and denied["message"].startswith("forbidden: configmaps is forbidden")
    gone = deploy(kube, "status", "-n", "nowhere")
    assert gone.returncode == 6 and "namespace 'nowhere' does not exist" in flat(gone.stderr)


def test_no_secret_reaches_argv_or_manifests(kube: Kube) -> None:
    text = run_cli("deploy", "render", "--overlay", "image", "--set", f"image={ctl.pinned('flashhead:0.1.0')}").stdout
    assert "secretName: flashhead-api-token" in text and "FLASHHEAD_API_TOKEN_FILE" in text
    assert "valueFrom" not in text
    assert "--token" not in run_cli("deploy", "apply", "--help").stdout


def test_host_flag_takes_node_and_model_root_from_the_inventory(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("hosts:\n  gpu-1:\n    address: gpu-1.internal\n    node: rtx4090\n"
                         "    vars: {model_type: pro}\nvars:\n  model_root: /data/flashhead\n")
    result = run_cli("--inventory", str(inventory), "deploy", "render", "--host", "gpu-1",
                     "--set", "model_type=lite", "-o", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["values"] == {"node": "rtx4090", "model_root": "/data/flashhead", "model_type": "lite"}
    unknown = run_cli("--inventory", str(inventory), "deploy", "render", "--host", "gpu-9")
    assert unknown.returncode == 2 and "inventory hosts: gpu-1" in flat(unknown.stderr)


def test_a_failed_apply_still_prints_the_plan_and_the_revision(kube: Kube) -> None:
    kube.control_plane([Node("rtx4090")], images={ctl.default_image(): "pull"})
    human = deploy(kube, "apply", "--set", "node=rtx4090", "--timeout", "30s")
    assert human.returncode == 7
    out = flat(human.stdout)
    assert "create ServiceAccount/flashhead" in out and "create Deployment/flashhead" in out
    assert "applied revision 1 to namespace flashhead; it did not roll out (below)" in out
    assert "ImagePull" in flat(human.stderr) and "changes:" not in human.stderr
    machine = json.loads(deploy(kube, "apply", "--set", "node=rtx4090", "--timeout", "30s", "-o", "json").stdout)
    assert machine["exit_code"] == 7 and machine["details"]["revision"] == 1
    assert {c["action"] for c in machine["details"]["changes"]} == {"unchanged"}
    assert machine["details"]["sent"] == []
