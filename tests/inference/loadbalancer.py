"""A test load balancer that routes like a Kubernetes Service: only to endpoints whose readiness probe
(`GET /readyz`) last answered 200, polled every `period` seconds as the kubelet does.

TCP-level (as kube-proxy): each client connection is piped to one backend chosen at connect time,
round robin over the ready endpoints; with none ready it answers HTTP 503, as an Envoy or ingress in
front of a Service with no endpoints does. Test code, not shipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field

import httpx


@dataclass
class Endpoint:
    url: str
    host: str
    port: int
    ready: bool = False


@dataclass
class ReadinessBalancer:
    backends: list[str]
    period: float = 0.05
    url: str = ""  # where clients connect, once started
    endpoints: list[Endpoint] = field(default_factory=list)
    polls: int = 0  # completed probe rounds: a test waits for one to pass instead of for time
    routed: list[str] = field(default_factory=list)  # the backend of every connection, in order
    unrouted: int = 0
    _server: asyncio.AbstractServer | None = None
    _poller: asyncio.Task[None] | None = None
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    async def start(self) -> str:
        for url in self.backends:
            host, _, port = url.removeprefix("http://").partition(":")
            self.endpoints.append(Endpoint(url, host, int(port)))
        await self.poll_once()
        self._poller = asyncio.create_task(self._poll_forever())
        self._server = await asyncio.start_server(self._route, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._poller:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    async def poll_once(self) -> None:
        async with httpx.AsyncClient(timeout=2) as client:
            for endpoint in self.endpoints:
                try:
                    endpoint.ready = (await client.get(endpoint.url + "/readyz")).status_code == 200
                except httpx.TransportError:
                    endpoint.ready = False
        self.polls += 1

    async def next_poll(self) -> None:
        """Until one whole probe round has run after now (the endpoints reflect the present)."""
        target = self.polls + 2
        while self.polls < target:
            await asyncio.sleep(self.period / 4)

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            await self.poll_once()

    async def _route(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ready = [e for e in self.endpoints if e.ready]
        if not ready:
            self.unrouted += 1
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()
            return
        endpoint = ready[next(self._turn) % len(ready)]
        self.routed.append(endpoint.url)
        try:
            up_reader, up_writer = await asyncio.open_connection(endpoint.host, endpoint.port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            sink.close()
