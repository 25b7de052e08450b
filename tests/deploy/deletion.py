"""Deletion as kube-apiserver and the garbage collector do it, for the API stand-in.

- Foreground (what `flashhead deploy delete` asks for): the object stays, with a
  `deletionTimestamp` and the `foregroundDeletion` finalizer, until the garbage collector has
  deleted its dependents (objects whose ownerReferences name its uid) and then clears the finalizer.
  A Deployment therefore lingers while its ReplicaSets' pods terminate.
- Background (the default) and Orphan: the object goes at once; the collector deletes dependents
  whose owner is gone (Background) afterwards.
- Any object with finalizers only gets a `deletionTimestamp`; it goes when they are cleared.
- A pod bound to a node terminates gracefully: it keeps a `deletionTimestamp` until that node's
  kubelet confirms (controlplane.py); an unbound pod goes at once.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tests.deploy import registry
from tests.deploy.registry import RESOURCES

if TYPE_CHECKING:
    from tests.deploy.apiserver import ApiServer

FOREGROUND = "foregroundDeletion"
KINDS = [kind for kind, _ in RESOURCES.values()]


def delete(server: ApiServer, obj: dict[str, Any], options: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    """Start deleting `obj`; returns it as stored afterwards (or as it was, when it went at once)."""
    meta = obj["metadata"]
    if meta.get("deletionTimestamp"):
        return obj
    policy = options.get("propagationPolicy") or query.get("propagationPolicy") or "Background"
    finalizers = list(meta.get("finalizers") or [])
    if policy == "Foreground" and FOREGROUND not in finalizers:
        finalizers.append(FOREGROUND)
    graceful = obj["kind"] == "Pod" and bool((obj.get("spec") or {}).get("nodeName"))
    if graceful:
        meta["deletionGracePeriodSeconds"] = int(options.get(
            "gracePeriodSeconds", (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)))
    if not finalizers and not (graceful and meta["deletionGracePeriodSeconds"] > 0):
        server.remove(obj["kind"], meta.get("namespace"), meta["name"])
        return obj
    meta["deletionTimestamp"] = registry.now()
    if finalizers:
        meta["finalizers"] = finalizers
    server.deleted_at[meta["uid"]] = time.monotonic()
    return server.store(obj)


def collect(server: ApiServer) -> None:
    """One pass of the garbage collector (call with the server's lock held)."""
    everything = [obj for kind in KINDS for obj in server.items(kind, copy=False)]
    uids = {obj["metadata"].get("uid") for obj in everything}
    dependents: dict[str, list[dict[str, Any]]] = {}
    for obj in everything:
        owners = [ref["uid"] for ref in obj["metadata"].get("ownerReferences") or [] if ref.get("uid")]
        for uid in owners:
            dependents.setdefault(uid, []).append(obj)
        if owners and not any(uid in uids for uid in owners) and not obj["metadata"].get("deletionTimestamp"):
            delete(server, _fresh(server, obj), {"propagationPolicy": "Background"}, {})
    for obj in everything:
        meta = obj["metadata"]
        if FOREGROUND not in (meta.get("finalizers") or []):
            continue
        waiting = [o for o in dependents.get(meta.get("uid"), [])
                   if server.read(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) is not None]
        for dependent in waiting:
            delete(server, _fresh(server, dependent), {"propagationPolicy": "Foreground"}, {})
        started = server.deleted_at.get(meta.get("uid"), 0.0)
        if waiting or time.monotonic() - started < server.deletion_delay:
            continue
        finalize(server, obj, FOREGROUND)


def _fresh(server: ApiServer, obj: dict[str, Any]) -> dict[str, Any]:
    return server.read(obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]) or obj


def finalize(server: ApiServer, obj: dict[str, Any], finalizer: str) -> None:
    """Clear one finalizer; the object goes when none is left (a pod also needs its kubelet's word)."""
    live = server.read(obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
    if live is None:
        return
    live["metadata"]["finalizers"] = [f for f in live["metadata"].get("finalizers") or [] if f != finalizer]
    _settle(server, live)


def kubelet_confirms(server: ApiServer, pod: dict[str, Any]) -> None:
    """The node's kubelet has stopped the pod's containers: the grace period is over."""
    live = server.read("Pod", pod["metadata"].get("namespace"), pod["metadata"]["name"])
    if live is None:
        return
    live["metadata"]["deletionGracePeriodSeconds"] = 0
    _settle(server, live)


def _settle(server: ApiServer, live: dict[str, Any]) -> None:
    meta = live["metadata"]
    if meta.get("finalizers") or int(meta.get("deletionGracePeriodSeconds") or 0) > 0:
        if not meta.get("finalizers"):
            meta.pop("finalizers", None)
        server.store(live)
        return
    server.remove(live["kind"], meta.get("namespace"), meta["name"])
    server.deleted_at.pop(meta.get("uid"), None)
