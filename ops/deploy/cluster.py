"""A handle on one Kubernetes API: kubeconfig loading, raw-dict REST calls, errors users can act on.

Objects travel as plain dicts (what the manifests are); the `kubernetes` client does the
kubeconfig, auth, TLS and HTTP. Every API failure becomes a ClusterError that says what happened
and what to do.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ops.deploy.kinds import KINDS, Kind, kind_of
from ops.errors import ClusterError

DEFAULT_NAMESPACE = "flashhead"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
FIELD_MANAGER = "flashhead"
REQUEST_TIMEOUT = (10, 60)  # connect, read (seconds)


class Cluster:
    """One API server, one namespace. Build it with `Cluster.connect`."""

    def __init__(self, api_client: Any, namespace: str = DEFAULT_NAMESPACE, context: str | None = None):
        self.api = api_client
        self.namespace = namespace
        self.context = context

    @property
    def server(self) -> str:
        return str(self.api.configuration.host)

    @classmethod
    def connect(cls, kubeconfig: str | None = None, context: str | None = None,
                namespace: str | None = None) -> Cluster:
        """Load the kubeconfig (flag, $KUBECONFIG, ~/.kube/config; in a pod: the service account)."""
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or "~/.kube/config"
        path = str(Path(path).expanduser())
        configuration = client.Configuration()
        try:
            if not kubeconfig and not Path(path).is_file() and os.environ.get("KUBERNETES_SERVICE_HOST"):
                config.load_incluster_config(client_configuration=configuration)
            else:
                if not Path(path).is_file():
                    raise ClusterError(
                        f"no kubeconfig: {path} does not exist",
                        "pass --kubeconfig PATH or set KUBECONFIG; on k3s copy /etc/rancher/k3s/k3s.yaml "
                        "from the node and replace 127.0.0.1 in `server:` with the node's address")
                config.load_kube_config(config_file=path, context=context, client_configuration=configuration)
        except ConfigException as error:
            raise ClusterError(f"cannot use kubeconfig {path}: {error}",
                               "check the file and the --context name (kubectl config get-contexts)") from None
        configuration.retries = 1
        return cls(client.ApiClient(configuration), namespace or DEFAULT_NAMESPACE, context)

    # ---- raw REST ----

    def request(self, method: str, path: str, body: Any = None, query: list[tuple[str, str]] | None = None,
                content_type: str | None = None, what: str = "") -> Any:
        """One API call; returns the decoded JSON body; raises ClusterError (ApiError for HTTP errors)."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            serialized = self.api.param_serialize(method=method, resource_path=path, query_params=query or [],
                                                  header_params=headers, body=body,
                                                  auth_settings=["BearerToken"])
            response = self.api.call_api(*serialized, _request_timeout=REQUEST_TIMEOUT)
            response.read()
            return self.api.response_deserialize(response, {"2XX": "object"}).data
        except ApiException as error:
            raise ApiError.from_exception(error, method, path, what or path, self) from None
        except (HTTPError, OSError) as error:
            raise ClusterError(
                f"cannot reach the Kubernetes API at {self.server}: {_root_cause(error)}",
                "check the `server:` address of the kubeconfig context, that the API server runs "
                "(k3s: `sudo systemctl status k3s`) and that port 6443 is open to this machine",
                details={"server": self.server}) from None

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The live object, or None when it does not exist."""
        k = KINDS[kind]
        try:
            result: dict[str, Any] = self.request("GET", k.object_path(namespace or self.namespace, name),
                                                  what=f"{kind}/{name}")
            return result
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def list(self, kind: str, selector: dict[str, str] | None = None,
             namespace: str | None = None) -> list[dict[str, Any]]:
        """Objects of `kind` in the namespace whose labels match `selector` (checked here too)."""
        k = KINDS[kind]
        query = [("labelSelector", ",".join(f"{a}={b}" for a, b in selector.items()))] if selector else []
        try:
            result = self.request("GET", k.collection_path(namespace or self.namespace), query=query,
                                  what=f"{k.plural}") or {}
        except ApiError as error:
            if k.optional and error.status == 404:  # the API (a CRD) is not installed: none exist
                return []
            raise
        items = [_with_kind(item, k) for item in result.get("items", [])]
        return [item for item in items if labels_match(item, selector or {})]

    def apply(self, obj: dict[str, Any], dry_run: bool = False, force: bool = False) -> dict[str, Any]:
        """Server-side apply of `obj` with field manager `flashhead`; the server creates or patches."""
        k = kind_of(obj)
        query = [("fieldManager", FIELD_MANAGER)]
        if force:
            query.append(("force", "true"))
        if dry_run:
            query.append(("dryRun", "All"))
        name = obj["metadata"]["name"]
        path = k.object_path(obj["metadata"].get("namespace", self.namespace), name)
        try:
            result: dict[str, Any] = self.request("PATCH", path, body=obj, query=query, content_type=APPLY_PATCH,
                                                  what=f"{obj['kind']}/{name}")
        except ApiError as error:
            if k.optional and error.status == 404:
                raise ApiError(f"this cluster does not serve {k.api_version} {k.kind} (its CRD is not installed)",
                               "install the operator that defines it (for ScaledObject: KEDA, keda.sh), or use an "
                               "overlay without it", error.status, error.reason) from None
            raise
        return result

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create `obj` (POST); for records this tool alone writes, such as the history."""
        k = kind_of(obj)
        path = k.collection_path(obj["metadata"].get("namespace", self.namespace))
        result: dict[str, Any] = self.request("POST", path, body=obj, query=[("fieldManager", FIELD_MANAGER)],
                                              what=f"{obj['kind']}/{obj['metadata']['name']}")
        return result

    def merge_patch(self, kind: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("PATCH", KINDS[kind].object_path(self.namespace, name), body=patch,
                                              query=[("fieldManager", FIELD_MANAGER)],
                                              content_type=MERGE_PATCH, what=f"{kind}/{name}")
        return result

    def delete(self, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete (foreground for Deployments, so their pods go too); False when already gone."""
        k = KINDS[kind]
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Foreground"}
        try:
            self.request("DELETE", k.object_path(namespace or self.namespace, name), body=body,
                         what=f"{kind}/{name}")
            return True
        except ApiError as error:
            if error.status == 404:
                return False
            raise

    def pod_log(self, pod: str, container: str, previous: bool = False, tail: int = 20) -> str:
        """The last `tail` lines of a container's log; ClusterError (ApiError) says why it cannot be read.

        Asked the way the client library and kubectl ask: the API server negotiates pods/log like
        any endpoint and answers 406 to `Accept: text/plain`, though the body is plain text.
        """
        from kubernetes.client import CoreV1Api
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        path = KINDS["Pod"].object_path(self.namespace, pod) + "/log"
        try:
            text = CoreV1Api(self.api).read_namespaced_pod_log(
                pod, self.namespace, container=container, previous=previous, tail_lines=tail,
                _request_timeout=REQUEST_TIMEOUT)
        except ApiException as error:
            raise ApiError.from_exception(error, "GET", path, f"the log of pod {pod}", self) from None
        except (HTTPError, OSError) as error:
            raise ClusterError(f"cannot reach the Kubernetes API at {self.server}: {_root_cause(error)}") from None
        return str(text or "")

    def proxy_get(self, kind: str, target: str, path: str) -> tuple[int, Any]:
        """GET `path` on a pod or service (`name:port`) through the API server's proxy.

        Returns (HTTP status, JSON body or None); status 0 when there was no answer. An HTTP error
        from the server is an answer here, not a failure. The API server consumes our
        Authorization header, so endpoints that need the server's own token answer 401.
        """
        proxy = KINDS[kind].object_path(self.namespace, target) + "/proxy" + path
        try:
            serialized = self.api.param_serialize(method="GET", resource_path=proxy,
                                                  header_params={"Accept": "application/json"},
                                                  auth_settings=["BearerToken"])
            response = self.api.call_api(*serialized, _request_timeout=REQUEST_TIMEOUT)
            response.read()
            return int(response.status), _status_body(response.data)
        except Exception:  # noqa: BLE001 - the server's own answer is a best-effort addition
            return 0, None

    def namespace_exists(self) -> bool | None:
        """True/False; None when RBAC hides namespaces (a namespaced Role cannot read them)."""
        try:
            return self.get("Namespace", self.namespace) is not None
        except ApiError as error:
            if error.status == 403:
                return None
            raise

    def require_namespace(self, create: bool = False) -> bool:
        """Check the namespace exists; create it when `create`. Returns True when it was created."""
        if self.namespace_exists() is not False:
            return False
        if not create:
            raise ClusterError(f"namespace {self.namespace!r} does not exist",
                               f"create it: `kubectl create namespace {self.namespace}`, or pass "
                               f"--create-namespace, or choose another with -n")
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}})
        return True


class ApiError(ClusterError):
    """The API server answered with an HTTP error (status, reason and its message kept)."""

    def __init__(self, message: str, remedy: str | None, status: int, reason: str):
        super().__init__(message, remedy, details={"status": status, "reason": reason})
        self.status = status
        self.reason = reason

    @classmethod
    def from_exception(cls, error: Any, method: str, path: str, what: str, cluster: Cluster) -> ApiError:
        status = int(error.status or 0)
        body = _status_body(error.body)
        message = body.get("message") or error.reason or "no message"
        reason = body.get("reason") or str(error.reason or "")
        namespace = cluster.namespace
        if status == 401:
            return cls(f"the API server at {cluster.server} rejected the credentials (401 Unauthorized)",
                       "the kubeconfig's token or certificate is expired or wrong; fetch a fresh kubeconfig",
                       status, reason)
        if status == 403:
            return cls(f"forbidden: {message}",
                       f"ask a cluster admin for a Role in namespace {namespace} that allows this "
                       f"(see `kubectl auth can-i --list -n {namespace}`), or use a context that has it",
                       status, reason)
        if status == 409 and reason == "Conflict" and _conflicts(body):
            owners = ", ".join(sorted({c.get("message", "").removeprefix("conflict with ") for c in _conflicts(body)}))
            return cls(f"conflict applying {what}: {message}",
                       f"another field manager ({owners}) changed these fields since the last apply (kubectl "
                       "edit, set, scale?): put the value you want in --set, or rerun with --force-conflicts to "
                       "take the fields over (their change is overwritten)", status, reason)
        if status == 409:
            return cls(f"conflict on {what}: {message}",
                       "the object changed or exists already; look at it (kubectl get -o yaml) and retry",
                       status, reason)
        if status == 422:
            return cls(f"the API server rejected {what}: {message}",
                       "fix the value named above (render shows the objects)", status, reason)
        return cls(f"{method} {what}: {status} {reason}: {message}", None, status, reason)


def labels_match(obj: dict[str, Any], selector: dict[str, str]) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in selector.items())


def _with_kind(item: dict[str, Any], kind: Kind) -> dict[str, Any]:
    item.setdefault("apiVersion", kind.api_version)
    item.setdefault("kind", kind.kind)
    return item


def _conflicts(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The field-manager conflicts a 409 Status names (details.causes)."""
    causes = (body.get("details") or {}).get("causes") or []
    return [c for c in causes if isinstance(c, dict) and c.get("reason") == "FieldManagerConflict"]


def _status_body(body: Any) -> dict[str, Any]:
    try:
        parsed = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _root_cause(error: BaseException) -> str:
    reason = getattr(error, "reason", None)
    text = str(reason or error)
    for marker in ("Connection refused", "Name or service not known", "timed out", "No route to host",
                   "certificate verify failed"):
        if marker in text:
            return marker.lower()
    return text
