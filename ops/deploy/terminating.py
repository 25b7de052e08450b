"""Objects being deleted: going away, never "unchanged".

Kubernetes keeps a deleted object, with a `deletionTimestamp`, until its finalizers clear: a
Deployment deleted in the foreground stays until its pods have terminated (up to their grace
period), and a pod stays Terminating until its node's kubelet confirms. Writing into such an
object is lost when it goes, so apply waits for it first, and delete waits for what it deleted
(`--wait`, as kubectl does).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from ops.deploy.cluster import Cluster, labels_match
from ops.errors import ClusterError

Key = tuple[str, str]  # (kind, name)


def since(obj: dict[str, Any] | None) -> str | None:
    """When the object's deletion started (None: it is not being deleted)."""
    return ((obj or {}).get("metadata") or {}).get("deletionTimestamp")


def describe(cluster: Cluster, obj: dict[str, Any]) -> str:
    """`Deployment/flashhead (being deleted since T, finalizers: x; pod P Terminating on node N)`."""
    meta = obj["metadata"]
    parts = [f"being deleted since {meta['deletionTimestamp']}",
             f"finalizers: {', '.join(meta.get('finalizers') or []) or 'none'}"]
    parts.extend(f"pod {pod['metadata']['name']} Terminating on node {(pod.get('spec') or {}).get('nodeName') or '-'}"
                 for pod in _terminating_pods(cluster, obj))
    return f"{obj['kind']}/{meta['name']} ({'; '.join(parts)})"


def wait_gone(cluster: Cluster, objects: list[dict[str, Any]], timeout: float, poll: float = 1.0,
              on_waiting: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic,
              sleep: Callable[[float], None] = time.sleep) -> None:
    """Wait until each of `objects` (as read when its deletion was seen) no longer exists.

    An object of the same name with another uid is a new object: the old one is gone.
    ClusterError after `timeout` seconds, naming what is still there and what holds it.
    """
    deadline = clock() + timeout
    pending = list(objects)
    last = ""
    for attempt in itertools.count():
        still = []
        for obj in pending:
            live = cluster.get(obj["kind"], obj["metadata"]["name"])
            if live is not None and live["metadata"].get("uid") == obj["metadata"].get("uid"):
                still.append(live)
        if not still:
            return
        text = "; ".join(describe(cluster, obj) if since(obj) else f"{obj['kind']}/{obj['metadata']['name']}"
                         for obj in still)
        if clock() >= deadline:
            raise ClusterError(
                f"still being deleted after {timeout:g}s: {text}",
                "a pod that stays Terminating means its node's kubelet is not reporting (kubectl get node NODE: "
                f"Ready should be True; kubectl -n {cluster.namespace} get pods -o wide); another finalizer "
                f"belongs to a controller that must clear it (kubectl -n {cluster.namespace} get KIND NAME -o yaml). "
                "Run the command again to wait longer", details={"waiting_for": text})
        if on_waiting is not None and text != last:
            on_waiting(f"waiting for {text}")
            last = text
        pending = still
        sleep(min(poll, 0.1 * 2 ** attempt, max(deadline - clock(), 0.0)))


def _terminating_pods(cluster: Cluster, obj: dict[str, Any]) -> list[dict[str, Any]]:
    if obj.get("kind") != "Deployment":
        return []
    selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return [pod for pod in cluster.list("Pod", selector) if since(pod) and labels_match(pod, selector)]
