"""The avatar dispatcher: one worker per room, capacity from the inference server, tokens only in env."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from inference.integrations.livekit_dispatcher import Launcher, create_dispatcher
from tests.inference.conftest import RunningServer

SECRET = "lk-room-token-123"


def stand_in_worker(record: Path) -> list[str]:
    """A worker that writes what it was given (env) and then waits like a real one."""
    script = ("import os, sys, time; open(sys.argv[1] + '/' + os.environ['LIVEKIT_ROOM'], 'w').write("
              "os.environ['LIVEKIT_TOKEN'] + ' ' + os.environ['LIVEKIT_URL']); time.sleep(120)")
    return [sys.executable, "-c", script, str(record)]


@pytest.fixture
def dispatcher(server_factory, tmp_path: Path):
    running: RunningServer = server_factory({"FLASHHEAD_MAX_STREAMS": "2"})
    launcher = Launcher(running.url, command=stand_in_worker(tmp_path))
    with TestClient(create_dispatcher(launcher)) as client:
        yield client, launcher
    launcher.stop_all()


def test_one_worker_per_room_up_to_the_servers_capacity(dispatcher, tmp_path: Path) -> None:
    client, launcher = dispatcher
    body = {"url": "wss://127.0.0.1:7880", "token": SECRET}
    first = client.post("/launch", json={**body, "room_name": "a"})
    assert first.status_code == 202 and first.json()["room_name"] == "a"
    assert client.post("/launch", json={**body, "room_name": "b"}).status_code == 202
    refused = client.post("/launch", json={**body, "room_name": "c"})
    assert refused.status_code == 503 and refused.json()["code"] == "at_capacity"
    assert refused.headers["retry-after"] == "10"
    # A second launch for a room replaces its worker (it is not one more).
    again = client.post("/launch", json={**body, "room_name": "a"})
    assert again.status_code == 202 and again.json()["pid"] != first.json()["pid"]
    assert sorted(client.get("/workers").json()["workers"]) == ["a", "b"]
    # The token reached the worker through its environment and is on no command line.
    for _ in range(200):
        if (tmp_path / "a").exists() and (tmp_path / "a").read_text():
            break
        import time
        time.sleep(0.05)
    assert (tmp_path / "a").read_text() == f"{SECRET} wss://127.0.0.1:7880"
    for pid in client.get("/workers").json()["workers"].values():
        assert SECRET.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()


@pytest.mark.parametrize("body", [None, [], {"room_name": "a"}, {"room_name": "a", "url": "ftp://x", "token": "t"},
                                  {"room_name": 1, "url": "wss://x", "token": "t"},
                                  {"room_name": "a", "url": "wss://x", "token": "t", "avatar_id": 5}])
def test_bad_launch_requests_are_400_with_a_reason(dispatcher, body) -> None:
    client, _ = dispatcher
    response = client.post("/launch", content=b"{not json" if body is None else None,
                           json=None if body is None else body)
    assert response.status_code == 400 and response.json()["code"] == "bad_input" and response.json()["message"]
