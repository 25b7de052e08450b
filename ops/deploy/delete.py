"""delete: remove every object this tool created in the namespace (by label), and its history."""

from __future__ import annotations

from typing import Any

from ops.deploy import history
from ops.deploy.cluster import Cluster
from ops.deploy.diff import owned_objects
from ops.deploy.kinds import APPLY_ORDER, object_key


def delete(cluster: Cluster, keep_history: bool = False) -> dict[str, Any]:
    """Delete owned objects, dependents first; the namespace, Secrets and volumes stay."""
    cluster.require_namespace()
    owned = sorted(owned_objects(cluster), key=lambda o: -APPLY_ORDER.index(o["kind"]))
    deleted = [object_key(obj) for obj in owned if cluster.delete(obj["kind"], obj["metadata"]["name"])]
    history_deleted = False if keep_history else history.delete(cluster)
    return {"namespace": cluster.namespace, "deleted": deleted, "history_deleted": history_deleted}
