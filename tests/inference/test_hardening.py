"""What a careless or hostile client can do over HTTP and TCP: slow bodies, silent connections,
too many connections, odd tokens, tokens in URLs. One server with short limits serves every test."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets

from inference import protocol
from inference.client import FlashheadClient
from tests.inference.conftest import (
    TOKEN,
    RunningServer,
    encode_image,
    face_image,
    speech_like,
    start_server,
    wav_bytes,
)

BODY_TIMEOUT_S, BODY_DEADLINE_S, HEADER_TIMEOUT_S, MAX_CONNECTIONS = 1.0, 4.0, 1.5, 40


@pytest.fixture(scope="module")
def hard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("hardening"), {
        "FLASHHEAD_MAX_STREAMS": "1", "FLASHHEAD_MAX_UPLOADS": "1", "FLASHHEAD_LOG_LEVEL": "debug",
        "FLASHHEAD_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S), "FLASHHEAD_BODY_DEADLINE_S": str(BODY_DEADLINE_S),
        "FLASHHEAD_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S), "FLASHHEAD_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "FLASHHEAD_READY_TIMEOUT_S": "3"}, token=TOKEN)
    yield running
    running.stop()


def _address(server: RunningServer) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def _trickle(server: RunningServer, pause_s: float, result: dict[str, object]) -> None:
    """POST /v1/generate whose body comes one byte every `pause_s`; records the answer and when it came."""
    started = time.monotonic()
    with socket.create_connection(_address(server), timeout=30) as sock:
        sock.sendall(b"POST /v1/generate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                     + b"\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n")
        sock.settimeout(pause_s)
        answer = b""
        for _ in range(200):
            try:
                sock.sendall(b"-")
                answer = sock.recv(4096)
                if answer:
                    break
            except TimeoutError:
                continue
            except OSError:
                break
        sock.settimeout(5)
        while answer and (more := sock.recv(4096)):
            answer += more
    result["answer"] = answer.decode(errors="replace")
    result["seconds"] = time.monotonic() - started


@pytest.mark.asyncio
async def test_slow_bodies_never_hold_a_stream_slot(hard_server: RunningServer) -> None:
    """A body trickled a byte at a time is cut at the deadline (408); meanwhile the one slot stays free."""
    answer = httpx.post(hard_server.url + "/v1/avatars", headers=hard_server.headers,
                        files={"image": ("f.png", encode_image(face_image(), "PNG"))})
    avatar = answer.json()["avatar_id"]
    trickled: dict[str, object] = {}
    trickler = threading.Thread(target=_trickle, args=(hard_server, 0.5, trickled))
    trickler.start()
    await asyncio.sleep(0.5)
    # The only upload slot is the trickler's: another upload is refused at once, naming the limit.
    busy = httpx.post(hard_server.url + "/v1/avatars", headers=hard_server.headers,
                      files={"image": ("f.png", encode_image(face_image(), "PNG"))})
    assert busy.status_code == 503 and "FLASHHEAD_MAX_UPLOADS" in busy.json()["message"]
    assert httpx.get(hard_server.url + "/readyz").status_code == 200
    # The only stream slot is free: a stream runs to its end while the body trickles.
    async with FlashheadClient(hard_server.url, token=TOKEN) as client:
        result = await client.stream_audio(speech_like(0.4).tobytes(), avatar_id=avatar)
    assert len(result.frames) == 10
    await asyncio.to_thread(trickler.join)
    assert "408" in str(trickled["answer"]).split("\r\n")[0], trickled
    assert "FLASHHEAD_BODY_DEADLINE_S" in str(trickled["answer"])
    assert BODY_DEADLINE_S <= float(trickled["seconds"]) < BODY_DEADLINE_S + 3  # type: ignore[arg-type]
    # A body that pauses longer than the body timeout is cut after that pause.
    paused: dict[str, object] = {}
    await asyncio.to_thread(_trickle, hard_server, BODY_TIMEOUT_S * 2.5, paused)
    assert "408" in str(paused["answer"]) and "FLASHHEAD_BODY_TIMEOUT_S" in str(paused["answer"])
    assert hard_server.info()["active_streams"] == 0


def _silent_connections(server: RunningServer, count: int) -> list[socket.socket]:
    return [socket.create_connection(_address(server), timeout=10) for _ in range(count)]


def _closed_with(sock: socket.socket, wait_s: float) -> bytes | None:
    """What the server sent before closing within `wait_s`, or None if it kept the connection open."""
    sock.settimeout(wait_s)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except TimeoutError:
        return None
    except OSError:
        pass
    return data


def test_silent_and_slow_connections_are_closed(hard_server: RunningServer) -> None:
    silent = _silent_connections(hard_server, 20)
    slow_head = socket.create_connection(_address(hard_server), timeout=10)
    slow_head.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the head never ends
    started = time.monotonic()
    answers = [_closed_with(sock, HEADER_TIMEOUT_S + 3) for sock in [*silent, slow_head]]
    assert all(answer is not None for answer in answers), "a silent connection was kept open"
    assert time.monotonic() - started < HEADER_TIMEOUT_S + 3
    assert b"408" in answers[-1] and b"FLASHHEAD_HEADER_TIMEOUT_S" in answers[-1]  # type: ignore[operator]
    # A keep-alive connection whose next head trickles is closed too, not held by the partial bytes.
    with socket.create_connection(_address(hard_server), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        assert _closed_with(sock, HEADER_TIMEOUT_S + 3) is not None
    for sock in silent + [slow_head]:
        sock.close()


def test_connection_cap_answers_503_and_keeps_serving(hard_server: RunningServer) -> None:
    held = _silent_connections(hard_server, MAX_CONNECTIONS)
    try:
        with socket.create_connection(_address(hard_server), timeout=10) as extra:
            answer = _closed_with(extra, 5)
        assert answer is not None and answer.startswith(b"HTTP/1.1 503")
        assert b"FLASHHEAD_MAX_CONNECTIONS" in answer
    finally:
        for sock in held:
            sock.close()
    for _ in range(50):  # the server notices the closed sockets, then serves again
        try:
            if httpx.get(hard_server.url + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    assert httpx.get(hard_server.url + "/healthz").status_code == 200


@pytest.mark.parametrize(("header", "status"), [
    (f"Bearer {TOKEN}", 200), (f"bearer {TOKEN}", 200), (f"BEARER   {TOKEN}", 200), (f"BeArEr {TOKEN}", 200),
    (f"Basic {TOKEN}", 401), (TOKEN, 401), ("Bearer", 401), ("Bearer wrong-token-0123456789", 401),
    (f"Bearer {TOKEN}x", 401), (f"Bearer {TOKEN[:-1]}", 401),
])
def test_bearer_scheme_is_case_insensitive(hard_server: RunningServer, header: str, status: int) -> None:
    answer = httpx.get(hard_server.url + "/v1/info", headers={"Authorization": header})
    assert answer.status_code == status


def test_non_ascii_tokens_are_wrong_tokens(hard_server: RunningServer) -> None:
    host, port = _address(hard_server)
    for raw in (b"Bearer \xff\xfe\xfd", "Bearer t\u00f6ken".encode("latin-1"), b"Bearer " + TOKEN.encode() + b"\xe9"):
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(b"GET /v1/info HTTP/1.1\r\nHost: x\r\nAuthorization: " + raw + b"\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 401"), raw


@pytest.mark.asyncio
@pytest.mark.parametrize("token", ["\ud800", "t\u00f6ken-0123456789abcdef", "\x00", TOKEN + "\udfff", 12, ""])
async def test_odd_tokens_in_start_are_refused_with_1008(hard_server: RunningServer, token: object) -> None:
    async with websockets.connect(hard_server.ws_url) as connection:
        start = {"type": "start", "avatar_id": "av_x", "token": token}
        await connection.send(json.dumps(start))
        error = json.loads(await connection.recv())
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await connection.recv()
    expected = "bad_input" if not isinstance(token, str) else "unauthorized"
    assert error["type"] == "error" and error["code"] == expected
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == protocol.ERROR_CLOSE_CODES[expected]
    assert "Traceback" not in hard_server.log_text()


@pytest.mark.asyncio
async def test_no_token_in_any_log_line(hard_server: RunningServer) -> None:
    """Tokens sent every way a client might (right and wrong) never reach the log, which is at debug level."""
    url = hard_server.url
    wrong = "wrong-secret-value-4242"
    for name in ("token", "access_token", "key", "api_key", "Token", "tok%65n"):
        for value in (TOKEN, wrong):
            httpx.get(f"{url}/v1/info?{name}={value}")
            httpx.get(f"{url}/v1/info?a=1&{name}={value}&b=2", headers=hard_server.headers)
            httpx.get(f"{url}/healthz?{name}={value}")
            async with websockets.connect(f"{hard_server.ws_url}?{name}={value}",
                                          additional_headers={"Authorization": f"Bearer {wrong}"}):
                pass
    async with websockets.connect(f"{hard_server.ws_url}?token={TOKEN}") as connection:
        await connection.send(json.dumps({"type": "start", "avatar_id": "av_nope", "token": TOKEN}))
        await connection.recv()
    async with websockets.connect(f"{hard_server.ws_url}?access_token={wrong}") as connection:
        await connection.send(json.dumps({"type": "start", "avatar_id": "av_nope", "token": wrong}))
        await connection.recv()
    httpx.post(url + "/v1/generate", headers={"Authorization": f"Bearer {wrong}"},
               files={"audio": ("a", wav_bytes(speech_like(0.1), 16000))})
    log = hard_server.log_text()
    assert "GET /v1/info?token=***" in log  # the lines are there, with the values gone
    lines = [line for line in log.splitlines() if TOKEN in line or wrong in line]
    assert not lines, lines[:5]
