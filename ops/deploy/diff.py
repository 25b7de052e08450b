"""diff: what apply would change, object by object, as the API server itself answers it.

For an object that exists, the plan sends the apply as a server-side dry run (`dryRun=All`,
nothing stored) and compares the server's answer with the live object, as `kubectl diff` does.
The server computes the result: its defaults, and the removal of a field this tool applied
before and no longer renders (a local comparison of the rendered fields cannot see that). An
object that differs only in which fields the `flashhead` manager owns is an update too (an
object someone else created is adopted, so a later apply can remove what it stops rendering).
An object being deleted (it has a `deletionTimestamp`) is going away, not unchanged.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from typing import Any

import yaml

from ops.deploy.cluster import FIELD_MANAGER, Cluster
from ops.deploy.kinds import HISTORY_NAME, MANAGED_BY, PRUNABLE, TOOL, object_key

SERVER_METADATA = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink")


@dataclass
class Change:
    """One object's fate: create, update (with a unified diff), unchanged, or prune."""

    key: str
    action: str
    diff: str = ""
    note: str = ""


def plan(cluster: Cluster, objects: list[dict[str, Any]], prune: bool = True, force: bool = False,
         validate_creates: bool = False) -> list[Change]:
    """Compare rendered `objects` with the cluster (by server-side dry runs); include what prune removes.

    `validate_creates` also dry-runs the objects that do not exist yet (`--dry-run=server`).
    """
    changes = []
    for obj in objects:
        live = cluster.get(obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))
        if live is None or terminating(live):
            if validate_creates and live is None:
                cluster.apply(obj, dry_run=True, force=force)
            changes.append(Change(object_key(obj), "create", _unified(None, obj, object_key(obj)),
                                  _going_away(live) if live else ""))
            continue
        changes.append(compare(live, cluster.apply(obj, dry_run=True, force=force)))
    if prune:
        wanted = {object_key(obj) for obj in objects}
        changes.extend(Change(object_key(obj), "prune", _unified(comparable(obj), None, object_key(obj)))
                       for obj in owned_objects(cluster) if object_key(obj) not in wanted and not terminating(obj))
    return changes


def compare(live: dict[str, Any], applied: dict[str, Any]) -> Change:
    """The change from `live` to `applied` (the server's answer to a dry-run apply)."""
    key = object_key(live)
    before, after = comparable(live), comparable(applied)
    if before != after:
        return Change(key, "update", _unified(before, after, key))
    if applied_fields(live) != applied_fields(applied):
        return Change(key, "update", note=f"no value changes; field manager {FIELD_MANAGER!r} takes over the "
                                          "ownership of the fields it renders (so it can remove them later)")
    return Change(key, "unchanged")


def comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without status and the metadata the server keeps for itself."""
    result = {k: copy.deepcopy(v) for k, v in obj.items() if k != "status"}
    result["metadata"] = {k: v for k, v in result.get("metadata", {}).items() if k not in SERVER_METADATA}
    return result


def applied_fields(obj: dict[str, Any]) -> Any:
    """The fields (FieldsV1) the `flashhead` manager owns by apply."""
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") == FIELD_MANAGER and entry.get("operation") == "Apply":
            return entry.get("fieldsV1")
    return None


def terminating(obj: dict[str, Any] | None) -> bool:
    """True for an object being deleted (it lingers until its finalizers clear)."""
    return bool(obj and (obj.get("metadata") or {}).get("deletionTimestamp"))


def owned_objects(cluster: Cluster) -> list[dict[str, Any]]:
    """Objects in the namespace this tool created (by label), except its history record."""
    owned = []
    for kind in PRUNABLE:
        for obj in cluster.list(kind, {MANAGED_BY: TOOL}):
            if not (kind == "ConfigMap" and obj["metadata"]["name"] == HISTORY_NAME):
                owned.append(obj)
    return owned


def _going_away(live: dict[str, Any]) -> str:
    meta = live["metadata"]
    finalizers = ", ".join(meta.get("finalizers") or []) or "none"
    return (f"the live object is being deleted (since {meta['deletionTimestamp']}, finalizers: {finalizers}); "
            "apply waits for it to go, then creates it")


def _unified(before: dict[str, Any] | None, after: dict[str, Any] | None, key: str) -> str:
    def lines(obj: dict[str, Any] | None) -> list[str]:
        return yaml.safe_dump(obj, sort_keys=True).splitlines(keepends=True) if obj is not None else []

    return "".join(difflib.unified_diff(lines(before), lines(after), f"live/{key}", f"rendered/{key}"))
