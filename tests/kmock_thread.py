"""Run a kmock API stand-in on loopback in a background event loop, for synchronous tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import kmock

E = TypeVar("E", bound=kmock.KubernetesEmulator)
H = TypeVar("H")


def serve_in_background(make_emulator: Callable[[], E], resources: dict[str, tuple[str, bool]],
                        on_start: Callable[[E, str, asyncio.AbstractEventLoop], H]) -> Iterator[H]:
    """Serve `make_emulator()` with `resources` declared; yield what `on_start(emulator, url, loop)` returns."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        emulator = make_emulator()
        async with emulator, kmock.Server(emulator) as http:
            for resource, (kind, namespaced) in resources.items():
                emulator.resources[resource] = kmock.ResourceInfo(kind=kind, namespaced=namespaced)
            box["loop"], box["stop"] = asyncio.get_running_loop(), asyncio.Event()
            box["handle"] = on_start(emulator, str(http.url), box["loop"])
            ready.set()
            await box["stop"].wait()
            emulator._errors[-1].clear()  # 404s and 403s are expected traffic here, not test errors

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the Kubernetes stand-in did not start")
    try:
        yield box["handle"]
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(10)
