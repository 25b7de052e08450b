"""What kube-apiserver's registry does to an object on every write, for the API stand-in.

Server-set metadata (uid, creationTimestamp, resourceVersion, generation), the defaults a real
server adds (owned by no field manager, so a diff must not mistake them for changes), and the
validation rules that an apply which leaves stale fields behind would trip.
"""

from __future__ import annotations

import datetime
import itertools
import uuid
from typing import Any

from kmock._internal.k8s import KubernetesError

# The resources the stand-in serves: path → (kind, namespaced).
RESOURCES = {
    "v1/namespaces": ("Namespace", False),
    "v1/nodes": ("Node", False),
    "v1/configmaps": ("ConfigMap", True),
    "v1/secrets": ("Secret", True),
    "v1/services": ("Service", True),
    "v1/serviceaccounts": ("ServiceAccount", True),
    "v1/pods": ("Pod", True),
    "v1/events": ("Event", True),
    "v1/persistentvolumeclaims": ("PersistentVolumeClaim", True),
    "apps/v1/deployments": ("Deployment", True),
    "apps/v1/replicasets": ("ReplicaSet", True),
    "policy/v1/poddisruptionbudgets": ("PodDisruptionBudget", True),
    "networking.k8s.io/v1/networkpolicies": ("NetworkPolicy", True),
    "rbac.authorization.k8s.io/v1/roles": ("Role", True),
    "rbac.authorization.k8s.io/v1/rolebindings": ("RoleBinding", True),
    "autoscaling/v2/horizontalpodautoscalers": ("HorizontalPodAutoscaler", True),
    "keda.sh/v1alpha1/scaledobjects": ("ScaledObject", True),  # KEDA's CRD, installed
}
GENERATION_KINDS = {"Deployment", "ReplicaSet", "PodDisruptionBudget", "NetworkPolicy", "HorizontalPodAutoscaler",
                    "ScaledObject"}
_cluster_ips = itertools.count(10)


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp_new(obj: dict[str, Any], namespace: str | None, version: str) -> None:
    """A created object: uid, creation time, resourceVersion, generation 1."""
    meta = obj.setdefault("metadata", {})
    if namespace is not None:
        meta["namespace"] = namespace
    meta.setdefault("uid", str(uuid.uuid4()))
    meta.setdefault("creationTimestamp", now())
    meta["resourceVersion"] = version
    if obj.get("kind") in GENERATION_KINDS:
        meta["generation"] = 1


def carry_server_fields(live: dict[str, Any], new: dict[str, Any]) -> None:
    """Metadata clients cannot change, taken from the stored object; generation follows the spec."""
    for key in ("uid", "creationTimestamp", "resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                "generation", "namespace", "name"):
        if key in live.get("metadata", {}):
            new["metadata"][key] = live["metadata"][key]
        else:
            new["metadata"].pop(key, None)
    if "status" in live:
        new["status"] = live["status"]
    if new.get("kind") in GENERATION_KINDS and new.get("spec") != live.get("spec"):
        new["metadata"]["generation"] = int(live["metadata"].get("generation") or 0) + 1


def default(obj: dict[str, Any]) -> None:
    """The defaults the real server fills in (only where the field is absent)."""
    kind, spec = obj.get("kind"), obj.get("spec")
    if not isinstance(spec, dict):
        return
    if kind == "Deployment":
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxSurge", "25%")
            rolling.setdefault("maxUnavailable", "25%")
        default_pod(spec.setdefault("template", {}).setdefault("spec", {}))
    elif kind == "ReplicaSet":
        default_pod(spec.setdefault("template", {}).setdefault("spec", {}))
    elif kind == "Pod":
        default_pod(spec)
    elif kind == "Service":
        spec.setdefault("type", "ClusterIP")
        if "clusterIP" not in spec:
            spec["clusterIP"] = f"10.43.0.{next(_cluster_ips)}"
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))


def default_pod(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for container in spec.get("containers") or []:
        image = str(container.get("image", ""))
        tagged = "@" in image or ":" in image.rsplit("/", 1)[-1]
        container.setdefault("imagePullPolicy", "IfNotPresent" if tagged and not image.endswith(":latest")
                             else "Always")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")


def validate(live: dict[str, Any] | None, new: dict[str, Any]) -> None:
    """The real server's rules that a stale field (one apply forgot to remove) breaks: 422."""
    kind, name = new.get("kind"), new["metadata"]["name"]
    errors = []
    if kind == "Deployment":
        strategy = (new.get("spec") or {}).get("strategy") or {}
        if strategy.get("type") == "Recreate" and "rollingUpdate" in strategy:
            errors.append("spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is "
                          "'Recreate'")
    selector = (new.get("spec") or {}).get("selector")
    if kind in ("Deployment", "ReplicaSet") and live and (live.get("spec") or {}).get("selector") != selector:
        errors.append(f"spec.selector: Invalid value: {selector}: field is immutable")
    if errors:
        group = {"Deployment": "Deployment.apps", "ReplicaSet": "ReplicaSet.apps"}.get(str(kind), str(kind))
        listed = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        raise KubernetesError(422, "Invalid", f'{group} "{name}" is invalid: {listed}')
