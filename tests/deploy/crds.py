"""Schemas for the custom resources the manifests use, which kubernetes-validate does not carry.

KEDA's ScaledObject (keda.sh/v1alpha1), written from KEDA v2's CRD (config/crd/bases/
keda.sh_scaledobjects.yaml) for the fields the autoscale-keda overlay sets, as JSON Schema with
unknown fields refused (a strict apply refuses them too). The API stand-in serves the same kind.
"""

from __future__ import annotations

from typing import Any


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


_INT32 = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
_POLICY = _object({"type": {"type": "string", "enum": ["Pods", "Percent"]}, "value": {**_INT32, "minimum": 1},
                   "periodSeconds": {"type": "integer", "minimum": 1, "maximum": 1800}},
                  ("type", "value", "periodSeconds"))
_RULES = _object({"stabilizationWindowSeconds": {"type": "integer", "minimum": 0, "maximum": 3600},
                  "selectPolicy": {"type": "string", "enum": ["Max", "Min", "Disabled"]},
                  "policies": {"type": "array", "items": _POLICY}})
_METADATA = {"type": "object", "properties": {"name": {"type": "string"}, "namespace": {"type": "string"},
                                              "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                              "annotations": {"type": "object"}}}

SCALED_OBJECT: dict[str, Any] = _object({
    "apiVersion": {"const": "keda.sh/v1alpha1"},
    "kind": {"const": "ScaledObject"},
    "metadata": _METADATA,
    "spec": _object({
        "scaleTargetRef": _object({"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                   "name": {"type": "string", "minLength": 1},
                                   "envSourceContainerName": {"type": "string"}}, ("name",)),
        "minReplicaCount": _INT32,
        "maxReplicaCount": {**_INT32, "minimum": 1},
        "idleReplicaCount": _INT32,
        "pollingInterval": {**_INT32, "minimum": 1},
        "cooldownPeriod": _INT32,
        "initialCooldownPeriod": _INT32,
        "advanced": _object({
            "restoreToOriginalReplicaCount": {"type": "boolean"},
            "horizontalPodAutoscalerConfig": _object({
                "name": {"type": "string"},
                "behavior": _object({"scaleUp": _RULES, "scaleDown": _RULES})}),
        }),
        "triggers": {"type": "array", "minItems": 1, "items": _object({
            "type": {"type": "string", "minLength": 1},
            "name": {"type": "string"},
            "metricType": {"type": "string", "enum": ["AverageValue", "Value", "Utilization"]},
            "useCachedMetrics": {"type": "boolean"},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "authenticationRef": _object({"name": {"type": "string"}, "kind": {"type": "string"}}, ("name",)),
        }, ("type", "metadata"))},
    }, ("scaleTargetRef", "triggers")),
    "status": {"type": "object"},
}, ("apiVersion", "kind", "metadata", "spec"))

# KEDA's Prometheus scaler reads these trigger metadata keys (pkg/scalers/prometheus_scaler.go).
PROMETHEUS_TRIGGER_KEYS = {"serverAddress", "query", "threshold", "activationThreshold", "namespace",
                           "queryParameters", "customHeaders", "ignoreNullValues", "unsafeSsl", "timeout"}
PROMETHEUS_REQUIRED = {"serverAddress", "query", "threshold"}


def validate_custom(obj: dict[str, Any]) -> None:
    """Validate a custom resource strictly; jsonschema.ValidationError (or ValueError) when it is wrong."""
    import jsonschema

    if (obj.get("apiVersion"), obj.get("kind")) != ("keda.sh/v1alpha1", "ScaledObject"):
        raise ValueError(f"no schema for {obj.get('apiVersion')}/{obj.get('kind')}")
    jsonschema.validate(obj, SCALED_OBJECT)
    for trigger in obj["spec"]["triggers"]:
        if trigger["type"] == "prometheus":
            keys = set(trigger["metadata"])
            if keys - PROMETHEUS_TRIGGER_KEYS or PROMETHEUS_REQUIRED - keys:
                raise ValueError(f"prometheus trigger metadata {sorted(keys)}: needs {sorted(PROMETHEUS_REQUIRED)}, "
                                 f"knows {sorted(PROMETHEUS_TRIGGER_KEYS)}")
            float(trigger["metadata"]["threshold"])
