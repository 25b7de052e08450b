"""Reach a node through Kubernetes when SSH is blocked: a short-lived privileged pod pinned to the
node (hostPID, hostNetwork), commands run in the host's namespaces via `nsenter -t 1`.

The pod is created on first use and deleted on close (and has a deadline, so a crashed run does
not leave it behind for long). The script, its environment values and its stdin travel inside the
exec's stdin stream (length-prefixed), never in the exec command line: the API server may log that
URL, and proxies in front of it cap its length.
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ops.connectors.base import Connector, Result, env_script, quote
from ops.errors import ClusterError, CommandTimeout
from ops.inventory import Host

# Needs nothing but nsenter (util-linux): the host's tools do the work. Pinned by digest (12.12-slim).
DEFAULT_IMAGE = "debian:12.12-slim@sha256:d5d3f9c23164ea16f31852f95bd5959aad1c5e854332fe00f7b3a20fcc9f635c"
DEFAULT_NAMESPACE = "default"
# The inventory vars this connector reads (name -> default).
KUBECTL_VARS: dict[str, Any] = {"kubectl_namespace": "", "kubectl_image": DEFAULT_IMAGE, "kubectl_tolerations": []}
POD_DEADLINE_S = 8 * 3600
NSENTER = ["nsenter", "-t", "1", "-m", "-u", "-i", "-n", "-p", "--"]
# Reads "<n>\n<env script>", "<k>\n<script>" and "<m>\n<stdin>" from its stdin, then runs the script.
WRAPPER = ('export LC_ALL=C; IFS= read -r n; e=""; [ "$n" = 0 ] || IFS= read -r -d "" -N "$n" e; '
           'IFS= read -r k; s=""; [ "$k" = 0 ] || IFS= read -r -d "" -N "$k" s; '
           'eval "$e"; unset e; IFS= read -r m; head -c "$m" | bash -c "$s"')


def pod_manifest(name: str, node: str, namespace: str, image: str) -> dict[str, Any]:
    """The privileged pod pinned to `node` that gives us the host's namespaces."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app.kubernetes.io/name": "flashhead-provision",
                                "app.kubernetes.io/managed-by": "flashhead"}},
        "spec": {
            "nodeName": node, "hostPID": True, "hostNetwork": True, "restartPolicy": "Never",
            "activeDeadlineSeconds": POD_DEADLINE_S, "terminationGracePeriodSeconds": 0,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "host", "image": image, "command": ["sleep", str(POD_DEADLINE_S)],
                            "securityContext": {"privileged": True}}],
        },
    }


def stdin_frame(script: str, env: Mapping[str, str] | None, data: bytes) -> bytes:
    """What the wrapper reads: the env exports, the script and the command's stdin, each length-prefixed."""
    exports = env_script(env).encode() if env else b""
    code = script.encode()
    return b"".join(f"{len(part)}\n".encode() + part for part in (exports, code, data))


class KubectlConnector(Connector):
    def __init__(self, host: Host, *, namespace: str | None = None, image: str | None = None,
                 kubeconfig: str | None = None, context: str | None = None, pod_ready_timeout: float = 180.0,
                 accept_new_host_key: bool = False):
        super().__init__(host)
        self.node = host.node or host.name
        self.namespace = namespace or str(host.vars.get("kubectl_namespace") or DEFAULT_NAMESPACE)
        self.image = image or str(host.vars.get("kubectl_image") or DEFAULT_IMAGE)
        self.kubeconfig, self.context = kubeconfig, context
        self.pod_ready_timeout = pod_ready_timeout
        self.pod: str | None = None
        self._api: Any = None

    @property
    def api(self) -> Any:
        if self._api is None:
            from kubernetes import client, config

            path = self.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
            try:
                api_client = config.new_client_from_config(config_file=os.path.expanduser(path), context=self.context)
            except Exception as exc:  # noqa: BLE001 - the client raises several types for one cause
                raise ClusterError(f"cannot load a kubeconfig from {path}: {exc}",
                                   "set KUBECONFIG or ~/.kube/config to a context that can create pods") from exc
            self._api = client.CoreV1Api(api_client)
        return self._api

    def open(self) -> None:
        """Create the pod on the node and wait until it runs."""
        if self.pod is not None:
            return
        self._call(lambda: self.api.read_node(self.node), f"read node {self.node}")
        name = f"flashhead-provision-{secrets.token_hex(4)}"
        self._call(lambda: self.api.create_namespaced_pod(
            self.namespace, pod_manifest(name, self.node, self.namespace, self.image)), "create the pod")
        self.pod = name
        self._wait_running()

    def _wait_running(self) -> None:
        deadline = time.monotonic() + self.pod_ready_timeout
        reason = "Pending"
        while time.monotonic() < deadline:
            pod = self._call(lambda: self.api.read_namespaced_pod(self.pod, self.namespace), "read the pod")
            phase = pod.status.phase if pod.status else None
            if phase == "Running":
                return
            reason = _why_not_running(pod) or str(phase)
            if phase in ("Failed", "Succeeded"):
                break
            time.sleep(0.5)
        self.close()
        raise ClusterError(f"the provisioning pod on node {self.node} did not start: {reason}",
                           "check that the node is Ready, the image can be pulled, and privileged pods are allowed "
                           f"in namespace {self.namespace} (Pod Security level privileged)")

    def _call(self, function: Any, what: str) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return function()
        except HTTPError as exc:
            raise ClusterError(f"cannot reach the Kubernetes API to {what}: {exc}",
                               "check the kubeconfig's server address and the network path to it") from exc
        except ApiException as exc:
            remedy = {403: f"your credentials may not {what} in {self.namespace}; ask for create/delete pods and "
                           "pods/exec there", 404: f"check the node name ({self.node}): kubectl get nodes"}
            raise ClusterError(f"Kubernetes API: cannot {what}: {exc.status} {exc.reason}",
                               remedy.get(exc.status, "check the cluster and your kubeconfig")) from exc

    def _execute(self, script: str, *, env: Mapping[str, str] | None, stdin: str | bytes | None,
                 timeout: float) -> Result:
        from kubernetes.stream import stream

        self.open()
        data = stdin.encode() if isinstance(stdin, str) else (stdin or b"")
        from kubernetes import client as k8s

        # stream() swaps its ApiClient's request method while it runs: one ApiClient per exec, so
        # concurrent checks and the plain API calls never share a patched client
        exec_api = k8s.CoreV1Api(k8s.ApiClient(self.api.api_client.configuration))
        client = self._call(lambda: stream(
            exec_api.connect_get_namespaced_pod_exec, self.pod, self.namespace,
            command=[*NSENTER, "bash", "-c", WRAPPER], stdin=True, stdout=True, stderr=True, tty=False,
            _preload_content=False), "exec in the pod")
        stdout, stderr = [], []
        deadline = time.monotonic() + timeout
        try:
            client.write_stdin(stdin_frame(script, env, data))
            while client.is_open():
                client.update(timeout=0.5)
                if client.peek_stdout():
                    stdout.append(client.read_stdout())
                if client.peek_stderr():
                    stderr.append(client.read_stderr())
                if time.monotonic() > deadline:
                    raise CommandTimeout(script, -1, "".join(stdout + stderr), f"the command ran past {timeout:.0f} s")
            status = client.returncode
        finally:
            client.close()
            exec_api.api_client.close()
        return Result(script, int(status if status is not None else -1), "".join(stdout), "".join(stderr),
                      lost=status is None)  # the WebSocket closed without a status frame

    def put(self, local_path: str | Path, remote_path: str, *, mode: int | None = None,
            sudo: bool = False) -> None:
        temp = f"{remote_path}.partial-{secrets.token_hex(4)}"
        final_mode = oct(mode if mode is not None else 0o644)[2:]
        self.run(f"mkdir -p \"$(dirname {quote(remote_path)})\" && cat > {quote(temp)} && "
                 f"chmod {final_mode} {quote(temp)} && mv -f {quote(temp)} {quote(remote_path)}",
                 stdin=Path(local_path).read_bytes())

    def get(self, remote_path: str, local_path: str | Path) -> None:
        encoded = self.run(["base64", "-w0", remote_path]).stdout
        Path(local_path).write_bytes(base64.b64decode(encoded))

    def close(self) -> None:
        """Delete the pod (now, without grace)."""
        if self.pod is None or self._api is None:
            return
        name, self.pod = self.pod, None
        from kubernetes.client.exceptions import ApiException

        try:
            self._api.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                raise ClusterError(f"could not delete the provisioning pod {self.namespace}/{name}: {exc.reason}",
                                   f"delete it yourself: kubectl -n {self.namespace} delete pod {name}") from exc


def _why_not_running(pod: Any) -> str | None:
    for status in (pod.status.container_statuses or []) if pod.status else []:
        waiting = status.state.waiting if status.state else None
        if waiting and waiting.reason:
            return f"{waiting.reason}: {waiting.message or ''}".strip(": ")
    for condition in (pod.status.conditions or []) if pod.status else []:
        if condition.status != "True" and condition.message:
            return f"{condition.reason}: {condition.message}"
    return None
