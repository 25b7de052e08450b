"""Build a kustomization the way `kubectl kustomize` does, for the subset our manifests use.

Supported: `resources` (files and directories), `namespace`, `labels` (metadata only, no
selectors), `patches` with `path:` (strategic-merge patches, targeted by kind and name; a key set
to null deletes it, as in kustomize).
Anything else is refused, so the manifests stay inside what this builder and kubectl agree on
(tests/deploy compare the two on every overlay).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from ops.errors import UsageError

SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "namespace", "labels", "patches"}

# Strategic-merge keys of the lists we patch (from the Kubernetes API's patchMergeKey tags).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "topologySpreadConstraints": "topologyKey",
}


def build(directory: Path) -> list[dict[str, Any]]:
    """The objects of the kustomization in `directory`, with patches, labels and namespace applied."""
    kustomization = _load_kustomization(directory)
    objects: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = (directory / resource).resolve()
        objects.extend(build(path) if path.is_dir() else load_documents(path))
    for patch in kustomization.get("patches", []):
        if set(patch) != {"path"}:
            raise UsageError(f"{directory}/kustomization.yaml: only `patches: - path: FILE` is supported")
        for document in load_documents(directory / patch["path"]):
            _apply_patch(objects, document, directory / patch["path"])
    for label_set in kustomization.get("labels", []):
        if label_set.get("includeSelectors") or label_set.get("includeTemplates"):
            raise UsageError(f"{directory}/kustomization.yaml: labels may not include selectors or templates")
        for obj in objects:
            obj.setdefault("metadata", {}).setdefault("labels", {}).update(label_set.get("pairs", {}))
    namespace = kustomization.get("namespace")
    if namespace:
        for obj in objects:
            if obj.get("kind") != "Namespace":
                obj["metadata"]["namespace"] = namespace
    return objects


def load_documents(path: Path) -> list[dict[str, Any]]:
    """The non-empty YAML documents of a manifest file."""
    try:
        with path.open() as handle:
            return [doc for doc in yaml.safe_load_all(handle) if doc]
    except (OSError, yaml.YAMLError) as error:
        raise UsageError(f"cannot read manifest {path}: {error}") from None


def strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    """Merge `patch` into `base`: maps recursively, keyed lists by their merge key, others replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            if key.startswith("$"):
                raise UsageError(f"patch directive {key!r} is not supported")
            if value is None:
                merged.pop(key, None)
                continue
            merged[key] = strategic_merge(base[key], value, key) if key in base else copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list):
        key = _merge_key(field, base + patch)
        if key is None:
            return copy.deepcopy(patch)
        originals = {item.get(key): item for item in base}
        patched = [strategic_merge(originals[item[key]], item, field) if item.get(key) in originals
                   else copy.deepcopy(item) for item in patch]
        seen = {item.get(key) for item in patch}
        return patched + [copy.deepcopy(item) for item in base if item.get(key) not in seen]
    return copy.deepcopy(patch)


def _merge_key(field: str, items: list[Any]) -> str | None:
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    if field == "ports":
        return "containerPort" if all("containerPort" in item for item in items) else "port"
    return MERGE_KEYS.get(field)


def _apply_patch(objects: list[dict[str, Any]], patch: dict[str, Any], source: Path) -> None:
    name = patch.get("metadata", {}).get("name")
    for index, obj in enumerate(objects):
        if obj.get("kind") == patch.get("kind") and obj.get("metadata", {}).get("name") == name:
            objects[index] = strategic_merge(obj, patch)
            return
    raise UsageError(f"patch {source} targets {patch.get('kind')}/{name}, which no resource defines")


def _load_kustomization(directory: Path) -> dict[str, Any]:
    path = directory / "kustomization.yaml"
    documents = load_documents(path) if path.is_file() else []
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise UsageError(f"{path}: expected one kustomization document")
    unsupported = set(documents[0]) - SUPPORTED_KEYS
    if unsupported:
        raise UsageError(f"{path}: unsupported keys {sorted(unsupported)}",
                         f"this builder supports {sorted(SUPPORTED_KEYS)}")
    return documents[0]
