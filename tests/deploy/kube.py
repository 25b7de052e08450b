"""The running API stand-in (apiserver.py) for the deploy tests: its URL, a kubeconfig, and its objects.

Tests read and write objects here as a controller or another user would: `put` and `patch` write
the store directly (no field manager, like a controller's status write), `update` goes through
the server's update semantics under a field manager (like `kubectl edit`).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from kmock._internal.dicts import merge_patch_dict

from tests.deploy.apiserver import PLURALS, RESOURCES, ApiServer, key_of
from tests.deploy.controlplane import ControlPlane, Node
from tests.kmock_thread import serve_in_background

__all__ = ["PLURALS", "RESOURCES", "Kube", "start"]


class Kube:
    """The running stand-in: its URL, a kubeconfig for it, and thread-safe access to its objects."""

    def __init__(self, server: ApiServer, url: str, loop: asyncio.AbstractEventLoop, tmp: Path):
        self.server = server
        self.url = url.rstrip("/")
        self.loop = loop
        self.tasks: list[asyncio.Task[Any]] = []
        self.control: ControlPlane | None = None
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
        self.call(lambda: self.server.store(copy.deepcopy(obj)))

    def patch(self, kind: str, namespace: str | None, name: str, patch: dict[str, Any]) -> None:
        """Merge `patch` into the stored object (a controller's status write: no field manager)."""
        def write() -> None:
            live = self.server.read(kind, namespace, name)
            assert live is not None, f"{kind}/{name} does not exist"
            self.server.store(dict(merge_patch_dict(live, patch)))
        self.call(write)

    def update(self, kind: str, namespace: str | None, name: str, patch: dict[str, Any], manager: str) -> None:
        """A merge patch by field manager `manager` (it takes over the fields it changes, like kubectl edit)."""
        self.call(lambda: self.server.merge_patch(kind, namespace, name, patch, manager))

    def control_plane(self, nodes: list[Node] | None = None, run: bool = True, **options: Any) -> ControlPlane:
        """Start the controllers, the scheduler and the kubelets of `nodes` (default: one GPU node
        rtx4090); `run=False` leaves them to `step()`."""
        control = ControlPlane(self.server, nodes or [Node("rtx4090")], **options)
        if not self.exists("Secret", "flashhead", "flashhead-api-token"):  # as docs/deploy.md has the user do
            self.put({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "flashhead-api-token",
                                                                         "namespace": "flashhead"},
                      "data": {"token": "dGVzdC10b2tlbi10ZXN0LXRva2Vu"}})
        self.call(control.register_nodes)
        self.control = control
        if run:
            async def start() -> None:
                self.tasks.append(asyncio.get_running_loop().create_task(control.run()))
            asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        return control

    def step(self, times: int = 1) -> None:
        """Run the controllers `times` passes (with `control_plane(run=False)`)."""
        assert self.control is not None
        for _ in range(times):
            self.call(self.control.step)

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self.call(lambda: self.server.read(kind, namespace, name))
        return result

    def names(self, kind: str, namespace: str | None = "flashhead") -> set[str]:
        return {obj["metadata"]["name"] for obj in self.call(lambda: self.server.items(kind, namespace))}

    def requests(self) -> list[tuple[str, str, str, dict[str, str]]]:
        """(method, path, content type, query) of every request served so far."""
        return self.call(lambda: [(r.method.value, r.url.path, r.headers.get("Content-Type", ""), dict(r.params))
                                  for r in self.server._requests])

    def clear_requests(self) -> None:
        self.call(self.server._requests.clear)

    def exists(self, kind: str, namespace: str | None, name: str) -> bool:
        key = key_of(kind, namespace, name)
        return bool(self.call(lambda: key in self.server.objects and not self.server.objects[key].deleted))


def start(tmp: Path) -> Iterator[Kube]:
    """Run the stand-in (and its garbage collector) on a loopback port in a background event loop."""
    def started(server: ApiServer, url: str, loop: asyncio.AbstractEventLoop) -> Kube:
        kube = Kube(server, url, loop, tmp)
        kube.tasks.append(loop.create_task(server.collect_garbage()))
        return kube
    yield from serve_in_background(ApiServer, RESOURCES, started)
