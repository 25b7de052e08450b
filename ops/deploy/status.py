"""status: the objects, the pods and their readiness, the endpoint, and the server's own /v1/info."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ops.deploy import history, terminating
from ops.deploy.cluster import Cluster
from ops.deploy.diagnose import NodeReader, pod_reasons
from ops.deploy.diff import owned_objects
from ops.deploy.kinds import object_key
from ops.deploy.pods import Owned
from ops.deploy.wait import DEPLOYMENT, look, node_status, record_outcome


def status(cluster: Cluster, name: str = DEPLOYMENT) -> dict[str, Any]:
    """Everything a human checks after a deploy, as data."""
    cluster.require_namespace()
    revisions = history.load(cluster)
    result: dict[str, Any] = {
        "namespace": cluster.namespace,
        "revision": revisions[-1].summary() if revisions else None,
        "objects": [object_key(obj) + (" (being deleted)" if terminating.since(obj) else "")
                    for obj in owned_objects(cluster)],
    }
    deployment = cluster.get("Deployment", name)
    if deployment is None:
        result.update(deployment=None, pods=[], old_replicasets=[], endpoint=None, readiness=None, info=None,
                      info_error="the Deployment does not exist (flashhead deploy apply)")
        return result
    if terminating.since(deployment):
        result.update(deployment={"complete": False, "progress": terminating.describe(cluster, deployment),
                                  "reasons": []}, pods=[], old_replicasets=[], endpoint=None, readiness=None,
                      info=None,
                      info_error="the Deployment is being deleted")
        return result
    seen = look(cluster, name)
    progress, owned = seen.progress, seen.owned
    result["deployment"] = {"complete": progress.complete, "progress": progress.summary(),
                            "reasons": [asdict(r) for r in progress.reasons if not r.pod]}
    outcome = "deployed" if progress.complete else "failed" if any(r.fatal for r in progress.reasons) else ""
    result["history_note"] = record_outcome(cluster, seen.deployment, outcome) if outcome else ""
    if result["history_note"]:
        revisions = history.load(cluster)
        result["revision"] = revisions[-1].summary() if revisions else None

    def ready_condition(node: str) -> Any:
        if node not in seen.nodes:
            seen.nodes[node] = node_status(cluster, node)
        return seen.nodes[node]

    result["pods"] = [_pod(pod, owned, seen.events, ready_condition) for pod in owned.every_pod]
    result["old_replicasets"] = [{"name": rs.name, "revision": rs.revision, "replicas": rs.replicas,
                                  "pods": [p["metadata"]["name"] for p in rs.pods]} for rs in owned.holding]
    result["endpoint"] = _endpoint(cluster, name)
    result["readiness"], result["info"], result["info_error"] = _ask_server(cluster, name, result["endpoint"])
    return result


def _pod(pod: dict[str, Any], owned: Owned, events: list[dict[str, Any]], node_status: NodeReader) -> dict[str, Any]:
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    mine = [e for e in events if (e.get("involvedObject") or {}).get("name") == pod["metadata"]["name"]]
    going = terminating.since(pod)
    return {
        "name": pod["metadata"]["name"],
        "revision": owned.revision_of(pod),
        "current": any(p is pod for p in owned.current),
        "phase": f"Terminating since {going}" if going else status.get("phase", "Unknown"),
        "ready": any(c.get("type") == "Ready" and c.get("status") == "True"
                     for c in status.get("conditions") or []),
        "restarts": sum(int(c.get("restartCount") or 0) for c in containers),
        "node": (pod.get("spec") or {}).get("nodeName"),
        "reasons": [] if going else [f"{r.kind}: {r.message}"
                                     for r in pod_reasons(pod, mine, lambda _p, _c: "", node_status=node_status)],
    }


def _endpoint(cluster: Cluster, name: str) -> dict[str, Any] | None:
    service = cluster.get("Service", name)
    if service is None:
        return None
    port = next((p for p in service["spec"].get("ports", []) if p.get("name") == "http"),
                (service["spec"].get("ports") or [{}])[0])
    number = port.get("port", 8000)
    return {
        "in_cluster": f"http://{name}.{cluster.namespace}.svc:{number}",
        "stream": f"ws://{name}.{cluster.namespace}.svc:{number}/v1/stream",
        "cluster_ip": service["spec"].get("clusterIP"),
        "port": number,
        "port_forward": f"kubectl -n {cluster.namespace} port-forward svc/{name} {number}:{number}",
    }


def _ask_server(cluster: Cluster, name: str,
                endpoint: dict[str, Any] | None) -> tuple[Any, Any, str | None]:
    """The server's /readyz and /v1/info through the API server's service proxy, or why not."""
    if endpoint is None:
        return None, None, "no Service"
    target = f"{name}:http"
    readiness_status, readiness = cluster.proxy_get("Service", target, "/readyz")
    status, info = cluster.proxy_get("Service", target, "/v1/info")
    if status == 200:
        return readiness, info, None
    if status == 401:
        why = ("the server wants its API token for /v1/info, and the API server's proxy cannot pass one: "
               f"{endpoint['port_forward']}, then GET http://127.0.0.1:{endpoint['port']}/v1/info "
               "with `Authorization: Bearer <token>`")
    elif status == 0:
        why = "no answer through the API server's service proxy"
    else:
        why = f"{status}: {(info or {}).get('message', 'no message')}"
    from_server = readiness_status and not (isinstance(readiness, dict) and readiness.get("kind") == "Status")
    return (readiness if from_server else None), None, why
