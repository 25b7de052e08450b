"""The object kinds the manifests use, with their REST paths (no discovery round-trips needed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MANAGED_BY = "app.kubernetes.io/managed-by"
TOOL = "flashhead"
HISTORY_NAME = "flashhead-history"
ROLE_LABEL = "flashhead.dev/role"


@dataclass(frozen=True)
class Kind:
    """One kind: its apiVersion, plural resource name and scope."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True
    optional: bool = False  # an API only some clusters serve (a CRD): absent means none of these objects

    def collection_path(self, namespace: str | None) -> str:
        base = f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"
        if self.namespaced:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"

    def object_path(self, namespace: str | None, name: str) -> str:
        return f"{self.collection_path(namespace)}/{name}"


KINDS: dict[str, Kind] = {k.kind: k for k in (
    Kind("v1", "Namespace", "namespaces", namespaced=False),
    Kind("v1", "Node", "nodes", namespaced=False),
    Kind("v1", "ServiceAccount", "serviceaccounts"),
    Kind("v1", "ConfigMap", "configmaps"),
    Kind("v1", "Secret", "secrets"),
    Kind("v1", "Service", "services"),
    Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    Kind("v1", "Pod", "pods"),
    Kind("v1", "Event", "events"),
    Kind("apps/v1", "Deployment", "deployments"),
    Kind("apps/v1", "ReplicaSet", "replicasets"),
    Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
    Kind("rbac.authorization.k8s.io/v1", "Role", "roles"),
    Kind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    Kind("keda.sh/v1alpha1", "ScaledObject", "scaledobjects", optional=True),
)}

# What apply may prune (never namespaces, pods, secrets or volumes: data the user owns).
PRUNABLE = ("Deployment", "Service", "ConfigMap", "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy",
            "Role", "RoleBinding", "HorizontalPodAutoscaler", "ScaledObject")

# Apply order: what others refer to comes first.
APPLY_ORDER = ("Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Secret", "PersistentVolumeClaim",
               "Service", "NetworkPolicy", "PodDisruptionBudget", "Deployment", "HorizontalPodAutoscaler",
               "ScaledObject")


def kind_of(obj: dict[str, Any]) -> Kind:
    """The Kind of a manifest object; only the kinds above are supported."""
    from ops.errors import UsageError

    kind = KINDS.get(obj.get("kind", ""))
    if kind is None or kind.api_version != obj.get("apiVersion"):
        raise UsageError(f"unsupported object {obj.get('apiVersion')}/{obj.get('kind')} in the manifests",
                         f"use one of: {', '.join(sorted(KINDS))}")
    return kind


def object_key(obj: dict[str, Any]) -> str:
    """`Kind/name`, how objects are named in diffs, plans and history."""
    return f"{obj['kind']}/{obj['metadata']['name']}"


def apply_rank(obj: dict[str, Any]) -> int:
    kind = obj.get("kind", "")
    return APPLY_ORDER.index(kind) if kind in APPLY_ORDER else len(APPLY_ORDER)
