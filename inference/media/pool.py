"""A few worker processes that decode untrusted media, so a C-library crash fails one request only.

Each worker is its own process (forkserver: started from a clean, single-threaded server, with
the media libraries preloaded), runs one job at a time under an address-space limit
(FLASHHEAD_MEDIA_MEMORY_MB on top of what the libraries map) and returns freed memory to the
system after every job. The server waits for each job in a thread of its own, never on the
event loop or the model thread. A job that crashes its worker (a segfault in libav, the kernel's
OOM killer), overruns the memory limit or the time limit (FLASHHEAD_MEDIA_TIMEOUT_S) fails with
a typed error for that request alone; the worker is then replaced. Jobs wait for a free worker,
so the workers are also the cap on concurrent decoding.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from inference.errors import InferenceError, TooLarge, UnsupportedMedia

log = logging.getLogger("inference.media")
T = TypeVar("T")
PRELOAD = ["inference.media.worker"]


@dataclass
class _Failure:
    """An error raised in a worker, carried back by value (exceptions lose their remedy when pickled)."""

    kind: type[InferenceError] | None  # None: an unexpected error (a bug), logged with its traceback
    message: str
    remedy: str | None = None

    def error(self) -> InferenceError:
        if self.kind is None:
            log.error("media worker failed: %s", self.message)
            return InferenceError("internal server error while decoding", "see the server log; retry the request")
        return self.kind(self.message, self.remedy)


class WorkerLost(Exception):
    """The worker process ended (crash or kill) before answering."""


class _Worker:
    """One worker process and the pipe to it."""

    def __init__(self, context: Any, memory_bytes: int):
        from inference.media.worker import serve

        self.connection, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, memory_bytes), name="flashhead-media", daemon=True)
        self.process.start()
        child.close()

    def call(self, function: Callable[..., Any], args: tuple[Any, ...], timeout: float) -> Any:
        """Run `function(*args)` in the worker; WorkerLost or TimeoutError leave the worker unusable."""
        connection: Connection = self.connection
        try:
            connection.send((function, args))
            answered = connection.poll(timeout)  # also True when the pipe closed: recv then raises EOFError
            if answered:
                status, value = connection.recv()
        except (EOFError, OSError):
            raise WorkerLost from None
        if not answered:
            raise TimeoutError
        if status == "ok":
            return value
        raise _Raised(value)

    def describe_end(self) -> str:
        self.process.join(timeout=2)
        code = self.process.exitcode
        if code is not None and code < 0:
            return f"ended by {signal.Signals(-code).name}"
        return f"exited with status {code}"

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.connection.close()


class _Raised(Exception):
    def __init__(self, failure: _Failure):
        super().__init__(failure.message)
        self.failure = failure


class MediaPool:
    """`size` worker processes; `await pool.run(function, *args)` runs one job in a free one."""

    def __init__(self, size: int, memory_mb: int, timeout_s: float):
        self.size = size
        self.memory_bytes = memory_mb * 2**20
        self.timeout_s = timeout_s
        self.context = multiprocessing.get_context("forkserver")
        self.threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix="media-wait")
        self.idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self.workers: set[_Worker] = set()
        self.replaced = 0
        self.started = False

    async def start(self) -> None:
        """Start the workers (in a thread: the first start launches the fork server)."""
        self.context.set_forkserver_preload(PRELOAD)
        loop = asyncio.get_running_loop()
        for _ in range(self.size):
            worker = await loop.run_in_executor(self.threads, self._new_worker)
            self.idle.put_nowait(worker)
        self.started = True

    async def stop(self) -> None:
        for worker in list(self.workers):
            worker.stop()
        self.workers.clear()
        self.threads.shutdown(wait=False, cancel_futures=True)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` in a worker. Its InferenceErrors come back as they were raised; a crash,
        a memory overrun or a timeout becomes UnsupportedMedia / TooLarge for this call only."""
        worker = await self.idle.get()
        job = asyncio.get_running_loop().run_in_executor(self.threads, self._job, worker, function, args)
        # The worker goes back (or its replacement) when the job ends, even if this request is gone.
        job.add_done_callback(lambda done: self.idle.put_nowait(done.result()[0]))
        _, outcome = await asyncio.shield(job)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[no-any-return]

    def _job(self, worker: _Worker, function: Callable[..., Any], args: tuple[Any, ...]) -> tuple[_Worker, Any]:
        """In a waiting thread: the job's result or typed error, and the worker to reuse. Never raises."""
        started = time.monotonic()
        try:
            return worker, worker.call(function, args, self.timeout_s)
        except _Raised as raised:
            return worker, raised.failure.error()
        except TimeoutError:
            error: InferenceError = TooLarge(
                f"decoding took longer than {self.timeout_s:g} s (FLASHHEAD_MEDIA_TIMEOUT_S) and was stopped",
                "send a shorter clip or a smaller photo")
            how = "timed out"
        except WorkerLost:
            how = worker.describe_end()
            error = UnsupportedMedia(
                f"the decoder crashed on this file (its worker process {how}); the server and other requests "
                "were not affected", "re-encode the file (ffmpeg -i INPUT -ac 1 out.wav, or save the photo as "
                "PNG) and send it again")
        except Exception as failure:  # noqa: BLE001 - the pipe or the pickling failed: the worker is suspect
            how = f"failed: {failure}"
            error = InferenceError("internal server error while decoding", "see the server log; retry the request")
        log.warning("media worker %s after %.1f s; replacing it", how, time.monotonic() - started,
                    extra={"pid": worker.process.pid, "job": getattr(function, "__name__", "?")})
        return self._replace(worker), error

    def _replace(self, worker: _Worker) -> _Worker:
        worker.stop()
        self.workers.discard(worker)
        self.replaced += 1
        return self._new_worker()

    def _new_worker(self) -> _Worker:
        worker = _Worker(self.context, self.memory_bytes)
        self.workers.add(worker)
        return worker

    def describe(self) -> dict[str, Any]:
        """For /v1/info: workers, idle now, replaced so far, limits."""
        return {"workers": self.size, "idle": self.idle.qsize(), "replaced": self.replaced,
                "memory_mb": self.memory_bytes // 2**20, "timeout_s": self.timeout_s}


def failure_of(error: BaseException) -> _Failure:
    """How a worker reports `error` back."""
    if isinstance(error, InferenceError):
        return _Failure(type(error), error.message, error.remedy)
    if isinstance(error, MemoryError):
        return _Failure(TooLarge, "decoding needed more memory than the media worker may use "
                                  "(FLASHHEAD_MEDIA_MEMORY_MB)", "send a shorter clip or a smaller photo")
    return _Failure(None, "".join(traceback.format_exception(error)))
