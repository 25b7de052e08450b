"""apply / diff / prune / history / rollback / delete / status with the real client over HTTP."""

from __future__ import annotations

import pytest

from ops.deploy import history
from ops.deploy.apply import ApplyOptions, apply
from ops.deploy.cluster import Cluster
from ops.deploy.delete import DeleteOptions, delete
from ops.deploy.diff import plan
from ops.deploy.kinds import HISTORY_NAME
from ops.deploy.render import render
from ops.deploy.rollback import rollback
from ops.deploy.status import status
from ops.errors import ClusterError, ExitCode, RolloutFailed
from tests.deploy import controller as ctl
from tests.deploy.controlplane import Node
from tests.deploy.kube import Kube

NODE = {"node": "rtx4090"}
IMAGE = {"image": ctl.pinned("registry.example.com/flashhead:0.1.0")}
NO_WAIT = ApplyOptions(wait=False)
WRITES = ("PATCH", "POST", "DELETE", "PUT")


def writes(kube: Kube, dry_runs: bool = False) -> list[tuple[str, str, str, dict[str, str]]]:
    """The write requests served (those that store something, unless `dry_runs`)."""
    return [r for r in kube.requests() if r[0] in WRITES and (dry_runs or r[3].get("dryRun") != "All")]


def live_setting(kube: Kube, key: str) -> str:
    configmap = kube.get("ConfigMap", ctl.NS, "flashhead")
    assert configmap is not None
    return str(configmap["data"][key])


def test_apply_creates_every_object_by_server_side_apply(kube: Kube, cluster: Cluster) -> None:
    result = apply(cluster, render("single-gpu-host", NODE), NO_WAIT)
    assert result.revision == 1
    assert {c.action for c in result.changes} == {"create"}
    applied = [r for r in writes(kube) if r[0] == "PATCH"]
    assert len(applied) == 5
    for _method, _path, content_type, query in applied:
        assert content_type == "application/apply-patch+yaml"
        assert query["fieldManager"] == "flashhead"
    for kind in ("ServiceAccount", "ConfigMap", "Service", "NetworkPolicy", "Deployment"):
        obj = kube.get(kind, ctl.NS, "flashhead")
        assert obj is not None and obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "flashhead"
    deployment = kube.get("Deployment", ctl.NS, "flashhead")
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "rtx4090"}
    [revision] = history.load(cluster)
    assert (revision.revision, revision.status, revision.description) == (1, "pending", "install")
    assert revision.values == {"node": "rtx4090"} and "kind: Deployment" in revision.manifest


def test_a_second_apply_is_a_no_op(kube: Kube, cluster: Cluster) -> None:
    apply(cluster, render("single-gpu-host", NODE), NO_WAIT)
    kube.clear_requests()
    versions = {kind: (kube.get(kind, ctl.NS, "flashhead") or {})["metadata"]["resourceVersion"]
                for kind in ("ServiceAccount", "ConfigMap", "Service", "NetworkPolicy", "Deployment")}
    again = apply(cluster, render("single-gpu-host", NODE), NO_WAIT)
    assert again.noop and again.revision == 1 and again.changed == []
    assert writes(kube) == []  # the plan asked the server (dry runs); nothing was stored
    assert {kind: (kube.get(kind, ctl.NS, "flashhead") or {})["metadata"]["resourceVersion"]
            for kind in versions} == versions
    assert len(history.load(cluster)) == 1


def test_a_changed_value_patches_only_what_changed(kube: Kube, cluster: Cluster) -> None:
    apply(cluster, render("single-gpu-host", NODE), NO_WAIT)
    changed = render("single-gpu-host", {**NODE, "max_streams": "2"})
    preview = {c.key: c for c in plan(cluster, changed.objects)}
    assert preview["ConfigMap/flashhead"].action == "update"
    assert "-  FLASHHEAD_MAX_STREAMS: '3'" in preview["ConfigMap/flashhead"].diff
    assert "+  FLASHHEAD_MAX_STREAMS: '2'" in preview["ConfigMap/flashhead"].diff
    assert preview["Service/flashhead"].action == "unchanged"
    kube.clear_requests()
    result = apply(cluster, changed, NO_WAIT)
    assert result.revision == 2
    patched = sorted(path.rsplit("/", 2)[-2] for method, path, ctype, _ in writes(kube)
                     if method == "PATCH" and "apply-patch" in ctype)
    assert patched == ["configmaps", "deployments"]  # the Deployment: its config hash restarts the pod
    assert live_setting(kube, "FLASHHEAD_MAX_STREAMS") == "2"


def test_prune_removes_only_objects_this_tool_created(kube: Kube, cluster: Cluster) -> None:
    apply(cluster, render("image", IMAGE), NO_WAIT)
    assert kube.get("PodDisruptionBudget", ctl.NS, "flashhead") is not None
    kube.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "users-own", "namespace": ctl.NS},
              "data": {"a": "1"}})
    kube.put({"apiVersion": "v1", "kind": "Service", "metadata": {
        "name": "another-tool", "namespace": ctl.NS, "labels": {"app.kubernetes.io/managed-by": "Helm"}},
        "spec": {"ports": [{"port": 80}]}})
    result = apply(cluster, render("single-gpu-host", NODE), NO_WAIT)
    assert [c.key for c in result.changes if c.action == "prune"] == ["PodDisruptionBudget/flashhead"]
    assert ctl.going_or_gone(kube, "PodDisruptionBudget", "flashhead")
    assert kube.get("ConfigMap", ctl.NS, "users-own") is not None
    assert kube.get("Service", ctl.NS, "another-tool") is not None
    assert kube.get("ConfigMap", ctl.NS, HISTORY_NAME) is not None
    assert not [r for r in writes(kube) if r[0] == "DELETE" and ("users-own" in r[1] or "another-tool" in r[1])]


def test_no_prune_keeps_objects_no_longer_rendered(kube: Kube, cluster: Cluster) -> None:
    apply(cluster, render("image", IMAGE), NO_WAIT)
    apply(cluster, render("single-gpu-host", NODE), ApplyOptions(wait=False, prune=False))
    assert kube.get("PodDisruptionBudget", ctl.NS, "flashhead") is not None


def test_rollback_restores_the_previous_revision(kube: Kube, cluster: Cluster) -> None:
    kube.control_plane([Node("rtx4090")])
    followed = ApplyOptions(timeout=10, poll=0.05)
    apply(cluster, render("single-gpu-host", NODE), followed)
    apply(cluster, render("single-gpu-host", {**NODE, "max_streams": "2", "image": ctl.pinned("ubuntu:24.04")}),
          followed)
    assert live_setting(kube, "FLASHHEAD_MAX_STREAMS") == "2"
    result = rollback(cluster, options=followed)
    assert result.revision == 3
    assert live_setting(kube, "FLASHHEAD_MAX_STREAMS") == "3"
    deployment = kube.get("Deployment", ctl.NS, "flashhead")
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == ctl.default_image()
    revisions = history.load(cluster)
    assert [(r.revision, r.status, r.description) for r in revisions] == [
        (1, "superseded", "install"), (2, "superseded", "upgrade"), (3, "deployed", "rollback to 1")]
    rollback(cluster, 2, NO_WAIT)
    assert live_setting(kube, "FLASHHEAD_MAX_STREAMS") == "2"
    with pytest.raises(ClusterError, match="revision 9 is not in the history"):
        rollback(cluster, 9, NO_WAIT)


def test_history_keeps_the_last_ten_revisions(kube: Kube, cluster: Cluster) -> None:
    apply(cluster, render("single-gpu-host", {**NODE, "max_streams": "1"}), NO_WAIT)
    for streams in range(2, 13):
        rendered = render("single-gpu-host", {**NODE, "max_streams": str(streams)})
        history.record(cluster, rendered.overlay, rendered.values, rendered.to_yaml(), "upgrade")
    revisions = history.load(cluster)
    assert [r.revision for r in revisions] == list(range(3, 13))
    assert {r.status for r in revisions} == {"pending"}  # applied without following the rollout
    record = kube.get("ConfigMap", ctl.NS, HISTORY_NAME)
    assert record is not None and "revision-0002" not in record["data"]


def test_client_dry_run_writes_nothing(kube: Kube, cluster: Cluster) -> None:
    result = apply(cluster, render("single-gpu-host", NODE), ApplyOptions(dry_run="client"))
    assert {c.action for c in result.changes} == {"create"} and result.revision is None
    assert writes(kube, dry_runs=True) == []


def test_server_dry_run_asks_the_server_and_stores_nothing(kube: Kube, cluster: Cluster) -> None:
    result = apply(cluster, render("single-gpu-host", NODE), ApplyOptions(dry_run="server"))
    assert result.revision is None
    sent = writes(kube, dry_runs=True)
    assert len(sent) == 5 and all(query.get("dryRun") == "All" for _m, _p, _c, query in sent)
    assert kube.get("Deployment", ctl.NS, "flashhead") is None
    assert kube.get("ConfigMap", ctl.NS, HISTORY_NAME) is None


def test_a_missing_namespace_is_named_and_can_be_created(kube: Kube) -> None:
    cluster = Cluster.connect(str(kube.kubeconfig), namespace="team-b")
    with pytest.raises(ClusterError) as caught:
        apply(cluster, render("single-gpu-host", NODE, namespace="team-b"), NO_WAIT)
    assert caught.value.message == "namespace 'team-b' does not exist"
    assert "--create-namespace" in (caught.value.remedy or "")
    result = apply(cluster, render("single-gpu-host", NODE, namespace="team-b"),
                   ApplyOptions(wait=False, create_namespace=True))
    assert result.namespace_created and kube.get("Deployment", "team-b", "flashhead") is not None


def test_rbac_denial_says_forbidden_and_how_to_check(kube: Kube, cluster: Cluster) -> None:
    kube.server.forbidden["patch", "deployments"] = (
        'deployments.apps "flashhead" is forbidden: User "dev" cannot patch resource "deployments" '
        'in API group "apps" in the namespace "flashhead"')
    with pytest.raises(ClusterError) as caught:
        apply(cluster, render("single-gpu-host", NODE), NO_WAIT)
    error = caught.value
    assert error.exit_code == ExitCode.CLUSTER
    assert error.message.startswith('forbidden: deployments.apps "flashhead" is forbidden: User "dev"')
    assert "kubectl auth can-i --list -n flashhead" in (error.remedy or "")
    assert history.load(cluster) == []


def test_a_namespaced_role_that_cannot_read_namespaces_still_deploys(kube: Kube, cluster: Cluster) -> None:
    kube.server.forbidden["get", "namespaces"] = 'namespaces "flashhead" is forbidden: User "dev" cannot get'
    assert apply(cluster, render("single-gpu-host", NODE), NO_WAIT).revision == 1
    assert apply(cluster, render("single-gpu-host", {**NODE, "max_streams": "1"}), NO_WAIT).revision == 2
    assert [r.description for r in history.load(cluster)] == ["install", "upgrade"]


def test_connection_refused_names_the_server(kube: Kube, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    config = tmp_path / "refused"
    config.write_text(kube.kubeconfig.read_text().replace(kube.url, f"http://127.0.0.1:{closed_port}"))
    cluster = Cluster.connect(str(config))
    with pytest.raises(ClusterError) as caught:
        status(cluster)
    assert caught.value.message == (f"cannot reach the Kubernetes API at http://127.0.0.1:{closed_port}: "
                                    "connection refused")
    assert "k3s" in (caught.value.remedy or "")


def test_no_kubeconfig_and_unknown_context_are_clear(tmp_path, kube: Kube, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ClusterError, match="no kubeconfig: .*missing.yaml does not exist"):
        Cluster.connect(str(tmp_path / "missing.yaml"))
    with pytest.raises(ClusterError, match="cannot use kubeconfig") as caught:
        Cluster.connect(str(kube.kubeconfig), context="prod")
    assert "get-contexts" in (caught.value.remedy or "")


def test_atomic_apply_rolls_back_a_failed_rollout(kube: Kube, cluster: Cluster) -> None:
    kube.control_plane([Node("rtx4090")], images={ctl.pinned("nope:1"): "pull"})
    apply(cluster, render("single-gpu-host", NODE), ApplyOptions(timeout=10, poll=0.05))
    with pytest.raises(RolloutFailed) as caught:
        apply(cluster, render("single-gpu-host", {**NODE, "image": ctl.pinned("nope:1")}),
              ApplyOptions(timeout=30, poll=0.05, atomic=True))
    assert "ImagePull" in caught.value.message and ctl.pinned("nope:1") in caught.value.message
    assert caught.value.details["atomic"] == "rolled back to revision 1 (as revision 3)"
    deployment = kube.get("Deployment", ctl.NS, "flashhead")
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == ctl.default_image()
    assert [(r.revision, r.status) for r in history.load(cluster)] == [
        (1, "superseded"), (2, "failed"), (3, "deployed")]


def test_delete_removes_owned_objects_and_history_only(kube: Kube, cluster: Cluster) -> None:
    apply(cluster, render("image", IMAGE), NO_WAIT)
    kube.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "users-own", "namespace": ctl.NS}})
    result = delete(cluster, DeleteOptions(poll=0.05))
    assert sorted(result["deleted"]) == sorted([
        "Deployment/flashhead", "Service/flashhead", "ConfigMap/flashhead", "ServiceAccount/flashhead",
        "PodDisruptionBudget/flashhead", "NetworkPolicy/flashhead"])
    assert result["deleted"][0] == "Deployment/flashhead"
    assert result["history_deleted"] is True
    assert kube.names("ConfigMap") == {"users-own"}


def test_status_shows_pods_endpoint_and_server_info(kube: Kube, cluster: Cluster) -> None:
    apply(cluster, render("single-gpu-host", NODE), NO_WAIT)
    ctl.replicaset(kube, "aaa111", 1)
    ctl.pod(kube, "flashhead-aaa111-x1", "aaa111", ctl.unschedulable(
        "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."))
    before = status(cluster)
    assert before["pods"][0]["reasons"] == ["Unschedulable: 0/1 nodes are available: 1 Insufficient nvidia.com/gpu."]
    assert before["info"] is None and before["readiness"] is None
    assert before["info_error"] == '503: no endpoints available for service "flashhead:http"'
    ctl.pod(kube, "flashhead-aaa111-x1", "aaa111", ctl.ready())
    ctl.rollout_done(kube)
    kube.server.proxied["flashhead:http/readyz"] = {"status": "ready", "active_streams": 0}
    kube.server.proxied["flashhead:http/v1/info"] = {"model": "SoulX-FlashHead-1.3B lite", "max_streams": 3}
    after = status(cluster)
    assert after["readiness"] == {"status": "ready", "active_streams": 0}
    assert after["deployment"]["complete"] is True
    assert after["pods"] == [{"name": "flashhead-aaa111-x1", "revision": 1, "current": True, "phase": "Running",
                              "ready": True, "restarts": 0,
                              "node": "rtx4090", "reasons": []}]
    assert after["endpoint"]["in_cluster"] == "http://flashhead.flashhead.svc:8000"
    assert after["endpoint"]["port_forward"] == "kubectl -n flashhead port-forward svc/flashhead 8000:8000"
    assert after["info"] == {"model": "SoulX-FlashHead-1.3B lite", "max_streams": 3}
    assert after["revision"]["revision"] == 1


def test_status_explains_a_token_protected_info(kube: Kube, cluster: Cluster) -> None:
    apply(cluster, render("single-gpu-host", NODE), NO_WAIT)
    kube.server.proxied["flashhead:http/readyz"] = (503, {"status": "loading"})
    kube.server.proxied["flashhead:http/v1/info"] = (401, {"code": "unauthorized", "message": "missing token"})
    shown = status(cluster)
    assert shown["readiness"] == {"status": "loading"} and shown["info"] is None
    assert "wants its API token" in shown["info_error"]
    assert "kubectl -n flashhead port-forward svc/flashhead 8000:8000" in shown["info_error"]
