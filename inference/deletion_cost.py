"""Keep each server pod's `controller.kubernetes.io/pod-deletion-cost` equal to its active streams.

    python -m inference.deletion_cost [--period 5] [--port 8000] [--selector LABELS]

Runs in the cluster as its own small pod (the autoscaled overlays' `flashhead-deletion-cost`), so the
server pods keep no API token and no egress. Every period it lists the server pods, reads each
running pod's `GET /readyz` on its pod IP (the body carries `active_streams`, full or not) and
patches the annotation where it changed. The ReplicaSet controller then removes idle pods before
busy ones on scale-in. Standard library only; in-cluster credentials (the service account's token,
CA and namespace), or `--api URL` without TLS for tests.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COST = "controller.kubernetes.io/pod-deletion-cost"
SELECTOR = "app.kubernetes.io/name=flashhead,app.kubernetes.io/instance=flashhead"
ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
log = logging.getLogger("inference.deletion_cost")

Load = Callable[[str], "int | None"]  # pod IP -> active streams, None when unreadable


def costs_to_patch(pods: list[dict[str, Any]], load: Load) -> dict[str, str]:
    """Pod name -> the cost to write, for running pods whose annotation differs from their load."""
    changes = {}
    for pod in pods:
        meta, status = pod["metadata"], pod.get("status") or {}
        if meta.get("deletionTimestamp") or status.get("phase") != "Running" or not status.get("podIP"):
            continue
        active = load(status["podIP"])
        if active is not None and (meta.get("annotations") or {}).get(COST) != str(active):
            changes[meta["name"]] = str(active)
    return changes


@dataclass
class Api:
    """The few Kubernetes API calls this needs."""

    base: str
    namespace: str
    token: str | None = None
    context: ssl.SSLContext | None = None

    @classmethod
    def in_cluster(cls) -> Api:
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
        context = ssl.create_default_context(cafile=str(ACCOUNT / "ca.crt"))
        return cls(f"https://{host}:{port}", (ACCOUNT / "namespace").read_text().strip(),
                   (ACCOUNT / "token").read_text().strip(), context)

    def pods(self, selector: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"labelSelector": selector})
        return list(self._call("GET", f"/api/v1/namespaces/{self.namespace}/pods?{query}")["items"])

    def set_cost(self, pod: str, cost: str) -> None:
        body = {"metadata": {"annotations": {COST: cost}}}
        self._call("PATCH", f"/api/v1/namespaces/{self.namespace}/pods/{pod}", body,
                   "application/merge-patch+json")

    def _call(self, method: str, path: str, body: Any = None, content_type: str | None = None) -> Any:
        headers = {"Accept": "application/json"}
        if self.token:  # re-read: the projected token rotates
            headers["Authorization"] = f"Bearer {self._token()}"
        if content_type:
            headers["Content-Type"] = content_type
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=10, context=self.context) as response:
            return json.load(response)

    def _token(self) -> str:
        path = ACCOUNT / "token"
        return path.read_text().strip() if path.is_file() else str(self.token)


def active_streams(port: int) -> Load:
    """Reads `/readyz` on a pod IP (200 with room, 503 when full both carry `active_streams`)."""
    def load(ip: str) -> int | None:
        url = f"http://{ip}:{port}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            try:
                body = json.load(error)
            except ValueError:
                return None
        except (OSError, ValueError):
            return None
        value = body.get("active_streams") if isinstance(body, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
    return load


def run_once(api: Api, selector: str, load: Load) -> dict[str, str]:
    """One pass: read every pod's load, patch the costs that changed; returns what was written."""
    changes = costs_to_patch(api.pods(selector), load)
    for pod, cost in changes.items():
        try:
            api.set_cost(pod, cost)
        except urllib.error.HTTPError as error:
            if error.code != 404:  # a pod that went away meanwhile is fine
                raise
    return changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.deletion_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--period", type=float, default=5.0, help="seconds between passes")
    parser.add_argument("--port", type=int, default=8000, help="the servers' HTTP port")
    parser.add_argument("--selector", default=SELECTOR, help="label selector of the server pods")
    parser.add_argument("--api", default=None, help="API server URL (tests; default: in-cluster)")
    parser.add_argument("--namespace", default=None, help="with --api: the namespace")
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    api = Api(args.api, args.namespace or "default") if args.api else Api.in_cluster()
    load = active_streams(args.port)
    while True:
        try:
            changes = run_once(api, args.selector, load)
            if changes:
                log.info("pod-deletion-cost updated: %s", json.dumps(changes, sort_keys=True))
        except (OSError, ValueError) as error:  # the API unreachable or refusing: try again next period
            log.warning("pass failed: %s", error)
            if args.once:
                return 1
        if args.once:
            return 0
        time.sleep(args.period)


if __name__ == "__main__":
    sys.exit(main())
