"""rollback: re-apply a recorded revision's manifest as a new revision (Helm's semantics)."""

from __future__ import annotations

from ops.deploy import history
from ops.deploy.apply import ApplyOptions, ApplyResult, apply_objects
from ops.deploy.cluster import Cluster
from ops.deploy.render import from_yaml
from ops.errors import ClusterError


def rollback(cluster: Cluster, revision: int | None = None, options: ApplyOptions | None = None) -> ApplyResult:
    """Go back to `revision` (default: the one before the current) and record that as a new revision."""
    options = options or ApplyOptions()
    cluster.require_namespace()
    revisions = history.load(cluster)
    if not revisions:
        raise ClusterError(f"nothing to roll back: no revisions recorded in namespace {cluster.namespace!r}",
                           "apply first: flashhead deploy apply")
    if revision is None:
        earlier = [r for r in revisions[:-1] if r.status in history.GOOD]
        if not earlier:
            raise ClusterError("no earlier good revision to roll back to (none was seen deployed)",
                               "see `flashhead deploy history`, then pass a REVISION; a revision whose rollout "
                               "nobody followed is `pending`: `flashhead deploy wait` or `status` records it")
        target = earlier[-1]
    else:
        target = history.find(revisions, revision)
    return apply_objects(cluster, from_yaml(target.manifest), target.overlay, target.values,
                         f"rollback to {target.revision}", options)
