"""Jobs for the media pool tests: run inside worker processes, so they live in an importable module."""

from __future__ import annotations

import ctypes
import os
import time

from inference.errors import BadInput


def crash() -> None:
    """A real segfault, as libav's read past a frame's end caused."""
    ctypes.string_at(0)


def allocate(megabytes: int) -> int:
    """Touch `megabytes` of memory and report how many bytes it got."""
    block = bytearray(megabytes * 2**20)
    return len(block)


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def refuse(message: str) -> None:
    raise BadInput(message, "a remedy that survives the trip back")


def pid() -> int:
    return os.getpid()


def bug() -> None:
    raise KeyError("a bug in a decoder")
