"""glibc malloc settings that make freed memory go back to the system (no effect on other C libraries).

By default glibc gives each thread that allocates its own arena (up to 8 x cores) and keeps what
those arenas freed: a burst of long uploads decoded in worker threads left the server 1.6 GB
larger for good. The server caps the arenas (MALLOC_ARENA_MAX, also set in the Dockerfile),
maps big buffers on their own, and trims the heap after large requests.
"""

from __future__ import annotations

import ctypes
import os
from functools import cache

M_MMAP_THRESHOLD = -3  # mallopt parameter numbers in glibc's malloc.h
M_ARENA_MAX = -8
ARENA_MAX = 2
LARGE_REQUEST_BYTES = 8 * 2**20  # trim after a request that held at least this much


@cache
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only
        return libc
    except (OSError, AttributeError):
        return None


def limit_arenas() -> None:
    """At most MALLOC_ARENA_MAX (default 2) malloc arenas, whatever the number of threads."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, int(os.environ.get("MALLOC_ARENA_MAX", ARENA_MAX)))


def release_large_buffers_eagerly() -> None:
    """Have glibc map every buffer over 4 MiB on its own, so a freed chunk of frames goes back to the OS.

    By default glibc raises its mmap threshold after the first large free and then serves 19 MB
    frame buffers from the heap, where a burst of streams leaves the process hundreds of MB larger
    for good.
    """
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024)


def trim() -> None:
    """Give the free memory at the top and inside the heaps back to the system (glibc's malloc_trim)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
