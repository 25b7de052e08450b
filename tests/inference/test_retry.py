"""inference/retry.py: which errors are retried, how long it waits, and when it gives up."""

from __future__ import annotations

import asyncio

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response

from inference.client import ServerError
from inference.retry import NO_RETRY, RetryPolicy, is_refusal, retry_refused


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def refusing(times: int, error: Exception, result: str = "ok") -> tuple[list[int], object]:
    calls: list[int] = []

    async def call() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return result
    return calls, call


FULL_WS = ServerError("at_capacity", "at capacity: 2 of 2 streams busy", close_code=1013)
FULL_HTTP = ServerError("at_capacity", "busy", status=503, retry_after=1)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_refusals_are_retried_until_a_try_succeeds() -> None:
    fake, seen = FakeTime(), []
    calls, call = refusing(3, FULL_WS)
    result = run(retry_refused(call, RetryPolicy(), sleep=fake.sleep, clock=fake.clock, draw=lambda: 0.0,
                               on_refusal=lambda error, attempt: seen.append(attempt)))
    assert result == "ok" and len(calls) == 4 and seen == [1, 2, 3]
    assert fake.sleeps == [0.125, 0.25, 0.5]  # half of base * 2**n with the lowest draw: never zero


def test_backoff_is_capped_and_jittered_within_its_upper_half() -> None:
    policy = RetryPolicy(base_s=0.25, cap_s=4.0)
    assert [policy.delay(n, 0.999999) for n in range(7)] == pytest.approx([0.25, 0.5, 1, 2, 4, 4, 4], rel=1e-5)
    assert all(2.0 <= policy.delay(10, draw / 10) <= 4.0 for draw in range(10))


def test_gives_up_after_the_attempts_and_raises_the_last_refusal() -> None:
    fake = FakeTime()
    calls, call = refusing(99, FULL_HTTP)
    with pytest.raises(ServerError) as raised:
        run(retry_refused(call, RetryPolicy(attempts=3), sleep=fake.sleep, clock=fake.clock))
    assert raised.value is FULL_HTTP and len(calls) == 3 and len(fake.sleeps) == 2


def test_gives_up_rather_than_sleep_past_the_deadline() -> None:
    fake = FakeTime()
    calls, call = refusing(99, FULL_WS)
    with pytest.raises(ServerError):
        run(retry_refused(call, RetryPolicy(attempts=100, deadline_s=5.0, cap_s=4.0), sleep=fake.sleep,
                          clock=fake.clock, draw=lambda: 0.5))
    assert fake.now - 100.0 <= 5.0 and len(calls) < 100 and len(fake.sleeps) >= 3


def test_other_errors_are_raised_at_once() -> None:
    fake = FakeTime()
    for error in (ServerError("unauthorized", "bad token", close_code=1008),
                  ServerError("bad_input", "no", status=400), ConnectionRefusedError("down")):
        calls, call = refusing(1, error)
        with pytest.raises(type(error)):
            run(retry_refused(call, RetryPolicy(), sleep=fake.sleep, clock=fake.clock))
        assert len(calls) == 1
    assert fake.sleeps == []


def test_no_retry_tries_once() -> None:
    calls, call = refusing(1, FULL_WS)
    with pytest.raises(ServerError):
        run(retry_refused(call, NO_RETRY))
    assert len(calls) == 1


def test_what_counts_as_a_refusal() -> None:
    assert is_refusal(FULL_WS) and is_refusal(FULL_HTTP)
    assert is_refusal(ServerError("not_ready", "loading", close_code=1013))
    assert is_refusal(InvalidStatus(Response(503, "Service Unavailable", Headers())))  # a proxy: no endpoint
    assert not is_refusal(InvalidStatus(Response(404, "Not Found", Headers())))
    assert not is_refusal(ServerError("shutting_down", "bye", close_code=1001))
    assert not is_refusal(ServerError("internal", "boom", status=500))


@pytest.mark.parametrize("fields", [{"attempts": 0}, {"deadline_s": -1}, {"base_s": 0}, {"base_s": 2, "cap_s": 1}])
def test_invalid_policies_are_refused(fields: dict) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**fields)
