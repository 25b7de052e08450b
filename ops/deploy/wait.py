"""wait: follow a rollout until it is complete, and say why when it is not — never a bare timeout."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ops.deploy import terminating
from ops.deploy.cluster import Cluster
from ops.deploy.diagnose import Progress, Reason, assess
from ops.deploy.pods import Owned, owned_pods
from ops.errors import ClusterError, RolloutFailed

DEPLOYMENT = "flashhead"


@dataclass
class Look:
    """One look at a rollout: the Deployment, its pods by ReplicaSet, their events, the assessment."""

    deployment: dict[str, Any]
    owned: Owned
    events: list[dict[str, Any]]
    progress: Progress
    nodes: dict[str, Any]  # node -> its Ready condition (None: unknown), as read during the look


def observe(cluster: Cluster, name: str = DEPLOYMENT) -> Progress:
    """One look at the Deployment, every pod its selector owns (by ReplicaSet) and their events."""
    return look(cluster, name).progress


def look(cluster: Cluster, name: str = DEPLOYMENT) -> Look:
    """`observe`, keeping what was read on the way (status shows it)."""
    deployment = cluster.get("Deployment", name)
    if deployment is None:
        raise ClusterError(f"Deployment {name!r} does not exist in namespace {cluster.namespace!r}",
                           "apply it first: flashhead deploy apply")
    if terminating.since(deployment):
        raise ClusterError(f"{terminating.describe(cluster, deployment)}: it is going away, there is no rollout "
                           "to follow", "apply again once it is gone (apply waits for that itself)")
    owned = owned_pods(cluster, deployment)
    events = cluster.list("Event") if owned.every_pod or deployment.get("status") else []
    port = server_port(deployment)
    nodes: dict[str, Any] = {}

    def ready_condition(node: str) -> Any:
        if node not in nodes:
            nodes[node] = node_status(cluster, node)
        return nodes[node]

    progress = assess(deployment, owned.current, events,
                      lambda pod, container: cluster.pod_log(pod, container, previous=True),
                      lambda pod: cluster.proxy_get("Pod", f"{pod}:{port}", "/readyz")[1],
                      old=owned.holding, node_status=ready_condition)
    return Look(deployment, owned, events, progress, nodes)


def node_status(cluster: Cluster, node: str) -> dict[str, Any] | None:
    """The node's Ready condition, or None when it cannot be read (a namespaced Role cannot read nodes)."""
    from ops.deploy.cluster import ApiError

    try:
        found = cluster.get("Node", node)
    except ApiError as error:
        if error.status == 403:
            return None
        raise
    conditions = ((found or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), None)


def server_port(deployment: dict[str, Any]) -> int:
    """The server container's `http` port (8000 unless the manifests say otherwise)."""
    for container in deployment["spec"]["template"]["spec"].get("containers", []):
        for port in container.get("ports", []):
            if port.get("name") == "http":
                return int(port["containerPort"])
    return 8000


def wait_for_rollout(cluster: Cluster, timeout: float, poll: float = 2.0, name: str = DEPLOYMENT,
                     on_progress: Callable[[Progress], None] | None = None,
                     clock: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], None] = time.sleep) -> Progress:
    """Poll until the rollout completes; raise RolloutFailed with the reasons otherwise.

    A fatal reason (crash loop, image pull, missing Secret, progress deadline) fails at once;
    the others are reported when `timeout` seconds have passed. Either way the revision the
    rollout belongs to records what it did (history.seen).
    """
    deadline = clock() + timeout
    for attempt in itertools.count():
        seen = look(cluster, name)
        progress = seen.progress
        if on_progress is not None:
            on_progress(progress)
        if progress.complete:
            progress.history_note = record_outcome(cluster, seen.deployment, "deployed")
            return progress
        fatal = [r for r in progress.reasons if r.fatal]
        if fatal or clock() >= deadline:
            headline = (f"rollout of Deployment/{name} failed" if fatal
                        else f"rollout of Deployment/{name} did not finish in {timeout:g}s")
            failure = rollout_failed(progress, headline, fatal or progress.reasons)
            note = record_outcome(cluster, seen.deployment, "failed")
            if note:
                failure.details["history"] = note
            raise failure
        sleep(min(backoff(attempt, poll), max(deadline - clock(), 0.0)))
    raise AssertionError("unreachable")


def backoff(attempt: int, poll: float) -> float:
    """Seconds before the next look: quick at first (a no-op rollout is done at once), then every `poll`."""
    return min(poll, 0.1 * 2 ** attempt)


def record_outcome(cluster: Cluster, deployment: dict[str, Any], status: str) -> str:
    """Mark the rollout's revision `status`; what became of that, or why it could not be recorded."""
    from ops.deploy import history

    try:
        revision = history.seen(cluster, deployment, status)
    except ClusterError as error:
        return f"revision status not recorded: {error.message}"
    return f"revision {revision.revision} marked {status}" if revision else ""


def rollout_failed(progress: Progress, headline: str, reasons: list[Reason]) -> RolloutFailed:
    """The error for a stuck rollout: the first reason in the headline, all of them in details."""
    if reasons:
        first = reasons[0]
        where = f" (pod {first.pod})" if first.pod else ""
        message = f"{headline}: {first.kind}{where}: {first.message}"
        remedy = first.remedy
    else:
        message = (f"{headline}: {progress.summary()}; no pod reports a problem "
                   "(the pods may still be starting or the Deployment controller has not acted yet)")
        remedy = "wait longer (--timeout) or look at `flashhead deploy status` and kubectl get events"
    details: dict[str, Any] = {"progress": progress.summary()}
    if len(reasons) > 1:
        details["other_reasons"] = [_line(r) for r in reasons[1:]]
    tails = [r.log_tail for r in reasons if r.log_tail]
    if tails:
        details["output_tail"] = tails[0]
    notes = [r.log_note for r in reasons if r.log_note]
    if notes and not tails:
        details["logs"] = notes[0]
    return RolloutFailed(message, remedy, details=details)


def _line(reason: Reason) -> str:
    where = f" (pod {reason.pod})" if reason.pod else ""
    return f"{reason.kind}{where}: {reason.message}"
