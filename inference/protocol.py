"""The streaming wire protocol of WS /v1/stream, shared by the server and `inference.client`.

Pure standard library: the client imports it on machines without the server extra.
The prose version, with examples, is docs/protocol.md.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

VERSION = 1
MAGIC = b"FH"
PCM_FORMAT = "pcm_s16le"
OUTPUT_FORMATS = ("jpeg", "rgb")
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 192000
MAX_CHANNELS = 8

# Binary frame header: magic "FH", version, output format (0 jpeg, 1 rgb), frame index in the
# stream, chunk index, presentation time in microseconds (index / fps). Little endian, 20 bytes.
FRAME_HEADER = struct.Struct("<2sBBIIQ")
FORMAT_CODES = {"jpeg": 0, "rgb": 1}
FORMAT_NAMES = {code: name for name, code in FORMAT_CODES.items()}

# Client -> server message types (text frames, JSON objects with a "type").
START, SEGMENT_END, INTERRUPT, END = "start", "segment_end", "interrupt", "end"
CLIENT_TYPES = (START, SEGMENT_END, INTERRUPT, END)
# Server -> client message types.
READY, STATS, PLAYBACK, SUMMARY, ERROR = "ready", "stats", "playback", "summary", "error"


class CloseCode:
    """WebSocket close codes the server uses (RFC 6455 numbers)."""

    NORMAL = 1000  # after the summary
    GOING_AWAY = 1001  # server shutting down (SIGTERM drain)
    UNSUPPORTED = 1003  # binary audio before `start`, or an unsupported format
    INVALID_PAYLOAD = 1007  # a text message that is not valid JSON or not a known message
    POLICY = 1008  # missing or wrong bearer token
    TOO_BIG = 1009  # one message larger than FLASHHEAD_MAX_MESSAGE_BYTES
    INTERNAL = 1011  # the backend failed
    TRY_AGAIN_LATER = 1013  # all stream slots busy; reconnect later


# Error code (in the JSON `error` message) -> close code.
ERROR_CLOSE_CODES = {
    "unauthorized": CloseCode.POLICY,
    "bad_input": CloseCode.INVALID_PAYLOAD,
    "unsupported_media": CloseCode.UNSUPPORTED,
    "too_large": CloseCode.TOO_BIG,
    "not_found": CloseCode.INVALID_PAYLOAD,
    "at_capacity": CloseCode.TRY_AGAIN_LATER,
    "not_ready": CloseCode.TRY_AGAIN_LATER,
    "shutting_down": CloseCode.GOING_AWAY,
    "timeout": CloseCode.POLICY,
    "backend": CloseCode.INTERNAL,
    "internal": CloseCode.INTERNAL,
}


@dataclass(frozen=True)
class FrameHeader:
    """The header in front of every binary video frame the server sends."""

    index: int
    chunk: int
    pts_us: int
    output: str = "jpeg"

    def pack(self) -> bytes:
        code = FORMAT_CODES[self.output]
        return FRAME_HEADER.pack(MAGIC, VERSION, code, self.index, self.chunk, self.pts_us)

    @classmethod
    def unpack(cls, data: bytes) -> FrameHeader:
        """Parse the first FRAME_HEADER.size bytes; ValueError when it is not a frame."""
        if len(data) < FRAME_HEADER.size:
            raise ValueError(f"binary message of {len(data)} bytes is shorter than a frame header")
        magic, version, code, index, chunk, pts_us = FRAME_HEADER.unpack_from(data)
        if magic != MAGIC or version != VERSION or code not in FORMAT_NAMES:
            raise ValueError("binary message is not a protocol v1 frame")
        return cls(index=index, chunk=chunk, pts_us=pts_us, output=FORMAT_NAMES[code])


@dataclass(frozen=True)
class StartRequest:
    """A validated `start` message."""

    avatar_id: str | None
    image_b64: str | None
    sample_rate: int
    channels: int
    output: str
    seed: int | None
    idle_frames: bool | None
    token: str | None


def parse_start(message: dict[str, Any]) -> StartRequest:
    """Validate a `start` message; ValueError with a client-facing reason otherwise."""
    avatar_id, image = message.get("avatar_id"), message.get("image")
    if (avatar_id is None) == (image is None):
        raise ValueError("start needs exactly one of `avatar_id` or `image` (base64)")
    if avatar_id is not None and not isinstance(avatar_id, str):
        raise ValueError("`avatar_id` must be a string")
    if image is not None and not isinstance(image, str):
        raise ValueError("`image` must be a base64 string")
    fmt = message.get("format", PCM_FORMAT)
    if fmt != PCM_FORMAT:
        raise ValueError(f"audio `format` {fmt!r} is not supported; send {PCM_FORMAT!r}")
    rate = _int_field(message, "sample_rate", 16000, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)
    channels = _int_field(message, "channels", 1, 1, MAX_CHANNELS)
    output = message.get("output", "jpeg")
    if output not in OUTPUT_FORMATS:
        raise ValueError(f"`output` must be one of {', '.join(OUTPUT_FORMATS)}")
    seed = message.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63):
        raise ValueError("`seed` must be a non-negative integer")
    idle = message.get("idle_frames")
    if idle is not None and not isinstance(idle, bool):
        raise ValueError("`idle_frames` must be true or false")
    token = message.get("token")
    if token is not None and not isinstance(token, str):
        raise ValueError("`token` must be a string")
    return StartRequest(avatar_id, image, rate, channels, output, seed, idle, token)


def _int_field(message: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = message.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"`{name}` must be an integer from {low} to {high}")
    return value
