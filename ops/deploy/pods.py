"""Every pod a Deployment's selector owns, grouped by ReplicaSet: the rollout's and the old ones.

The rollout's ReplicaSet is the one whose pod template is the Deployment's (ignoring the
pod-template-hash label), as kubectl decides it, not the one with the highest revision: with
`Recreate` it does not exist until every old pod is gone.

A rollout is not done while old ReplicaSets still hold replicas or pods (RollingUpdate keeps them
until new pods are available; Recreate waits until the old pods are gone), so wait and status
look at all of them, not only at the newest ReplicaSet's pods.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ops.deploy.cluster import Cluster, labels_match

RS_REVISION = "deployment.kubernetes.io/revision"
HASH = "pod-template-hash"


@dataclass
class ReplicaSetPods:
    """One ReplicaSet of the Deployment: its revision, desired replicas and pods."""

    name: str
    revision: int
    replicas: int
    pods: list[dict[str, Any]] = field(default_factory=list)

    @property
    def holding(self) -> bool:
        """Still scaled up, or still with pods (terminating ones hold their GPU too)."""
        return self.replicas > 0 or bool(self.pods)


@dataclass
class Owned:
    """The Deployment's pods: the rollout's ReplicaSet's, the older ones', and any without one."""

    new: ReplicaSetPods | None  # None until the controller has created it
    old: list[ReplicaSetPods]  # newest first
    unowned: list[dict[str, Any]]  # pods the selector matches with no ReplicaSet of this Deployment

    @property
    def current(self) -> list[dict[str, Any]]:
        """The rollout's pods (with no ReplicaSet at all: every matching pod)."""
        if self.new is not None:
            return self.new.pods
        return [] if self.old else self.unowned

    @property
    def every_pod(self) -> list[dict[str, Any]]:
        return [pod for rs in ([self.new] if self.new else []) + self.old for pod in rs.pods] + self.unowned

    @property
    def holding(self) -> list[ReplicaSetPods]:
        return [rs for rs in self.old if rs.holding]

    def revision_of(self, pod: dict[str, Any]) -> int | None:
        for rs in ([self.new] if self.new else []) + self.old:
            if any(p is pod for p in rs.pods):
                return rs.revision
        return None


def owned_pods(cluster: Cluster, deployment: dict[str, Any]) -> Owned:
    """Read the Deployment's ReplicaSets and every pod its selector matches."""
    selector = deployment["spec"]["selector"].get("matchLabels", {})
    sets = [rs for rs in cluster.list("ReplicaSet", selector) if _owned(rs, deployment)]
    pods = [pod for pod in cluster.list("Pod", selector) if labels_match(pod, selector)]
    new, old = None, []
    for rs in sorted(sets, key=lambda r: -int((r["metadata"].get("annotations") or {}).get(RS_REVISION, 0))):
        template_hash = (rs["metadata"].get("labels") or {}).get(HASH)
        revision = int((rs["metadata"].get("annotations") or {}).get(RS_REVISION, 0))
        group = ReplicaSetPods(rs["metadata"]["name"], revision, int((rs.get("spec") or {}).get("replicas") or 0),
                               [p for p in pods if template_hash and labels_match(p, {HASH: template_hash})])
        if new is None and _same_template(rs, deployment):
            new = group
        else:
            old.append(group)
    grouped = {id(p) for rs in ([new] if new else []) + old for p in rs.pods}
    return Owned(new, old, [p for p in pods if id(p) not in grouped])


def _same_template(replicaset: dict[str, Any], deployment: dict[str, Any]) -> bool:
    """The ReplicaSet's pod template is the Deployment's, but for the pod-template-hash label."""
    template = copy.deepcopy((replicaset.get("spec") or {}).get("template") or {})
    labels = (template.get("metadata") or {}).get("labels") or {}
    labels.pop(HASH, None)
    return bool(template) and template == deployment["spec"].get("template")


def _owned(replicaset: dict[str, Any], deployment: dict[str, Any]) -> bool:
    uid = deployment["metadata"].get("uid")
    return any(ref.get("kind") == "Deployment" and (ref.get("uid") == uid if uid else
                                                    ref.get("name") == deployment["metadata"]["name"])
               for ref in replicaset["metadata"].get("ownerReferences") or [])
