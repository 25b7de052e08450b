"""A Kubernetes API stand-in with one node, for the kubectl connector: kmock's emulator plus what the
kubelet would do — pods on the node start Running, and `pods/exec` runs the command on this machine
(the node) over the real WebSocket channel protocol (v4.channel.k8s.io: stdin 0, stdout 1, stderr 2,
status 3).

hostPID emulation: in a hostPID pod `nsenter -t 1` enters the host's init namespaces. On this test
machine PID 1's namespaces are off limits, so the stand-in points `-t 1` at this process, whose
namespaces are "the node's" here. Everything else about the command runs as sent.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web
import attrs
import kmock
import yaml

from tests.kmock_thread import serve_in_background

RESOURCES = {"v1/pods": ("Pod", True), "v1/nodes": ("Node", False), "v1/namespaces": ("Namespace", False)}


@attrs.define(kw_only=True)
class NodeApi(kmock.KubernetesEmulator):
    execs: list[list[str]] = attrs.field(factory=list)  # every exec command line, as the API saw it
    created: list[dict] = attrs.field(factory=list)  # every pod manifest posted
    deleted: list[str] = attrs.field(factory=list)
    node_env: dict[str, str] = attrs.field(factory=dict)  # the node's environment (PATH with nvidia-smi)

    async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
        plural = str(getattr(request.resource, "plural", ""))
        if plural == "pods" and request.subresource == "exec":
            return await self._exec(request._raw_request)
        response = await super()._handle(request)
        if plural == "pods" and request.method.value == "POST" and isinstance(request.data, dict):
            self.created.append(request.data)
            key = (request.resource, request.namespace, request.data["metadata"]["name"])
            async with self._lock:
                self._objects[key].patch({"status": {"phase": "Running"}})
        if plural == "pods" and request.method.value == "DELETE":
            self.deleted.append(request.name)
        return response

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
        await asyncio.gather(pump(process.stdout, 1), pump(process.stderr, 2))
        code = await process.wait()
        status = {"metadata": {}, "status": "Success"} if code == 0 else {
            "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
        await ws.send_bytes(b"\x03" + json.dumps(status).encode())
        feeder.cancel()
        await ws.close()
        return ws


class Cluster:
    def __init__(self, api: NodeApi, url: str, loop: asyncio.AbstractEventLoop, kubeconfig: Path):
        self.api, self.url, self.loop, self.kubeconfig = api, url.rstrip("/"), loop, kubeconfig

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
        kubeconfig = tmp / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "node",
            "clusters": [{"name": "node", "cluster": {"server": url}}],
            "users": [{"name": "tester", "user": {"token": "kube-test-token"}}],
            "contexts": [{"name": "node", "context": {"cluster": "node", "user": "tester"}}]}))
        return Cluster(api, url, loop, kubeconfig)

    yield from serve_in_background(lambda: NodeApi(node_env=node_env or {}), RESOURCES, on_start)
