"""Field ownership as kube-apiserver computes it (structured-merge-diff), for the API stand-in.

Every object carries `metadata.managedFields`: per field manager and operation (Apply or
Update), the set of fields it owns, encoded as FieldsV1 (`f:name`, `k:{"name":"x"}` for an
element of a keyed list, `v:"x"` for a set member, `.` for the element itself). The list and map
semantics (keyed, set, atomic) come from the official OpenAPI extensions
(`x-kubernetes-list-type`, `-list-map-keys`, `-map-type`) shipped with kubernetes-validate, not
from a hand-written table. What the tests rely on, as the real server does it:

- an apply owns exactly the fields it sends; a field it sent before and no longer sends is removed
  from the object unless another manager owns it too;
- changing a field another manager owns is a 409 conflict naming the manager and the field path
  (`Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas`);
  the same value is shared ownership; `force` takes the field over;
- an update (PUT/PATCH that is not an apply) takes the fields it changes away from everyone else.
"""

from __future__ import annotations

import copy
import datetime
import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path as FilePath
from typing import Any

import kubernetes_validate

from tests.deploy import crds

Path = tuple[str, ...]
SCHEMA_VERSION = "1.35.0"
UNOWNED_METADATA = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                    "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"}
MISSING = object()


class Conflict(Exception):
    """An apply would change fields other managers own (409), one (manager label, path) each."""

    def __init__(self, conflicts: list[tuple[str, Path]]):
        self.conflicts = conflicts
        super().__init__(conflict_message(conflicts))


# ---- the schema (official OpenAPI definitions) ----

@cache
def definitions() -> dict[str, Any]:
    root = FilePath(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    with (root / f"v{SCHEMA_VERSION}-local-strict" / "_definitions.json").open() as handle:
        defs: dict[str, Any] = json.load(handle)["$defs"]
    # Custom resources: a CRD's schema, as the API server has it once the CRD is installed.
    defs["sh.keda.v1alpha1.ScaledObject"] = {**crds.SCALED_OBJECT, "x-kubernetes-group-version-kind": [
        {"group": "keda.sh", "version": "v1alpha1", "kind": "ScaledObject"}]}
    return defs


@cache
def kind_schema(api_version: str, kind: str) -> str:
    """The definition name of a kind (found by its x-kubernetes-group-version-kind)."""
    group, _, version = api_version.rpartition("/")
    for name, node in definitions().items():
        for gvk in node.get("x-kubernetes-group-version-kind") or []:
            if (gvk.get("group", ""), gvk["version"], gvk["kind"]) == (group, version, kind):
                return name
    raise KeyError(f"{api_version}/{kind} has no schema")


def resolve(node: dict[str, Any] | None) -> dict[str, Any]:
    while node and "$ref" in node:
        node = definitions()[node["$ref"].rsplit("/", 1)[-1]]
    return node or {}


def root(obj: dict[str, Any]) -> dict[str, Any]:
    return definitions()[kind_schema(obj["apiVersion"], obj["kind"])]


def _shape(node: dict[str, Any]) -> str:
    node = resolve(node)
    types = node.get("type") or []
    if "array" in types:
        return "list"
    if "object" in types and "properties" in node:
        return "struct"
    if "object" in types:
        return "map"
    return "scalar"


def _child(node: dict[str, Any], key: str) -> dict[str, Any]:
    node = resolve(node)
    if "properties" in node:
        return resolve(node["properties"].get(key))
    extra = node.get("additionalProperties")
    return resolve(extra) if isinstance(extra, dict) else {}


def _atomic(node: dict[str, Any]) -> bool:
    node = resolve(node)
    shape = _shape(node)
    if shape == "list":
        return node.get("x-kubernetes-list-type", "atomic") == "atomic"
    return shape == "scalar" or node.get("x-kubernetes-map-type") == "atomic"


def _keys(node: dict[str, Any]) -> list[str]:
    return list(resolve(node).get("x-kubernetes-list-map-keys") or [])


def _item(node: dict[str, Any]) -> dict[str, Any]:
    return resolve(resolve(node).get("items"))


def _element(node: dict[str, Any], item: Any) -> str:
    """The path element of one list item: `k:{...}` (keyed list) or `v:...` (set)."""
    node = resolve(node)
    if node.get("x-kubernetes-list-type") == "set":
        return "v:" + _json(item)
    key = {name: item.get(name, "TCP" if name == "protocol" else None) for name in _keys(node)}
    return "k:" + _json(dict(sorted(key.items())))


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


# ---- field sets ----

def field_set(obj: dict[str, Any]) -> set[Path]:
    """The fields `obj` sets, as paths (status and server-set metadata are never owned)."""
    node = root(obj)
    paths: set[Path] = set()
    for key, value in obj.items():
        if key in ("apiVersion", "kind", "status"):
            continue
        if key == "metadata":
            meta = {k: v for k, v in (value or {}).items() if k not in UNOWNED_METADATA}
            if meta:
                paths |= _walk(meta, _child(node, "metadata"), ("f:metadata",))
            continue
        paths |= _walk(value, _child(node, key), (f"f:{key}",))
    return paths


def _walk(value: Any, node: dict[str, Any], prefix: Path) -> set[Path]:
    if value is None:
        return set()
    shape = _shape(node)
    if _atomic(node) or shape == "scalar" or not value:
        return {prefix}
    if shape == "list":
        paths: set[Path] = set()
        for item in value:
            element = prefix + (_element(node, item),)
            paths.add(element + (".",))
            if isinstance(item, dict):
                paths |= {p for p in _walk(item, _item(node), element) if p != element}
        return paths
    if isinstance(value, dict):
        return set().union(*(_walk(v, _child(node, k), prefix + (f"f:{k}",)) for k, v in value.items()))
    return {prefix}


def value_at(obj: Any, path: Path, node: dict[str, Any] | None = None) -> Any:
    """The value at `path` (MISSING when absent); `.` ends a path at a list element."""
    node = node if node is not None else root(obj)
    current: Any = obj
    for part in path:
        if part == ".":
            return current
        kind, _, name = part.partition(":")
        if kind == "f":
            if not isinstance(current, dict) or name not in current:
                return MISSING
            current, node = current[name], _child(node, name)
        else:
            if not isinstance(current, list):
                return MISSING
            found = [item for item in current if _element(node, item) == part]
            if not found:
                return MISSING
            current, node = found[0], _item(node)
    return current


def _changed(before: dict[str, Any], after: dict[str, Any], paths: Iterable[Path]) -> set[Path]:
    """The paths whose value differs (a list element's `.` only when it appears or goes)."""
    changed = set()
    for path in paths:
        old, new = value_at(before, path), value_at(after, path)
        if path[-1] == ".":
            if (old is MISSING) != (new is MISSING):
                changed.add(path)
        elif old != new:
            changed.add(path)
    return changed


# ---- merging and removing ----

def merge(live: Any, config: Any, node: dict[str, Any]) -> Any:
    """`config` merged into `live` (maps by key, keyed lists by key, atomic values replaced)."""
    shape = _shape(node)
    if _atomic(node) or shape == "scalar" or live is None:
        return copy.deepcopy(config)
    if shape == "list" and isinstance(live, list) and isinstance(config, list):
        return _merge_list(live, config, node)
    if isinstance(live, dict) and isinstance(config, dict):
        result = copy.deepcopy(live)
        for key, value in config.items():
            result[key] = merge(live.get(key), value, _child(node, key)) if key in live else copy.deepcopy(value)
        return result
    return copy.deepcopy(config)


def _merge_list(live: list[Any], config: list[Any], node: dict[str, Any]) -> list[Any]:
    """structured-merge-diff's order: the applied items in their order, live-only items where they were."""
    left, right = [_element(node, i) for i in live], [_element(node, i) for i in config]
    by_left, by_right = dict(zip(left, live, strict=True)), dict(zip(right, config, strict=True))
    shared = [element for element in right if element in by_left]
    out: list[Any] = []
    merged: set[str] = set()
    li = ri = 0

    def item(element: str) -> Any:
        before, after = by_left.get(element), by_right[element]
        return merge(before, after, _item(node)) if isinstance(before, dict) else copy.deepcopy(after)

    while li < len(left) or ri < len(right):
        if li < len(left) and ri < len(right):
            if left[li] == right[ri]:
                out.append(item(left[li]))
                merged.add(left[li])
                shared = shared[1:] if shared and shared[0] == left[li] else shared
                li, ri = li + 1, ri + 1
                continue
            if left[li] in by_right and shared and shared[0] != left[li]:
                li += 1
                continue
        if li < len(left) and left[li] not in by_right:
            out.append(copy.deepcopy(live[li]))
            li += 1
            continue
        if li < len(left) and left[li] in merged:
            li += 1
            continue
        if ri < len(right):
            out.append(item(right[ri]))
            merged.add(right[ri])
            shared = shared[1:] if shared and shared[0] == right[ri] else shared
            ri += 1
        else:
            li += 1
    return out


def remove(obj: dict[str, Any], paths: Iterable[Path], keep: set[Path]) -> None:
    """Remove `paths` from `obj`, and the maps and lists emptied on the way that nobody owns.

    Whole list elements go first; the key fields of an element that stays are never removed.
    """
    paths = set(paths)
    for path in sorted((p for p in paths if p[-1] == "."), key=len, reverse=True):
        _remove_one(obj, path, keep)
    for path in sorted((p for p in paths if p[-1] != "."), key=len, reverse=True):
        if not _is_key_field(path):
            _remove_one(obj, path, keep)


def _is_key_field(path: Path) -> bool:
    if len(path) < 2 or not path[-2].startswith("k:") or not path[-1].startswith("f:"):
        return False
    return path[-1][2:] in json.loads(path[-2][2:])


def _remove_one(obj: dict[str, Any], path: Path, keep: set[Path]) -> None:
    if path[-1] == ".":
        path = path[:-1]
    node = root(obj)
    trail: list[tuple[Any, Any]] = []  # (container, the key or the list item in it)
    current: Any = obj
    for part in path:
        kind, _, name = part.partition(":")
        if kind == "f":
            if not isinstance(current, dict) or name not in current:
                return
            trail.append((current, name))
            current, node = current[name], _child(node, name)
        else:
            found = [item for item in current or [] if _element(node, item) == part]
            if not found:
                return
            trail.append((current, found[0]))
            current, node = found[0], _item(node)
    for depth in range(len(trail) - 1, -1, -1):
        container, member = trail[depth]
        if isinstance(container, dict):
            container.pop(member, None)
        else:
            container[:] = [item for item in container if item is not member]
        emptied = container == {} or container == []
        if depth == 0 or not emptied or path[:depth] in keep or path[:depth] + (".",) in keep:
            return


# ---- managedFields ----

def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for part in path:
            node = node.setdefault(part, {})
    return tree


def from_fields_v1(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    for part, children in tree.items():
        if part == ".":
            paths.add(prefix + (".",))
        elif children:
            paths |= from_fields_v1(children, prefix + (part,))
        else:
            paths.add(prefix + (part,))
    return paths


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], set[Path]]:
    """(manager, operation) → owned paths, from `metadata.managedFields`."""
    owned: dict[tuple[str, str], set[Path]] = {}
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        owned[entry["manager"], entry["operation"]] = from_fields_v1(entry.get("fieldsV1") or {})
    return owned


def _write_managers(obj: dict[str, Any], owned: dict[tuple[str, str], set[Path]],
                    previous: dict[str, Any], touched: tuple[str, str]) -> None:
    """Store the sets as managedFields; an entry keeps its time unless its manager acted now."""
    times = {(e["manager"], e["operation"]): e.get("time")
             for e in (previous.get("metadata") or {}).get("managedFields") or []}
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    entries = []
    for (manager, operation), paths in owned.items():
        if not paths:
            continue
        before = managers(previous).get((manager, operation))
        time = now if (manager, operation) == touched and before != paths else times.get((manager, operation), now)
        entries.append({"manager": manager, "operation": operation, "apiVersion": obj["apiVersion"],
                        "time": time, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(paths)})
    obj.setdefault("metadata", {})["managedFields"] = entries


# ---- the two operations ----

def apply(live: dict[str, Any] | None, config: dict[str, Any], manager: str, force: bool) -> dict[str, Any]:
    """The object after a server-side apply of `config` by `manager` (Conflict when refused)."""
    live = copy.deepcopy(live) if live else {"apiVersion": config["apiVersion"], "kind": config["kind"],
                                              "metadata": {}}
    node = root(config)
    config = {k: v for k, v in config.items() if k != "status"}
    owned = managers(live)
    mine = (manager, "Apply")
    applied = field_set(config)
    others = {key: paths for key, paths in owned.items() if key != mine}
    shared = set().union(*others.values()) if others else set()
    merged = merge(live, config, node)
    merged["metadata"]["managedFields"] = (live.get("metadata") or {}).get("managedFields") or []
    remove(merged, owned.get(mine, set()) - applied - shared, applied | shared)
    changed = _changed(live, merged, field_set(live) | field_set(merged))
    conflicts = sorted((label(key, config["apiVersion"]), path) for key, paths in others.items()
                       for path in paths & changed & applied)
    if conflicts and not force:
        raise Conflict(conflicts)
    gone = field_set(live) - field_set(merged)
    for key in others:
        owned[key] = others[key] - (changed & applied) - gone
    owned[mine] = applied
    _write_managers(merged, owned, live, mine)
    return merged


def update(live: dict[str, Any], new: dict[str, Any], manager: str) -> dict[str, Any]:
    """The object after an update (PUT/PATCH, not apply) by `manager`: it owns what it changed."""
    new = copy.deepcopy(new)
    before, after = field_set(live), field_set(new)
    changed = _changed(live, new, before | after)
    gone = before - after
    owned = managers(live)
    mine = (manager, "Update")
    for key in owned:
        if key != mine:
            owned[key] -= changed | gone
    owned[mine] = (owned.get(mine, set()) | changed) - gone
    _write_managers(new, owned, live, mine)
    return new


# ---- messages ----

def label(key: tuple[str, str], api_version: str) -> str:
    manager, operation = key
    return f'"{manager}"' + (f" using {api_version}" if operation == "Update" else "")


def path_string(path: Path) -> str:
    """A path as the API server prints it: `.spec.template.spec.containers[name="server"].image`."""
    text = ""
    for part in path:
        kind, _, name = part.partition(":")
        if part == ".":
            continue
        if kind == "f":
            text += "." + name
        elif kind == "k":
            text += "[" + ",".join(f"{k}={_json(v)}" for k, v in sorted(json.loads(name).items())) + "]"
        else:
            text += f"[={name}]"
    return text


def conflict_message(conflicts: list[tuple[str, Path]]) -> str:
    if len(conflicts) == 1:
        manager, path = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {manager}: {path_string(path)}"
    lines = []
    for manager in sorted({m for m, _ in conflicts}):
        lines.append(f"conflicts with {manager}:")
        lines.extend(f"- {path_string(p)}" for m, p in conflicts if m == manager)
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


def conflict_causes(conflicts: list[tuple[str, Path]]) -> list[dict[str, str]]:
    return [{"reason": "FieldManagerConflict", "message": f"conflict with {manager}", "field": path_string(path)}
            for manager, path in conflicts]
