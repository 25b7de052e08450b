"""render: overlay + `--set` values → the final objects, labelled as this tool's."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ops.deploy import kustomize, params
from ops.deploy.kinds import MANAGED_BY, TOOL, apply_rank, kind_of
from ops.errors import UsageError

DEFAULT_OVERLAY = "single-gpu-host"
CONFIG_HASH = "flashhead.dev/config-hash"


@dataclass
class Rendered:
    """The result of rendering: what apply sends, and what history records."""

    overlay: str
    namespace: str
    values: dict[str, Any]
    objects: list[dict[str, Any]] = field(default_factory=list)

    def to_yaml(self) -> str:
        return to_yaml(self.objects)


def manifests_dir() -> Path:
    """`$FLASHHEAD_MANIFESTS`, else the shipped manifests/ (the wheel's copy, or the checkout's)."""
    from ops.bundled import bundled

    configured = os.environ.get("FLASHHEAD_MANIFESTS")
    return Path(configured) if configured else bundled("manifests")


def overlays(root: Path | None = None) -> list[str]:
    root = root or manifests_dir()
    return sorted(p.name for p in (root / "overlays").iterdir() if (p / "kustomization.yaml").is_file())


def render(overlay: str = DEFAULT_OVERLAY, sets: dict[str, str] | None = None, namespace: str | None = None,
           root: Path | None = None) -> Rendered:
    """Build `overlay`, apply the `--set` values, set the namespace, label everything as ours."""
    root = root or manifests_dir()
    if overlay not in overlays(root):
        raise UsageError(f"unknown overlay {overlay!r} (in {root}/overlays)",
                         f"use one of: {', '.join(overlays(root))}")
    values = params.parse_sets(overlay, sets or {})
    objects = kustomize.build(root / "overlays" / overlay)
    params.apply_values(objects, values)
    params.require_pinned_images(objects, overlay)
    for obj in objects:
        kind_of(obj)
        if namespace and kind_of(obj).namespaced:
            obj["metadata"]["namespace"] = namespace
        obj["metadata"].setdefault("labels", {})[MANAGED_BY] = TOOL
    _stamp_config_hash(objects)
    objects.sort(key=lambda o: (apply_rank(o), o["metadata"]["name"]))
    effective_namespace = namespace or next(
        (o["metadata"]["namespace"] for o in objects if "namespace" in o["metadata"]), "default")
    params.follow_namespace(objects, effective_namespace)
    return Rendered(overlay, effective_namespace, values, objects)


def from_yaml(text: str) -> list[dict[str, Any]]:
    """Objects from a rendered manifest (as history stores it)."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def to_yaml(objects: list[dict[str, Any]]) -> str:
    return "---\n".join(yaml.safe_dump(obj, sort_keys=False, default_flow_style=False) for obj in objects)


def _stamp_config_hash(objects: list[dict[str, Any]]) -> None:
    """Pods restart when the settings change: the template carries a hash of the ConfigMap."""
    data = params.settings(objects)
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    template = params.find(objects, "Deployment")["spec"]["template"]
    template.setdefault("metadata", {}).setdefault("annotations", {})[CONFIG_HASH] = digest


def copy_objects(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return copy.deepcopy(objects)
