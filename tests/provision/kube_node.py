"""A Kubernetes API stand-in with one node, for the kubectl connector: kmock's emulator plus what the
API server and the kubelet would do — a pod needs its namespace to exist (404 otherwise), pods on
the node start Running, and `pods/exec` runs the command on this machine (the node) over the real
WebSocket channel protocol (v4.channel.k8s.io: stdin 0, stdout 1, stderr 2, status 3), reporting a
command killed by signal N as exit code 128+N, as the kubelet does.

Knobs for what goes wrong on real clusters: `pod_status` (the status a new pod gets instead of
Running, e.g. waiting in ImagePullBackOff), `pod_events` (events recorded for it), `exec_failure`
("upgrade": the API server refuses the exec upgrade with 400, as when the container is gone; "dial":
500 `error dialing backend`, as with no reachable kubelet; "cut": the stream closes mid-command
without a status frame).

hostPID emulation: in a hostPID pod `nsenter -t 1` enters the host's init namespaces. On this test
machine PID 1's namespaces are off limits, so the stand-in points `-t 1` at this process, whose
namespaces are "the node's" here. Everything else about the command runs as sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web
import attrs
import kmock
import yaml

from tests.kmock_thread import serve_in_background

RESOURCES = {"v1/pods": ("Pod", True), "v1/nodes": ("Node", False), "v1/namespaces": ("Namespace", False),
             "v1/events": ("Event", True)}
NAMESPACE = re.compile(r"/api/v1/namespaces/([^/]+)")
EXEC_FAILURES = {
    "upgrade": (400, "BadRequest", "unable to upgrade connection: container not found (\"host\")"),
    "dial": (500, "InternalError", "error dialing backend: dial tcp 10.0.0.7:10250: connect: connection refused"),
}


@attrs.define(kw_only=True)
class NodeApi(kmock.KubernetesEmulator):
    execs: list[list[str]] = attrs.field(factory=list)  # every exec command line, as the API saw it
    created: list[dict] = attrs.field(factory=list)  # every pod manifest posted
    deleted: list[str] = attrs.field(factory=list)
    node_env: dict[str, str] = attrs.field(factory=dict)  # the node's environment (PATH with nvidia-smi)
    pod_status: dict | None = None
    pod_events: list[dict] = attrs.field(factory=list)
    exec_failure: str | None = None
    namespaces_created: list[str] = attrs.field(factory=list)
    namespaces_deleted: list[str] = attrs.field(factory=list)

    async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
        plural = str(getattr(request.resource, "plural", ""))
        if plural == "pods" and request.subresource == "exec":
            if self.exec_failure in EXEC_FAILURES:
                return _status(*EXEC_FAILURES[self.exec_failure])
            return await self._exec(request._raw_request)
        creating = request.method.value == "POST" and isinstance(request.data, dict)
        if plural == "pods" and creating and not await self._namespace_exists(request.namespace):
            return _status(404, "NotFound", f'namespaces "{request.namespace}" not found')
        response = await super()._handle(request)
        if plural == "pods" and creating:
            self.created.append(request.data)
            name = request.data["metadata"]["name"]
            key = (request.resource, request.namespace, name)
            async with self._lock:
                self._objects[key].patch({"status": self.pod_status or {"phase": "Running"}})
                for index, event in enumerate(self.pod_events):
                    self._objects[kmock.resource("v1/events"), request.namespace, f"{name}.{index}"] = {
                        "apiVersion": "v1", "kind": "Event",
                        "metadata": {"name": f"{name}.{index}", "namespace": request.namespace},
                        "involvedObject": {"kind": "Pod", "name": name, "namespace": request.namespace}, **event}
        if plural == "pods" and request.method.value == "DELETE":
            self.deleted.append(request.name)
        return response

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """kmock's path parser takes /api/v1/namespaces[/NAME] for a namespace prefix: serve the
        Namespace objects themselves (create, read, delete) here, as the API server does."""
        path = raw.path.rstrip("/")
        if path == "/api/v1/namespaces" and raw.method == "POST":
            body = await raw.json()
            name = body["metadata"]["name"]
            async with self._lock:
                key = (kmock.resource("v1/namespaces"), None, name)
                if key in self._objects and not self._objects[key].deleted:
                    return _status(409, "AlreadyExists", f'namespaces "{name}" already exists')
                if key in self._objects:
                    self._objects[key].create(body)
                else:
                    self._objects[key] = body
            self.namespaces_created.append(name)
            return aiohttp.web.json_response({**body, "status": {"phase": "Active"}}, status=201)
        named = NAMESPACE.fullmatch(path)
        if named and raw.method in ("GET", "DELETE"):
            key = (kmock.resource("v1/namespaces"), None, named.group(1))
            async with self._lock:
                if key not in self._objects or self._objects[key].deleted:
                    return _status(404, "NotFound", f'namespaces "{named.group(1)}" not found')
                body = dict(self._objects[key].raw)
                if raw.method == "DELETE":
                    self._objects[key].delete()
                    self.namespaces_deleted.append(named.group(1))
            return aiohttp.web.json_response(body)
        return await super().__call__(raw)

    async def _namespace_exists(self, namespace: str | None) -> bool:
        async with self._lock:
            key = (kmock.resource("v1/namespaces"), None, namespace)
            return key in self._objects and not self._objects[key].deleted

    async def _exec(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        ws = aiohttp.web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(raw)  # type: ignore[arg-type]
        command = raw.query.getall("command")
        self.execs.append(list(command))
        if command[:3] == ["nsenter", "-t", "1"]:
            command = ["nsenter", "-t", str(os.getpid()), *command[3:]]
        process = await asyncio.create_subprocess_exec(*command, env={**os.environ, **self.node_env},
                                                       stdin=asyncio.subprocess.PIPE,
                                                       stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.PIPE)

        async def pump(stream: asyncio.StreamReader, channel: int) -> None:
            while chunk := await stream.read(65536):
                await ws.send_bytes(bytes([channel]) + chunk)

        async def feed() -> None:
            async for message in ws:
                data = message.data if message.type == aiohttp.WSMsgType.BINARY else \
                    message.data.encode() if message.type == aiohttp.WSMsgType.TEXT else b""
                if data and data[0] == 0 and process.stdin and not process.stdin.is_closing():
                    process.stdin.write(data[1:])
                    await process.stdin.drain()

        feeder = asyncio.create_task(feed())
        assert process.stdout and process.stderr
        if self.exec_failure == "cut":  # the connection drops while the command runs: no status frame
            await ws.send_bytes(b"\x01" + (await process.stdout.read(65536)))
            process.kill()
            await process.wait()
            feeder.cancel()
            await ws.close()
            return ws
        await asyncio.gather(pump(process.stdout, 1), pump(process.stderr, 2))
        code = await process.wait()
        code = 128 - code if code < 0 else code  # killed by signal N: the kubelet reports 128 + N
        status = {"metadata": {}, "status": "Success"} if code == 0 else {
            "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
        await ws.send_bytes(b"\x03" + json.dumps(status).encode())
        feeder.cancel()
        await ws.close()
        return ws


def _status(code: int, reason: str, message: str) -> aiohttp.web.Response:
    """An API error as the API server sends it: a Status object."""
    return aiohttp.web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                                      "reason": reason, "code": code}, status=code)


class Cluster:
    def __init__(self, api: NodeApi, url: str, loop: asyncio.AbstractEventLoop, kubeconfig: Path):
        self.api, self.url, self.loop, self.kubeconfig = api, url.rstrip("/"), loop, kubeconfig

    def namespaces(self) -> list[str]:
        async def read() -> list[str]:
            async with self.api._lock:
                return [key[2] for key, obj in self.api._objects.items()
                        if str(key[0].plural) == "namespaces" and not obj.deleted]
        return asyncio.run_coroutine_threadsafe(read(), self.loop).result(10)

    def pods(self) -> list[str]:
        async def read() -> list[str]:
            async with self.api._lock:
                return [key[2] for key, obj in self.api._objects.items()
                        if str(key[0].plural) == "pods" and not obj.deleted]
        return asyncio.run_coroutine_threadsafe(read(), self.loop).result(10)


def start(tmp: Path, node: str, node_env: dict[str, str] | None = None) -> Iterator[Cluster]:
    """Serve the stand-in on loopback in a background loop, with `node` registered."""

    def on_start(api: NodeApi, url: str, loop: asyncio.AbstractEventLoop) -> Cluster:
        api._objects[kmock.resource("v1/nodes"), None, node] = {
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": node},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
        for namespace in ("default", "kube-system"):
            api._objects[kmock.resource("v1/namespaces"), None, namespace] = {
                "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        kubeconfig = tmp / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "node",
            "clusters": [{"name": "node", "cluster": {"server": url}}],
            "users": [{"name": "tester", "user": {"token": "kube-test-token"}}],
            "contexts": [{"name": "node", "context": {"cluster": "node", "user": "tester"}}]}))
        return Cluster(api, url, loop, kubeconfig)

    yield from serve_in_background(lambda: NodeApi(node_env=node_env or {}), RESOURCES, on_start)
