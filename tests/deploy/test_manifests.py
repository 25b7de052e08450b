"""The manifests: standard (kubectl kustomize agrees), valid (official schemas), consistent, locked down."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml

from inference.config import PREFIX, ServerConfig, from_env
from inference.layout import Layout
from ops.deploy import kustomize
from ops.deploy.params import find, pod_spec, server_container, settings
from ops.deploy.render import manifests_dir, render, to_yaml
from ops.errors import UsageError
from tests.deploy.crds import validate_custom

MANIFESTS = manifests_dir()
GOLDEN = Path(__file__).parent / "golden"
KUBERNETES_VERSIONS = ("1.31.0", "1.33.0", "1.35.0")  # k3s stable channels and a recent upstream
IMAGE = "registry.example.com/ml/flashhead@sha256:" + "3f" * 32
FIELDS = {f.name for f in ServerConfig.__dataclass_fields__.values()}
CASES = {
    "single-gpu-host": ("single-gpu-host", {}),
    "single-gpu-host-rtx4090": ("single-gpu-host", {
        "node": "rtx4090", "model_root": "/data/flashhead", "model_type": "pro", "max_streams": "2",
        "grace_seconds": "60", "startup_seconds": "2400", "runtime_class": "", "run_as_user": "1001",
        "token_secret": "fh-token", "compile": "false"}),
    "image": ("image", {"image": IMAGE}),
    "image-scaled": ("image", {"image": f"{IMAGE.split('@')[0]}:0.1.0@{IMAGE.split('@')[1]}", "replicas": "4",
                               "models_claim": "fh-checkpoints", "backend": "reference"}),
    "gpu-host-4": ("single-gpu-host", {"node": "gpu-4", "gpus": "4", "max_streams": "2"}),
    "gpu-pool": ("single-gpu-host", {"pool": "lite", "gpus": "8"}),
    "autoscale-hpa": ("autoscale-hpa", {"image": IMAGE, "min_replicas": "2", "max_replicas": "12",
                                        "target_utilization": "60"}),
    "autoscale-keda": ("autoscale-keda", {"image": IMAGE, "max_replicas": "6",
                                          "prometheus_url": "http://prometheus.monitoring.svc:9090"}),
}
DIRECTORIES = ["base", "deletion-cost", *(f"overlays/{p.name}" for p in sorted((MANIFESTS / "overlays").iterdir()))]


def rendered(case: str) -> list[dict[str, Any]]:
    overlay, sets = CASES[case]
    return render(overlay, sets).objects


def test_every_overlay_has_a_rendering_case() -> None:
    assert {overlay for overlay, _ in CASES.values()} == {p.name for p in (MANIFESTS / "overlays").iterdir()}


@pytest.mark.parametrize("directory", DIRECTORIES)
def test_kubectl_kustomize_builds_the_same_objects_as_the_builder(directory: str) -> None:
    built = subprocess.run(["kubectl", "kustomize", str(MANIFESTS / directory)], capture_output=True, text=True,
                           check=True, timeout=60)
    by_kubectl = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(built.stdout) if o}
    ours = {(o["kind"], o["metadata"]["name"]): o for o in kustomize.build(MANIFESTS / directory)}
    assert ours == by_kubectl


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_rendered_object_validates_strictly(case: str, version: str) -> None:
    for obj in rendered(case):
        if obj["apiVersion"] == "keda.sh/v1alpha1":
            validate_custom(obj)  # a CRD: its schema is KEDA's, not Kubernetes'
        else:
            kubernetes_validate.validate(obj, version, strict=True)


def test_strict_validation_of_the_scaled_object_catches_a_misspelt_field() -> None:
    import jsonschema

    scaled = find(rendered("autoscale-keda"), "ScaledObject")
    validate_custom(scaled)
    scaled["spec"]["maxReplicas"] = 6  # the HPA's name, not KEDA's
    with pytest.raises(jsonschema.ValidationError):
        validate_custom(scaled)
    del scaled["spec"]["maxReplicas"]
    scaled["spec"]["triggers"][0]["metadata"]["treshold"] = "0.7"
    with pytest.raises(ValueError):
        validate_custom(scaled)


def test_strict_validation_catches_a_misspelt_field() -> None:
    deployment = find(rendered("image"), "Deployment")
    server_container([deployment])["readinesProbe"] = {"httpGet": {"path": "/readyz", "port": "http"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_yaml_matches_the_golden_file(case: str) -> None:
    text = to_yaml(rendered(case))
    golden = GOLDEN / f"{case}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), f"rendering changed; review and rerun with UPDATE_GOLDEN=1 ({golden})"


@pytest.mark.parametrize("case", sorted(CASES))
def test_configmap_keys_are_exactly_server_settings_and_the_server_accepts_them(case: str) -> None:
    data = settings(rendered(case))
    unknown = {key for key in data if not key.startswith(PREFIX) or key[len(PREFIX):].lower() not in FIELDS}
    assert not unknown, f"ConfigMap keys the server does not read: {unknown}"
    config = from_env({**data, "FLASHHEAD_API_TOKEN": "t" * 32})
    assert config.host == "0.0.0.0"


@pytest.mark.parametrize("case", sorted(CASES))
def test_configmap_and_deployment_agree_on_every_setting(case: str) -> None:
    objects = rendered(case)
    data, spec, container = settings(objects), pod_spec(objects), server_container(objects)
    config = from_env({**data, "FLASHHEAD_API_TOKEN": "t" * 32})
    # The settings reach the process: the whole ConfigMap by envFrom, the token as a file, nothing shadowed.
    assert container["envFrom"] == [{"configMapRef": {"name": find(objects, "ConfigMap")["metadata"]["name"]}}]
    explicit = {v["name"]: v for v in container["env"]}
    assert not set(explicit) & set(data), "an env entry would override the ConfigMap"
    assert {n for n in explicit if n.startswith(PREFIX)} == {"FLASHHEAD_API_TOKEN_FILE"}
    assert all("valueFrom" not in v for v in explicit.values()), "no secret in the environment"
    assert explicit["MALLOC_ARENA_MAX"]["value"] == "2"
    # The port: container, probes, Service and NetworkPolicy.
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
    assert port == config.port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] in ("http", config.port)
    # Three questions apart: warm (startup), room for one more stream (readiness), alive (liveness).
    assert container["startupProbe"]["httpGet"]["path"] == "/startupz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    # A full pod leaves the endpoints within one period, at the first failed probe.
    assert container["readinessProbe"]["failureThreshold"] == 1 and container["readinessProbe"]["periodSeconds"] <= 2
    service_port = find(objects, "Service")["spec"]["ports"][0]
    assert service_port["targetPort"] in ("http", config.port)
    assert find(objects, "NetworkPolicy")["spec"]["ingress"][0]["ports"][0]["port"] == config.port
    # The load: the progress deadline outlasts the startup budget (the server loads behind /readyz).
    deployment = find(objects, "Deployment")
    startup = container["startupProbe"]
    assert deployment["spec"]["progressDeadlineSeconds"] > startup["periodSeconds"] * startup["failureThreshold"]
    # The drain: Kubernetes waits longer than the server drains.
    assert spec["terminationGracePeriodSeconds"] > config.grace_seconds


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_model_root_is_read_only_and_only_the_compile_cache_and_tmp_are_written(case: str) -> None:
    """The paths are inference/layout.py's; a compromised server cannot rewrite what it runs from."""
    objects = rendered(case)
    data, spec, container = settings(objects), pod_spec(objects), server_container(objects)
    config = from_env({**data, "FLASHHEAD_API_TOKEN": "t" * 32})
    root, cache = str(config.model_root), str(config.resolved_compile_cache_dir)
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    writable = {path for path, mount in mounts.items() if not mount.get("readOnly")}
    assert writable == {"/tmp", cache}, "only the compile cache and /tmp are written"
    assert mounts[root]["readOnly"] is True
    assert not {"TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR", "HF_HOME"} & {v["name"] for v in container["env"]}
    root_volume, cache_volume = volumes[mounts[root]["name"]], volumes[mounts[cache]["name"]]
    if "hostPath" in root_volume:
        tree = Layout.of(root)
        assert root_volume["hostPath"] == {"path": root, "type": "Directory"}
        assert cache == str(tree.compile_cache)
        assert cache_volume["hostPath"] == {"path": cache, "type": "Directory"}
        assert container["command"] == [str(tree.python), "-m", "inference"]
    else:
        assert root_volume["persistentVolumeClaim"]["readOnly"] is True
        assert not cache.startswith(root + "/") and "emptyDir" in cache_volume


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_token_is_a_file_from_the_secret_readable_by_the_servers_group(case: str) -> None:
    objects = rendered(case)
    spec, container = pod_spec(objects), server_container(objects)
    path = PurePosixPath(next(v["value"] for v in container["env"] if v["name"] == "FLASHHEAD_API_TOKEN_FILE"))
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(path.parent))
    assert mount["readOnly"] is True
    secret = next(v for v in spec["volumes"] if v["name"] == mount["name"])["secret"]
    assert secret["items"] == [{"key": "token", "path": path.name}]
    assert secret["defaultMode"] == 0o440
    assert secret["secretName"] == CASES[case][1].get("token_secret", "flashhead-api-token")
    assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_server_gets_no_egress_and_runs_pinned_images(case: str) -> None:
    objects = rendered(case)
    policy = find(objects, "NetworkPolicy")["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"} and policy["egress"] == []
    for container in pod_spec(objects)["containers"]:
        assert "@sha256:" in container["image"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_pods_are_locked_down_and_no_secret_is_in_the_manifests(case: str) -> None:
    objects = rendered(case)
    spec = pod_spec(objects)
    assert spec["automountServiceAccountToken"] is False
    assert find(objects, "ServiceAccount")["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in spec["containers"]:
        assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                                "capabilities": {"drop": ["ALL"]}}
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert not [o for o in objects if o["kind"] == "Secret"]
    assert "FLASHHEAD_API_TOKEN:" not in to_yaml(objects)


@pytest.mark.parametrize("root", ["/data/flashhead", "/srv/gpu 1/fh".replace(" ", "-"), "/opt/models/flashhead/v2"])
@pytest.mark.parametrize("overlay", ["single-gpu-host", "image"])
def test_model_root_moves_every_path_the_layout_puts_under_it(overlay: str, root: str) -> None:
    objects = render(overlay, {"model_root": root} | ({"image": IMAGE} if overlay == "image" else {})).objects
    text = to_yaml(objects)
    assert "/opt/models/flashhead" not in text.replace(root, "<root>")
    container = server_container(objects)
    paths = {m["mountPath"] for m in container["volumeMounts"]}
    config = from_env({**settings(objects), "FLASHHEAD_API_TOKEN": "t" * 32})
    assert {root, str(config.resolved_compile_cache_dir)} <= paths
    if overlay == "single-gpu-host":
        assert container["command"][0] == str(Layout.of(root).python)
        assert config.resolved_compile_cache_dir == Path(Layout.of(root).compile_cache)
    else:
        assert config.resolved_compile_cache_dir == Path("/var/cache/flashhead")


def test_single_gpu_host_overlay_fits_one_gpu_on_one_node() -> None:
    objects = rendered("single-gpu-host-rtx4090")
    deployment = find(objects, "Deployment")
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    assert deployment["spec"]["replicas"] == 1
    spec = pod_spec(objects)
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": "rtx4090"}
    assert "runtimeClassName" not in spec  # --set runtime_class= drops it
    assert server_container(objects)["startupProbe"]["failureThreshold"] * 10 >= 2400
    assert spec["securityContext"]["runAsUser"] == 1001
    assert pod_spec(rendered("single-gpu-host"))["runtimeClassName"] == "nvidia"
    assert not [o for o in objects if o["kind"] == "PodDisruptionBudget"]  # would block every node drain
    # The host venv's interpreter links into the host's /usr: mounted read-only, like the model root's files.
    mounts = {m["mountPath"]: m for m in server_container(objects)["volumeMounts"]}
    assert mounts["/usr"]["readOnly"] is True
    assert {"name": "host-usr", "hostPath": {"path": "/usr", "type": "Directory"}} in spec["volumes"]


def test_image_overlay_scales_one_gpu_per_pod_across_nodes() -> None:
    objects = rendered("image-scaled")
    deployment = find(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 4
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    assert find(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert pod_spec(objects)["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    assert server_container(objects)["image"] == CASES["image-scaled"][1]["image"]


def test_a_host_with_n_gpus_runs_n_pods_of_one_gpu_replaced_one_at_a_time() -> None:
    objects = rendered("gpu-host-4")
    deployment = find(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 4
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    spec = pod_spec(objects)
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": "gpu-4"}
    assert server_container(objects)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert not [o for o in objects if o["kind"] == "PodDisruptionBudget"]  # pinned pods: it would block the drain
    fewer = render("single-gpu-host", {"gpus": "4", "replicas": "2"}).objects
    assert find(fewer, "Deployment")["spec"]["replicas"] == 2


def test_a_pool_spreads_over_labelled_hosts_instead_of_pinning_one() -> None:
    objects = rendered("gpu-pool")
    spec = pod_spec(objects)
    assert spec["nodeSelector"] == {"flashhead.dev/pool": "lite"}
    assert spec["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    assert find(objects, "Deployment")["spec"]["replicas"] == 8


@pytest.mark.parametrize("case", ["autoscale-hpa", "autoscale-keda"])
def test_autoscaled_overlays_leave_the_replica_count_to_the_autoscaler_and_drain_on_scale_in(case: str) -> None:
    objects = rendered(case)
    deployment = find(objects, "Deployment")
    assert "replicas" not in deployment["spec"]  # an apply must not undo the autoscaler's scaling
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    grace = float(settings(objects)["FLASHHEAD_GRACE_SECONDS"])
    assert grace >= 300 and pod_spec(objects)["terminationGracePeriodSeconds"] > grace
    kind = "HorizontalPodAutoscaler" if case == "autoscale-hpa" else "ScaledObject"
    scaler = find(objects, kind)
    assert scaler["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                               "name": deployment["metadata"]["name"]}


@pytest.mark.parametrize("case", ["autoscale-hpa", "autoscale-keda"])
def test_the_deletion_cost_updater_is_locked_down_and_may_only_patch_pods(case: str) -> None:
    objects = render(CASES[case][0], CASES[case][1], namespace="team-a").objects
    name = "flashhead-deletion-cost"
    updater = find(objects, "Deployment", name)["spec"]["template"]["spec"]
    [container] = updater["containers"]
    assert container["image"] == server_container(objects)["image"]  # --set image sets both
    assert container["command"][:3] == ["python", "-m", "inference.deletion_cost"]
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}
    assert updater["securityContext"]["runAsNonRoot"] is True and updater["serviceAccountName"] == name
    assert find(objects, "Role", name)["rules"] == [{"apiGroups": [""], "resources": ["pods"],
                                                    "verbs": ["get", "list", "patch"]}]
    assert find(objects, "RoleBinding", name)["subjects"] == [{"kind": "ServiceAccount", "name": name,
                                                              "namespace": "team-a"}]
    policy = find(objects, "NetworkPolicy", name)["spec"]
    assert policy["ingress"] == [] and {p["port"] for p in policy["egress"][0]["ports"]} == {443, 6443}
    assert policy["egress"][1]["ports"] == [{"port": 8000, "protocol": "TCP"}]
    # The servers keep no token; the Service and the servers' policy do not select the updater.
    assert pod_spec(objects)["automountServiceAccountToken"] is False
    server_labels = find(objects, "Service")["spec"]["selector"]
    assert find(objects, "Deployment", name)["spec"]["template"]["metadata"]["labels"] != server_labels


def test_the_hpa_scales_on_the_per_pod_stream_utilization() -> None:
    hpa = find(rendered("autoscale-hpa"), "HorizontalPodAutoscaler")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 12)
    assert hpa["metrics"] == [{"type": "Pods", "pods": {"metric": {"name": "flashhead_stream_utilization"},
                                                        "target": {"type": "AverageValue", "averageValue": "600m"}}}]
    assert hpa["behavior"]["scaleDown"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 300}]


def test_keda_divides_active_streams_by_capacity_in_the_deployed_namespace() -> None:
    scaled = find(render("autoscale-keda", {"image": IMAGE}, namespace="team-a").objects, "ScaledObject")
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "Value"
    assert trigger["metadata"]["query"] == ('sum(flashhead_active_streams{namespace="team-a"}) / '
                                            'clamp_min(sum(flashhead_stream_capacity{namespace="team-a"}), 1)')
    assert trigger["metadata"]["threshold"] == "0.7"
    assert find(rendered("autoscale-keda"), "ScaledObject")["spec"]["maxReplicaCount"] == 6


def test_a_settings_change_changes_the_pod_template() -> None:
    before = find(render("single-gpu-host").objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    after = find(render("single-gpu-host", {"max_streams": "2"}).objects,
                 "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert before != after


@pytest.mark.parametrize(("overlay", "sets", "words"), [
    ("single-gpu-host", {"replicas": "2"}, "at most one pod per GPU, and the host has 1"),
    ("single-gpu-host", {"replicas": "5", "gpus": "4"}, "the host has 4"),
    ("single-gpu-host", {"gpus": "0"}, "outside 1..64"),
    ("single-gpu-host", {"node": "gpu-1", "pool": "lite"}, "choose one"),
    ("single-gpu-host", {"pool": "Lite Pool"}, "not a label value"),
    ("image", {"gpus": "2"}, "not used by the image overlay"),
    ("autoscale-hpa", {"image": IMAGE, "replicas": "2"}, "not used by the autoscale-hpa overlay"),
    ("autoscale-hpa", {"image": IMAGE, "min_replicas": "5", "max_replicas": "4"}, "above max_replicas"),
    ("autoscale-hpa", {"image": IMAGE, "prometheus_url": "http://p:9090"}, "not used by the autoscale-hpa"),
    ("autoscale-keda", {"image": IMAGE, "prometheus_url": "prometheus:9090"}, "not an http(s) URL"),
    ("autoscale-keda", {"image": IMAGE, "target_utilization": "150"}, "outside 10..100"),
    ("single-gpu-host", {"node": "GPU_1"}, "not a node name"),
    ("single-gpu-host", {"model_root": "models"}, "absolute directory"),
    ("single-gpu-host", {"model_root": "/opt/../etc"}, "absolute directory"),
    ("single-gpu-host", {"model_type": "huge"}, "lite, pro"),
    ("single-gpu-host", {"max_streams": "0"}, "outside 1..64"),
    ("single-gpu-host", {"models_claim": "x"}, "not used by the single-gpu-host overlay"),
    ("image", {"node": "gpu-1"}, "not used by the image overlay"),
    ("image", {"image": "Flash Head"}, "not an image reference"),
    ("image", {"image": "registry.example.com/flashhead:0.1.0"}, "not pinned by digest"),
    ("image", {}, "which is not pinned by digest"),
    ("image", {"colour": "blue"}, "unknown parameter"),
    ("nope", {}, "unknown overlay"),
])
def test_bad_values_are_refused_with_the_key_named(overlay: str, sets: dict[str, str], words: str) -> None:
    with pytest.raises(UsageError) as caught:
        render(overlay, sets)
    assert words in caught.value.message


def test_namespace_flag_moves_every_namespaced_object() -> None:
    objects = render("image", {"image": IMAGE}, namespace="team-a").objects
    assert {o["metadata"]["namespace"] for o in objects} == {"team-a"}
