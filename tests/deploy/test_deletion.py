"""Deletion takes time on a real cluster: the stand-in keeps deleted objects with a deletionTimestamp
until their finalizers clear, and deploy treats such objects as going away."""

from __future__ import annotations

import threading
import time

import pytest

from ops.deploy import history
from ops.deploy.apply import ApplyOptions, apply
from ops.deploy.cluster import Cluster
from ops.deploy.delete import DeleteOptions, delete
from ops.deploy.diff import plan
from ops.deploy.render import render
from ops.deploy.status import status
from ops.deploy.wait import wait_for_rollout
from ops.errors import ClusterError
from tests.conftest import run_cli
from tests.deploy import controller as ctl
from tests.deploy import deletion
from tests.deploy.kube import Kube

NODE = {"node": "rtx4090"}
NO_WAIT = ApplyOptions(wait=False, poll=0.05)
KINDS = ("ServiceAccount", "ConfigMap", "Service", "NetworkPolicy", "Deployment")


@pytest.fixture
def running(kube: Kube, cluster: Cluster) -> Kube:
    """Revision 1 applied; its ReplicaSet and a pod on node rtx4090, owned as the controllers own them."""
    apply(cluster, render("single-gpu-host", NODE), NO_WAIT)
    ctl.replicaset(kube, "aaa111", 1)
    ctl.pod(kube, "flashhead-aaa111-x1", "aaa111", ctl.ready(), owned=True)
    return kube


def kubelet_confirms_after(kube: Kube, pod: str, seconds: float) -> threading.Timer:
    """The node's kubelet stops the pod's containers `seconds` from now (its grace period)."""
    def confirm() -> None:
        live = kube.get("Pod", ctl.NS, pod)
        if live is not None:
            kube.call(lambda: deletion.kubelet_confirms(kube.server, live))
    timer = threading.Timer(seconds, confirm)
    timer.start()
    return timer


def test_the_stand_in_deletes_in_the_foreground_like_the_garbage_collector(running: Kube, cluster: Cluster) -> None:
    cluster.delete("Deployment", "flashhead")
    time.sleep(0.5)
    deployment = running.get("Deployment", ctl.NS, "flashhead")
    assert deployment is not None and deployment["metadata"]["deletionTimestamp"]
    assert deployment["metadata"]["finalizers"] == ["foregroundDeletion"]
    pod = running.get("Pod", ctl.NS, "flashhead-aaa111-x1")
    assert pod is not None and pod["metadata"]["deletionTimestamp"]
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 30  # the pod spec's default grace period
    assert running.get("ReplicaSet", ctl.NS, "flashhead-aaa111") is not None  # waits for its pod
    kubelet_confirms_after(running, "flashhead-aaa111-x1", 0).join()
    deadline = time.monotonic() + 5
    while running.exists("Deployment", ctl.NS, "flashhead") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running.exists("Deployment", ctl.NS, "flashhead")
    assert not running.exists("ReplicaSet", ctl.NS, "flashhead-aaa111")
    assert not running.exists("Pod", ctl.NS, "flashhead-aaa111-x1")


def test_apply_right_after_delete_waits_for_the_old_objects_to_go(running: Kube, cluster: Cluster) -> None:
    """The real failure: an apply in the deletion window wrote into the terminating Deployment, then lost it."""
    delete(cluster, DeleteOptions(wait=False))
    assert running.get("Deployment", ctl.NS, "flashhead")["metadata"]["deletionTimestamp"]  # type: ignore[index]
    timer = kubelet_confirms_after(running, "flashhead-aaa111-x1", 1.0)
    seen: list[str] = []
    result = apply(cluster, render("single-gpu-host", NODE), ApplyOptions(wait=False, poll=0.05,
                                                                         on_waiting=seen.append))
    timer.join()
    assert seen and seen[0].startswith("waiting for ")
    assert "Deployment/flashhead (being deleted since " in seen[0]
    assert any("finalizers: foregroundDeletion; pod flashhead-aaa111-x1 Terminating on node rtx4090" in line
               for line in seen)  # once the garbage collector has deleted the pod
    assert {c.action for c in result.changes} == {"create"} and result.revision == 1
    time.sleep(running.server.deletion_delay * 3)
    for kind in KINDS:
        live = running.get(kind, ctl.NS, "flashhead")
        assert live is not None and not live["metadata"].get("deletionTimestamp"), kind
    assert [(r.revision, r.description) for r in history.load(cluster)] == [(1, "install")]


def test_delete_waits_until_everything_it_deleted_is_gone(running: Kube, cluster: Cluster) -> None:
    timer = kubelet_confirms_after(running, "flashhead-aaa111-x1", 0.5)
    seen: list[str] = []
    result = delete(cluster, DeleteOptions(poll=0.05, on_waiting=seen.append))
    timer.join()
    assert result["gone"] and "Deployment/flashhead" in result["deleted"]
    assert any("Deployment/flashhead" in line for line in seen)
    for kind in KINDS:
        assert not running.exists(kind, ctl.NS, "flashhead"), kind
    assert not running.exists("ConfigMap", ctl.NS, "flashhead-history")


def test_a_pod_whose_kubelet_never_confirms_is_named_when_delete_gives_up(running: Kube, cluster: Cluster) -> None:
    with pytest.raises(ClusterError) as caught:
        delete(cluster, DeleteOptions(timeout=0.5, poll=0.05))
    assert caught.value.message.startswith("still being deleted after 0.5s: Deployment/flashhead (being deleted since")
    assert "finalizers: foregroundDeletion; pod flashhead-aaa111-x1 Terminating on node rtx4090" in caught.value.message
    assert "kubelet is not reporting" in (caught.value.remedy or "")


def test_diff_wait_and_status_say_the_deployment_is_going_away(running: Kube, cluster: Cluster) -> None:
    delete(cluster, DeleteOptions(wait=False))
    changes = {c.key: c for c in plan(cluster, render("single-gpu-host", NODE).objects)}
    assert changes["Deployment/flashhead"].action == "create"
    assert "being deleted" in changes["Deployment/flashhead"].note
    with pytest.raises(ClusterError, match="being deleted since .*there is no rollout to follow"):
        wait_for_rollout(cluster, timeout=5, poll=0.05)
    shown = status(cluster)
    assert shown["deployment"]["complete"] is False
    assert shown["deployment"]["progress"].startswith("Deployment/flashhead (being deleted since")
    assert "Deployment/flashhead (being deleted)" in shown["objects"]


def test_the_cli_delete_waits_by_default_and_says_so_when_told_not_to(running: Kube) -> None:
    config = ["--kubeconfig", str(running.kubeconfig)]
    quick = run_cli("deploy", "delete", "--no-wait", *config, env={"KUBECONFIG": ""})
    assert quick.returncode == 0, quick.stderr
    assert "not waited for" in quick.stdout
    kubelet_confirms_after(running, "flashhead-aaa111-x1", 0.5)
    waited = run_cli("deploy", "delete", *config, env={"KUBECONFIG": ""})
    assert waited.returncode == 0, waited.stderr
    assert "not waited for" not in waited.stdout
    assert not running.exists("Deployment", ctl.NS, "flashhead")
