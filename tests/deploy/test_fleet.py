"""The fleet overlays against the API stand-in: N pods on an N-GPU host replaced one at a time, and the
autoscaled overlays (the autoscaler owns the replica count; KEDA's API may be absent)."""

from __future__ import annotations

from typing import Any

import pytest

from ops.deploy.apply import ApplyOptions, apply
from ops.deploy.cluster import Cluster
from ops.deploy.render import render
from ops.errors import ClusterError
from tests.deploy import controller as ctl
from tests.deploy.controlplane import Node
from tests.deploy.kube import Kube

NO_WAIT = ApplyOptions(wait=False, poll=0.05)
IMAGE = {"image": ctl.pinned("registry.example.com/flashhead:0.1.0")}
HOST_4 = {"node": "gpu-4", "gpus": "4"}


def pods(kube: Kube) -> list[dict[str, Any]]:
    return [p for p in kube.call(lambda: kube.server.items("Pod", ctl.NS))
            if p["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "flashhead"]


def serving(pod: dict[str, Any]) -> bool:
    """Ready and not terminating: in the Service's endpoints."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return ready and not pod["metadata"].get("deletionTimestamp")


def test_a_four_gpu_host_runs_four_pods_and_an_update_takes_one_down_at_a_time(kube: Kube,
                                                                               cluster: Cluster) -> None:
    kube.control_plane([Node("gpu-4", gpus=4)], run=False)
    apply(cluster, render("single-gpu-host", HOST_4), NO_WAIT)
    for _ in range(200):
        kube.step()
        if sum(serving(p) for p in pods(kube)) == 4:
            break
    running = pods(kube)
    assert len(running) == 4 and {p["spec"]["nodeName"] for p in running} == {"gpu-4"}
    first = {p["metadata"]["name"] for p in running}

    apply(cluster, render("single-gpu-host", {**HOST_4, "max_streams": "2"}), NO_WAIT)
    fewest = 4
    for _ in range(2000):
        kube.step()
        current = pods(kube)
        fewest = min(fewest, sum(serving(p) for p in current))
        names = {p["metadata"]["name"] for p in current}
        if not names & first and sum(serving(p) for p in current) == 4:
            break
    else:
        pytest.fail("the update did not complete")
    assert fewest == 3, "one pod at a time is replaced; the host never goes dark"


def test_a_pool_of_labelled_gpu_hosts_takes_one_pod_per_gpu_on_its_nodes_only(kube: Kube,
                                                                             cluster: Cluster) -> None:
    pool = {"flashhead.dev/pool": "lite"}
    kube.control_plane([Node("gpu-a", gpus=2, labels=pool), Node("gpu-b", gpus=2, labels=pool),
                        Node("other", gpus=4)], run=False)
    apply(cluster, render("single-gpu-host", {"pool": "lite", "gpus": "4"}), NO_WAIT)
    for _ in range(200):
        kube.step()
        if sum(serving(p) for p in pods(kube)) == 4:
            break
    placed = sorted(p["spec"]["nodeName"] for p in pods(kube))
    assert placed == ["gpu-a", "gpu-a", "gpu-b", "gpu-b"]


@pytest.mark.parametrize("overlay", ["autoscale-hpa", "autoscale-keda"])
def test_autoscaled_overlays_apply_without_owning_the_replica_count(kube: Kube, cluster: Cluster,
                                                                    overlay: str) -> None:
    result = apply(cluster, render(overlay, IMAGE), NO_WAIT)
    scaler = "HorizontalPodAutoscaler" if overlay == "autoscale-hpa" else "ScaledObject"
    assert f"{scaler}/flashhead" in {c.key for c in result.changes}
    assert kube.get(scaler, ctl.NS, "flashhead") is not None
    deployment = kube.get("Deployment", ctl.NS, "flashhead")
    assert deployment is not None and deployment["spec"]["replicas"] == 1  # the server's default
    [ours] = [m for m in deployment["metadata"]["managedFields"] if m["manager"] == "flashhead"]
    assert "f:replicas" not in ours["fieldsV1"]["f:spec"]
    # The autoscaler scales (through the scale subresource, as another manager): apply leaves that alone.
    kube.update("Deployment", ctl.NS, "flashhead", {"spec": {"replicas": 5}}, "kube-controller-manager")
    again = apply(cluster, render(overlay, IMAGE), NO_WAIT)
    assert all(c.action == "unchanged" for c in again.changes), [(c.key, c.action) for c in again.changes]
    live = kube.get("Deployment", ctl.NS, "flashhead")
    assert live is not None and live["spec"]["replicas"] == 5


def test_leaving_an_autoscaled_overlay_prunes_its_autoscaler(kube: Kube, cluster: Cluster) -> None:
    apply(cluster, render("autoscale-keda", IMAGE), NO_WAIT)
    result = apply(cluster, render("image", IMAGE), NO_WAIT)
    assert ("ScaledObject/flashhead", "prune") in {(c.key, c.action) for c in result.changes}
    left = kube.get("ScaledObject", ctl.NS, "flashhead")  # foreground deletion: gone once collected
    assert left is None or left["metadata"].get("deletionTimestamp")


def test_a_cluster_without_keda_deploys_the_other_overlays_and_refuses_the_scaled_object(
        kube: Kube, cluster: Cluster) -> None:
    kube.server.uninstalled.add("ScaledObject")
    apply(cluster, render("autoscale-hpa", IMAGE), NO_WAIT)  # prune lists ScaledObjects: none, not an error
    assert kube.get("HorizontalPodAutoscaler", ctl.NS, "flashhead") is not None
    with pytest.raises(ClusterError) as caught:
        apply(cluster, render("autoscale-keda", IMAGE), NO_WAIT)
    assert caught.value.message == ("this cluster does not serve keda.sh/v1alpha1 ScaledObject "
                                    "(its CRD is not installed)")
    assert "KEDA" in (caught.value.remedy or "")
