"""Server-side apply: the stand-in computes field ownership like kube-apiserver, and deploy decides
what changes from the server's answer, so a field it stops rendering is removed."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from ops.deploy.apply import ApplyOptions, apply
from ops.deploy.cluster import Cluster
from ops.deploy.diff import comparable, plan
from ops.deploy.render import render
from ops.errors import ClusterError
from tests.deploy import controller as ctl
from tests.deploy import fieldmanager
from tests.deploy.kube import Kube

NO_WAIT = ApplyOptions(wait=False)
NODE = {"node": "rtx4090"}
IMAGE = {"image": ctl.pinned("registry.example.com/flashhead:0.1.0")}
CASES: dict[str, tuple[str, dict[str, str]]] = {
    "gpu-host": ("single-gpu-host", NODE),
    "gpu-host-tuned": ("single-gpu-host", {**NODE, "runtime_class": "", "model_root": "/data/fh", "max_streams": "2",
                                           "grace_seconds": "60", "run_as_user": "1001", "compile": "false"}),
    "image": ("image", IMAGE),
    "image-scaled": ("image", {**IMAGE, "replicas": "4", "models_claim": "fh-checkpoints", "backend": "reference"}),
}
IMAGE_PATH = '.spec.template.spec.containers[name="server"].image'


def deployment(kube: Kube, namespace: str = ctl.NS) -> dict[str, Any]:
    live = kube.get("Deployment", namespace, "flashhead")
    assert live is not None
    return live


def flashhead_fields(obj: dict[str, Any]) -> set[fieldmanager.Path]:
    return fieldmanager.managers(obj).get(("flashhead", "Apply"), set())


# ---- the stand-in is as strict as the real server ----

def test_the_stand_in_records_ownership_and_writes_nothing_for_an_unchanged_apply(kube: Kube,
                                                                                  cluster: Cluster) -> None:
    objects = render("single-gpu-host", NODE).objects
    deployment_object = next(o for o in objects if o["kind"] == "Deployment")
    created = cluster.apply(deployment_object)
    [entry] = created["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["fieldsType"]) == ("flashhead", "Apply", "FieldsV1")
    assert '.' in entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"server"}']
    assert flashhead_fields(created) == fieldmanager.field_set(deployment_object)
    again = cluster.apply(deployment_object)
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert again["metadata"]["generation"] == 1


def test_the_stand_in_removes_a_field_only_its_applier_owned(kube: Kube, cluster: Cluster) -> None:
    obj = next(o for o in render("single-gpu-host", NODE).objects if o["kind"] == "Deployment")
    cluster.apply(obj)
    kube.update("Deployment", ctl.NS, "flashhead", {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-12-01T00:00:00Z"}}}}}, manager="kubectl-rollout")
    smaller = copy.deepcopy(obj)
    del smaller["spec"]["template"]["spec"]["runtimeClassName"]
    del smaller["spec"]["template"]["metadata"]["annotations"]
    after = cluster.apply(smaller)
    template = after["spec"]["template"]
    assert "runtimeClassName" not in template["spec"]
    assert template["metadata"]["annotations"] == {"kubectl.kubernetes.io/restartedAt": "2026-12-01T00:00:00Z"}
    assert after["metadata"]["generation"] == 3  # the restart and the removal each changed the spec


@pytest.mark.parametrize(("edit", "force"), [("image", False), ("image", True), ("replicas only", False)])
def test_the_stand_in_refuses_to_overwrite_another_managers_field(kube: Kube, cluster: Cluster, edit: str,
                                                                   force: bool) -> None:
    obj = next(o for o in render("single-gpu-host", NODE).objects if o["kind"] == "Deployment")
    cluster.apply(obj)
    server = obj["spec"]["template"]["spec"]["containers"][0]
    edited = "ubuntu:20.04" if edit == "image" else server["image"]
    kube.update("Deployment", ctl.NS, "flashhead", {"spec": {"replicas": 0, "template": {"spec": {"containers": [
        {**server, "image": edited}]}}}}, manager="kubectl-edit")
    if edit == "replicas only":  # the image kept its value: shared, so only replicas conflicts
        with pytest.raises(ClusterError) as caught:
            cluster.apply(obj)
        assert caught.value.message.endswith(
            'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas')
        return
    if not force:
        with pytest.raises(ClusterError) as caught:
            cluster.apply(obj)
        assert caught.value.details["status"] == 409
        assert caught.value.message.endswith(
            'Apply failed with 2 conflicts: conflicts with "kubectl-edit" using apps/v1:\n'
            f"- .spec.replicas\n- {IMAGE_PATH}")
        assert "--force-conflicts" in (caught.value.remedy or "")
        assert deployment(kube)["spec"]["replicas"] == 0
        return
    taken = cluster.apply(obj, force=True)
    assert taken["spec"]["replicas"] == 1 and taken["spec"]["template"]["spec"]["containers"][0]["image"] != edited
    assert ("kubectl-edit", "Update") not in fieldmanager.managers(taken)  # it owned nothing else


def test_the_stand_in_rejects_what_a_stale_field_would_make_invalid(kube: Kube, cluster: Cluster) -> None:
    """A naive merge would keep the image overlay's rollingUpdate under Recreate; the real server says 422."""
    image = next(o for o in render("image", IMAGE).objects if o["kind"] == "Deployment")
    cluster.apply(image)
    switched = copy.deepcopy(image)
    switched["spec"]["strategy"] = {"type": "Recreate"}
    assert cluster.apply(switched)["spec"]["strategy"] == {"type": "Recreate"}
    kube.update("Deployment", ctl.NS, "flashhead", {"spec": {"strategy": {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}}, manager="kubectl-edit")
    with pytest.raises(ClusterError, match="may not be specified when strategy `type` is 'Recreate'"):
        cluster.apply(switched, force=True)


# ---- deploy decides from the server ----

def test_a_field_deploy_stops_rendering_is_removed(kube: Kube, cluster: Cluster) -> None:
    apply(cluster, render("single-gpu-host", NODE), NO_WAIT)
    assert deployment(kube)["spec"]["template"]["spec"]["runtimeClassName"] == "nvidia"
    without = render("single-gpu-host", {**NODE, "runtime_class": ""})
    changes = {c.key: c for c in plan(cluster, without.objects)}
    assert changes["Deployment/flashhead"].action == "update"
    assert "-      runtimeClassName: nvidia" in changes["Deployment/flashhead"].diff
    result = apply(cluster, without, NO_WAIT)
    assert result.revision == 2 and result.changed == ["Deployment/flashhead"]
    assert "runtimeClassName" not in deployment(kube)["spec"]["template"]["spec"]
    assert {c.action for c in plan(cluster, without.objects)} == {"unchanged"}


@pytest.mark.parametrize(("first", "second"), list(itertools.permutations(CASES, 2)))
def test_any_apply_leaves_exactly_what_a_fresh_apply_would(kube: Kube, cluster: Cluster, first: str,
                                                          second: str) -> None:
    """Whatever was applied before, the objects end up as if `second` had been applied alone."""
    apply(cluster, render(*CASES[first]), NO_WAIT)
    result = apply(cluster, render(*CASES[second]), NO_WAIT)
    assert result.revision == 2
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fresh"}})
    fresh = Cluster.connect(str(kube.kubeconfig), namespace="fresh")
    apply(fresh, render(*CASES[second], namespace="fresh"), NO_WAIT)
    for obj in render(*CASES[second]).objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        updated, alone = kube.get(kind, ctl.NS, name), kube.get(kind, "fresh", name)
        assert updated is not None and alone is not None
        assert same_object(updated, alone), f"{kind}/{name} after {first} → {second} differs from a fresh apply"
        assert flashhead_fields(updated) == fieldmanager.field_set(obj)
    assert {c.action for c in plan(cluster, render(*CASES[second]).objects)} == {"unchanged"}


def same_object(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def strip(obj: dict[str, Any]) -> dict[str, Any]:
        obj = comparable(obj)
        obj["metadata"].pop("namespace", None)
        for key in ("clusterIP", "clusterIPs"):
            obj.get("spec", {}).pop(key, None)
        return obj
    return strip(a) == strip(b)


def test_fields_another_manager_owns_survive_and_are_not_changes(kube: Kube, cluster: Cluster) -> None:
    apply(cluster, render("single-gpu-host", NODE), NO_WAIT)
    kube.update("Deployment", ctl.NS, "flashhead", {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-12-01T00:00:00Z"}}}}}, manager="kubectl-rollout")
    again = render("single-gpu-host", {**NODE, "max_streams": "2"})
    apply(cluster, again, NO_WAIT)
    annotations = deployment(kube)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["kubectl.kubernetes.io/restartedAt"] == "2026-12-01T00:00:00Z"
    assert {c.action for c in plan(cluster, again.objects)} == {"unchanged"}


def test_a_conflict_names_the_field_and_force_takes_it_over(kube: Kube, cluster: Cluster) -> None:
    apply(cluster, render("single-gpu-host", NODE), NO_WAIT)
    kube.update("Deployment", ctl.NS, "flashhead", {"spec": {"template": {"spec": {"containers": [{
        "name": "server", "image": "ubuntu:20.04"}]}}}}, manager="kubectl-edit")
    changed = render("single-gpu-host", {**NODE, "max_streams": "2"})
    with pytest.raises(ClusterError) as caught:
        apply(cluster, changed, NO_WAIT)
    assert f'conflict with "kubectl-edit" using apps/v1: {IMAGE_PATH}' in caught.value.message
    assert "kubectl-edit" in (caught.value.remedy or "") and "--force-conflicts" in (caught.value.remedy or "")
    assert deployment(kube)["spec"]["template"]["spec"]["containers"][0]["image"] == "ubuntu:20.04"
    apply(cluster, changed, ApplyOptions(wait=False, force_conflicts=True))
    assert deployment(kube)["spec"]["template"]["spec"]["containers"][0]["image"] != "ubuntu:20.04"


def test_an_object_someone_else_created_is_adopted_field_by_field(kube: Kube, cluster: Cluster) -> None:
    """Equal values are shared, not changes; deploy still takes ownership so it can remove them later."""
    rendered = render("single-gpu-host", NODE)
    service = next(o for o in rendered.objects if o["kind"] == "Service")
    kube.call(lambda: kube.server.create("Service", ctl.NS, copy.deepcopy(service), "kubectl-create"))
    changes = {c.key: c for c in plan(cluster, rendered.objects)}
    assert changes["Service/flashhead"].action == "update" and changes["Service/flashhead"].diff == ""
    assert "ownership" in changes["Service/flashhead"].note
    apply(cluster, rendered, NO_WAIT)
    live = kube.get("Service", ctl.NS, "flashhead")
    assert live is not None and flashhead_fields(live) == fieldmanager.field_set(service)
