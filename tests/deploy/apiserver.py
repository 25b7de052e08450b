"""A Kubernetes API stand-in as strict as kube-apiserver on what `flashhead deploy` relies on.

kmock's `KubernetesEmulator` serves reads (GET, LIST) from an in-memory store over HTTP. Every
write goes through this class instead, which does what the real server does and the emulator
does not: server-side apply with field ownership, removal and 409 conflicts (fieldmanager.py),
defaults, validation and server-set metadata (registry.py), `dryRun=All`, create on an apply
PATCH, foreground deletion with a `deletionTimestamp` and a finalizer (deletion.py), pods/log
negotiated like every endpoint (406 on `Accept: text/plain`), 403 for what RBAC denies, and the
service and pod proxy.
"""

from __future__ import annotations

import asyncio
import copy
import re
from copy import deepcopy
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal.dicts import merge_patch_dict
from kmock._internal.k8s import KubernetesError

from tests.deploy import deletion, fieldmanager, registry
from tests.deploy.registry import RESOURCES

PLURALS = {kind: resource for resource, (kind, _) in RESOURCES.items()}
GROUPS = {"Deployment": "deployments.apps", "ReplicaSet": "replicasets.apps",
          "PodDisruptionBudget": "poddisruptionbudgets.policy", "NetworkPolicy": "networkpolicies.networking.k8s.io",
          "HorizontalPodAutoscaler": "horizontalpodautoscalers.autoscaling", "ScaledObject": "scaledobjects.keda.sh",
          "Role": "roles.rbac.authorization.k8s.io", "RoleBinding": "rolebindings.rbac.authorization.k8s.io"}
NAMESPACE_PATH = re.compile(r"/api/v1/namespaces/([^/]+)")
# What the API server serializes; pods/log is negotiated against these like every endpoint, so
# `Accept: text/plain` alone is refused (kubernetes/kubernetes#98554), though the body is plain text.
MEDIA_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
NOT_ACCEPTABLE = f"only the following media types are accepted: {', '.join(MEDIA_TYPES)}"
Key = tuple[Any, str | None, str]


def key_of(kind: str, namespace: str | None, name: str) -> Key:
    return kmock.resource(PLURALS[kind]), namespace, name


def plural_name(kind: str) -> str:
    """How error messages name a kind: `deployments.apps`, `configmaps`."""
    return GROUPS.get(kind, PLURALS[kind].rsplit("/", 1)[-1])


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesEmulator):
    """kmock's store and reads; kube-apiserver's semantics for every write."""

    forbidden: dict[tuple[str, str], str] = attrs.field(factory=dict)  # (verb, plural[/sub]) -> message
    uninstalled: set[str] = attrs.field(factory=set)  # kinds whose API (a CRD) this cluster lacks: 404
    logs: dict[str, str] = attrs.field(factory=dict)  # pod name -> log text (the previous run's)
    proxied: dict[str, Any] = attrs.field(factory=dict)  # "name:port/path" -> JSON, or (status, JSON)
    revision: int = 1000  # the last resourceVersion handed out
    deletion_delay: float = 0.2  # seconds the garbage collector takes to clear `foregroundDeletion`
    deleted_at: dict[str, float] = attrs.field(factory=dict)  # uid -> when its deletion started (monotonic)

    # ---- storage (call with self._lock held) ----

    def read(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        key = key_of(kind, namespace, name)
        if key not in self._objects or self._objects[key].deleted:
            return None
        return copy.deepcopy(dict(self._objects[key].raw))

    def items(self, kind: str, namespace: str | None = None, copy: bool = True) -> list[dict[str, Any]]:
        """The objects of `kind` (copies, unless `copy=False` for a read-only scan)."""
        resource = kmock.resource(PLURALS[kind])
        found = [dict(obj.raw) for (res, ns, _), obj in list(self._objects.items())
                 if res == resource and not obj.deleted and (namespace is None or ns == namespace)]
        return [deepcopy(obj) for obj in found] if copy else found

    def store(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Write `obj` (a new resourceVersion; uid and creation time when it is new)."""
        meta = obj["metadata"]
        key = key_of(obj["kind"], meta.get("namespace"), meta["name"])
        self.revision += 1
        if key not in self._objects or self._objects[key].deleted:
            registry.stamp_new(obj, meta.get("namespace"), str(self.revision))
        meta["resourceVersion"] = str(self.revision)
        if key in self._objects:
            self._objects[key].create(obj)
        else:
            self._objects[key] = obj
        return obj

    def remove(self, kind: str, namespace: str | None, name: str) -> None:
        key = key_of(kind, namespace, name)
        if key in self._objects and not self._objects[key].deleted:
            self._objects[key].delete()

    # ---- HTTP ----

    async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
        named_namespace = NAMESPACE_PATH.fullmatch(request.url.path)
        resource = request.resource
        plural = "namespaces" if named_namespace else str(getattr(resource, "plural", ""))
        if request.subresource:
            plural += "/" + request.subresource.split("/")[0]
        verb = {"GET": "get", "PATCH": "patch", "POST": "create", "DELETE": "delete", "PUT": "update"}.get(
            request.method.value, "")
        if (verb, plural) in self.forbidden:
            return await self._render_error(KubernetesError(403, "Forbidden", self.forbidden[verb, plural],
                                                            {"kind": plural}))
        if named_namespace:
            kind, namespace, name = "Namespace", None, named_namespace.group(1)
        elif resource is None:
            return await super()._handle(request)
        else:
            kind, namespace, name = self._kind(resource), request.namespace, request.name
        subresource = request.subresource or ""
        if subresource == "log":
            return await self._log(request)
        if subresource.startswith("proxy"):
            return await self._proxy(request, subresource)
        if request.method.value == "GET" and request.params.get("watch") in ("true", "1"):
            return await super()._handle(request)
        try:
            async with self._lock:
                code, body = self._serve(request, kind, namespace, name)
        except KubernetesError as error:
            return await self._render_error(error)
        return aiohttp.web.json_response(body, status=code)

    def _kind(self, resource: Any) -> str:
        for path, (kind, _) in RESOURCES.items():
            if kmock.resource(path) == resource and kind not in self.uninstalled:
                return kind
        raise KubernetesError(404, "NotFound", f"the server could not find the requested resource {resource}")

    def _serve(self, request: Any, kind: str, namespace: str | None, name: str | None) -> tuple[int, Any]:
        method, query = request.method.value, request.params
        dry_run = query.get("dryRun") == "All"
        if method == "POST":
            return self.create(kind, namespace, request.data, manager(request), dry_run)
        if method == "GET" and name is None:
            return 200, self.collection(kind, namespace, query.get("labelSelector", ""))
        if name is None:
            raise KubernetesError(405, "MethodNotAllowed", f"{method} is not supported on a collection",
                                  {"kind": plural_name(kind)})
        if method == "GET":
            live = self.read(kind, namespace, name)
            if live is None:
                raise not_found(kind, name)
            return 200, live
        if method == "DELETE":
            return self.delete_object(kind, namespace, name, request.data or {}, dict(query), dry_run)
        if method == "PATCH" and "apply-patch" in request.headers.get("Content-Type", ""):
            if not query.get("fieldManager"):
                raise KubernetesError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
                                                      "Required value: is required for apply patch")
            return self.apply(kind, namespace, name, request.data, query["fieldManager"],
                              query.get("force") == "true", dry_run)
        if method == "PATCH":
            return self.merge_patch(kind, namespace, name, request.data, manager(request), dry_run)
        raise KubernetesError(405, "MethodNotAllowed", f"{method} is not supported by the stand-in")

    # ---- the verbs ----

    def collection(self, kind: str, namespace: str | None, selector: str) -> dict[str, Any]:
        """A list as the server returns it: filtered by the label selector; items carry no kind."""
        items = [obj for obj in self.items(kind, namespace)
                 if selects(selector, (obj.get("metadata") or {}).get("labels") or {})]
        for item in items:
            item.pop("apiVersion", None)
            item.pop("kind", None)
        group_version = PLURALS[kind].rsplit("/", 1)[0]
        return {"apiVersion": group_version, "kind": f"{kind}List",
                "metadata": {"resourceVersion": str(self.revision)}, "items": items}

    def apply(self, kind: str, namespace: str | None, name: str, config: dict[str, Any], field_manager: str,
              force: bool, dry_run: bool = False) -> tuple[int, dict[str, Any]]:
        """Server-side apply: create or patch, with ownership, removal and conflicts."""
        if (config.get("metadata") or {}).get("name") != name or config.get("kind") != kind:
            raise KubernetesError(400, "BadRequest", f"the apply body names {config.get('kind')}/"
                                                     f"{(config.get('metadata') or {}).get('name')}, not {kind}/{name}")
        live = self.read(kind, namespace, name)
        try:
            new = fieldmanager.apply(live, config, field_manager, force)
        except fieldmanager.Conflict as conflict:
            raise KubernetesError(409, "Conflict", str(conflict), {
                "name": name, "group": PLURALS[kind].rpartition("/")[0].rpartition("/")[0],
                "kind": plural_name(kind).split(".")[0],
                "causes": fieldmanager.conflict_causes(conflict.conflicts)}) from None
        return self._write(kind, namespace, live, new, dry_run)

    def create(self, kind: str, namespace: str | None, obj: dict[str, Any], field_manager: str,
               dry_run: bool = False) -> tuple[int, dict[str, Any]]:
        name = (obj.get("metadata") or {}).get("name", "")
        live = self.read(kind, namespace, name)
        if live is not None:
            prefix = "object is being deleted: " if live["metadata"].get("deletionTimestamp") else ""
            raise KubernetesError(409, "AlreadyExists", f'{prefix}{plural_name(kind)} "{name}" already exists')
        empty = {"apiVersion": obj["apiVersion"], "kind": kind, "metadata": {}}
        return self._write(kind, namespace, None, fieldmanager.update(empty, obj, field_manager), dry_run)

    def merge_patch(self, kind: str, namespace: str | None, name: str, patch: dict[str, Any], field_manager: str,
                    dry_run: bool = False) -> tuple[int, dict[str, Any]]:
        live = self.read(kind, namespace, name)
        if live is None:
            raise not_found(kind, name)
        patched = dict(merge_patch_dict(copy.deepcopy(live), patch))
        return self._write(kind, namespace, live, fieldmanager.update(live, patched, field_manager), dry_run)

    def delete_object(self, kind: str, namespace: str | None, name: str, options: dict[str, Any],
                      query: dict[str, str], dry_run: bool = False) -> tuple[int, dict[str, Any]]:
        live = self.read(kind, namespace, name)
        if live is None:
            raise not_found(kind, name)
        return 200, live if dry_run else deletion.delete(self, live, options, query)

    async def collect_garbage(self, period: float = 0.05) -> None:
        """The garbage collector's loop (runs for the server's lifetime)."""
        while True:
            async with self._lock:
                deletion.collect(self)
            await asyncio.sleep(period)

    def _write(self, kind: str, namespace: str | None, live: dict[str, Any] | None, new: dict[str, Any],
               dry_run: bool) -> tuple[int, dict[str, Any]]:
        new.setdefault("metadata", {})
        if live is None:
            if namespace is not None:
                new["metadata"]["namespace"] = namespace
        else:
            registry.carry_server_fields(live, new)
        registry.default(new)
        registry.validate(live, new)
        if live is not None and new == live:
            return 200, live  # nothing changed: nothing written, the resourceVersion stays
        if dry_run:
            if live is None:
                registry.stamp_new(new, namespace, "")
                new["metadata"].pop("resourceVersion")
            return (201 if live is None else 200), new
        return (201 if live is None else 200), self.store(new)

    # ---- subresources ----

    async def _log(self, request: Any) -> aiohttp.web.StreamResponse:
        """pods/log as the real API server serves it: negotiated Accept, 400s the kubelet would give."""
        if not acceptable(request.headers.get("Accept")):
            return await self._render_error(KubernetesError(406, "NotAcceptable", NOT_ACCEPTABLE))
        async with self._lock:
            pod = self.read("Pod", request.namespace, request.name)
        if pod is None:
            return await self._render_error(not_found("Pod", request.name))
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

    async def _proxy(self, request: Any, subresource: str) -> aiohttp.web.StreamResponse:
        target = f"{request.name}{subresource[len('proxy'):]}"
        if target not in self.proxied:
            return await self._render_error(KubernetesError(
                503, "ServiceUnavailable", f'no endpoints available for service "{request.name}"'))
        answer = self.proxied[target]
        code, body = answer if isinstance(answer, tuple) else (200, answer)
        return aiohttp.web.json_response(body, status=code)


def selects(selector: str, labels: dict[str, str]) -> bool:
    """Equality-based label selectors (`a=b`, `a==b`, `a!=b`, `a`, `!a`), as kubectl and the client send them."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def manager(request: Any) -> str:
    """The field manager of a non-apply write: ?fieldManager, else the client's user-agent name."""
    return str(request.params.get("fieldManager") or request.headers.get("User-Agent", "unknown").split("/")[0])


def not_found(kind: str, name: str | None) -> KubernetesError:
    return KubernetesError(404, "NotFound", f'{plural_name(kind)} "{name}" not found',
                           {"name": name, "kind": plural_name(kind).split(".")[0]})


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
