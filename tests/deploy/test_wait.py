"""wait: every reason a GPU rollout gets stuck, served by the API stand-in, surfaces with a remedy."""

from __future__ import annotations

import pytest

from ops.deploy.apply import ApplyOptions, apply
from ops.deploy.cluster import Cluster
from ops.deploy.render import render
from ops.deploy.wait import wait_for_rollout
from ops.errors import ExitCode, RolloutFailed
from tests.deploy import controller as ctl
from tests.deploy.kube import Kube

GPU_MESSAGE = "0/1 nodes are available: 1 Insufficient nvidia.com/gpu. preemption: 0/1 nodes are available."


@pytest.fixture
def deployed(kube: Kube, cluster: Cluster) -> Kube:
    apply(cluster, render("single-gpu-host", {"node": "rtx4090"}), ApplyOptions(wait=False))
    ctl.replicaset(kube, "aaa111", 1)
    ctl.rollout_started(kube)
    return kube


def fail(cluster: Cluster, timeout: float = 0.3) -> RolloutFailed:
    with pytest.raises(RolloutFailed) as caught:
        wait_for_rollout(cluster, timeout=timeout, poll=0.05)
    assert caught.value.exit_code == ExitCode.ROLLOUT
    return caught.value


def test_a_finished_rollout_returns_its_progress(deployed: Kube, cluster: Cluster) -> None:
    ctl.pod(deployed, "flashhead-aaa111-x1", "aaa111", ctl.ready())
    ctl.rollout_done(deployed)
    progress = wait_for_rollout(cluster, timeout=5, poll=0.05)
    assert progress.complete and progress.summary() == "1/1 updated, 1/1 ready, 1/1 available"


def test_no_free_gpu_reports_the_schedulers_message(deployed: Kube, cluster: Cluster) -> None:
    ctl.pod(deployed, "flashhead-aaa111-x1", "aaa111", ctl.unschedulable(GPU_MESSAGE))
    error = fail(cluster)
    assert "did not finish in 0.3s: Unschedulable (pod flashhead-aaa111-x1)" in error.message
    assert "Insufficient nvidia.com/gpu" in error.message
    assert "device plugin" in (error.remedy or "")


def test_unschedulable_from_events_when_the_condition_is_missing(deployed: Kube, cluster: Cluster) -> None:
    ctl.pod(deployed, "flashhead-aaa111-x1", "aaa111", {"phase": "Pending"})
    ctl.event(deployed, "flashhead-aaa111-x1", "FailedScheduling",
              "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.")
    error = fail(cluster)
    assert "didn't match Pod's node affinity/selector" in error.message
    assert "--set node=" in (error.remedy or "")


def test_image_pull_backoff_fails_at_once(deployed: Kube, cluster: Cluster) -> None:
    ctl.pod(deployed, "flashhead-aaa111-x1", "aaa111", ctl.waiting(
        "ImagePullBackOff", 'Back-off pulling image "registry.example.com/flashhead:9.9"'))
    error = fail(cluster, timeout=120)
    assert error.message.startswith("rollout of Deployment/flashhead failed: ImagePull")
    assert "registry.example.com/flashhead:9.9" in error.message
    assert "imagePullSecrets" in (error.remedy or "")


def test_crash_loop_shows_exit_code_and_the_last_log_lines(deployed: Kube, cluster: Cluster) -> None:
    deployed.server.logs["flashhead-aaa111-x1"] = (
        "loading checkpoints from /opt/models/flashhead/checkpoints\n"
        "inference.errors.ConfigError: checkpoint directory is missing Model_Lite\n")
    ctl.pod(deployed, "flashhead-aaa111-x1", "aaa111", ctl.waiting(
        "CrashLoopBackOff", "back-off 40s restarting failed container", restartCount=3,
        lastState={"terminated": {"exitCode": 2, "reason": "Error"}}))
    error = fail(cluster, timeout=120)
    assert "CrashLoopBackOff" in error.message and "exited with code 2 (Error)" in error.message
    assert "restarted 3 times" in error.message
    assert "checkpoint directory is missing Model_Lite" in error.details["output_tail"]


def test_failing_probes_are_reported_with_the_probe_message(deployed: Kube, cluster: Cluster) -> None:
    ctl.pod(deployed, "flashhead-aaa111-x1", "aaa111", ctl.running_not_ready())
    ctl.event(deployed, "flashhead-aaa111-x1", "Unhealthy",
              "Readiness probe failed: HTTP probe failed with statuscode: 503", count=7, seq=1)
    error = fail(cluster)
    assert "ProbeFailed" in error.message
    assert "Readiness probe failed: HTTP probe failed with statuscode: 503 (7x)" in error.message
    assert "startup_seconds" in (error.remedy or "")


def test_progress_deadline_exceeded_fails_at_once(deployed: Kube, cluster: Cluster) -> None:
    ctl.pod(deployed, "flashhead-aaa111-x1", "aaa111", ctl.running_not_ready())
    deployed.patch("Deployment", ctl.NS, "flashhead", {"status": {"conditions": [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
         "message": 'ReplicaSet "flashhead-aaa111" has timed out progressing.'}]}})
    error = fail(cluster, timeout=120)
    assert "ProgressDeadlineExceeded" in error.message and "has timed out progressing" in error.message


def test_missing_token_secret_fails_at_once(deployed: Kube, cluster: Cluster) -> None:
    ctl.pod(deployed, "flashhead-aaa111-x1", "aaa111", ctl.waiting(
        "CreateContainerConfigError", 'secret "flashhead-api-token" not found'))
    error = fail(cluster, timeout=120)
    assert 'secret "flashhead-api-token" not found' in error.message
    assert "token" in (error.remedy or "")


def test_a_timeout_without_any_reported_problem_still_says_where_it_stands(deployed: Kube,
                                                                           cluster: Cluster) -> None:
    error = fail(cluster)
    assert "1/1 updated, 0/1 ready, 0/1 available" in error.message
    assert "no pod reports a problem" in error.message


def test_an_old_pods_crash_is_not_the_rollouts_reason_but_the_old_pod_is_named(deployed: Kube,
                                                                                 cluster: Cluster) -> None:
    ctl.replicaset(deployed, "bbb222", 2)
    ctl.outdated(deployed, "aaa111")
    ctl.pod(deployed, "flashhead-aaa111-old", "aaa111", ctl.waiting("CrashLoopBackOff", restartCount=9))
    ctl.pod(deployed, "flashhead-bbb222-new", "bbb222", ctl.unschedulable(GPU_MESSAGE))
    error = fail(cluster)
    assert "Unschedulable (pod flashhead-bbb222-new)" in error.message
    assert error.details["other_reasons"] == [
        "OldReplicaSets: ReplicaSet flashhead-aaa111 (revision 1) still holds 1 replica: "
        "pod flashhead-aaa111-old Running, not ready on node rtx4090"]
    assert error.details["progress"].endswith(", 1 old pod still present")


def test_a_model_that_failed_to_load_fails_at_once_with_the_servers_words(deployed: Kube,
                                                                         cluster: Cluster) -> None:
    ctl.pod(deployed, "flashhead-aaa111-x1", "aaa111", ctl.running_not_ready())
    ctl.event(deployed, "flashhead-aaa111-x1", "Unhealthy",
              "Readiness probe failed: HTTP probe failed with statuscode: 503", count=3)
    deployed.server.proxied["flashhead-aaa111-x1:8000/readyz"] = (503, {
        "status": "failed", "code": "backend",
        "message": "checkpoint file /opt/models/flashhead/checkpoints/Model_Lite/model.safetensors is missing",
        "remedy": "run `flashhead provision` again"})
    error = fail(cluster, timeout=120)
    assert error.message.startswith("rollout of Deployment/flashhead failed: ModelLoadFailed")
    assert "Model_Lite/model.safetensors is missing" in error.message
    assert error.remedy == "run `flashhead provision` again"


def test_a_model_still_loading_is_waited_for(deployed: Kube, cluster: Cluster) -> None:
    ctl.pod(deployed, "flashhead-aaa111-x1", "aaa111", ctl.running_not_ready())
    deployed.server.proxied["flashhead-aaa111-x1:8000/readyz"] = (503, {"status": "loading"})
    error = fail(cluster)
    assert "did not finish in 0.3s" in error.message and "ModelLoadFailed" not in error.message


def test_every_pods_reason_is_reported_not_only_the_first(deployed: Kube, cluster: Cluster) -> None:
    ctl.pod(deployed, "flashhead-aaa111-x1", "aaa111", ctl.running_not_ready())
    ctl.event(deployed, "flashhead-aaa111-x1", "Unhealthy", "Startup probe failed: connection refused")
    ctl.pod(deployed, "flashhead-aaa111-x2", "aaa111", ctl.unschedulable(GPU_MESSAGE))
    error = fail(cluster)
    reported = [error.message] + error.details.get("other_reasons", [])
    assert any("ProbeFailed (pod flashhead-aaa111-x1): Startup probe failed" in r for r in reported)
    assert any("Unschedulable (pod flashhead-aaa111-x2)" in r for r in reported)


def crash_loop(kube: Kube, **extra: object) -> None:
    ctl.pod(kube, "flashhead-aaa111-x1", "aaa111", ctl.waiting(
        "CrashLoopBackOff", "back-off 40s restarting failed container", restartCount=3,
        **({"lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}} | dict(extra))))


@pytest.mark.parametrize(("accept", "code"), [
    (None, 200), ("application/json", 200), ("*/*", 200), ("application/*", 200), ("application/yaml", 200),
    ("text/plain, */*", 200), ("application/json, text/plain", 200),
    ("text/plain", 406), ("text/*", 406), ("text/plain;q=1, application/json;q=0", 406), ("image/png", 406),
])
def test_the_stand_in_negotiates_pod_logs_like_the_api_server(deployed: Kube, accept: str | None,
                                                              code: int) -> None:
    """kube-apiserver serializes JSON/YAML/protobuf only and negotiates pods/log against them (#98554)."""
    import urllib.error
    import urllib.request

    crash_loop(deployed)
    deployed.server.logs["flashhead-aaa111-x1"] = "line 1\nline 2\n"
    request = urllib.request.Request(f"{deployed.url}/api/v1/namespaces/flashhead/pods/flashhead-aaa111-x1/log"
                                     "?previous=true", headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer, body = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        answer, body = error.code, error.read().decode()
    assert answer == code
    if code == 406:
        assert "only the following media types are accepted: application/json" in body
    else:
        assert body == "line 1\nline 2\n"


def test_crash_loop_log_lines_are_read_the_way_kubectl_reads_them(deployed: Kube, cluster: Cluster) -> None:
    deployed.server.logs["flashhead-aaa111-x1"] = "".join(f"line {n}\n" for n in range(30)) + "ValueError: boom\n"
    crash_loop(deployed)
    error = fail(cluster, timeout=120)
    tail = error.details["output_tail"].splitlines()
    assert tail[-1] == "ValueError: boom" and len(tail) == 20


@pytest.mark.parametrize(("case", "words"), [
    ("forbidden", 'could not be read: forbidden: pods "flashhead-aaa111-x1" is forbidden: User "dev" cannot get'),
    ("no previous run", 'previous terminated container "server" in pod "flashhead-aaa111-x1" not found'),
    ("empty", "the previous run of pod flashhead-aaa111-x1 wrote nothing to its log"),
])
def test_log_lines_that_cannot_be_read_say_why(deployed: Kube, cluster: Cluster, case: str, words: str) -> None:
    if case == "forbidden":
        deployed.server.forbidden["get", "pods/log"] = (
            'pods "flashhead-aaa111-x1" is forbidden: User "dev" cannot get resource "pods/log"')
        deployed.server.logs["flashhead-aaa111-x1"] = "hidden\n"
        crash_loop(deployed)
    elif case == "no previous run":
        deployed.server.logs["flashhead-aaa111-x1"] = "never read\n"
        crash_loop(deployed, lastState={})
    else:
        crash_loop(deployed)
    error = fail(cluster, timeout=120)
    assert "CrashLoopBackOff" in error.message
    assert "output_tail" not in error.details
    assert words in error.details["logs"]


def test_a_missing_compile_cache_directory_on_the_host_says_how_to_create_it(deployed: Kube,
                                                                             cluster: Cluster) -> None:
    ctl.pod(deployed, "flashhead-aaa111-x1", "aaa111", ctl.waiting("ContainerCreating"))
    ctl.event(deployed, "flashhead-aaa111-x1", "FailedMount",
              'MountVolume.SetUp failed for volume "compile-cache" : hostPath type check failed: '
              "/opt/models/flashhead/.cache/torch-compile is not a directory")
    error = fail(cluster, timeout=120)
    assert "MountFailed (pod flashhead-aaa111-x1)" in error.message and "is not a directory" in error.message
    assert "the directory is missing on rtx4090" in (error.remedy or "") and "install -d" in (error.remedy or "")
