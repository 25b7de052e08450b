"""The values `render --set key=value` accepts: each validated, each written to every place it lives.

A value that appears in several objects (the model root is in the ConfigMap, the hostPaths, the
mounts and the command) is set in all of them at once, so the rendered objects cannot disagree.
The paths under the model root come from its one owner, `inference/layout.py`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inference.backends import BACKEND_NAMES, MODEL_TYPES
from inference.layout import Layout
from ops.errors import UsageError

Objects = list[dict[str, Any]]
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
IMAGE_REF = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._/-][a-z0-9]+)*)*"
                       r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$")
DIGEST = "@sha256:"
PIN_REMEDY = ("pin it by digest: --set image=REGISTRY/flashhead@sha256:DIGEST (`docker push` prints the digest; "
              "`docker buildx imagetools inspect IMAGE` shows it); a tag can be moved to other content")
SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/-]*$")
TOKEN_VOLUME = "api-token"
PROGRESS_MARGIN_S = 600  # beyond the startup budget: image pull and scheduling
TERMINATION_MARGIN_S = 15  # after the server's drain: uvicorn shutdown and CUDA teardown
IMAGE_OVERLAYS = ("image", "autoscale-hpa", "autoscale-keda")  # the image overlay and those built on it
AUTOSCALED = ("autoscale-hpa", "autoscale-keda")  # an autoscaler owns the replica count
OVERLAYS = ("single-gpu-host", *IMAGE_OVERLAYS)


@dataclass(frozen=True)
class Param:
    """One settable value: how to parse and check it, and how to write it into the objects."""

    name: str
    help: str
    parse: Callable[[str], Any]
    apply: Callable[[Objects, Any], None]
    overlays: tuple[str, ...] = OVERLAYS


def find(objects: Objects, kind: str, name: str = "flashhead") -> dict[str, Any]:
    """The object of `kind` named `name` (the manifests define each once)."""
    for obj in objects:
        if obj.get("kind") == kind and obj["metadata"]["name"] == name:
            return obj
    raise UsageError(f"the manifests define no {kind}/{name}")


def pod_spec(objects: Objects) -> dict[str, Any]:
    return find(objects, "Deployment")["spec"]["template"]["spec"]


def server_container(objects: Objects) -> dict[str, Any]:
    for container in pod_spec(objects)["containers"]:
        if container["name"] == "server":
            return container
    raise UsageError("the Deployment has no container named `server`")


def settings(objects: Objects) -> dict[str, str]:
    """The FLASHHEAD_* settings (the ConfigMap's data)."""
    data: dict[str, str] = find(objects, "ConfigMap").setdefault("data", {})
    return data


# ---- parsers ----

def _text(pattern: re.Pattern[str], what: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if not pattern.match(raw):
            raise ValueError(f"{raw!r} is not {what}")
        return raw
    return parse


def _integer(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{raw!r} is not a whole number") from None
        if not low <= value <= high:
            raise ValueError(f"{value} is outside {low}..{high}")
        return value
    return parse


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"{raw!r} is not one of {', '.join(choices)}")
        return raw
    return parse


def _boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{raw!r} is not true/false")


def _path(raw: str) -> str:
    path = raw.rstrip("/") or "/"
    if not SAFE_PATH.match(path) or "/../" in path + "/" or path == "/":
        raise ValueError(f"{raw!r} is not an absolute directory path (letters, digits, . _ - /)")
    return path


def _image(raw: str) -> str:
    if not IMAGE_REF.match(raw):
        raise ValueError(f"{raw!r} is not an image reference")
    if DIGEST not in raw:
        raise ValueError(f"{raw!r} is not pinned by digest (@sha256:...)")
    return raw


def _optional_label(raw: str) -> str:
    if raw and not DNS_LABEL.match(raw):
        raise ValueError(f"{raw!r} is not a DNS label (or empty to drop it)")
    return raw


# ---- writers ----

def _setting(key: str, render: Callable[[Any], str] = str) -> Callable[[Objects, Any], None]:
    def apply(objects: Objects, value: Any) -> None:
        settings(objects)[key] = render(value)
    return apply


POOL_LABEL = "flashhead.dev/pool"


def _set_node(objects: Objects, value: str) -> None:
    pod_spec(objects).setdefault("nodeSelector", {})["kubernetes.io/hostname"] = value


def _set_pool(objects: Objects, value: str) -> None:
    """Several provisioned GPU hosts as one pool: the pods go to any node labelled flashhead.dev/pool=VALUE,
    spread over them, each node taking as many as it has free GPUs."""
    spec = pod_spec(objects)
    spec["nodeSelector"] = {POOL_LABEL: value}
    labels = find(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    spec["topologySpreadConstraints"] = [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                          "whenUnsatisfiable": "ScheduleAnyway",
                                          "labelSelector": {"matchLabels": dict(labels)}}]


def _set_model_root(objects: Objects, value: str) -> None:
    """The root, and every path the layout puts under it: command, hostPaths, mounts, compile cache."""
    old, new = Layout.of(settings(objects)["FLASHHEAD_MODEL_ROOT"]), Layout.of(value)
    moved = {str(old.root): str(new.root), str(old.compile_cache): str(new.compile_cache),
             str(old.python): str(new.python)}
    data = settings(objects)
    data["FLASHHEAD_MODEL_ROOT"] = str(new.root)
    if data.get("FLASHHEAD_COMPILE_CACHE_DIR") in moved:
        data["FLASHHEAD_COMPILE_CACHE_DIR"] = moved[data["FLASHHEAD_COMPILE_CACHE_DIR"]]
    spec, container = pod_spec(objects), server_container(objects)
    container["command"] = [moved.get(part, part) for part in container.get("command", [])]
    for mount in container.get("volumeMounts", []):
        mount["mountPath"] = moved.get(mount["mountPath"], mount["mountPath"])
    for volume in spec.get("volumes", []):
        if "hostPath" in volume:
            volume["hostPath"]["path"] = moved.get(volume["hostPath"]["path"], volume["hostPath"]["path"])


def _set_image(objects: Objects, value: str) -> None:
    """The server's image, and that of every other Deployment here (the deletion-cost updater runs it too)."""
    for obj in objects:
        if obj.get("kind") == "Deployment":
            for container in obj["spec"]["template"]["spec"]["containers"]:
                container["image"] = value


def _set_replicas(objects: Objects, value: int) -> None:
    find(objects, "Deployment")["spec"]["replicas"] = value


def _set_gpus(objects: Objects, value: int) -> None:
    """One pod per GPU of the host (an explicit `replicas`, applied after this, may run fewer)."""
    _set_replicas(objects, value)


def _set_token_secret(objects: Objects, value: str) -> None:
    for volume in pod_spec(objects).get("volumes", []):
        if volume["name"] == TOKEN_VOLUME:
            volume["secret"]["secretName"] = value
            return
    raise UsageError(f"the Deployment has no volume {TOKEN_VOLUME!r} (the API token Secret)")


def _set_grace(objects: Objects, value: int) -> None:
    settings(objects)["FLASHHEAD_GRACE_SECONDS"] = str(value)
    pod_spec(objects)["terminationGracePeriodSeconds"] = value + TERMINATION_MARGIN_S


def _set_startup(objects: Objects, value: int) -> None:
    probe = server_container(objects)["startupProbe"]
    probe["failureThreshold"] = math.ceil(value / probe.get("periodSeconds", 10))
    # The server answers /healthz while the model loads; /readyz turns 200 when it is warm. The
    # Deployment's progress deadline is what bounds that load, plus time to pull and schedule.
    find(objects, "Deployment")["spec"]["progressDeadlineSeconds"] = value + PROGRESS_MARGIN_S


def _set_runtime_class(objects: Objects, value: str) -> None:
    if value:
        pod_spec(objects)["runtimeClassName"] = value
    else:
        pod_spec(objects).pop("runtimeClassName", None)


def _set_security(field: str) -> Callable[[Objects, Any], None]:
    def apply(objects: Objects, value: int) -> None:
        pod_spec(objects).setdefault("securityContext", {})[field] = value
    return apply


def _set_group(objects: Objects, value: int) -> None:
    security = pod_spec(objects).setdefault("securityContext", {})
    security["runAsGroup"] = value
    security["fsGroup"] = value


def _autoscaler(objects: Objects) -> dict[str, Any]:
    for obj in objects:
        if obj.get("kind") in ("HorizontalPodAutoscaler", "ScaledObject"):
            return obj
    raise UsageError("this overlay has no autoscaler (HorizontalPodAutoscaler or ScaledObject)")


def _set_bound(hpa_field: str, keda_field: str) -> Callable[[Objects, Any], None]:
    def apply(objects: Objects, value: int) -> None:
        scaler = _autoscaler(objects)
        scaler["spec"][hpa_field if scaler["kind"] == "HorizontalPodAutoscaler" else keda_field] = value
    return apply


def _set_target(objects: Objects, percent: int) -> None:
    """The share of the measured stream capacity in use that the autoscaler aims at."""
    scaler = _autoscaler(objects)
    if scaler["kind"] == "HorizontalPodAutoscaler":
        scaler["spec"]["metrics"][0]["pods"]["target"]["averageValue"] = f"{percent * 10}m"
    else:
        scaler["spec"]["triggers"][0]["metadata"]["threshold"] = f"{percent / 100:g}"


def _set_prometheus_url(objects: Objects, value: str) -> None:
    _autoscaler(objects)["spec"]["triggers"][0]["metadata"]["serverAddress"] = value


def _url(raw: str) -> str:
    if not re.match(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$", raw):
        raise ValueError(f"{raw!r} is not an http(s) URL")
    return raw.rstrip("/")


def follow_namespace(objects: Objects, namespace: str) -> None:
    """What names the namespace inside an object follows `-n`: RoleBinding subjects, the KEDA query."""
    for obj in objects:
        if obj.get("kind") == "RoleBinding":
            for subject in obj.get("subjects", []):
                if subject.get("kind") == "ServiceAccount":
                    subject["namespace"] = namespace
        if obj.get("kind") == "ScaledObject":
            for trigger in obj["spec"]["triggers"]:
                query = trigger["metadata"].get("query", "")
                trigger["metadata"]["query"] = re.sub(r'namespace="[^"]*"', f'namespace="{namespace}"', query)


def _set_models_claim(objects: Objects, value: str) -> None:
    for volume in pod_spec(objects).get("volumes", []):
        if "persistentVolumeClaim" in volume:
            volume["persistentVolumeClaim"]["claimName"] = value
            return
    raise UsageError("this overlay mounts no PersistentVolumeClaim")


PARAMS: dict[str, Param] = {p.name: p for p in (
    Param("node", "Kubernetes node name the pod is pinned to (kubectl get nodes)",
          _text(DNS_SUBDOMAIN, "a node name"), _set_node, ("single-gpu-host",)),
    Param("pool", f"label value of the GPU hosts to spread over (nodes labelled {POOL_LABEL}=VALUE), instead of node",
          _text(DNS_LABEL, "a label value"), _set_pool, ("single-gpu-host",)),
    Param("model_root", "host directory with .venv, the FlashHead repo and checkpoints", _path, _set_model_root),
    Param("model_type", " or ".join(MODEL_TYPES), _choice(*MODEL_TYPES), _setting("FLASHHEAD_MODEL_TYPE")),
    Param("backend", "flashhead (GPU) or reference (CPU, no model)", _choice(*BACKEND_NAMES),
          _setting("FLASHHEAD_BACKEND")),
    Param("image", "container image, pinned by digest (REGISTRY/NAME@sha256:DIGEST)", _image, _set_image),
    Param("gpus", "GPUs of the host (or of the whole pool): one pod each (--gpus-from-facts counts a host's)",
          _integer(1, 64), _set_gpus, ("single-gpu-host",)),
    Param("replicas", "number of pods (one GPU each)", _integer(0, 64), _set_replicas,
          ("single-gpu-host", "image")),
    Param("min_replicas", "fewest pods the autoscaler keeps", _integer(1, 64), _set_bound("minReplicas",
          "minReplicaCount"), AUTOSCALED),
    Param("max_replicas", "most pods the autoscaler starts (one GPU each)", _integer(1, 256),
          _set_bound("maxReplicas", "maxReplicaCount"), AUTOSCALED),
    Param("target_utilization", "percent of the measured stream capacity in use the autoscaler aims at",
          _integer(10, 100), _set_target, AUTOSCALED),
    Param("prometheus_url", "the Prometheus KEDA queries", _url, _set_prometheus_url, ("autoscale-keda",)),
    Param("max_streams", "concurrent streams per pod", _integer(1, 64), _setting("FLASHHEAD_MAX_STREAMS")),
    Param("compile", "torch.compile the model (true/false)", _boolean,
          _setting("FLASHHEAD_COMPILE", lambda v: "true" if v else "false")),
    Param("token_secret", "Secret holding the API token under key `token`",
          _text(DNS_SUBDOMAIN, "a Secret name"), _set_token_secret),
    Param("grace_seconds", "how long streams may finish after SIGTERM", _integer(0, 3600), _set_grace),
    Param("startup_seconds", "time allowed for model load + compile", _integer(30, 14400), _set_startup),
    Param("runtime_class", "RuntimeClass for the GPU (empty: the node's default runtime)",
          _optional_label, _set_runtime_class),
    Param("run_as_user", "uid of the server process (owner of model_root on the host)",
          _integer(1, 2**31 - 1), _set_security("runAsUser")),
    Param("run_as_group", "gid of the server process (and the group that reads the token file)",
          _integer(1, 2**31 - 1), _set_group),
    Param("models_claim", "PersistentVolumeClaim holding the checkpoints",
          _text(DNS_SUBDOMAIN, "a claim name"), _set_models_claim, IMAGE_OVERLAYS),
)}


def parse_sets(overlay: str, pairs: dict[str, str]) -> dict[str, Any]:
    """Parse and check `--set` values for `overlay`; errors name the key and what it accepts."""
    values: dict[str, Any] = {}
    for key, raw in pairs.items():
        param = PARAMS.get(key)
        if param is None:
            raise UsageError(f"--set {key}: unknown parameter", f"known: {', '.join(sorted(PARAMS))}")
        if overlay not in param.overlays:
            raise UsageError(f"--set {key}: not used by the {overlay} overlay",
                             f"it applies to: {', '.join(param.overlays)}")
        try:
            values[key] = param.parse(raw)
        except ValueError as error:
            remedy = PIN_REMEDY if key == "image" and "digest" in str(error) else f"{key}: {param.help}"
            raise UsageError(f"--set {key}={raw}: {error}", remedy) from None
    if "node" in values and "pool" in values:
        raise UsageError("--set node and --set pool: choose one", "node pins the pods to one host; pool spreads "
                         f"them over the nodes labelled {POOL_LABEL}=VALUE")
    gpus = values.get("gpus", 1)
    if overlay == "single-gpu-host" and values.get("replicas", 0) > gpus:
        raise UsageError(f"--set replicas={values['replicas']}: the single-gpu-host overlay runs at most one pod "
                         f"per GPU, and the host has {gpus}",
                         "--set gpus=N for a host with N GPUs; the image overlay scales across GPU nodes")
    if values.get("min_replicas", 1) > values.get("max_replicas", 256):
        raise UsageError(f"--set min_replicas={values['min_replicas']} is above max_replicas={values['max_replicas']}")
    return values


def apply_values(objects: Objects, values: dict[str, Any]) -> None:
    """Write parsed values into the objects, in the order of PARAMS."""
    for name, param in PARAMS.items():
        if name in values:
            param.apply(objects, values[name])


def require_pinned_images(objects: Objects, overlay: str) -> None:
    """Every container image is pinned by digest (the image overlay's default is a placeholder)."""
    specs = [obj["spec"]["template"]["spec"] for obj in objects if obj.get("kind") == "Deployment"]
    for container in [c for spec in specs for c in spec.get("containers", []) + spec.get("initContainers", [])]:
        if DIGEST not in container.get("image", ""):
            raise UsageError(f"the {overlay} overlay's container {container['name']} runs image "
                             f"{container.get('image')!r}, which is not pinned by digest", PIN_REMEDY)
