"""Retry a refused stream or request on another try: backoff with jitter, bounded tries and time.

Behind a Kubernetes Service, a pod at capacity leaves the endpoints within one readiness period;
until then a new stream may still land on it and be refused (HTTP 503, WebSocket close 1013). Such
a refusal is safe to retry: nothing was generated. Anything else (bad input, auth, a server error)
is raised at once. Pure standard library plus `inference.client`'s error type.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from inference.protocol import CloseCode

T = TypeVar("T")
REFUSED_STATUS = 503
REFUSED_CLOSE = CloseCode.TRY_AGAIN_LATER


@dataclass(frozen=True)
class RetryPolicy:
    """At most `attempts` tries (the first included), none started after `deadline_s`; between tries
    `base_s * 2**n` capped at `cap_s`, with "equal jitter" (a uniform draw in its upper half) so that
    clients refused together do not come back together and no wait is ever zero."""

    attempts: int = 8
    deadline_s: float = 30.0
    base_s: float = 0.25
    cap_s: float = 4.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.deadline_s < 0 or self.base_s <= 0 or self.cap_s < self.base_s:
            raise ValueError(f"invalid retry policy {self}")

    def delay(self, retry: int, draw: float) -> float:
        """Seconds before retry number `retry` (0-based), for a uniform `draw` in [0, 1)."""
        ceiling = min(self.cap_s, self.base_s * 2 ** retry)
        return ceiling / 2 + ceiling / 2 * draw


NO_RETRY = RetryPolicy(attempts=1)


def is_refusal(error: BaseException) -> bool:
    """A capacity or not-ready refusal: HTTP 503 or WebSocket close 1013 (nothing was generated).

    Also a proxy's 503 to the WebSocket handshake (`websockets`' InvalidStatus: no endpoint with room)."""
    status = getattr(error, "status", None)
    close_code = getattr(error, "close_code", None)
    handshake = getattr(getattr(error, "response", None), "status_code", None)
    return REFUSED_STATUS in (status, handshake) or close_code == REFUSED_CLOSE


async def retry_refused(call: Callable[[], Awaitable[T]], policy: RetryPolicy = RetryPolicy(), *,
                        on_refusal: Callable[[BaseException, int], None] | None = None,
                        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                        clock: Callable[[], float] = time.monotonic,
                        draw: Callable[[], float] = random.random) -> T:
    """`await call()`, again after each refusal, within `policy`; then the last refusal is raised.

    `on_refusal(error, attempt)` hears every refusal (attempt counts from 1), e.g. to count them.
    """
    deadline = clock() + policy.deadline_s
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except Exception as error:
            if not is_refusal(error):
                raise
            if on_refusal:
                on_refusal(error, attempt)
            pause = policy.delay(attempt - 1, draw())
            if attempt >= policy.attempts or clock() + pause > deadline:
                raise
            await sleep(pause)
