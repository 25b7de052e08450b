"""Revision history: one ConfigMap per namespace, one key per revision, the last 10 kept.

Each revision holds the overlay, the `--set` values and the full rendered manifest, so a
rollback re-applies exactly what was applied then. Its status is what its rollout did, as last
seen by any verb: `pending` (applied, nobody has seen the rollout finish), `deployed` (seen
complete), `failed` (seen stuck or failing), `superseded` (deployed, then replaced by a later
revision). A failed revision that later heals (the missing Secret created, the GPU freed) turns
`deployed` when wait, apply --wait or status sees it complete, so it counts as good for rollback.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict, dataclass
from typing import Any

from ops.deploy.cluster import Cluster
from ops.deploy.kinds import HISTORY_NAME, MANAGED_BY, ROLE_LABEL, TOOL
from ops.errors import ClusterError

MAX_REVISIONS = 10
PREFIX = "revision-"


@dataclass
class Revision:
    """One apply or rollback as recorded."""

    revision: int
    deployed_at: str
    overlay: str
    values: dict[str, Any]
    status: str  # pending | deployed | failed | superseded
    description: str
    manifest: str

    def summary(self) -> dict[str, Any]:
        """Everything but the manifest (for tables and JSON listings)."""
        data = asdict(self)
        data.pop("manifest")
        return data


def load(cluster: Cluster) -> list[Revision]:
    """All recorded revisions, oldest first ([] when nothing was ever applied here)."""
    record = cluster.get("ConfigMap", HISTORY_NAME)
    if record is None or (record.get("metadata") or {}).get("deletionTimestamp"):
        return []  # none, or being deleted: going away
    revisions = []
    for key, text in (record.get("data") or {}).items():
        if key.startswith(PREFIX):
            try:
                revisions.append(Revision(**json.loads(text)))
            except (TypeError, ValueError):
                raise ClusterError(f"ConfigMap {HISTORY_NAME} has an unreadable entry {key}",
                                   f"delete that key: kubectl -n {cluster.namespace} edit configmap "
                                   f"{HISTORY_NAME}") from None
    return sorted(revisions, key=lambda r: r.revision)


def find(revisions: list[Revision], number: int) -> Revision:
    for revision in revisions:
        if revision.revision == number:
            return revision
    known = ", ".join(str(r.revision) for r in revisions) or "none"
    raise ClusterError(f"revision {number} is not in the history", f"recorded revisions: {known}")


GOOD = ("deployed", "superseded")


def record(cluster: Cluster, overlay: str, values: dict[str, Any], manifest: str, description: str,
           status: str = "pending") -> Revision:
    """Append a revision (its rollout not yet seen); earlier `deployed` ones become `superseded`; keep
    the last MAX_REVISIONS."""
    revisions = load(cluster)
    number = revisions[-1].revision + 1 if revisions else 1
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    new = Revision(number, now, overlay, values, status, description, manifest)
    changes: dict[str, Any] = {_key(number): _encode(new)}
    for old in revisions:
        if old.status == "deployed":
            old.status = "superseded"
            changes[_key(old.revision)] = _encode(old)
    for old in (revisions + [new])[:-MAX_REVISIONS]:
        changes[_key(old.revision)] = None
    _write(cluster, changes, exists=bool(revisions) or _record_exists(cluster))
    return new


def set_status(cluster: Cluster, revision: Revision, status: str) -> None:
    revision.status = status
    _write(cluster, {_key(revision.revision): _encode(revision)}, exists=True)


def seen(cluster: Cluster, deployment: dict[str, Any], status: str) -> Revision | None:
    """A verb saw the rollout `deployed` or `failed`: record it on the revision that rollout is.

    That is the last revision, when the live Deployment runs its pod template (someone may have
    changed it by hand since); returns the revision updated, None when there was nothing to update.
    """
    revisions = load(cluster)
    if not revisions or revisions[-1].status == status or not is_live(revisions[-1], deployment):
        return None
    set_status(cluster, revisions[-1], status)
    return revisions[-1]


def is_live(revision: Revision, deployment: dict[str, Any]) -> bool:
    """Whether the live Deployment's pod template is the one this revision applied."""
    import yaml

    rendered = next((doc for doc in yaml.safe_load_all(revision.manifest) if doc and doc.get("kind") == "Deployment"
                     and doc["metadata"]["name"] == deployment["metadata"]["name"]), None)
    if rendered is None:
        return False
    return _within(rendered["spec"]["template"], deployment["spec"].get("template"))


def _within(rendered: Any, live: Any) -> bool:
    """Every field the manifest sets has that value live (the server adds defaults; quantities may be re-spelt)."""
    if isinstance(rendered, dict):
        return isinstance(live, dict) and all(k in live and _within(v, live[k]) for k, v in rendered.items())
    if isinstance(rendered, list):
        return (isinstance(live, list) and len(rendered) == len(live)
                and all(_within(a, b) for a, b in zip(rendered, live, strict=True)))
    if isinstance(rendered, bool) or isinstance(live, bool):
        return rendered == live
    return str(rendered) == str(live)


def delete(cluster: Cluster) -> bool:
    return cluster.delete("ConfigMap", HISTORY_NAME)


def _record_exists(cluster: Cluster) -> bool:
    record = cluster.get("ConfigMap", HISTORY_NAME)
    if record is not None and (record.get("metadata") or {}).get("deletionTimestamp"):
        raise ClusterError(f"the history ConfigMap {HISTORY_NAME} is being deleted; a revision written now is lost",
                           f"wait until it is gone (kubectl -n {cluster.namespace} get configmap {HISTORY_NAME}), "
                           "then apply again")
    return record is not None


def _write(cluster: Cluster, changes: dict[str, Any], exists: bool) -> None:
    if exists:
        cluster.merge_patch("ConfigMap", HISTORY_NAME, {"data": changes})
        return
    cluster.create({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": HISTORY_NAME, "namespace": cluster.namespace,
                     "labels": {MANAGED_BY: TOOL, ROLE_LABEL: "history"}},
        "data": {key: value for key, value in changes.items() if value is not None},
    })


def _key(number: int) -> str:
    return f"{PREFIX}{number:04d}"


def _encode(revision: Revision) -> str:
    return json.dumps(asdict(revision), sort_keys=True)
