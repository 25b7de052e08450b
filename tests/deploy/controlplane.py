"""The controllers a real cluster runs, for the API stand-in: what turns a Deployment into pods.

- Deployment controller (kube-controller-manager): one ReplicaSet per pod template, named
  `{deployment}-{pod-template-hash}` with the `deployment.kubernetes.io/revision` annotation;
  `Recreate` scales every old ReplicaSet to 0 and creates the new pods only once the old pods are
  gone (terminating ones included); `RollingUpdate` follows maxSurge/maxUnavailable, so old
  ReplicaSets keep their replicas until new pods are available. The Deployment's status counts
  the ReplicaSets' pods.
- ReplicaSet controller: creates pods from the template, deletes surplus ones gracefully.
- Scheduler: binds a pod to a node whose labels match its nodeSelector and that has a free
  `nvidia.com/gpu` (a terminating pod still holds its GPU), else `PodScheduled=False` with the
  scheduler's message and a FailedScheduling event.
- A kubelet per node: `ready` starts containers over a few steps (ContainerCreating, Running,
  Ready), once every Secret its volumes name exists (else FailedMount events), and confirms a
  deleted pod's end after its grace period (times `grace_scale`);
  `silent` never reports (bound pods stay Pending without container statuses, deleted ones stay
  Terminating, the Node's Ready condition is Unknown). An image listed in `images` as `crash`
  crash-loops; as `pull`, cannot be pulled (ErrImagePull, then ImagePullBackOff).

`step()` runs one pass of each (tests can drive it step by step); `run()` loops it.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import itertools
import json
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.deploy import deletion, registry

if TYPE_CHECKING:
    from tests.deploy.apiserver import ApiServer

REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
HASH = "pod-template-hash"
SAFE = "bcdfghjklmnpqrstvwxz2456789"
GPU = "nvidia.com/gpu"
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


@dataclass
class Node:
    """A node with `gpus` GPUs and a kubelet that is `ready` or `silent`."""

    name: str
    gpus: int = 1
    kubelet: str = "ready"
    labels: dict[str, str] = field(default_factory=dict)  # beyond kubernetes.io/hostname
    pod_ips: tuple[str, ...] = ()  # the IPs its kubelet gives running pods, in order (default 10.42.N.x)


@dataclass
class ControlPlane:
    server: ApiServer
    nodes: list[Node] = field(default_factory=lambda: [Node("rtx4090")])
    grace_scale: float = 0.005  # a pod's grace period of 45 s ends after 0.225 s
    images: dict[str, str] = field(default_factory=dict)  # image -> "crash" | "pull"
    _names: itertools.count[int] = field(default_factory=itertools.count)
    _stage: dict[str, int] = field(default_factory=dict)  # pod uid -> kubelet start stage
    _ips: dict[str, str] = field(default_factory=dict)  # pod uid -> the IP its kubelet gave it

    def silence(self, name: str) -> None:
        """The kubelet of node `name` stops reporting (call with the server's lock held)."""
        for node in self.nodes:
            if node.name == name:
                node.kubelet = "silent"
        self.register_nodes()

    def register_nodes(self) -> None:
        for node in self.nodes:
            ready = node.kubelet == "ready"
            self.server.store({"apiVersion": "v1", "kind": "Node", "metadata": {
                "name": node.name, "labels": {"kubernetes.io/hostname": node.name, **node.labels}},
                "status": {"capacity": {GPU: str(node.gpus)}, "allocatable": {GPU: str(node.gpus)},
                           "conditions": [{"type": "Ready", "status": "True" if ready else "Unknown",
                                           "reason": "KubeletReady" if ready else "NodeStatusUnknown",
                                           "message": "kubelet is posting ready status" if ready
                                           else "Kubelet stopped posting node status."}]}})

    async def run(self, period: float = 0.05) -> None:
        while True:
            async with self.server._lock:
                self.step()
            await asyncio.sleep(period)

    def step(self) -> None:
        """One pass of each controller (call with the server's lock held)."""
        for deployment in self.server.items("Deployment"):
            if not deployment["metadata"].get("deletionTimestamp"):
                self._deployment(deployment)
        for replicaset in self.server.items("ReplicaSet"):
            if not replicaset["metadata"].get("deletionTimestamp"):
                self._replicaset(replicaset)
        for pod in self.server.items("Pod"):
            if not (pod.get("spec") or {}).get("nodeName") and not pod["metadata"].get("deletionTimestamp"):
                self._schedule(pod)
        for node in self.nodes:
            if node.kubelet == "ready":
                for pod in self.server.items("Pod"):
                    if (pod.get("spec") or {}).get("nodeName") == node.name:
                        self._kubelet(pod)

    # ---- Deployment controller ----

    def _deployment(self, deployment: dict[str, Any]) -> None:
        spec, meta = deployment["spec"], deployment["metadata"]
        desired = int(spec.get("replicas", 1))
        template_hash = pod_template_hash(spec["template"])
        owned = [rs for rs in self.server.items("ReplicaSet", meta["namespace"])
                 if _owned_by(rs, deployment) and not rs["metadata"].get("deletionTimestamp")]
        new = next((rs for rs in owned if rs["metadata"]["labels"].get(HASH) == template_hash), None)
        old = [rs for rs in owned if rs is not new]
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            active = [rs for rs in old if rs["spec"].get("replicas", 0) > 0]
            for rs in active:
                self._scale(rs, 0, desired)
            old_pods = [pod for rs in old for pod in self._pods(rs)]
            if not active and not old_pods:
                if new is None:
                    new = self._create_replicaset(deployment, template_hash, old, desired)
                self._scale(new, desired, desired)
        else:
            surge, unavailable = _rolling(strategy.get("rollingUpdate") or {}, desired)
            if new is None:
                new = self._create_replicaset(deployment, template_hash, old, 0)
            total = sum(int(rs["spec"].get("replicas", 0)) for rs in [new] + old)
            current = int(new["spec"].get("replicas", 0))
            if current > desired:
                self._scale(new, desired, desired)
            elif total < desired + surge:
                self._scale(new, current + min(desired + surge - total, desired - current), desired)
            self._scale_down_old(new, old, desired, unavailable)
        self._deployment_status(deployment, new, old)

    def _scale_down_old(self, new: dict[str, Any], old: list[dict[str, Any]], desired: int, unavailable: int) -> None:
        """reconcileOldReplicaSets: unhealthy old pods first, then as far as availability allows."""
        def fresh(rs: dict[str, Any]) -> dict[str, Any]:
            return self.server.read("ReplicaSet", rs["metadata"]["namespace"], rs["metadata"]["name"]) or rs

        def available(rs: dict[str, Any]) -> int:
            return int((fresh(rs).get("status") or {}).get("availableReplicas") or 0)

        def replicas(rs: dict[str, Any]) -> int:
            return int(fresh(rs)["spec"].get("replicas", 0))

        oldest_first = sorted(old, key=lambda r: int(r["metadata"]["annotations"].get(REVISION, 0)))
        minimum = desired - unavailable
        budget = sum(replicas(rs) for rs in [new] + old) - minimum - (replicas(new) - available(new))
        for rs in oldest_first:
            cut = min(replicas(rs) - available(rs), budget)
            if cut > 0:
                self._scale(rs, replicas(rs) - cut, desired)
                budget -= cut
        budget = min(budget, sum(available(rs) for rs in [new] + old) - minimum)
        for rs in oldest_first:
            cut = min(replicas(rs), budget)
            if cut > 0:
                self._scale(rs, replicas(rs) - cut, desired)
                budget -= cut


    def _create_replicaset(self, deployment: dict[str, Any], template_hash: str, old: list[dict[str, Any]],
                           replicas: int) -> dict[str, Any]:
        meta = deployment["metadata"]
        template = copy.deepcopy(deployment["spec"]["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH] = template_hash
        selector = copy.deepcopy(deployment["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH] = template_hash
        revision = max([int(rs["metadata"]["annotations"].get(REVISION, 0)) for rs in old] + [0]) + 1
        replicaset = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
            "name": f"{meta['name']}-{template_hash}", "namespace": meta["namespace"],
            "labels": dict(template["metadata"]["labels"]),
            "annotations": {REVISION: str(revision), DESIRED: str(deployment["spec"].get("replicas", 1))},
            "ownerReferences": [_owner(deployment)]},
            "spec": {"replicas": replicas, "selector": selector, "template": template},
            "status": {"replicas": 0}}
        registry.default(replicaset)
        return self.server.store(replicaset)

    def _scale(self, replicaset: dict[str, Any], replicas: int, desired: int) -> None:
        live = self.server.read("ReplicaSet", replicaset["metadata"]["namespace"], replicaset["metadata"]["name"])
        if live is None or (live["spec"].get("replicas") == replicas
                            and live["metadata"]["annotations"].get(DESIRED) == str(desired)):
            return
        live["spec"]["replicas"] = replicas
        live["metadata"]["annotations"][DESIRED] = str(desired)
        live["metadata"]["generation"] = int(live["metadata"].get("generation") or 1) + 1
        self.server.store(live)

    def _deployment_status(self, deployment: dict[str, Any], new: dict[str, Any] | None,
                           old: list[dict[str, Any]]) -> None:
        def count(rs: dict[str, Any] | None, key: str) -> int:
            if rs is None:
                return 0
            live = self.server.read("ReplicaSet", rs["metadata"]["namespace"], rs["metadata"]["name"]) or rs
            return int((live.get("status") or {}).get(key) or 0)

        sets = ([new] if new else []) + old
        desired = int(deployment["spec"].get("replicas", 1))
        available = sum(count(rs, "availableReplicas") for rs in sets)
        updated = count(new, "replicas")
        complete = updated == desired and sum(count(rs, "replicas") for rs in sets) == desired and available == desired
        status = {"observedGeneration": deployment["metadata"].get("generation", 1),
                  "replicas": sum(count(rs, "replicas") for rs in sets), "updatedReplicas": updated,
                  "readyReplicas": sum(count(rs, "readyReplicas") for rs in sets), "availableReplicas": available,
                  "unavailableReplicas": max(desired - available, 0),
                  "conditions": [
                      {"type": "Available", "status": "True" if available >= desired else "False"},
                      {"type": "Progressing", "status": "True",
                       "reason": "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated"}]}
        live = self.server.read("Deployment", deployment["metadata"]["namespace"], deployment["metadata"]["name"])
        if live is not None and live.get("status") != status:
            live["status"] = status
            self.server.store(live)

    # ---- ReplicaSet controller ----

    def _pods(self, replicaset: dict[str, Any]) -> list[dict[str, Any]]:
        return [pod for pod in self.server.items("Pod", replicaset["metadata"]["namespace"])
                if _owned_by(pod, replicaset)]

    def _replicaset(self, replicaset: dict[str, Any]) -> None:
        pods = self._pods(replicaset)
        active = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        wanted = int(replicaset["spec"].get("replicas", 0))
        for _ in range(wanted - len(active)):
            active.append(self._create_pod(replicaset))
        for pod in sorted(active, key=_deletion_rank)[:max(len(active) - wanted, 0)]:
            deletion.delete(self.server, pod, {}, {})
            active.remove(pod)
        ready = sum(1 for p in active if _ready(p))
        status = {"replicas": len(active), "readyReplicas": ready, "availableReplicas": ready,
                  "fullyLabeledReplicas": len(active),
                  "observedGeneration": replicaset["metadata"].get("generation", 1)}
        live = self.server.read("ReplicaSet", replicaset["metadata"]["namespace"], replicaset["metadata"]["name"])
        if live is not None and live.get("status") != status:
            live["status"] = status
            self.server.store(live)

    def _create_pod(self, replicaset: dict[str, Any]) -> dict[str, Any]:
        template = copy.deepcopy(replicaset["spec"]["template"])
        suffix = "".join(SAFE[(next(self._names) * 7 + i) % len(SAFE)] for i in range(5))
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": f"{replicaset['metadata']['name']}-{suffix}", "namespace": replicaset["metadata"]["namespace"],
            "labels": template["metadata"].get("labels", {}),
            "annotations": template["metadata"].get("annotations", {}),
            "ownerReferences": [_owner(replicaset)]},
            "spec": template["spec"], "status": {"phase": "Pending"}}
        registry.default(pod)
        return self.server.store(pod)

    # ---- scheduler ----

    def _schedule(self, pod: dict[str, Any]) -> None:
        wanted = _gpus(pod)
        selector = pod["spec"].get("nodeSelector") or {}
        nodes = self.server.items("Node")
        reasons: dict[str, int] = {}
        for node in sorted(nodes, key=lambda n: n["metadata"]["name"]):
            labels = node["metadata"].get("labels") or {}
            if any(labels.get(k) != v for k, v in selector.items()):
                reasons["node(s) didn't match Pod's node affinity/selector"] = reasons.get(
                    "node(s) didn't match Pod's node affinity/selector", 0) + 1
                continue
            held = sum(_gpus(p) for p in self.server.items("Pod")
                       if p["spec"].get("nodeName") == node["metadata"]["name"])
            if wanted and held + wanted > int(node["status"]["allocatable"].get(GPU, "0")):
                reasons[f"Insufficient {GPU}"] = reasons.get(f"Insufficient {GPU}", 0) + 1
                continue
            pod["spec"]["nodeName"] = node["metadata"]["name"]
            pod["status"] = {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": registry.now()}]}
            self.server.store(pod)
            return
        listed = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
        message = (f"0/{len(nodes)} nodes are available: {listed}. preemption: 0/{len(nodes)} nodes are available: "
                   f"{len(nodes)} No preemption victims found for incoming pod.")
        condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}
        if (pod.get("status") or {}).get("conditions") != [condition]:
            pod["status"] = {"phase": "Pending", "conditions": [condition]}
            self.server.store(pod)
            self._event(pod, "FailedScheduling", message)

    def _event(self, pod: dict[str, Any], reason: str, message: str) -> None:
        name = f"{pod['metadata']['name']}.{reason}.{next(self._names)}"
        self.server.store({"apiVersion": "v1", "kind": "Event", "metadata": {
            "name": name, "namespace": pod["metadata"]["namespace"]},
            "involvedObject": {"kind": "Pod", "name": pod["metadata"]["name"],
                               "namespace": pod["metadata"]["namespace"]},
            "reason": reason, "message": message, "type": "Warning", "count": 1, "lastTimestamp": registry.now()})

    # ---- kubelet ----

    def _missing_secret(self, pod: dict[str, Any]) -> tuple[str, str] | None:
        """(volume, secret) of a secret volume whose Secret does not exist."""
        for volume in pod["spec"].get("volumes") or []:
            name = _volume_secret(volume)
            if name and self.server.read("Secret", pod["metadata"]["namespace"], name) is None:
                return volume["name"], name
        return None

    def _waiting_for_volume(self, pod: dict[str, Any], missing: tuple[str, str]) -> None:
        container = pod["spec"]["containers"][0]
        status = {"phase": "Pending", "conditions": [c for c in pod["status"].get("conditions") or []
                                                     if c["type"] == "PodScheduled"],
                  "containerStatuses": [{"name": container["name"], "image": container["image"], "ready": False,
                                         "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}
        if pod.get("status") != status:
            pod["status"] = status
            self.server.store(pod)
            self._event(pod, "FailedMount", f'MountVolume.SetUp failed for volume "{missing[0]}" : '
                                            f'secret "{missing[1]}" not found')

    def _kubelet(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            started = self.server.deleted_at.get(meta["uid"], 0.0)
            grace = float(meta.get("deletionGracePeriodSeconds") or 0)
            if time.monotonic() - started >= grace * self.grace_scale:
                deletion.kubelet_confirms(self.server, pod)
            return
        missing = self._missing_secret(pod)
        if missing:
            self._waiting_for_volume(pod, missing)
            return
        stage = self._stage.get(meta["uid"], 0) + 1
        self._stage[meta["uid"]] = stage
        container = pod["spec"]["containers"][0]
        scheduled = [c for c in pod["status"].get("conditions") or [] if c["type"] == "PodScheduled"]
        behaviour = self.images.get(container["image"], "")
        if behaviour == "pull":
            reason = "ErrImagePull" if stage == 1 else "ImagePullBackOff"
            pod["status"] = {"phase": "Pending", "conditions": scheduled, "containerStatuses": [{
                "name": container["name"], "image": container["image"], "ready": False, "restartCount": 0,
                "state": {"waiting": {"reason": reason, "message": f'Back-off pulling image "{container["image"]}"'}}}]}
        elif behaviour == "crash" and stage >= 2:
            state = {"waiting": {"reason": "CrashLoopBackOff",
                                 "message": f"back-off 10s restarting failed container={container['name']}"}}
            pod["status"] = {"phase": "Running", "podIP": self._pod_ip(pod),
                             "conditions": scheduled + [{"type": "Ready", "status": "False"}],
                             "containerStatuses": [{"name": container["name"], "image": container["image"],
                                                    "ready": False, "restartCount": stage - 1, "state": state,
                                                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}
        elif stage == 1:
            pod["status"] = {"phase": "Pending", "conditions": scheduled, "containerStatuses": [{
                "name": container["name"], "image": container["image"], "ready": False, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}}]}
        else:
            ready = stage >= 3
            pod["status"] = {"phase": "Running", "podIP": self._pod_ip(pod), "conditions": scheduled + [
                {"type": "Ready", "status": "True" if ready else "False"}], "containerStatuses": [{
                    "name": container["name"], "image": container["image"], "ready": ready, "restartCount": 0,
                    "state": {"running": {"startedAt": registry.now()}}}]}
        live = self.server.read("Pod", meta["namespace"], meta["name"])
        if live is not None and live.get("status") != pod["status"]:
            live["status"] = pod["status"]
            self.server.store(live)


    def _pod_ip(self, pod: dict[str, Any]) -> str:
        """The pod's IP, given once by its node's kubelet: the node's next unused `pod_ips`, else 10.42.N.x."""
        uid = pod["metadata"]["uid"]
        if uid not in self._ips:
            index, node = next((i, n) for i, n in enumerate(self.nodes) if n.name == pod["spec"]["nodeName"])
            taken = set(self._ips.values())
            pool = node.pod_ips or tuple(f"10.42.{index}.{n}" for n in range(2, 255))
            self._ips[uid] = next(ip for ip in pool if ip not in taken)
        return self._ips[uid]


def _volume_secret(volume: dict[str, Any]) -> str | None:
    return (volume.get("secret") or {}).get("secretName")


def pod_template_hash(template: dict[str, Any]) -> str:
    digest = int(hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest(), 16)
    return "".join(SAFE[(digest >> (5 * i)) % len(SAFE)] for i in range(10))


def _rolling(rolling: dict[str, Any], desired: int) -> tuple[int, int]:
    def resolve(value: Any, up: bool) -> int:
        if isinstance(value, str) and value.endswith("%"):
            share = desired * int(value[:-1]) / 100
            return math.ceil(share) if up else math.floor(share)
        return int(value)
    surge, unavailable = resolve(rolling.get("maxSurge", "25%"), True), resolve(rolling.get("maxUnavailable", "25%"),
                                                                               False)
    return surge, (1 if surge == 0 and unavailable == 0 else unavailable)


def _owner(obj: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def _owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    return any(ref.get("uid") == owner["metadata"]["uid"] for ref in obj["metadata"].get("ownerReferences") or [])


def _ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _gpus(pod: dict[str, Any]) -> int:
    return sum(int((c.get("resources") or {}).get("limits", {}).get(GPU, 0)) for c in pod["spec"].get("containers", []))


def _deletion_rank(pod: dict[str, Any]) -> tuple[int, int, int, int]:
    """Which pods a ReplicaSet deletes first: unscheduled, then pending, then not ready, then the lowest
    `controller.kubernetes.io/pod-deletion-cost` (controller.ActivePodsWithRanks, in that order)."""
    status = pod.get("status") or {}
    try:
        cost = int((pod["metadata"].get("annotations") or {}).get(DELETION_COST, 0))
    except ValueError:
        cost = 0  # the real controller ignores an unparsable cost
    return (1 if (pod.get("spec") or {}).get("nodeName") else 0, 1 if status.get("phase") == "Running" else 0,
            1 if _ready(pod) else 0, cost)
