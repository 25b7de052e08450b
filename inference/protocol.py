"""The streaming wire protocol of WS /v1/stream: its one owner, used by the server, `inference.client`
and the acceptance checks.

Text messages are typed dataclasses (`Start`, `Ready`, `Stats`, `Playback`, `Summary`, `Error`, ...)
with `to_dict`/`to_json` and lenient parsing that keeps unknown fields in `extra`, so a field added
later (per-frame audio spans, an interrupt epoch) is one more dataclass field and older peers pass
it through. Binary messages are video frames behind a `FrameHeader`. Pure standard library: the
client imports it on machines without the server extra. The prose version is docs/protocol.md.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

VERSION = 2  # the newest protocol this module speaks; a client asks for it in `start`, else gets 1
VERSIONS = (1, 2)
MAGIC = b"FH"
PCM_FORMAT = "pcm_s16le"
OUTPUT_FORMATS = ("jpeg", "rgb")
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 192000
MAX_CHANNELS = 8

# Binary frame header: magic "FH", version, output format (0 jpeg, 1 rgb), frame index in the
# stream, chunk index, presentation time in microseconds (index / fps). Little endian, 20 bytes.
FRAME_HEADER = struct.Struct("<2sBBIIQ")
# Protocol 2 appends: the generation epoch (interrupts read before the frame was generated), flags,
# the header's whole length (so a later version may append more), and the span of input audio the
# frame shows, in samples at the client's rate counted from the stream's first sample [start, end).
FRAME_HEADER_V2 = struct.Struct("<2sBBIIQIHHQQ")
FORMAT_CODES = {"jpeg": 0, "rgb": 1}
FORMAT_NAMES = {code: name for name, code in FORMAT_CODES.items()}
FLAG_SEGMENT_END = 1  # the last frame of its segment (see FrameHeader.segment_end)
FLAG_IDLE = 2  # a frame of silence generated while no audio came (its span is empty)

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


MAX_CLOSE_REASON = 123  # bytes a close frame's reason may have (RFC 6455)

# Close code -> the error it means when it came without an `error` message before it.
CLOSE_CODE_NAMES = {CloseCode.GOING_AWAY: "shutting_down", CloseCode.TOO_BIG: "too_large",
                    CloseCode.INTERNAL: "internal", 1006: "connection_lost", 1012: "service_restart"}

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
    """The header in front of every binary video frame the server sends.

    Protocol 1 headers carry the first four fields; protocol 2 adds the rest (a v1 header unpacks
    with epoch 0, no flags and no span: `audio_start` and `audio_end` None).
    """

    index: int
    chunk: int
    pts_us: int
    output: str = "jpeg"
    version: int = 1
    epoch: int = 0
    flags: int = 0
    audio_start: int | None = None
    audio_end: int | None = None
    size: int = FRAME_HEADER.size  # bytes before the payload

    @property
    def segment_end(self) -> bool:
        return bool(self.flags & FLAG_SEGMENT_END)

    @property
    def idle(self) -> bool:
        return bool(self.flags & FLAG_IDLE)

    def pack(self) -> bytes:
        code = FORMAT_CODES[self.output]
        if self.version == 1:
            return FRAME_HEADER.pack(MAGIC, 1, code, self.index, self.chunk, self.pts_us)
        return FRAME_HEADER_V2.pack(MAGIC, self.version, code, self.index, self.chunk, self.pts_us, self.epoch,
                                    self.flags, FRAME_HEADER_V2.size, self.audio_start or 0, self.audio_end or 0)

    @classmethod
    def unpack(cls, data: bytes) -> FrameHeader:
        """Parse a frame's header (v1 or v2; `size` says where the payload starts); ValueError when it is
        not a frame."""
        if len(data) < FRAME_HEADER.size:
            raise ValueError(f"binary message of {len(data)} bytes is shorter than a frame header")
        magic, version, code, index, chunk, pts_us = FRAME_HEADER.unpack_from(data)
        if magic != MAGIC or version not in VERSIONS or code not in FORMAT_NAMES:
            raise ValueError(f"binary message is not a protocol {'/'.join(map(str, VERSIONS))} frame")
        if version == 1:
            return cls(index=index, chunk=chunk, pts_us=pts_us, output=FORMAT_NAMES[code])
        if len(data) < FRAME_HEADER_V2.size:
            raise ValueError(f"binary message of {len(data)} bytes is shorter than a v{version} frame header")
        *_, epoch, flags, size, audio_start, audio_end = FRAME_HEADER_V2.unpack_from(data)
        if not FRAME_HEADER_V2.size <= size <= len(data):
            raise ValueError(f"a v{version} frame header says it is {size} bytes long")
        return cls(index=index, chunk=chunk, pts_us=pts_us, output=FORMAT_NAMES[code], version=version,
                   epoch=epoch, flags=flags, audio_start=audio_start, audio_end=audio_end, size=size)


M = TypeVar("M", bound="Message")


class ProtocolError(ValueError):
    """A client message that is not valid JSON, not an object, or not a valid message of its type."""


@dataclass(frozen=True)
class Message:
    """A JSON text message. Fields the receiver does not know are kept in `extra` (newer peers may add
    fields), and a field left at None is not sent."""

    TYPE: ClassVar[str] = ""
    extra: dict[str, Any] = field(default_factory=dict, kw_only=True, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.TYPE}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name != "extra" and value is not None:
                data[item.name] = value
        return {**data, **self.extra}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls: type[M], data: dict[str, Any]) -> M:
        """Build from a decoded message, leniently: missing fields take their defaults (a peer's message)."""
        known = {item.name for item in fields(cls)} - {"extra"}
        values = {name: value for name, value in data.items() if name in known}
        extra = {name: value for name, value in data.items() if name not in known and name != "type"}
        try:
            return cls(**values, extra=extra)
        except TypeError as error:
            raise ProtocolError(f"`{cls.TYPE}` is missing a field: {error}") from None


# ---- client -> server --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start(Message):
    """Opens the stream: the avatar (an id or a base64 photo), the audio's rate and channels, the output."""

    TYPE: ClassVar[str] = START
    avatar_id: str | None = None
    image: str | None = None  # the photo file, base64
    sample_rate: int = 16000
    channels: int = 1
    format: str = PCM_FORMAT
    output: str = "jpeg"
    seed: int | None = None
    idle_frames: bool | None = None
    token: str | None = field(default=None, repr=False)
    protocol: int | None = None  # the newest version the client speaks; absent: 1 (v1 frame headers)

    @property
    def image_b64(self) -> str | None:
        return self.image

    @classmethod
    def parse(cls, message: dict[str, Any]) -> Start:
        """Validate a `start` from a client; ProtocolError with a client-facing reason otherwise."""
        avatar_id, image = message.get("avatar_id"), message.get("image")
        if (avatar_id is None) == (image is None):
            raise ProtocolError("start needs exactly one of `avatar_id` or `image` (base64)")
        if avatar_id is not None and not isinstance(avatar_id, str):
            raise ProtocolError("`avatar_id` must be a string")
        if image is not None and not isinstance(image, str):
            raise ProtocolError("`image` must be a base64 string")
        fmt = message.get("format", PCM_FORMAT)
        if fmt != PCM_FORMAT:
            raise ProtocolError(f"audio `format` {str(fmt)[:40]!r} is not supported; send {PCM_FORMAT!r}")
        rate = _int_field(message, "sample_rate", 16000, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)
        channels = _int_field(message, "channels", 1, 1, MAX_CHANNELS)
        output = message.get("output", "jpeg")
        if output not in OUTPUT_FORMATS:
            raise ProtocolError(f"`output` must be one of {', '.join(OUTPUT_FORMATS)}")
        seed = message.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63):
            raise ProtocolError("`seed` must be a non-negative integer")
        idle = message.get("idle_frames")
        if idle is not None and not isinstance(idle, bool):
            raise ProtocolError("`idle_frames` must be true or false")
        token = message.get("token")
        if token is not None and not isinstance(token, str):
            raise ProtocolError("`token` must be a string")
        version = None if message.get("protocol") is None else _int_field(message, "protocol", 1, 1, 2**31)
        known = {item.name for item in fields(cls)} | {"type"}
        extra = {name: value for name, value in message.items() if name not in known}
        return cls(avatar_id, image, rate, channels, fmt, output, seed, idle, token, version, extra=extra)

    @property
    def agreed_protocol(self) -> int:
        """The version both sides speak: the client's (1 when it named none), at most this module's."""
        return min(self.protocol or 1, VERSION)


@dataclass(frozen=True)
class SegmentEnd(Message):
    """The utterance is over: the partial chunk is padded and generated."""

    TYPE: ClassVar[str] = SEGMENT_END


@dataclass(frozen=True)
class Interrupt(Message):
    """Barge-in: queued audio and unsent frames are dropped."""

    TYPE: ClassVar[str] = INTERRUPT


@dataclass(frozen=True)
class End(Message):
    """No more audio: the remaining frames, a summary, then close 1000."""

    TYPE: ClassVar[str] = END


CLIENT_MESSAGES: dict[str, type[Message]] = {START: Start, SEGMENT_END: SegmentEnd, INTERRUPT: Interrupt, END: End}


def parse_client_message(text: str) -> Message:
    """A client's text message as its typed message; ProtocolError naming what is wrong."""
    data = _json_object(text)
    kind = data.get("type")
    if kind == START:
        return Start.parse(data)
    message_class = CLIENT_MESSAGES.get(kind) if isinstance(kind, str) else None
    if message_class is None:
        raise ProtocolError(f"unknown message type {str(kind)[:40]!r}; use one of: {', '.join(CLIENT_TYPES)}")
    return message_class.from_dict(data)


# ---- server -> client --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ready(Message):
    """The stream is open: the output's geometry and what the server understood of `start`."""

    TYPE: ClassVar[str] = READY
    stream_id: str = ""
    fps: int = 25
    width: int = 512
    height: int = 512
    chunk_frames: int = 24
    chunk_seconds: float = 0.96
    sample_rate: int = 16000
    channels: int = 1
    model_sample_rate: int = 16000
    output: str = "jpeg"
    avatar_id: str = ""
    protocol: int = 1  # the agreed version (see Start.protocol): 2 means v2 frame headers and epochs
    # The server instance (its hostname: the pod's name in Kubernetes); absent from older servers.
    instance: str | None = None


@dataclass(frozen=True)
class Stats(Message):
    """After each chunk's frames: how long it took."""

    TYPE: ClassVar[str] = STATS
    chunk: int = 0
    frames: int = 0
    first_frame: int = 0
    idle: bool = False
    generation_ms: float = 0.0
    queue_ms: float = 0.0
    send_ms: float = 0.0
    batch_size: int = 1
    epoch: int | None = None  # protocol 2: the chunk's generation epoch


@dataclass(frozen=True)
class Playback(Message):
    """An ack whose `position` counts exactly the frames sent before it."""

    TYPE: ClassVar[str] = PLAYBACK
    event: str = "segment_done"  # segment_done | interrupted
    interrupted: bool = False
    position: float = 0.0
    frames_sent: int = 0
    epoch: int | None = None  # protocol 2: the epoch of frames sent from now on (an interrupt's new one)


@dataclass(frozen=True)
class Summary(Message):
    """The last message before close 1000."""

    TYPE: ClassVar[str] = SUMMARY
    stream_id: str = ""
    frames: int = 0
    chunks: int = 0
    idle_chunks: int = 0
    audio_seconds: float = 0.0
    video_seconds: float = 0.0
    interrupts: int = 0
    ttff_ms: float | None = None
    stream_fps: float | None = None
    generation_fps: float | None = None
    mean_generation_ms: float | None = None
    p95_generation_ms: float | None = None
    mean_queue_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        for name in ("ttff_ms", "stream_fps", "generation_fps", "mean_generation_ms", "p95_generation_ms",
                     "mean_queue_ms"):
            data.setdefault(name, None)  # sent as null: a summary always has every field
        return data


@dataclass(frozen=True)
class Error(Message):
    """A typed error; the connection closes right after it with `close_code`."""

    TYPE: ClassVar[str] = ERROR
    code: str = "internal"
    message: str = ""
    remedy: str | None = None

    @property
    def close_code(self) -> int:
        return ERROR_CLOSE_CODES.get(self.code, CloseCode.INTERNAL)

    @property
    def close_reason(self) -> str:
        """`code: message`, cut to the 123 bytes a close frame allows (whole characters)."""
        return f"{self.code}: {self.message}".encode()[:MAX_CLOSE_REASON].decode(errors="ignore")

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "remedy": self.remedy}


SERVER_MESSAGES: dict[str, type[Message]] = {READY: Ready, STATS: Stats, PLAYBACK: Playback, SUMMARY: Summary,
                                             ERROR: Error}


@dataclass(frozen=True)
class Unknown(Message):
    """A message type this client does not know (from a newer server): its fields are in `extra`."""

    type: str = ""


def parse_server_message(text: str) -> Message:
    """A server's text message as its typed message (Unknown for a type this version does not know)."""
    data = _json_object(text)
    kind = data.get("type")
    message_class = SERVER_MESSAGES.get(kind) if isinstance(kind, str) else None
    if message_class is None:
        return Unknown(type=str(kind), extra={k: v for k, v in data.items() if k != "type"})
    return message_class.from_dict(data)


def error_from_close(code: int, reason: str) -> Error:
    """The error a close frame stands for when no `error` message came before it: the code named at the
    start of the reason (`at_capacity: ...`), else what the close code alone means."""
    name, _, message = reason.partition(": ")
    if name in ERROR_CLOSE_CODES:
        return Error(code=name, message=message)
    return Error(code=CLOSE_CODE_NAMES.get(code, "closed"), message=reason or f"connection closed ({code})")


def _json_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError("a text message is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("a text message must be a JSON object")
    return data


def _int_field(message: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = message.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ProtocolError(f"`{name}` must be an integer from {low} to {high}")
    return value


def parse_start(message: dict[str, Any]) -> Start:
    """Validate a `start` message (kept for callers of protocol v1's first version; see Start.parse)."""
    return Start.parse(message)


StartRequest = Start
