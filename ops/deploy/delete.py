"""delete: remove every object this tool created in the namespace (by label), and its history.

Deletion is in the foreground, so the Deployment stays until its pods have terminated; with
`wait` (the default, as kubectl's) delete returns only when everything it deleted is gone, so an
apply right after it cannot write into an object about to vanish.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ops.deploy import history, terminating
from ops.deploy.cluster import Cluster
from ops.deploy.diff import owned_objects
from ops.deploy.kinds import APPLY_ORDER, HISTORY_NAME, object_key


@dataclass
class DeleteOptions:
    """Keep the history or not; wait for the objects to be gone, and how long."""

    keep_history: bool = False
    wait: bool = True
    timeout: float = 300.0
    poll: float = 1.0
    on_waiting: Callable[[str], None] | None = None


def delete(cluster: Cluster, options: DeleteOptions | None = None) -> dict[str, Any]:
    """Delete owned objects, dependents first; the namespace, Secrets and volumes stay."""
    options = options or DeleteOptions()
    cluster.require_namespace()
    owned = sorted(owned_objects(cluster), key=lambda o: -APPLY_ORDER.index(o["kind"]))
    deleted = [obj for obj in owned if cluster.delete(obj["kind"], obj["metadata"]["name"])]
    record = None if options.keep_history else cluster.get("ConfigMap", HISTORY_NAME)
    history_deleted = False if options.keep_history else history.delete(cluster)
    if options.wait:
        terminating.wait_gone(cluster, deleted + ([record] if record and history_deleted else []), options.timeout,
                              options.poll, options.on_waiting)
    return {"namespace": cluster.namespace, "deleted": [object_key(obj) for obj in deleted],
            "history_deleted": history_deleted, "gone": options.wait}
