"""Why a rollout is not progressing, read from the Deployment, its pods and their events (pure).

Each finding is a `Reason` with the cluster's own words and a remedy. `fatal` marks states that
will not heal by waiting (a crash loop, an image that cannot be pulled, a missing Secret, an
exceeded progress deadline); the others (a pod waiting for the GPU, probes failing during model
load) are reported when the timeout comes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ops.deploy.pods import ReplicaSetPods

IMAGE_PULL = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
IMAGE_PULL_FATAL = {"ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
CONTAINER_FATAL = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError", "StartError"}
LogReader = Callable[[str, str], str]  # (pod, container) -> last lines of the previous run; ClusterError: why not
ReadinessReader = Callable[[str], "dict[str, Any] | None"]  # pod -> the server's own /readyz answer
NodeReader = Callable[[str], "dict[str, Any] | None"]  # node -> its Ready condition (None: unknown)


@dataclass
class Reason:
    """One cause, in the cluster's words, with what to do about it."""

    kind: str
    message: str
    remedy: str = ""
    pod: str | None = None
    fatal: bool = False
    log_tail: str = ""
    log_note: str = ""  # why there are no log lines: they could not be read, or there were none


@dataclass
class Progress:
    """The Deployment's counts and every reason found."""

    desired: int = 0
    updated: int = 0
    ready: int = 0
    available: int = 0
    total: int = 0
    observed: bool = True
    complete: bool = False
    old_pods: int = 0
    reasons: list[Reason] = field(default_factory=list)
    history_note: str = ""  # what the rollout's outcome did to the revision history

    def summary(self) -> str:
        text = (f"{self.updated}/{self.desired} updated, {self.ready}/{self.desired} ready, "
                f"{self.available}/{self.desired} available")
        return text + (f", {self.old_pods} old pod{'s' if self.old_pods != 1 else ''} still present"
                       if self.old_pods else "")


def assess(deployment: dict[str, Any], pods: list[dict[str, Any]], events: list[dict[str, Any]],
           logs: LogReader, readiness: ReadinessReader = lambda _pod: None, old: Sequence[ReplicaSetPods] = (),
           node_status: NodeReader = lambda _node: None) -> Progress:
    """The rollout's progress and the reasons it is stuck (if it is).

    `pods` are the newest ReplicaSet's; `old` the older ReplicaSets that still hold replicas or pods.
    """
    spec, status = deployment.get("spec", {}), deployment.get("status") or {}
    desired = int(spec.get("replicas", 1))
    generation = deployment.get("metadata", {}).get("generation")
    progress = Progress(desired=desired, updated=int(status.get("updatedReplicas") or 0),
                        ready=int(status.get("readyReplicas") or 0),
                        available=int(status.get("availableReplicas") or 0),
                        total=int(status.get("replicas") or 0),
                        observed=generation is None or int(status.get("observedGeneration") or 0) >= generation)
    progress.complete = (progress.observed and bool(status or desired == 0) and progress.updated >= desired
                         and progress.available >= desired and progress.total <= desired)
    progress.old_pods = sum(len(rs.pods) for rs in old)
    progress.reasons = deployment_reasons(deployment)
    for pod in pods:
        if not (pod.get("metadata") or {}).get("deletionTimestamp"):
            progress.reasons.extend(pod_reasons(pod, _events_for(events, "Pod", pod["metadata"]["name"]), logs,
                                                readiness, node_status))
    if old and not progress.complete:
        progress.reasons.append(old_replicasets(deployment, old, node_status))
    return progress


def old_replicasets(deployment: dict[str, Any], old: Sequence[ReplicaSetPods],
                    node_status: NodeReader = lambda _node: None) -> Reason:
    """Old ReplicaSets still holding replicas or pods: why the rollout is not done."""
    parts = []
    for rs in old:
        pods = ", ".join(describe_pod(pod, node_status) for pod in rs.pods) or "no pods yet"
        held = (f"still holds {rs.replicas} replica{'s' if rs.replicas != 1 else ''}" if rs.replicas
                else "is scaled to 0")
        parts.append(f"ReplicaSet {rs.name} (revision {rs.revision}) {held}: {pods}")
    if ((deployment.get("spec") or {}).get("strategy") or {}).get("type") == "Recreate":
        remedy = ("with strategy Recreate the new pods start only when every old pod is gone; a pod that stays "
                  "Terminating means its node's kubelet is not reporting (kubectl get node NODE: Ready should be "
                  "True; on the node: sudo systemctl status k3s)")
    else:
        remedy = ("the controller scales old ReplicaSets down only as new pods become available (maxUnavailable): "
                  "the new pods' reasons say why they are not, e.g. the GPU is still held by an old pod")
    return Reason("OldReplicaSets", "; ".join(parts), remedy)


def describe_pod(pod: dict[str, Any], node_status: NodeReader = lambda _node: None) -> str:
    """`pod X Running, ready, on node N` / `pod X Terminating since T on node N (node N is Unknown: ...)`."""
    meta, status = pod["metadata"], pod.get("status") or {}
    node = (pod.get("spec") or {}).get("nodeName")
    if meta.get("deletionTimestamp"):
        state = f"Terminating since {meta['deletionTimestamp']}"
    else:
        state = status.get("phase", "Unknown") + (", ready" if _ready(status) else ", not ready")
    text = f"pod {meta['name']} {state}" + (f" on node {node}" if node else ", not scheduled")
    return text + _node_note(node, node_status)


def _node_note(node: str | None, node_status: NodeReader) -> str:
    condition = node_status(node) if node else None
    if not condition or condition.get("status") == "True":
        return ""
    state = "NotReady" if condition.get("status") == "False" else "Unknown"
    return f" (node {node} is {state}: {condition.get('message') or condition.get('reason', '')})"


def deployment_reasons(deployment: dict[str, Any]) -> list[Reason]:
    reasons = []
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            reasons.append(Reason("ProgressDeadlineExceeded", condition.get("message", ""),
                                  "the pods below say why; kubectl describe deployment shows the same",
                                  fatal=True))
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            reasons.append(Reason("ReplicaFailure", condition.get("message", ""),
                                  "pods cannot be created: check quotas, admission policies and the "
                                  "ServiceAccount (kubectl describe replicaset)", fatal=True))
    return reasons


def pod_reasons(pod: dict[str, Any], events: list[dict[str, Any]], logs: LogReader,
                readiness: ReadinessReader = lambda _pod: None,
                node_status: NodeReader = lambda _node: None) -> list[Reason]:
    """What keeps one pod from being ready (asking the server itself when it is up but not ready)."""
    name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    reasons = _scheduling(name, status, events) or _not_started(pod, node_status)
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        reasons.extend(_container(name, container, logs))
    if not any(r.kind in ("CrashLoopBackOff", "Unschedulable", "NotStarted") for r in reasons) and not _ready(status):
        if status.get("phase") == "Running":
            reasons.extend(_server_says(name, readiness(name)))
        else:
            reasons.extend(_mounts(pod, events))
        reasons.extend(_probes(name, events))
    return reasons


def _mounts(pod: dict[str, Any], events: list[dict[str, Any]]) -> list[Reason]:
    """A volume the kubelet cannot mount: a missing Secret, a hostPath that is not there."""
    failing = [e for e in events if e.get("reason") == "FailedMount"]
    if not failing:
        return []
    last = failing[-1]
    count = sum(int(e.get("count") or 1) for e in failing)
    when = last.get("lastTimestamp") or last.get("eventTime")
    message = str(last.get("message", "")).strip() + f" ({count}x" + (f", last at {when})" if when else ")")
    node = (pod.get("spec") or {}).get("nodeName") or "the node"
    if "secret" in message and "not found" in message:
        remedy = ("create the API token Secret (docs/deploy.md: kubectl -n NAMESPACE create secret generic "
                  "flashhead-api-token --from-file=token=./token) or fix --set token_secret; the kubelet retries "
                  "the mount at least every 2 minutes, then the pod starts")
    elif "hostPath type check failed" in message:
        remedy = (f"the directory is missing on {node}: create it there, owned by the server's uid (--set "
                  "run_as_user): sudo install -d -o UID PATH (flashhead provision's compile_cache step "
                  "creates and fills the compile cache)")
    else:
        return [Reason("MountFailed", message, "kubectl describe pod shows the volume; fix what it names",
                       pod["metadata"]["name"])]
    return [Reason("MountFailed", message, remedy, pod["metadata"]["name"], fatal=True)]


def _not_started(pod: dict[str, Any], node_status: NodeReader) -> list[Reason]:
    """Bound to a node whose kubelet never reported a container: the kubelet is not working."""
    node, status = (pod.get("spec") or {}).get("nodeName"), pod.get("status") or {}
    if not node or status.get("containerStatuses") or status.get("phase", "Pending") != "Pending":
        return []
    scheduled: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"),
                                     {})
    since = f" at {scheduled['lastTransitionTime']}" if scheduled.get("lastTransitionTime") else ""
    return [Reason("NotStarted", f"scheduled to node {node}{since} and not started: the node's kubelet has not "
                                 f"reported any container of the pod{_node_note(node, node_status)}",
                   f"check the node: kubectl get node {node} (Ready should be True) and kubectl describe node "
                   f"{node}; on the node: sudo systemctl status k3s (or kubelet) and journalctl -u k3s",
                   pod["metadata"]["name"])]


def _server_says(pod: str, answer: dict[str, Any] | None) -> list[Reason]:
    """The server's /readyz body: `failed` (the model did not load) will not heal by waiting."""
    if not answer or answer.get("status") != "failed":
        return []
    message = answer.get("message") or "the model failed to load"
    return [Reason("ModelLoadFailed", f"the server says: {message}",
                   answer.get("remedy") or "see kubectl logs; fix the model files under model_root",
                   pod, fatal=True)]


def _scheduling(pod: str, status: dict[str, Any], events: list[dict[str, Any]]) -> list[Reason]:
    message = ""
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            message = condition.get("message") or condition.get("reason", "")
    if not message and status.get("phase", "Pending") == "Pending":
        failed = [e for e in events if e.get("reason") == "FailedScheduling"]
        message = failed[-1].get("message", "") if failed else ""
    if not message:
        return []
    if "nvidia.com/gpu" in message:
        remedy = ("no node has a free GPU: another pod may hold it (kubectl get pods -A -o wide), or the "
                  "NVIDIA device plugin does not advertise it (kubectl describe node | grep nvidia.com/gpu)")
    elif "node affinity" in message or "node selector" in message or "didn't match" in message:
        remedy = "no node matches the pod's node selector: check --set node=NAME against `kubectl get nodes`"
    else:
        remedy = "the scheduler's message above says which constraint no node satisfies"
    return [Reason("Unschedulable", message, remedy, pod)]


def _container(pod: str, container: dict[str, Any], logs: LogReader) -> list[Reason]:
    name = container.get("name", "")
    waiting = (container.get("state") or {}).get("waiting") or {}
    reason, message = waiting.get("reason", ""), waiting.get("message", "")
    if reason in IMAGE_PULL:
        return [Reason("ImagePull", f"{reason}: {message or container.get('image', '')}".rstrip(": "),
                       "check the image name and tag, and that the node can pull it (registry access, "
                       "imagePullSecrets; on k3s `k3s ctr images import` for a local image)", pod,
                       fatal=reason in IMAGE_PULL_FATAL)]
    if reason == "CrashLoopBackOff":
        last = (container.get("lastState") or {}).get("terminated") or {}
        detail = f"container {name} exited with code {last.get('exitCode', '?')}"
        if last.get("reason"):
            detail += f" ({last['reason']})"
        if last.get("message"):
            detail += f": {last['message'].strip()}"
        tail, note = _read_log(logs, pod, name)
        return [Reason("CrashLoopBackOff", f"{detail}; restarted {container.get('restartCount', 0)} times",
                       "the server stops at start: read the last log lines; "
                       f"kubectl logs {pod} -c {name} --previous", pod, fatal=True,
                       log_tail=tail, log_note=note)]
    if reason in CONTAINER_FATAL:
        remedy = ("a Secret or ConfigMap the pod refers to is missing: create the API token Secret "
                  "(docs/deploy.md) or fix --set token_secret" if reason == "CreateContainerConfigError"
                  else "the container cannot start: is the command present in the image/hostPath?")
        return [Reason(reason, message, remedy, pod, fatal=True)]
    return []


def _read_log(logs: LogReader, pod: str, container: str) -> tuple[str, str]:
    """(the last lines, "") or ("", why there are none)."""
    from ops.errors import ClusterError

    try:
        tail = logs(pod, container)
    except ClusterError as error:
        return "", f"the last log lines of pod {pod} could not be read: {error.message}"
    return (tail, "") if tail.strip() else ("", f"the previous run of pod {pod} wrote nothing to its log")


def _probes(pod: str, events: list[dict[str, Any]]) -> list[Reason]:
    failing = [e for e in events if e.get("reason") == "Unhealthy"]
    if not failing:
        return []
    last = failing[-1]
    count = sum(int(e.get("count") or 1) for e in failing)
    return [Reason("ProbeFailed", f"{last.get('message', '').strip()} ({count}x)",
                   "the server is not ready: model load or torch.compile may need more time "
                   "(--set startup_seconds=N) or /readyz says why; see kubectl logs", pod)]


def _ready(status: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def _events_for(events: list[dict[str, Any]], kind: str, name: str) -> list[dict[str, Any]]:
    mine = [e for e in events if (e.get("involvedObject") or {}).get("kind") == kind
            and (e.get("involvedObject") or {}).get("name") == name]
    return sorted(mine, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
