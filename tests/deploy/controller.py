"""The tests play the controllers kmock does not run: ReplicaSets, pods, their status and Events."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from tests.deploy.kube import Kube

NS = "flashhead"
SELECTOR = {"app.kubernetes.io/name": "flashhead", "app.kubernetes.io/instance": "flashhead"}


def pinned(image: str) -> str:
    """`image` pinned by a digest (a made-up one: the stand-in pulls nothing), as deploy requires."""
    return f"{image}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def default_image(overlay: str = "single-gpu-host") -> str:
    """The server image the overlay's manifests pin."""
    from ops.deploy.params import server_container
    from ops.deploy.render import render

    return str(server_container(render(overlay, {"node": "gpu-1"}).objects)["image"])


def going_or_gone(kube: Kube, kind: str, name: str) -> bool:
    """The object is gone, or has a deletionTimestamp (a finalizer still holds it)."""
    live = kube.get(kind, NS, name)
    return live is None or bool(live["metadata"].get("deletionTimestamp"))


def rollout_done(kube: Kube, replicas: int = 1) -> None:
    """The Deployment controller's view of a finished rollout."""
    kube.patch("Deployment", NS, "flashhead", {"metadata": {"generation": 2}, "status": {
        "observedGeneration": 2, "replicas": replicas, "updatedReplicas": replicas,
        "readyReplicas": replicas, "availableReplicas": replicas,
        "conditions": [{"type": "Available", "status": "True"},
                       {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}})


def rollout_started(kube: Kube, replicas: int = 1) -> None:
    kube.patch("Deployment", NS, "flashhead", {"metadata": {"generation": 2}, "status": {
        "observedGeneration": 2, "replicas": replicas, "updatedReplicas": replicas,
        "unavailableReplicas": replicas,
        "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}]}})


def replicaset(kube: Kube, template_hash: str, revision: int) -> None:
    """The Deployment's ReplicaSet for its current pod template, owned by its uid (the garbage collector
    deletes orphans); `outdated()` makes it an old one."""
    owner = kube.get("Deployment", NS, "flashhead")
    assert owner is not None, "apply the Deployment first"
    template = copy.deepcopy(owner["spec"]["template"])
    template["metadata"].setdefault("labels", {})["pod-template-hash"] = template_hash
    kube.put({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
        "name": f"flashhead-{template_hash}", "namespace": NS,
        "labels": {**SELECTOR, "pod-template-hash": template_hash},
        "annotations": {"deployment.kubernetes.io/revision": str(revision)},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "flashhead",
                             "uid": owner["metadata"]["uid"], "controller": True}]},
        "spec": {"replicas": 1, "selector": {"matchLabels": {**SELECTOR, "pod-template-hash": template_hash}},
                 "template": template}})


def outdated(kube: Kube, template_hash: str) -> None:
    """ReplicaSet flashhead-`template_hash` now holds an older pod template than the Deployment's."""
    kube.patch("ReplicaSet", NS, f"flashhead-{template_hash}", {"spec": {"template": {"metadata": {
        "annotations": {"flashhead.dev/config-hash": "an-older-one"}}}}})


def pod(kube: Kube, name: str, template_hash: str, status: dict[str, Any], owned: bool = False) -> None:
    """A pod of ReplicaSet flashhead-`template_hash` (`owned`: with its ownerReference, as the controller sets)."""
    owners = []
    if owned:
        owner = kube.get("ReplicaSet", NS, f"flashhead-{template_hash}")
        assert owner is not None
        owners = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner["metadata"]["name"],
                   "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    kube.put({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": name, "namespace": NS, "labels": {**SELECTOR, "pod-template-hash": template_hash},
        **({"ownerReferences": owners} if owners else {})},
        "spec": {"nodeName": "rtx4090", "containers": [{"name": "server", "image": "ubuntu:22.04"}]},
        "status": status})


def event(kube: Kube, pod_name: str, reason: str, message: str, count: int = 1, seq: int = 0) -> None:
    kube.put({"apiVersion": "v1", "kind": "Event", "metadata": {"name": f"{pod_name}.{reason}.{seq}",
                                                               "namespace": NS},
              "involvedObject": {"kind": "Pod", "name": pod_name, "namespace": NS},
              "reason": reason, "message": message, "type": "Warning", "count": count,
              "lastTimestamp": f"2026-11-25T01:00:{seq:02d}Z"})


def waiting(reason: str, message: str = "", **extra: Any) -> dict[str, Any]:
    """A pod whose server container waits with `reason`."""
    return {"phase": "Pending" if reason != "CrashLoopBackOff" else "Running",
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "server", "ready": False, "image": "ubuntu:22.04",
                                   "state": {"waiting": {"reason": reason, "message": message}}, **extra}]}


def unschedulable(message: str) -> dict[str, Any]:
    return {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]}


def running_not_ready() -> dict[str, Any]:
    return {"phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True"},
                                               {"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "server", "ready": False, "restartCount": 0,
                                   "state": {"running": {"startedAt": "2026-11-25T01:00:00Z"}}}]}


def ready() -> dict[str, Any]:
    return {"phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True"},
                                               {"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "server", "ready": True, "restartCount": 0,
                                   "state": {"running": {"startedAt": "2026-11-25T01:00:00Z"}}}]}
