"""The kubectl connector against a Kubernetes API stand-in whose pods/exec runs on this machine."""

from __future__ import annotations

import os

import pytest

from ops.connectors.kubectl import KubectlConnector
from ops.errors import ClusterError
from ops.inventory import Host
from tests.conftest import STANDIN_BIN
from tests.provision import kube_node

NODE = "gpu-node-1"
SECRET = "hf_kubeTOKEN_0123456789"


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    node_path = f"{STANDIN_BIN}:{os.environ['PATH']}"  # the node has an NVIDIA driver (stand-in)
    for cluster in kube_node.start(tmp_path, NODE, {"PATH": node_path}):
        monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
        yield cluster


def connector(node: str = NODE) -> KubectlConnector:
    return KubectlConnector(Host(name=node, connector="kubectl", node=node,
                                 vars={"model_root": "/opt/models/flashhead", "model_type": "lite"}))


def test_run_put_get_through_a_privileged_pod_pinned_to_the_node(cluster, tmp_path):
    with connector() as conn:
        result = conn.run("echo out; echo err >&2; exit 3", check=False)
        assert (result.exit_status, result.stdout, result.stderr) == (3, "out\n", "err\n")
        assert conn.run(["printf", "%s", "a b; $(c)"]).stdout == "a b; $(c)"
        assert conn.run("cat", stdin="piped\n").stdout == "piped\n"
        assert conn.run('printf %s "$TOKEN_UNDER_TEST"', env={"TOKEN_UNDER_TEST": SECRET}).stdout == SECRET
        payload = bytes(range(256)) * 64
        source = tmp_path / "blob"
        source.write_bytes(payload)
        conn.put(source, str(tmp_path / "remote" / "blob"), mode=0o600)
        assert (tmp_path / "remote" / "blob").read_bytes() == payload
        conn.get(str(tmp_path / "remote" / "blob"), tmp_path / "back")
        assert (tmp_path / "back").read_bytes() == payload
        assert conn.is_root
        [pod] = cluster.api.created
        assert cluster.pods() == [pod["metadata"]["name"]]
    spec = pod["spec"]
    assert spec["nodeName"] == NODE and spec["hostPID"] is True and spec["restartPolicy"] == "Never"
    assert spec["containers"][0]["securityContext"] == {"privileged": True}
    assert spec["activeDeadlineSeconds"] > 0
    assert cluster.pods() == [] and cluster.api.deleted == [pod["metadata"]["name"]]  # cleaned up
    assert all(command[:9] == ["nsenter", "-t", "1", "-m", "-u", "-i", "-n", "-p", "--"]
               for command in cluster.api.execs)
    assert not any(SECRET in " ".join(command) for command in cluster.api.execs)  # env never in argv


def test_an_unknown_node_is_a_cluster_error_naming_it(cluster):
    with pytest.raises(ClusterError) as error, connector("no-such-node") as conn:
        conn.run("true")
    assert "no-such-node" in error.value.message + (error.value.remedy or "")
    assert cluster.api.created == []


def test_provision_runs_through_the_kubectl_connector(cluster, shared_dir, cli):
    root = shared_dir / "kubectl-host" / "flashhead"
    result = cli("provision", NODE, "--connector", "kubectl",
                 "--step", "preflight", "--step", "venv",
                 "--var", f"model_root={root}", "--var", "python=/usr/bin/python3", "--var", "use_uv=never",
                 "--var", 'disk_gib={"venv": 0.1}', "--output", "json",
                 env={"KUBECONFIG": str(cluster.kubeconfig)}, cwd=shared_dir)  # no inventory there
    assert result.returncode == 0, result.stdout + result.stderr
    assert (root / ".venv" / "bin" / "python").exists()
    assert cluster.pods() == [] and len(cluster.api.created) == 1

