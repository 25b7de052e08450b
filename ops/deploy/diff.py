"""diff: what apply would change, object by object, against the live objects (like `kubectl diff`).

Only the fields the manifests set are compared: the server adds defaults and status that are
not ours to judge. Numbers and their string forms compare equal (the API normalises quantities).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import yaml

from ops.deploy.cluster import Cluster
from ops.deploy.kinds import HISTORY_NAME, MANAGED_BY, PRUNABLE, TOOL, object_key


@dataclass
class Change:
    """One object's fate: create, update (with a unified diff), unchanged, or prune."""

    key: str
    action: str
    diff: str = ""


def plan(cluster: Cluster, objects: list[dict[str, Any]], prune: bool = True) -> list[Change]:
    """Compare rendered `objects` with the cluster; include owned objects apply would prune."""
    changes = []
    for obj in objects:
        live = cluster.get(obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))
        changes.append(compare(obj, live))
    if prune:
        wanted = {object_key(obj) for obj in objects}
        changes.extend(Change(object_key(obj), "prune", _unified(obj, None, object_key(obj)))
                       for obj in owned_objects(cluster) if object_key(obj) not in wanted)
    return changes


def compare(desired: dict[str, Any], live: dict[str, Any] | None) -> Change:
    """The change that makes `live` match `desired` (None: the object does not exist yet)."""
    key = object_key(desired)
    if live is None:
        return Change(key, "create", _unified(None, desired, key))
    current = project(live, desired)
    if same(desired, current):
        return Change(key, "unchanged")
    return Change(key, "update", _unified(current, desired, key))


def owned_objects(cluster: Cluster) -> list[dict[str, Any]]:
    """Objects in the namespace this tool created (by label), except its history record."""
    owned = []
    for kind in PRUNABLE:
        for obj in cluster.list(kind, {MANAGED_BY: TOOL}):
            if not (kind == "ConfigMap" and obj["metadata"]["name"] == HISTORY_NAME):
                owned.append(obj)
    return owned


def project(live: Any, desired: Any) -> Any:
    """`live` cut down to the shape of `desired` (the fields we manage)."""
    if isinstance(desired, dict) and isinstance(live, dict):
        return {key: project(live[key], value) for key, value in desired.items() if key in live}
    if isinstance(desired, list) and isinstance(live, list) and len(desired) == len(live):
        return [project(a, b) for a, b in zip(live, desired, strict=True)]
    return live


def same(desired: Any, live: Any) -> bool:
    """Equal up to number/string spelling (1 == "1", True == "true" are not mixed up otherwise)."""
    if isinstance(desired, dict) and isinstance(live, dict):
        return desired.keys() == live.keys() and all(same(v, live[k]) for k, v in desired.items())
    if isinstance(desired, list) and isinstance(live, list):
        return len(desired) == len(live) and all(same(a, b) for a, b in zip(desired, live, strict=True))
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired == live
    if isinstance(desired, (int, float, str)) and isinstance(live, (int, float, str)):
        return str(desired) == str(live)
    return bool(desired == live)


def _unified(before: dict[str, Any] | None, after: dict[str, Any] | None, key: str) -> str:
    def lines(obj: dict[str, Any] | None) -> list[str]:
        return yaml.safe_dump(obj, sort_keys=False).splitlines(keepends=True) if obj is not None else []

    return "".join(difflib.unified_diff(lines(before), lines(after), f"live/{key}", f"rendered/{key}"))
