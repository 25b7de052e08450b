"""The body of a media worker process (see inference/media/pool.py). Imported by the fork server,
so the media libraries are loaded once and shared by every worker forked from it."""

from __future__ import annotations

import gc
import resource
import signal
from multiprocessing.connection import Connection

import av  # noqa: F401 - preloaded for the workers
import av.filter  # noqa: F401
import numpy  # noqa: F401
import PIL.Image  # noqa: F401
import pillow_heif  # noqa: F401

from inference import memory


def serve(connection: Connection, memory_bytes: int) -> None:
    """Answer (function, args) jobs with ("ok", result) or ("error", _Failure) until the pipe closes."""
    from inference.media.pool import failure_of

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the server, which stops the workers
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    memory.limit_arenas()
    _limit_address_space(memory_bytes)
    while True:
        try:
            function, args = connection.recv()
        except (EOFError, OSError):
            return  # the server is gone
        try:
            answer: tuple[str, object] = ("ok", function(*args))
        except BaseException as error:  # noqa: BLE001 - every failure goes back to the server as data
            answer = ("error", failure_of(error))
        del function, args
        try:
            connection.send(answer)
        except MemoryError:
            connection.send(("error", failure_of(MemoryError())))
        del answer
        gc.collect()
        memory.trim()


def _limit_address_space(budget: int) -> None:
    """Allow `budget` bytes of address space on top of what the process maps now (libraries, arenas)."""
    current = _vm_size()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = current + budget
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _vm_size() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0
