"""inference/deletion_cost.py: each server pod's deletion cost follows its active streams, read from its
/readyz, and the ReplicaSet controller (the stand-in's, ranked as the real one) then removes idle pods first."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from inference.client import FlashheadClient
from inference.deletion_cost import COST, Api, active_streams, costs_to_patch, main, run_once
from ops.deploy.apply import ApplyOptions, apply
from ops.deploy.cluster import Cluster
from ops.deploy.render import render
from tests.deploy import controller as ctl
from tests.deploy.controlplane import Node
from tests.deploy.kube import Kube
from tests.inference.conftest import encode_image, face_image, start_server

NO_WAIT = ApplyOptions(wait=False, poll=0.05)


def pod(name: str, ip: str | None = "10.0.0.1", phase: str = "Running", cost: str | None = None,
        deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "annotations": {COST: cost} if cost is not None else {}}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-02T00:00:00Z"
    return {"metadata": meta, "status": {"phase": phase, **({"podIP": ip} if ip else {})}}


def test_only_running_pods_whose_cost_differs_from_their_load_are_patched() -> None:
    loads = {"10.0.0.1": 2, "10.0.0.2": 0, "10.0.0.3": None, "10.0.0.4": 1}
    pods = [pod("busy", "10.0.0.1", cost="0"), pod("idle", "10.0.0.2", cost="0"), pod("unreadable", "10.0.0.3"),
            pod("fresh", "10.0.0.4"), pod("pending", None, phase="Pending"), pod("going", "10.0.0.1", deleting=True)]
    assert costs_to_patch(pods, loads.get) == {"busy": "2", "fresh": "1"}


def server_pods(kube: Kube) -> list[dict[str, Any]]:
    """The live server pods, in the order the ReplicaSet controller sees them (the first goes first on a tie)."""
    return [p for p in kube.call(lambda: kube.server.items("Pod", ctl.NS))
            if p["metadata"]["labels"].get("app.kubernetes.io/name") == "flashhead"
            and not p["metadata"].get("deletionTimestamp")]


@pytest.mark.asyncio
async def test_scale_in_removes_the_idle_pod_and_keeps_the_one_with_a_stream(kube: Kube, cluster: Cluster,
                                                                          tmp_path: Path) -> None:
    kube.control_plane([Node("gpu-2", gpus=2, pod_ips=("127.0.0.1", "127.0.0.2"))])
    apply(cluster, render("single-gpu-host", {"node": "gpu-2", "gpus": "2"}), ApplyOptions(timeout=20, poll=0.05))
    # The pod the ReplicaSet would remove first on equal ranks gets the stream: without the cost it would go.
    first, second = server_pods(kube)
    busy_ip, idle_ip = first["status"]["podIP"], second["status"]["podIP"]
    # Two real servers on the pods' IPs and one port, as pods are.
    one = start_server(tmp_path, {"FLASHHEAD_MAX_STREAMS": "2"})
    port = int(one.url.rsplit(":", 1)[1])
    other = start_server(tmp_path, {"FLASHHEAD_HOST": "127.0.0.2", "FLASHHEAD_PORT": str(port)}, wait_ready=False)
    try:
        deadline = time.monotonic() + 30
        while not _answers(f"http://127.0.0.2:{port}/readyz"):
            assert time.monotonic() < deadline, other.log_text()
            await asyncio.sleep(0.1)
        assert {busy_ip, idle_ip} == {"127.0.0.1", "127.0.0.2"}
        async with FlashheadClient(f"http://{busy_ip}:{port}") as client:
            session = await client.stream(image=encode_image(face_image(), "PNG"))
            try:
                api = Api(kube.url, ctl.NS)
                written = run_once(api, "app.kubernetes.io/name=flashhead", active_streams(port))
                assert written == {first["metadata"]["name"]: "1", second["metadata"]["name"]: "0"}
                assert run_once(api, "app.kubernetes.io/name=flashhead", active_streams(port)) == {}  # current
                apply(cluster, render("single-gpu-host", {"node": "gpu-2", "gpus": "2", "replicas": "1"}), NO_WAIT)
                deadline = time.monotonic() + 10
                while len(server_pods(kube)) != 1:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
                [kept] = server_pods(kube)
                assert kept["metadata"]["name"] == first["metadata"]["name"], "the pod with a stream stays"
            finally:
                await session.close()
    finally:
        one.stop()
        other.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_the_command_reports_an_unreachable_api_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--api", "http://127.0.0.1:9", "--namespace", "flashhead", "--once"]) == 1
