"""Rollouts driven by the stand-in's controllers (Deployment, ReplicaSet, scheduler, kubelets): wait and
status see every pod the Deployment owns, name old ReplicaSets that hold a rollout back, and a pod
whose node's kubelet never reports."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from ops.deploy.apply import ApplyOptions, apply
from ops.deploy.cluster import Cluster
from ops.deploy.render import render
from ops.deploy.status import status
from ops.deploy.wait import wait_for_rollout
from ops.errors import RolloutFailed
from tests.conftest import run_cli
from tests.deploy import controller as ctl
from tests.deploy.controlplane import Node, pod_template_hash
from tests.deploy.kube import Kube

NO_WAIT = ApplyOptions(wait=False, poll=0.05)
IMAGE = ctl.pinned("registry.example.com/flashhead:0.1.0")
SETTINGS: dict[str, tuple[str, dict[str, str]]] = {
    "gpu-host": ("single-gpu-host", {"node": "gpu-1"}),  # 1 replica pinned to gpu-1, maxSurge 0
    "gpu-host-2-streams": ("single-gpu-host", {"node": "gpu-1", "max_streams": "2"}),  # a new pod template
    "image": ("image", {"image": IMAGE}),  # RollingUpdate, 2 replicas, maxSurge 0
    "image-3": ("image", {"image": ctl.pinned("registry.example.com/flashhead:0.2.0"), "replicas": "3"}),  # cannot fit
}


def selector_pods(kube: Kube) -> set[str]:
    return {p["metadata"]["name"] for p in kube.call(lambda: kube.server.items("Pod", ctl.NS))
            if p["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "flashhead"}


def holding(kube: Kube) -> dict[str, int]:
    """Old ReplicaSets (not the current template's) that still hold replicas or pods: name -> replicas."""
    deployment = kube.get("Deployment", ctl.NS, "flashhead")
    assert deployment is not None
    current = pod_template_hash(deployment["spec"]["template"])
    sets = kube.call(lambda: kube.server.items("ReplicaSet", ctl.NS))
    pods = kube.call(lambda: kube.server.items("Pod", ctl.NS))
    result = {}
    for rs in sets:
        if rs["metadata"]["labels"]["pod-template-hash"] == current:
            continue
        mine = [p for p in pods if p["metadata"]["labels"].get("pod-template-hash")
                == rs["metadata"]["labels"]["pod-template-hash"]]
        if rs["spec"]["replicas"] or mine:
            result[rs["metadata"]["name"]] = rs["spec"]["replicas"]
    return result


def check(kube: Kube, cluster: Cluster) -> dict[str, Any]:
    """The invariants, at whatever state the controllers reached."""
    shown = status(cluster)
    old = holding(kube)
    assert {p["name"] for p in shown["pods"]} == selector_pods(kube), "status must list every pod"
    assert {rs["name"] for rs in shown["old_replicasets"]} == set(old)
    if not shown["deployment"]["complete"] and old:
        [reason] = [r for r in shown["deployment"]["reasons"] if r["kind"] == "OldReplicaSets"]
        for name in old:
            assert f"ReplicaSet {name} (revision " in reason["message"]
    return shown


@pytest.mark.parametrize(("first", "second", "steps"), [
    (a, b, k) for (a, b), k in itertools.product(itertools.permutations(SETTINGS, 2), (0, 3))])
def test_every_state_of_a_rollout_shows_every_pod_and_what_holds_it(kube: Kube, cluster: Cluster, first: str,
                                                                    second: str, steps: int) -> None:
    """Switch settings or overlays in the middle of the first rollout (after `steps` controller passes),
    then step to the end, checking every state on the way."""
    kube.control_plane([Node("gpu-1"), Node("gpu-2")], run=False)
    apply(cluster, render(*SETTINGS[first]), NO_WAIT)
    for _ in range(steps):
        kube.step()
        shown = check(kube, cluster)
    apply(cluster, render(*SETTINGS[second]), NO_WAIT)
    settled, changed = False, time.monotonic()
    while not settled and time.monotonic() - changed < 1.0:  # done, or stuck: nothing changed for a second
        before = kube.server.revision
        kube.step()
        if kube.server.revision == before:
            time.sleep(0.05)  # waiting on time: a pod's grace period
            continue
        changed = time.monotonic()
        shown = check(kube, cluster)
        settled = shown["deployment"]["complete"] and not holding(kube)
    fits = int(SETTINGS[second][1].get("replicas", 1)) <= 2
    assert settled == fits, f"{first} → {second}: settled {settled} on two GPU nodes"


def test_old_replicaset_holding_a_rolling_update_is_named_not_no_problem(kube: Kube, cluster: Cluster) -> None:
    """One GPU: the image overlay's new pod waits for the GPU the old pod holds; the old ReplicaSet is named."""
    kube.control_plane([Node("gpu-1")])
    apply(cluster, render("single-gpu-host", {"node": "gpu-1"}), ApplyOptions(timeout=10, poll=0.05))
    old_pod = next(iter(selector_pods(kube)))
    apply(cluster, render("image", {"image": IMAGE}), NO_WAIT)  # 2 replicas, maxUnavailable 1
    with pytest.raises(RolloutFailed) as caught:
        wait_for_rollout(cluster, timeout=1.0, poll=0.05)
    error = caught.value
    assert "no pod reports a problem" not in error.message
    reasons = [error.message] + error.details.get("other_reasons", [])
    assert any("Insufficient nvidia.com/gpu" in r for r in reasons)
    assert any(r.startswith("OldReplicaSets: ReplicaSet flashhead-") and f"pod {old_pod} Running, ready on node gpu-1"
               in r for r in reasons)
    shown = status(cluster)
    assert len(shown["pods"]) == 2 and old_pod in {p["name"] for p in shown["pods"]}
    assert [p["current"] for p in shown["pods"] if p["name"] == old_pod] == [False]
    [old] = shown["old_replicasets"]
    assert old["replicas"] == 1 and old["pods"] == [old_pod]


def test_an_update_on_one_gpu_waits_for_an_old_pod_stuck_terminating_on_a_silent_node(kube: Kube,
                                                                                     cluster: Cluster) -> None:
    """One GPU, maxSurge 0: the new pod waits for the GPU that the terminating old pod still holds."""
    control = kube.control_plane([Node("gpu-1")])
    apply(cluster, render("single-gpu-host", {"node": "gpu-1"}), ApplyOptions(timeout=10, poll=0.05))
    [old_pod] = selector_pods(kube)
    kube.call(lambda: control.silence("gpu-1"))
    apply(cluster, render("single-gpu-host", {"node": "gpu-1", "max_streams": "2"}), NO_WAIT)
    with pytest.raises(RolloutFailed) as caught:
        wait_for_rollout(cluster, timeout=1.0, poll=0.05)
    reasons = [caught.value.message, *caught.value.details.get("other_reasons", [])]
    assert any("Insufficient nvidia.com/gpu" in reason for reason in reasons)
    [old] = [reason for reason in reasons if "OldReplicaSets" in reason]
    assert "is scaled to 0" in old and f"pod {old_pod} Terminating since " in old
    assert "on node gpu-1 (node gpu-1 is Unknown: Kubelet stopped posting node status.)" in old
    assert caught.value.details["progress"] == "1/1 updated, 0/1 ready, 0/1 available, 1 old pod still present"


@pytest.mark.parametrize("nodes_readable", [True, False])
def test_a_pod_on_a_node_whose_kubelet_never_reports_is_named(kube: Kube, cluster: Cluster,
                                                              nodes_readable: bool) -> None:
    kube.control_plane([Node("gpu-1", kubelet="silent")])
    if not nodes_readable:
        kube.server.forbidden["get", "nodes"] = 'nodes "gpu-1" is forbidden: User "dev" cannot get resource "nodes"'
    apply(cluster, render("single-gpu-host", {"node": "gpu-1"}), NO_WAIT)
    with pytest.raises(RolloutFailed) as caught:
        wait_for_rollout(cluster, timeout=1.0, poll=0.05)
    error = caught.value
    assert "no pod reports a problem" not in error.message
    assert "NotStarted (pod flashhead-" in error.message
    assert "scheduled to node gpu-1 at " in error.message
    assert "and not started: the node's kubelet has not reported any container of the pod" in error.message
    assert ("(node gpu-1 is Unknown: Kubelet stopped posting node status.)" in error.message) == nodes_readable
    assert "kubectl get node gpu-1" in (error.remedy or "")


def test_a_full_rollout_through_the_controllers_completes(kube: Kube, cluster: Cluster) -> None:
    kube.control_plane([Node("gpu-1"), Node("gpu-2")])
    result = apply(cluster, render("image", {"image": IMAGE}), ApplyOptions(timeout=10, poll=0.05))
    assert result.rollout is not None and result.rollout["progress"] == "2/2 updated, 2/2 ready, 2/2 available"
    shown = status(cluster)
    assert {p["node"] for p in shown["pods"]} == {"gpu-1", "gpu-2"} and shown["old_replicasets"] == []


def test_the_cli_status_lists_old_pods_and_their_replicaset(kube: Kube, cluster: Cluster) -> None:
    kube.control_plane([Node("gpu-1")])
    apply(cluster, render("single-gpu-host", {"node": "gpu-1"}), ApplyOptions(timeout=10, poll=0.05))
    [old_pod] = selector_pods(kube)
    apply(cluster, render("image", {"image": IMAGE}), NO_WAIT)  # 2 replicas, maxUnavailable 1
    shown = run_cli("deploy", "status", "--kubeconfig", str(kube.kubeconfig), env={"KUBECONFIG": "",
                                                                                   "COLUMNS": "250"})
    assert shown.returncode == 0, shown.stderr
    assert old_pod in shown.stdout and "(old)" in shown.stdout
    assert "OldReplicaSets" in shown.stdout
    assert "old ReplicaSet flashhead-" in shown.stdout and f"pods: {old_pod}" in shown.stdout


def test_a_missing_token_secret_fails_at_once_and_heals_once_created(kube: Kube, cluster: Cluster) -> None:
    """The token is a mounted Secret file: without the Secret the kubelet cannot mount it (FailedMount)."""
    kube.control_plane([Node("gpu-1")])
    kube.call(lambda: kube.server.remove("Secret", ctl.NS, "flashhead-api-token"))
    with pytest.raises(RolloutFailed) as caught:
        apply(cluster, render("single-gpu-host", {"node": "gpu-1"}), ApplyOptions(timeout=10, poll=0.05))
    assert "MountFailed" in caught.value.message
    assert 'MountVolume.SetUp failed for volume "api-token" : secret "flashhead-api-token" not found' in (
        caught.value.message)
    assert "create secret generic flashhead-api-token" in (caught.value.remedy or "")
    kube.put({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "flashhead-api-token", "namespace": ctl.NS},
              "data": {"token": "dGVzdC10b2tlbi10ZXN0LXRva2Vu"}})
    deadline = time.monotonic() + 10  # the kubelet's next mount attempt starts the pod
    while not any(p["status"].get("phase") == "Running" for p in kube.call(lambda: kube.server.items("Pod", ctl.NS))):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert wait_for_rollout(cluster, timeout=10, poll=0.05).complete
