"""A revision's recorded status follows what its rollout did, whichever verb saw it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from ops.deploy import history
from ops.deploy.apply import ApplyOptions, apply
from ops.deploy.cluster import Cluster
from ops.deploy.render import render
from ops.deploy.rollback import rollback
from ops.deploy.status import status
from ops.deploy.wait import wait_for_rollout
from ops.errors import ClusterError, RolloutFailed
from tests.conftest import run_cli
from tests.deploy import controller as ctl
from tests.deploy.controlplane import ControlPlane, Node
from tests.deploy.kube import Kube

NODE = {"node": "rtx4090"}
FOLLOW = ApplyOptions(timeout=10, poll=0.05)
BASE_IMAGE = ctl.default_image()


def statuses(cluster: Cluster) -> list[tuple[int, str]]:
    return [(r.revision, r.status) for r in history.load(cluster)]


def failed_install(kube: Kube, cluster: Cluster) -> ControlPlane:
    """Install; the image cannot be pulled yet, so the rollout fails and revision 1 is `failed`."""
    control = kube.control_plane([Node("rtx4090")], images={BASE_IMAGE: "pull"})
    with pytest.raises(RolloutFailed, match="ImagePull"):
        apply(cluster, render("single-gpu-host", NODE), FOLLOW)
    assert statuses(cluster) == [(1, "failed")]
    return control


def heal(kube: Kube, control: ControlPlane) -> None:
    """The registry serves the image now: the same pods start without a new apply (the kubelet's retry)."""
    kube.call(lambda: control.images.pop(BASE_IMAGE))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pods = kube.call(lambda: kube.server.items("Pod", ctl.NS))
        if pods and all("running" in c["state"] for p in pods for c in p["status"].get("containerStatuses") or [{
                "state": {}}]):
            return
        time.sleep(0.05)
    raise AssertionError("the kubelet did not start the pod")


def by_wait(kube: Kube, cluster: Cluster) -> None:
    wait_for_rollout(cluster, timeout=10, poll=0.05)


def by_status(kube: Kube, cluster: Cluster) -> None:
    for _ in range(200):
        if status(cluster)["deployment"]["complete"]:
            return
    raise AssertionError("the rollout never completed")


def by_unchanged_apply(kube: Kube, cluster: Cluster) -> None:
    assert apply(cluster, render("single-gpu-host", NODE), FOLLOW).noop


def by_cli_wait(kube: Kube, cluster: Cluster) -> None:
    result = run_cli("deploy", "wait", "--timeout", "30s", "--kubeconfig", str(kube.kubeconfig), env={"KUBECONFIG": ""})
    assert result.returncode == 0, result.stderr


VERBS: dict[str, Callable[[Kube, Cluster], None]] = {
    "wait": by_wait, "status": by_status, "apply (unchanged)": by_unchanged_apply, "cli wait": by_cli_wait}


@pytest.mark.parametrize("verb", VERBS)
def test_a_healed_rollout_is_recorded_deployed_by_whichever_verb_sees_it(kube: Kube, cluster: Cluster,
                                                                        verb: str) -> None:
    control = failed_install(kube, cluster)
    heal(kube, control)
    VERBS[verb](kube, cluster)
    assert statuses(cluster) == [(1, "deployed")]


def test_the_default_rollback_works_after_a_healed_install(kube: Kube, cluster: Cluster) -> None:
    """The real run: install failed, was fixed, wait succeeded; rollback said 'no earlier good revision'."""
    control = failed_install(kube, cluster)
    heal(kube, control)
    by_wait(kube, cluster)
    apply(cluster, render("single-gpu-host", {**NODE, "max_streams": "2"}), FOLLOW)
    assert statuses(cluster) == [(1, "superseded"), (2, "deployed")]
    result = rollback(cluster, options=FOLLOW)
    assert result.revision == 3
    assert statuses(cluster) == [(1, "superseded"), (2, "superseded"), (3, "deployed")]


def test_a_failure_seen_by_status_is_recorded_and_a_later_success_overrides_it(kube: Kube, cluster: Cluster) -> None:
    control = kube.control_plane([Node("rtx4090")], images={BASE_IMAGE: "pull"})
    apply(cluster, render("single-gpu-host", NODE), ApplyOptions(wait=False))
    assert statuses(cluster) == [(1, "pending")]
    for _ in range(200):
        shown = status(cluster)
        if shown["revision"]["status"] == "failed":
            break
    assert shown["history_note"] == "revision 1 marked failed"
    heal(kube, control)
    by_status(kube, cluster)
    assert statuses(cluster) == [(1, "deployed")]


def test_a_rollout_of_a_template_changed_by_hand_is_not_recorded_on_the_revision(kube: Kube,
                                                                                cluster: Cluster) -> None:
    kube.control_plane([Node("rtx4090")])
    apply(cluster, render("single-gpu-host", NODE), ApplyOptions(wait=False))
    kube.update("Deployment", ctl.NS, "flashhead", {"spec": {"template": {"spec": {"containers": [
        {"name": "server", "image": "ubuntu:24.04"}]}}}}, manager="kubectl-set")
    wait_for_rollout(cluster, timeout=10, poll=0.05)
    assert statuses(cluster) == [(1, "pending")]  # what completed is not what revision 1 applied


def test_rollback_without_a_seen_good_revision_says_how_to_record_one(kube: Kube, cluster: Cluster) -> None:
    apply(cluster, render("single-gpu-host", NODE), ApplyOptions(wait=False))
    apply(cluster, render("single-gpu-host", {**NODE, "max_streams": "2"}), ApplyOptions(wait=False))
    with pytest.raises(ClusterError, match="no earlier good revision") as caught:
        rollback(cluster, options=ApplyOptions(wait=False))
    assert "pending" in (caught.value.remedy or "") and "flashhead deploy wait" in (caught.value.remedy or "")


def test_the_history_lists_the_recorded_status(kube: Kube, cluster: Cluster) -> None:
    control = failed_install(kube, cluster)
    heal(kube, control)
    listed = run_cli("deploy", "history", "-o", "json", "--kubeconfig", str(kube.kubeconfig), env={"KUBECONFIG": ""})
    assert [r["status"] for r in json.loads(listed.stdout)["revisions"]] == ["failed"]
