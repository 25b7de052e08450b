"""Reach a node through Kubernetes when SSH is blocked: a short-lived privileged pod pinned to the
node, commands run in the host's namespaces via `nsenter -t 1` (the pod: ops/connectors/kubepod.py).

The pod lives in a namespace of its own, created for the run and deleted with it on every way out
(done, failed, Ctrl-C, SIGTERM); its deadline, sized to the run, ends it if the tool is killed
outright. `kubectl_namespace` names an existing namespace to use instead (then only the pod is
created and deleted). While the pod starts, its phase is reported; if it does not start, the error
carries its phase, reason and events. The script, its environment values and its stdin travel
inside the exec's stdin stream (length-prefixed), never in the exec command line: the API server
may log that URL, and proxies in front of it cap its length.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ops.connectors.base import Connector, OutputSink, Result, env_script, quote
from ops.connectors.kubepod import (
    DEFAULT_IMAGE,
    KUBECTL_VARS,
    PodExecFailed,
    PodNotRunning,
    check_image,
    check_tolerations,
    exec_failure,
    namespace_manifest,
    not_running_remedy,
    pod_events,
    pod_manifest,
    pod_state,
)
from ops.errors import ClusterError, CommandTimeout
from ops.inventory import Host

__all__ = ["DEFAULT_IMAGE", "KUBECTL_VARS", "KubectlConnector", "stdin_frame"]
NSENTER = ["nsenter", "-t", "1", "-m", "-u", "-i", "-n", "-p", "--"]
# Reads "<n>\n<env script>", "<k>\n<script>" and "<m>\n<stdin>" from its stdin, then runs the script.
WRAPPER = ('export LC_ALL=C; IFS= read -r n; e=""; [ "$n" = 0 ] || IFS= read -r -d "" -N "$n" e; '
           'IFS= read -r k; s=""; [ "$k" = 0 ] || IFS= read -r -d "" -N "$k" s; '
           'eval "$e"; unset e; IFS= read -r m; head -c "$m" | bash -c "$s"')
DEFAULT_DEADLINE_S = 3600  # doctor, facts; provision says how long its run may take (expect_run)
PROGRESS_EVERY_S = 5.0


def stdin_frame(script: str, env: Mapping[str, str] | None, data: bytes) -> bytes:
    """What the wrapper reads: the env exports, the script and the command's stdin, each length-prefixed."""
    exports = env_script(env).encode() if env else b""
    return b"".join(f"{len(part)}\n".encode() + part for part in (exports, script.encode(), data))


class KubectlConnector(Connector):
    def __init__(self, host: Host, *, namespace: str | None = None, image: str | None = None,
                 kubeconfig: str | None = None, context: str | None = None, pod_ready_timeout: float = 180.0,
                 accept_new_host_key: bool = False):
        super().__init__(host)
        self.node = host.node or host.name
        given = namespace or str(host.vars.get("kubectl_namespace") or "")
        self.own_namespace = not given
        self.namespace = given or f"flashhead-provision-{secrets.token_hex(4)}"
        self.image = check_image(image or str(host.vars.get("kubectl_image") or DEFAULT_IMAGE))
        self.tolerations = check_tolerations(host.vars.get("kubectl_tolerations") or [])
        self.kubeconfig, self.context = kubeconfig, context
        self.pod_ready_timeout = pod_ready_timeout
        self.deadline_s = DEFAULT_DEADLINE_S
        self.pod: str | None = None
        self._namespace_created = False
        self._api: Any = None

    def expect_run(self, seconds: float) -> None:
        """Size the pod's deadline to the coming work (before the first command)."""
        self.deadline_s = int(seconds) + 600

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
        """Create the namespace and the pod on the node, and wait until the pod runs; on any failure,
        delete what was created."""
        if self.pod is not None:
            return
        self._call(lambda: self.api.read_node(self.node), f"read node {self.node}")
        try:
            # Each name is recorded before its request: a signal that lands while the cluster answers must
            # still delete what it made. A refused or unreached request (ClusterError) made nothing.
            if self.own_namespace:
                self._namespace_created = True
                try:
                    self._call(lambda: self.api.create_namespace(namespace_manifest(self.namespace)),
                               f"create namespace {self.namespace}")
                except ClusterError:
                    self._namespace_created = False
                    raise
            name = self.pod = f"flashhead-provision-{secrets.token_hex(4)}"
            try:
                self._call(lambda: self.api.create_namespaced_pod(self.namespace, pod_manifest(
                    name, self.node, self.namespace, self.image, self.deadline_s, self.tolerations)), "create the pod")
            except ClusterError:
                self.pod = None
                raise
            self._wait_running()
        except BaseException:
            self._clean_up(quiet=True)
            raise

    def _wait_running(self) -> None:
        started = time.monotonic()
        said, last = 0.0, ""
        while True:
            pod = self._call(lambda: self.api.read_namespaced_pod(self.pod, self.namespace), "read the pod")
            phase, reason = pod_state(pod)
            if phase == "Running":
                return
            waited = time.monotonic() - started
            if phase in ("Failed", "Succeeded") or waited > self.pod_ready_timeout:
                break
            state = f"{phase} ({reason})" if reason else phase
            if state != last or waited - said >= PROGRESS_EVERY_S:
                self.report("waiting", f"pod {self.namespace}/{self.pod} on node {self.node}: {state}",
                            seconds=round(waited, 1))
                said, last = waited, state
            time.sleep(0.5)
        events = pod_events(self.api, self.namespace, str(self.pod))
        raise PodNotRunning(
            f"the provisioning pod {self.namespace}/{self.pod} on node {self.node} is not running after "
            f"{time.monotonic() - started:.0f} s: {phase}{f' ({reason})' if reason else ''}",
            not_running_remedy(reason, self.node, self.namespace, self.image),
            details={"pod_phase": phase, "reason": reason, "events": events})

    def _call(self, function: Any, what: str) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return function()
        except HTTPError as exc:
            raise ClusterError(f"cannot reach the Kubernetes API to {what}: {exc}",
                               "check the kubeconfig's server address and the network path to it") from exc
        except ApiException as exc:
            remedy = {403: f"your credentials may not {what}: ask for create/delete of namespaces (or set "
                           "kubectl_namespace to one you may use), pods and pods/exec",
                      404: f"check the node name ({self.node}): kubectl get nodes"}
            raise ClusterError(f"Kubernetes API: cannot {what}: {exc.status} {exc.reason}",
                               remedy.get(exc.status, "check the cluster and your kubeconfig")) from exc

    def _exec_failed(self, exc: Exception) -> PodExecFailed:
        phase, reason = "unknown", ""
        with contextlib.suppress(Exception):  # the pod's state only explains the failure
            phase, reason = pod_state(self.api.read_namespaced_pod(self.pod, self.namespace))
        said = exec_failure(exc)
        return PodExecFailed(
            f"cannot run commands in the provisioning pod {self.namespace}/{self.pod} on node {self.node}: {said}",
            f"the API server could not open an exec session to the kubelet on {self.node}: check that the node is "
            f"Ready (kubectl get node {self.node}) and that `kubectl exec` works for pods on it (the kubelet's "
            "port 10250 reachable from the control plane, no proxy refusing the upgrade); meanwhile use SSH or "
            "`flashhead export-script`",
            details={"pod_phase": phase, "reason": reason, "api_said": said,
                     "events": pod_events(self.api, self.namespace, str(self.pod))})

    def _execute(self, script: str, *, env: Mapping[str, str] | None, stdin: str | bytes | None,
                 timeout: float, on_output: OutputSink | None = None) -> Result:
        from kubernetes import client as k8s
        from kubernetes.client.exceptions import ApiException
        from kubernetes.stream import stream
        from websocket import WebSocketException

        self.open()
        data = stdin.encode() if isinstance(stdin, str) else (stdin or b"")
        # stream() swaps its ApiClient's request method while it runs: one ApiClient per exec, so
        # concurrent checks and the plain API calls never share a patched client
        exec_api = k8s.CoreV1Api(k8s.ApiClient(self.api.api_client.configuration))
        try:
            client = stream(exec_api.connect_get_namespaced_pod_exec, self.pod, self.namespace,
                            command=[*NSENTER, "bash", "-c", WRAPPER], stdin=True, stdout=True, stderr=True,
                            tty=False, _preload_content=False)
        except ApiException as exc:
            exec_api.api_client.close()
            raise self._exec_failed(exc) from exc
        stdout: list[str] = []
        stderr: list[str] = []
        deadline = time.monotonic() + timeout
        try:
            client.write_stdin(stdin_frame(script, env, data))
            while client.is_open():
                client.update(timeout=0.5)
                for name, peek, read, into in (("stdout", client.peek_stdout, client.read_stdout, stdout),
                                               ("stderr", client.peek_stderr, client.read_stderr, stderr)):
                    if peek():
                        into.append(read())
                        if on_output is not None:
                            on_output(name, into[-1].encode())
                if time.monotonic() > deadline:
                    raise CommandTimeout(script, -1, "".join(stdout + stderr), f"the command ran past {timeout:.0f} s")
            status = _returncode(client)
        except (OSError, WebSocketException) as exc:  # the WebSocket broke mid-command: no status
            status = None
            stderr.append(f"\n(the exec stream broke: {exc})")
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
        """Delete the pod (now, without grace) and the namespace this run created."""
        self._clean_up(quiet=False)

    def __exit__(self, *exc: object) -> None:
        self._clean_up(quiet=exc[0] is not None)  # never hide the error that is on its way out

    def _clean_up(self, quiet: bool) -> None:
        if self._api is None:
            return
        from kubernetes.client.exceptions import ApiException

        failures: list[tuple[str, str, Exception]] = []
        pod, self.pod = self.pod, None
        steps = [(f"pod {self.namespace}/{pod}", f"kubectl -n {self.namespace} delete pod {pod}",
                  lambda: self._api.delete_namespaced_pod(pod, self.namespace, grace_period_seconds=0))] if pod else []
        if self._namespace_created:
            self._namespace_created = False
            steps.append((f"namespace {self.namespace}", f"kubectl delete namespace {self.namespace}",
                          lambda: self._api.delete_namespace(self.namespace)))
        for what, command, delete in steps:
            try:
                delete()
            except ApiException as exc:
                if exc.status != 404:
                    failures.append((what, command, exc))
            except Exception as exc:  # noqa: BLE001 - try the other deletions, then report
                failures.append((what, command, exc))
        if not failures:
            return
        message = "could not delete " + ", ".join(f"{what} ({exc})" for what, _, exc in failures)
        remedy = "delete it yourself: " + "; ".join(command for _, command, _ in failures)
        if quiet:
            self.report("warning", f"{message}; {remedy}")
            return
        raise ClusterError(message, remedy)


def _returncode(client: Any) -> int | None:
    """The exit status from the exec's status channel; None when the stream ended without one."""
    try:
        status = client.returncode
    except Exception:  # noqa: BLE001 - an empty or unreadable status channel: the stream was cut
        return None
    return None if status is None else int(status)
