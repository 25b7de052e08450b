"""A Kubernetes API stand-in for the deploy tests: kmock's emulator plus what a real API server does.

kmock 0.8's `KubernetesEmulator` stores objects and merges patches as plain dicts. A real API
server also: creates the object on a server-side-apply PATCH when it does not exist, stores
nothing on `dryRun=All`, answers 403 for what RBAC denies, serves pod logs and proxies to
Services. `ApiServer` adds exactly those, so the client code runs its real code paths over HTTP.
No controllers run: tests set Deployment/ReplicaSet/Pod status and Events themselves.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml
from kmock._internal.dicts import merge_patch_dict
from kmock._internal.k8s import KubernetesError

from tests.kmock_thread import serve_in_background

RESOURCES = {
    "v1/namespaces": ("Namespace", False),
    "v1/configmaps": ("ConfigMap", True),
    "v1/secrets": ("Secret", True),
    "v1/services": ("Service", True),
    "v1/serviceaccounts": ("ServiceAccount", True),
    "v1/pods": ("Pod", True),
    "v1/events": ("Event", True),
    "v1/persistentvolumeclaims": ("PersistentVolumeClaim", True),
    "apps/v1/deployments": ("Deployment", True),
    "apps/v1/replicasets": ("ReplicaSet", True),
    "policy/v1/poddisruptionbudgets": ("PodDisruptionBudget", True),
    "networking.k8s.io/v1/networkpolicies": ("NetworkPolicy", True),
}
NAMESPACE_PATH = re.compile(r"/api/v1/namespaces/([^/]+)")
# What the API server serializes; pods/log is negotiated against these like every endpoint, so
# `Accept: text/plain` alone is refused (kubernetes/kubernetes#98554), though the body is plain text.
MEDIA_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
NOT_ACCEPTABLE = f"only the following media types are accepted: {', '.join(MEDIA_TYPES)}"
PLURALS = {kind: resource for resource, (kind, _) in RESOURCES.items()}


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesEmulator):
    """kmock's emulator with server-side-apply creation, dry runs, RBAC denials, logs and proxy."""

    forbidden: dict[tuple[str, str], str] = attrs.field(factory=dict)  # (verb, plural) -> message
    logs: dict[str, str] = attrs.field(factory=dict)  # pod name -> log text
    proxied: dict[str, Any] = attrs.field(factory=dict)  # "name:port/path" -> JSON, or (status, JSON)

    async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
        named_namespace = NAMESPACE_PATH.fullmatch(request.url.path)
        resource = request.resource
        plural = "namespaces" if named_namespace else str(getattr(resource, "plural", ""))
        if request.subresource:
            plural += "/" + request.subresource.split("/")[0]
        verb = {"GET": "get", "PATCH": "patch", "POST": "create", "DELETE": "delete"}.get(request.method.value, "")
        if (verb, plural) in self.forbidden:
            return await self._render_error(KubernetesError(403, "Forbidden", self.forbidden[verb, plural]))
        if named_namespace:
            return await self._namespace(request, named_namespace.group(1))
        if resource is None:
            return await super()._handle(request)
        subresource = request.subresource or ""
        if subresource == "log":
            return await self._log(request)
        if subresource.startswith("proxy"):
            target = f"{request.name}{subresource[len('proxy'):]}"
            if target not in self.proxied:
                return await self._render_error(KubernetesError(
                    503, "ServiceUnavailable", f'no endpoints available for service "{request.name}"'))
            answer = self.proxied[target]
            code, body = answer if isinstance(answer, tuple) else (200, answer)
            return aiohttp.web.json_response(body, status=code)
        if request.method.value == "PATCH" and "apply-patch" in request.headers.get("Content-Type", ""):
            key = (resource, request.namespace, request.name)
            async with self._lock:
                exists = key in self._objects and not self._objects[key].deleted
                if request.params.get("dryRun") == "All":
                    base = self._objects[key].raw if exists else {}
                    return aiohttp.web.json_response(dict(merge_patch_dict(base, request.data)))
                if not exists and key in self._objects:
                    self._objects[key].create(request.data)
                elif not exists:
                    self._objects[key] = request.data
        return await super()._handle(request)


    async def _log(self, request: Any) -> aiohttp.web.StreamResponse:
        """pods/log as the real API server serves it: negotiated Accept, 400s the kubelet would give."""
        if not acceptable(request.headers.get("Accept")):
            return await self._render_error(KubernetesError(406, "NotAcceptable", NOT_ACCEPTABLE))
        pod = await self._read("v1/pods", request.namespace, request.name)
        if pod is None:
            return await self._render_error(KubernetesError(404, "NotFound", f'pods "{request.name}" not found'))
        containers = [c["name"] for c in (pod.get("spec") or {}).get("containers", [])]
        container = request.params.get("container") or (containers[0] if len(containers) == 1 else "")
        if container not in containers:
            return await self._render_error(KubernetesError(
                400, "BadRequest", f"container {container} is not valid for pod {request.name}"))
        statuses = {c.get("name"): c for c in (pod.get("status") or {}).get("containerStatuses") or []}
        state = statuses.get(container, {})
        if request.params.get("previous") == "true":
            if not (state.get("lastState") or {}).get("terminated"):
                return await self._render_error(KubernetesError(
                    400, "BadRequest", f'previous terminated container "{container}" in pod "{request.name}" '
                                       "not found"))
        elif not state.get("state", {}).get("running") and not state.get("state", {}).get("terminated"):
            waiting = (state.get("state") or {}).get("waiting", {}).get("reason", "ContainerCreating")
            return await self._render_error(KubernetesError(
                400, "BadRequest", f'container "{container}" in pod "{request.name}" is waiting to start: {waiting}'))
        lines = self.logs.get(request.name, "").splitlines(keepends=True)
        tail = int(request.params.get("tailLines", 0) or 0)
        return aiohttp.web.Response(text="".join(lines[-tail:] if tail else lines), content_type="text/plain")

    async def _read(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        key = (kmock.resource(resource), namespace, name)
        async with self._lock:
            if key not in self._objects or self._objects[key].deleted:
                return None
            return dict(self._objects[key].raw)

    async def _namespace(self, request: Any, name: str) -> aiohttp.web.StreamResponse:
        """kmock reads /api/v1/namespaces/NAME as a namespace without a resource; serve it as an object."""
        key = (kmock.resource("v1/namespaces"), None, name)
        async with self._lock:
            exists = key in self._objects and not self._objects[key].deleted
            if request.method.value == "PATCH":
                if exists:
                    self._objects[key].patch(request.data)
                elif key in self._objects:
                    self._objects[key].create(request.data)
                else:
                    self._objects[key] = request.data
                return aiohttp.web.json_response(dict(self._objects[key].raw))
            if not exists:
                return await self._render_error(KubernetesError(404, "NotFound", f'namespaces "{name}" not found'))
            if request.method.value == "DELETE":
                self._objects[key].delete()
            return aiohttp.web.json_response(dict(self._objects[key].last.raw))


def acceptable(accept: str | None) -> bool:
    """Whether an Accept header names a media type the API server can serialize (q=0 excluded)."""
    if not accept:
        return True
    for clause in accept.split(","):
        media, *parameters = [part.strip().lower() for part in clause.split(";")]
        if any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in parameters):
            continue
        kind, _, subtype = media.partition("/")
        for offered in MEDIA_TYPES:
            offered_kind, _, offered_subtype = offered.partition("/")
            if kind == "*" or (kind == offered_kind and subtype in ("*", offered_subtype)):
                return True
    return False


class Kube:
    """The running stand-in: its URL, a kubeconfig for it, and thread-safe access to its objects."""

    def __init__(self, server: ApiServer, url: str, loop: asyncio.AbstractEventLoop, tmp: Path):
        self.server = server
        self.url = url.rstrip("/")
        self.loop = loop
        self.kubeconfig = tmp / "kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
            "clusters": [{"name": "kmock", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "test-token"}}],
            "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "tester"}}],
        }))

    def call(self, function: Callable[[], Any]) -> Any:
        async def run() -> Any:
            async with self.server._lock:
                return function()
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def put(self, obj: dict[str, Any]) -> None:
        """Create or replace an object (as a controller or another user would)."""
        key = (kmock.resource(PLURALS[obj["kind"]]), obj["metadata"].get("namespace"), obj["metadata"]["name"])

        def store() -> None:
            if key in self.server.objects and not self.server.objects[key].deleted:
                del self.server.objects[key]
            self.server.objects[key] = obj
        self.call(store)

    def patch(self, kind: str, namespace: str | None, name: str, patch: dict[str, Any]) -> None:
        self.call(lambda: self.server.objects[kmock.resource(PLURALS[kind]), namespace, name].patch(patch))

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        def read() -> dict[str, Any] | None:
            key = (kmock.resource(PLURALS[kind]), namespace, name)
            if key not in self.server.objects or self.server.objects[key].deleted:
                return None
            return dict(self.server.objects[key].raw)
        result: dict[str, Any] | None = self.call(read)
        return result

    def names(self, kind: str, namespace: str | None = "flashhead") -> set[str]:
        def read() -> set[str]:
            return {name for (res, ns, name), obj in self.server.objects.items()
                    if res == kmock.resource(PLURALS[kind]) and ns == namespace and not obj.deleted}
        result: set[str] = self.call(read)
        return result

    def requests(self) -> list[tuple[str, str, str, dict[str, str]]]:
        """(method, path, content type, query) of every request served so far."""
        return self.call(lambda: [(r.method.value, r.url.path, r.headers.get("Content-Type", ""), dict(r.params))
                                  for r in self.server._requests])

    def clear_requests(self) -> None:
        self.call(self.server._requests.clear)


def start(tmp: Path) -> Iterator[Kube]:
    """Run the stand-in on a loopback port in a background event loop."""
    yield from serve_in_background(ApiServer, RESOURCES, lambda server, url, loop: Kube(server, url, loop, tmp))
