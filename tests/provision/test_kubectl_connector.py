"""The kubectl connector against a Kubernetes API stand-in whose pods/exec runs on this machine.

What a real cluster does that the stand-in reproduces (tests/provision/kube_node.py): a pod needs
its namespace, the kubelet reports signal deaths as 128+N, pods that cannot start stay Pending with
a waiting reason and events, and an exec upgrade can be refused (no kubelet, container gone) or
cut mid-command.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ops.connectors.kubectl import NSENTER, WRAPPER, KubectlConnector
from ops.connectors.kubepod import DEFAULT_IMAGE, PodExecFailed, PodNotRunning
from ops.errors import SessionLost, UsageError
from ops.inventory import Host
from tests.conftest import REPO, STANDIN_BIN
from tests.provision import kube_node

NODE = "gpu-node-1"
SECRET = "hf_kubeTOKEN_0123456789"
PULL_BACKOFF = {"phase": "Pending", "containerStatuses": [{
    "name": "host", "ready": False, "restartCount": 0, "image": DEFAULT_IMAGE, "imageID": "",
    "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"debian\""}}}]}
PULL_EVENTS = [{"type": "Warning", "reason": "Failed", "message": "Failed to pull image: dial tcp: i/o timeout"},
               {"type": "Normal", "reason": "BackOff", "message": "Back-off pulling image"}]


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    node_path = f"{STANDIN_BIN}:{os.environ['PATH']}"  # the node has an NVIDIA driver (stand-in)
    for cluster in kube_node.start(tmp_path, NODE, {"PATH": node_path}):
        monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
        yield cluster


def connector(node: str = NODE, **variables: object) -> KubectlConnector:
    return KubectlConnector(Host(name=node, connector="kubectl", node=node,
                                 vars={"model_root": "/opt/models/flashhead", "model_type": "lite", **variables}))


def left_behind(cluster) -> tuple[list[str], list[str]]:
    return cluster.pods(), [n for n in cluster.namespaces() if n.startswith("flashhead-provision-")]


def test_run_put_get_through_a_hardened_pod_in_its_own_namespace(cluster, tmp_path):
    with connector() as conn:
        result = conn.run("echo out; echo err >&2; exit 3", check=False)
        assert (result.exit_status, result.stdout, result.stderr) == (3, "out\n", "err\n")
        assert conn.run(["printf", "%s", "a b; $(c)"]).stdout == "a b; $(c)"
        assert conn.run("cat", stdin="piped\n").stdout == "piped\n"
        assert conn.run('printf %s "$TOKEN_UNDER_TEST"', env={"TOKEN_UNDER_TEST": SECRET}).stdout == SECRET
        assert conn.run("kill -KILL $$", check=False).exit_status == 137  # the kubelet's 128 + signal
        pieces: list[tuple[float, bytes]] = []
        started = time.monotonic()
        conn.run("echo first; sleep 1.5; echo second",
                 on_output=lambda _, data: pieces.append((time.monotonic(), data)))
        assert pieces[0][1] == b"first\n" and pieces[0][0] - started < 1.2  # streamed, not at the end
        payload = bytes(range(256)) * 64
        source = tmp_path / "blob"
        source.write_bytes(payload)
        conn.put(source, str(tmp_path / "remote" / "blob"), mode=0o600)
        assert (tmp_path / "remote" / "blob").read_bytes() == payload
        conn.get(str(tmp_path / "remote" / "blob"), tmp_path / "back")
        assert (tmp_path / "back").read_bytes() == payload
        assert conn.is_root
        [pod] = cluster.api.created
        namespace = pod["metadata"]["namespace"]
        assert namespace.startswith("flashhead-provision-") and cluster.api.namespaces_created == [namespace]
        assert cluster.pods() == [pod["metadata"]["name"]]
    spec = pod["spec"]
    assert spec["nodeName"] == NODE and spec["hostPID"] is True and spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False and "tolerations" not in spec
    container = spec["containers"][0]
    assert container["image"] == DEFAULT_IMAGE and "@sha256:" in container["image"]
    assert container["securityContext"] == {"privileged": True, "readOnlyRootFilesystem": True}
    assert spec["activeDeadlineSeconds"] == int(container["command"][1]) > 0
    assert left_behind(cluster) == ([], []) and cluster.api.namespaces_deleted == [namespace]
    assert cluster.api.deleted == [pod["metadata"]["name"]]
    # nothing of the scripts, their env or stdin is in the exec URL: every exec is the same wrapper
    assert {tuple(command) for command in cluster.api.execs} == {(*NSENTER, "bash", "-c", WRAPPER)}


def test_a_given_namespace_is_used_and_kept_and_tolerations_only_as_asked(cluster):
    tolerations = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}]
    with connector(kubectl_namespace="default", kubectl_tolerations=tolerations) as conn:
        conn.run("true")
    [pod] = cluster.api.created
    assert pod["metadata"]["namespace"] == "default" and pod["spec"]["tolerations"] == tolerations
    assert cluster.api.namespaces_created == [] and "default" in cluster.namespaces() and cluster.pods() == []


@pytest.mark.parametrize("variables, words", [
    ({"kubectl_image": "debian:12-slim"}, "is not pinned by digest"),
    ({"kubectl_tolerations": [{"key": "a", "effct": "NoExecute"}]}, "is not a list of tolerations"),
])
def test_an_unpinned_image_or_a_bad_toleration_is_a_usage_error(variables, words):
    with pytest.raises(UsageError, match=words):
        connector(**variables)


def test_a_pod_that_does_not_start_is_explained_with_progress_and_cleaned(cluster):
    cluster.api.pod_status, cluster.api.pod_events = PULL_BACKOFF, PULL_EVENTS
    conn = connector()
    conn.pod_ready_timeout = 6
    seen: list[dict] = []
    conn.on_progress = seen.append
    with pytest.raises(PodNotRunning) as stuck, conn:
        conn.run("true")
    error = stuck.value
    assert "is not running after" in error.message and "ImagePullBackOff" in error.message
    assert error.details["pod_phase"] == "Pending" and "cannot pull" in (error.remedy or "")
    assert any("Failed to pull image" in event for event in error.details["events"])
    assert seen and all("ImagePullBackOff" in e["message"] and e["kind"] == "waiting" for e in seen)
    assert seen[-1]["seconds"] >= 5
    assert left_behind(cluster) == ([], [])


@pytest.mark.parametrize("failure, said", [
    ("upgrade", "unable to upgrade connection: container not found"),
    ("dial", "error dialing backend: dial tcp 10.0.0.7:10250"),
])
def test_an_exec_the_api_server_refuses_is_a_typed_error_with_the_pod_state(cluster, failure, said):
    cluster.api.exec_failure = failure
    with pytest.raises(PodExecFailed) as refused, connector() as conn:
        conn.run("true")
    error = refused.value
    assert said in error.message and error.details["pod_phase"] == "Running" and "events" in error.details
    assert "kubectl exec" in (error.remedy or "") and "export-script" in (error.remedy or "")
    assert left_behind(cluster) == ([], [])


def test_an_exec_stream_cut_mid_command_is_session_lost_like_ssh(cluster):
    cluster.api.exec_failure = "cut"
    with pytest.raises(SessionLost) as lost, connector() as conn:
        conn.run("echo before; sleep 2; echo after")
    assert "without an exit status" in lost.value.message
    assert left_behind(cluster) == ([], [])


def cli(cluster, shared_dir, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ops.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}, cwd=shared_dir, timeout=120)


def test_provision_runs_through_the_kubectl_connector(cluster, shared_dir):
    root = shared_dir / "kubectl-host" / "flashhead"
    result = cli(cluster, shared_dir, "provision", NODE, "--connector", "kubectl", "--step", "preflight",
                 "--step", "venv", "--var", f"model_root={root}", "--var", "python=/usr/bin/python3",
                 "--var", "use_uv=never", "--var", 'disk_gib={"venv": 0.1}', "--output", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (root / ".venv" / "bin" / "python").exists()
    [pod] = cluster.api.created
    assert pod["spec"]["activeDeadlineSeconds"] >= 2 * 3600  # preflight + venv applies, sized to the run
    assert left_behind(cluster) == ([], [])


def test_the_cli_reports_an_exec_failure_as_exit_6_with_the_reason(cluster, shared_dir):
    cluster.api.exec_failure = "dial"
    done = cli(cluster, shared_dir, "doctor", NODE, "--connector", "kubectl", "--output", "json")
    assert done.returncode == 6, done.stdout + done.stderr
    report = json.loads(done.stdout)
    connect = report["checks"][0]
    assert connect["ok"] is False and "error dialing backend" in connect["detail"]
    assert "flashhead-crash" not in done.stderr and left_behind(cluster) == ([], [])


def test_sigterm_while_the_pod_starts_deletes_pod_and_namespace(cluster, shared_dir):
    cluster.api.pod_status = PULL_BACKOFF
    process = subprocess.Popen([sys.executable, "-m", "ops.cli.main", "facts", NODE, "--connector", "kubectl"],
                               env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}, cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not cluster.pods() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cluster.pods(), "the pod was never created"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert left_behind(cluster) == ([], []) and "waiting" not in cluster.namespaces()
