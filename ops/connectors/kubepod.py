"""The kubectl connector's pod and namespace: their manifests, and what Kubernetes says about them.

The pod is privileged and shares the node's PID namespace (`nsenter -t 1` needs both) and network
(so it starts even when the node's CNI does not); everything else is as tight as that allows: its
own namespace, no service-account token, an image pinned by digest, no toleration unless asked, a
deadline sized to the run, a read-only root filesystem. It sets no memory or CPU limit on purpose:
the host's commands (pip, a flash-attn build) run in the pod's cgroup.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ops.errors import ClusterError, UsageError

# Needs nothing but nsenter (util-linux): the host's tools do the work. Pinned by digest (12.12-slim).
DEFAULT_IMAGE = "debian:12.12-slim@sha256:d5d3f9c23164ea16f31852f95bd5959aad1c5e854332fe00f7b3a20fcc9f635c"
# The inventory vars the kubectl connector reads (name -> default).
KUBECTL_VARS: dict[str, Any] = {"kubectl_namespace": "", "kubectl_image": DEFAULT_IMAGE, "kubectl_tolerations": []}
LABELS = {"app.kubernetes.io/name": "flashhead-provision", "app.kubernetes.io/managed-by": "flashhead"}
DIGEST = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")
TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}


def check_image(image: str) -> str:
    """The pod's image must be pinned by digest: a tag can change under the same name."""
    if not DIGEST.match(image):
        raise UsageError(f"kubectl_image {image!r} is not pinned by digest",
                         "give NAME@sha256:<64 hex> (docker buildx imagetools inspect NAME:TAG shows the digest); "
                         f"the default is {DEFAULT_IMAGE}")
    return image


def check_tolerations(value: Any) -> list[dict[str, Any]]:
    """`kubectl_tolerations`: Kubernetes tolerations, for a node whose NoExecute taints would evict the pod."""
    if not isinstance(value, list) or not all(isinstance(t, dict) and t and set(t) <= TOLERATION_KEYS
                                              for t in value):
        raise UsageError(f"kubectl_tolerations {value!r} is not a list of tolerations",
                         f"each item is a mapping of {', '.join(sorted(TOLERATION_KEYS))}, e.g. "
                         "[{key: nvidia.com/gpu, operator: Exists, effect: NoExecute}]")
    return value


def namespace_manifest(name: str) -> dict[str, Any]:
    """A namespace of its own, labelled so that Pod Security admits the privileged pod in it."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {**LABELS, "pod-security.kubernetes.io/enforce": "privileged"}}}


def pod_manifest(name: str, node: str, namespace: str, image: str, deadline_s: int,
                 tolerations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The privileged pod pinned to `node` that gives us the host's namespaces."""
    spec: dict[str, Any] = {
        "nodeName": node, "hostPID": True, "hostNetwork": True, "restartPolicy": "Never",
        "automountServiceAccountToken": False, "enableServiceLinks": False,
        "activeDeadlineSeconds": deadline_s, "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "host", "image": image, "imagePullPolicy": "IfNotPresent",  # the digest pins it
                        "command": ["sleep", str(deadline_s)],
                        "securityContext": {"privileged": True, "readOnlyRootFilesystem": True},
                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
    }
    if tolerations:
        spec["tolerations"] = tolerations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": LABELS},
            "spec": spec}


def pod_state(pod: Any) -> tuple[str, str]:
    """(phase, why it is not running yet) from a V1Pod."""
    status = pod.status
    phase = str(status.phase) if status and status.phase else "Pending"
    for container in (status.container_statuses or []) if status else []:
        state = container.state
        for part in (state.waiting, state.terminated) if state else ():
            if part is not None and part.reason:
                return phase, f"{part.reason}: {part.message or ''}".rstrip(": ")
    for condition in (status.conditions or []) if status else []:
        if condition.status != "True" and (condition.reason or condition.message):
            return phase, f"{condition.reason or condition.type}: {condition.message or ''}".rstrip(": ")
    return phase, str(status.reason or status.message or "") if status else ""


def pod_events(api: Any, namespace: str, pod: str, limit: int = 8) -> list[str]:
    """The pod's last events (`reason: message`), or a note when they cannot be read."""
    try:
        listed = api.list_namespaced_event(namespace, field_selector=f"involvedObject.name={pod}")
    except Exception as exc:  # noqa: BLE001 - events only explain; their absence must not hide the error
        return [f"(events unreadable: {exc})"]
    items = [e for e in listed.items if e.involved_object is None or e.involved_object.name == pod]
    return [f"{e.type or ''} {e.reason}: {e.message}".strip() for e in items[-limit:]]


def not_running_remedy(reason: str, node: str, namespace: str, image: str) -> str:
    if "ImagePull" in reason or "ErrImage" in reason:
        return (f"node {node} cannot pull {image}: check that it reaches the registry, or copy the image to a "
                "registry it does reach and set kubectl_image to that copy (pinned by digest)")
    if "Unschedulable" in reason or "Taint" in reason or "NodeAffinity" in reason:
        return (f"the node refuses the pod ({reason}); if a NoExecute taint evicts it, allow it with "
                "--var 'kubectl_tolerations=[{key: <taint key>, operator: Exists}]'")
    return (f"check the node (kubectl describe node {node}: Ready? pressure?), the pod's events above, and that "
            f"namespace {namespace} admits privileged pods (Pod Security level privileged)")


def exec_failure(exc: Exception) -> str:
    """What the API server said when it would not open an exec session: the handshake's HTTP status
    and the message of the Status object in its body (the websocket client folds both into one text)."""
    text = str(getattr(exc, "reason", None) or exc)
    status = re.search(r"Handshake status (\d{3}[^-]*)", text)
    body = text.rsplit("-+-+-", 1)[-1].strip()
    if body[:2] in ("b'", 'b"'):
        body = body[2:-1].encode().decode("unicode_escape")
    try:
        message = str(json.loads(body).get("message") or "")
    except (ValueError, AttributeError):
        message = ""
    parts = [f"HTTP {status.group(1).strip()}" if status else "", message]
    return ": ".join(p for p in parts if p) or text[:300]


class PodNotRunning(ClusterError):
    """The provisioning pod did not reach Running (image pull, node trouble, admission)."""


class PodExecFailed(ClusterError):
    """The API server could not open an exec session in the pod (no kubelet, `unable to upgrade connection`)."""
