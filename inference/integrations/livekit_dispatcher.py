"""The avatar dispatcher: `POST /launch` sends one avatar worker into a LiveKit room.

    python -m inference.integrations.livekit_dispatcher --port 8089   (FLASHHEAD_URL, FLASHHEAD_API_TOKEN,
                                                                        FLASHHEAD_AVATAR_ID in its env)

Body: `{"room_name", "url", "token", "avatar_id"?}` (what `FlashheadAvatarSession.start` sends).
One worker process per room (a second launch for a room replaces its worker); no more workers than
the inference server can stream (`/v1/info` → `capacity.stream_limit`): beyond it 503 with
Retry-After. The room token travels to the worker in its environment, never on a command line or in
a log. `GET /workers` lists the rooms served.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

log = logging.getLogger("flashhead.dispatcher")
WORKER_COMMAND = (sys.executable, "-m", "inference.integrations.livekit_worker")
URL_SCHEMES = ("ws://", "wss://", "http://", "https://")


@dataclass
class Launcher:
    """Worker processes by room; `capacity` asks the inference server how many streams it takes."""

    flashhead_url: str
    flashhead_token: str | None = None
    command: Sequence[str] = WORKER_COMMAND
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def running(self) -> dict[str, int]:
        for room, process in list(self.workers.items()):
            if process.poll() is not None:
                log.info("worker exited", extra={"room": room, "status": process.returncode})
                del self.workers[room]
        return {room: process.pid for room, process in self.workers.items()}

    async def capacity(self) -> int:
        headers = {"Authorization": f"Bearer {self.flashhead_token}"} if self.flashhead_token else {}
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(f"{self.flashhead_url.rstrip('/')}/v1/info", headers=headers)
        response.raise_for_status()
        capacity = response.json()["capacity"]
        return int(capacity.get("stream_limit") or capacity["max_streams"])

    def launch(self, room: str, url: str, token: str, avatar_id: str | None) -> int:
        self.stop(room)
        env = {**self.env, "LIVEKIT_URL": url, "LIVEKIT_TOKEN": token, "LIVEKIT_ROOM": room,
               "FLASHHEAD_URL": self.flashhead_url}
        if self.flashhead_token:
            env["FLASHHEAD_API_TOKEN"] = self.flashhead_token
        if avatar_id:
            env["FLASHHEAD_AVATAR_ID"] = avatar_id
        process = subprocess.Popen(list(self.command), env=env)
        self.workers[room] = process
        log.info("worker launched", extra={"room": room, "pid": process.pid})
        return process.pid

    def stop(self, room: str) -> None:
        process = self.workers.pop(room, None)
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop_all(self) -> None:
        for room in list(self.workers):
            self.stop(room)


def _error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def _launch_request(body: Any) -> tuple[str, str, str, str | None]:
    """(room, url, token, avatar_id) from a /launch body; ValueError naming what is wrong."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object with room_name, url and token")
    values = {}
    for name in ("room_name", "url", "token"):
        value = body.get(name)
        if not isinstance(value, str) or not value or len(value) > 4096:
            raise ValueError(f"`{name}` must be a non-empty string")
        values[name] = value
    if not values["url"].startswith(URL_SCHEMES):
        raise ValueError("`url` must be the LiveKit server's ws://, wss://, http:// or https:// URL")
    avatar_id = body.get("avatar_id")
    if avatar_id is not None and not isinstance(avatar_id, str):
        raise ValueError("`avatar_id` must be a string")
    return values["room_name"], values["url"], values["token"], avatar_id


def create_dispatcher(launcher: Launcher) -> Starlette:
    lock = asyncio.Lock()

    async def launch(request: Request) -> JSONResponse:
        try:
            room, url, token, avatar_id = _launch_request(await request.json())
        except ValueError as error:  # also a body that is not JSON
            return _error(400, "bad_input", str(error) if "`" in str(error) else "the body must be JSON")
        async with lock:
            busy = {name for name in launcher.running() if name != room}
            try:
                limit = await launcher.capacity()
            except (httpx.HTTPError, KeyError, ValueError) as error:
                return _error(503, "not_ready", f"the inference server's /v1/info did not answer: {error}",
                              **{"Retry-After": "5"})
            if len(busy) >= limit:
                return _error(503, "at_capacity", f"{len(busy)} of {limit} avatar workers busy",
                              **{"Retry-After": "10"})
            pid = launcher.launch(room, url, token, avatar_id)
        return JSONResponse({"room_name": room, "pid": pid}, status_code=202)

    async def workers(request: Request) -> JSONResponse:
        return JSONResponse({"workers": launcher.running()})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        launcher.stop_all()

    return Starlette(routes=[Route("/launch", launch, methods=["POST"]), Route("/workers", workers)],
                     lifespan=lifespan)


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    args = parser.parse_args(argv)
    launcher = Launcher(os.environ.get("FLASHHEAD_URL", "http://127.0.0.1:8000"),
                        os.environ.get("FLASHHEAD_API_TOKEN") or None)
    logging.basicConfig(level=logging.INFO)
    uvicorn.run(create_dispatcher(launcher), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
