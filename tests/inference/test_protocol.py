"""The typed wire messages: every server message survives a round trip, unknown fields travel along,
and any JSON a client may send is either a valid message or a ProtocolError (never another exception)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference import protocol

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.text(max_size=10), children, max_size=4), max_leaves=12)
NAMES = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
SERVER_MESSAGES = st.one_of(
    st.builds(protocol.Ready, stream_id=st.text(max_size=20), fps=st.integers(1, 120), avatar_id=st.text(max_size=20)),
    st.builds(protocol.Stats, chunk=st.integers(0, 10**6), frames=st.integers(0, 100), idle=st.booleans(),
              generation_ms=st.floats(0, 1e6)),
    st.builds(protocol.Playback, event=st.sampled_from(["segment_done", "interrupted"]), frames_sent=st.integers(0)),
    st.builds(protocol.Summary, frames=st.integers(0), ttff_ms=st.none() | st.floats(0, 1e6)),
    st.builds(protocol.Error, code=st.sampled_from(sorted(protocol.ERROR_CLOSE_CODES)), message=st.text(max_size=300),
              remedy=st.none() | st.text(max_size=50)),
)


@settings(max_examples=300, deadline=None)
@given(message=SERVER_MESSAGES, extra=st.dictionaries(NAMES, JSON, max_size=3))
def test_server_messages_round_trip_and_keep_unknown_fields(message: protocol.Message, extra: dict[str, Any]) -> None:
    extra = {name: value for name, value in extra.items() if name not in message.to_dict()}
    wire = json.dumps({**message.to_dict(), **extra})
    parsed = protocol.parse_server_message(wire)
    assert type(parsed) is type(message) and parsed == message
    assert parsed.extra == extra and json.loads(parsed.to_json()) == json.loads(wire)


@settings(max_examples=500, deadline=None)
@given(value=JSON)
def test_any_json_is_a_client_message_or_a_protocol_error(value: Any) -> None:
    try:
        message = protocol.parse_client_message(json.dumps(value))
    except protocol.ProtocolError as error:
        assert str(error)
        return
    assert isinstance(value, dict) and value.get("type") in protocol.CLIENT_TYPES
    assert isinstance(message, protocol.CLIENT_MESSAGES[value["type"]])


START_FIELDS = st.fixed_dictionaries({}, optional={
    "avatar_id": st.text(max_size=10) | st.integers(), "image": st.text(max_size=10) | st.none(),
    "sample_rate": st.integers(0, 400_000) | st.text(max_size=3) | st.booleans(),
    "channels": st.integers(-1, 10), "format": st.sampled_from(["pcm_s16le", "pcm_f32le", 1]),
    "output": st.sampled_from(["jpeg", "rgb", "png", None]), "seed": st.integers(-5, 2**64) | st.booleans(),
    "idle_frames": st.booleans() | st.integers(0, 1), "token": st.text(max_size=5) | st.integers(),
    "protocol": st.integers(-1, 2**32) | st.booleans() | st.none() | st.text(max_size=2), "future_field": JSON})


def _start_is_valid(fields: dict[str, Any]) -> bool:
    """What docs/protocol.md says a valid `start` is, written out independently of protocol.py."""
    def integer(value: Any, low: int, high: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

    avatar, image = fields.get("avatar_id"), fields.get("image")
    return ((avatar is None) != (image is None) and (avatar is None or isinstance(avatar, str))
            and (image is None or isinstance(image, str)) and fields.get("format", "pcm_s16le") == "pcm_s16le"
            and integer(fields.get("sample_rate", 16000), 8000, 192000) and integer(fields.get("channels", 1), 1, 8)
            and fields.get("output", "jpeg") in ("jpeg", "rgb")
            and (fields.get("seed") is None or integer(fields["seed"], 0, 2**63 - 1))
            and (fields.get("idle_frames") is None or isinstance(fields["idle_frames"], bool))
            and (fields.get("token") is None or isinstance(fields["token"], str))
            and (fields.get("protocol") is None or integer(fields["protocol"], 1, 2**31)))


@settings(max_examples=500, deadline=None)
@given(fields=START_FIELDS)
def test_start_validation_matches_the_documented_rules(fields: dict[str, Any]) -> None:
    wire = json.dumps({"type": "start", **fields})
    if not _start_is_valid(fields):
        with pytest.raises(protocol.ProtocolError):
            protocol.parse_client_message(wire)
        return
    start = protocol.parse_client_message(wire)
    assert isinstance(start, protocol.Start)
    again = protocol.parse_client_message(start.to_json())  # what the client sends parses back the same
    assert again == start and again.extra == start.extra


def test_close_reasons_name_the_error_without_guessing() -> None:
    error = protocol.Error(code="at_capacity", message="at capacity: 3 of 3 streams busy " + "é" * 100)
    assert len(error.close_reason.encode()) <= protocol.MAX_CLOSE_REASON
    assert protocol.error_from_close(1013, error.close_reason).code == "at_capacity"
    assert protocol.error_from_close(1013, "not_ready: loading").code == "not_ready"
    assert protocol.error_from_close(1001, "").code == "shutting_down"
    assert protocol.error_from_close(1006, "").code == "connection_lost"
    assert protocol.error_from_close(4000, "something").code == "closed"


@pytest.mark.parametrize(("asked", "agreed"), [(None, 1), (1, 1), (2, 2), (7, 2)])
def test_the_agreed_protocol_is_the_older_of_the_two(asked: int | None, agreed: int) -> None:
    start = protocol.Start.parse({"avatar_id": "av", "protocol": asked})
    assert start.agreed_protocol == agreed


@settings(max_examples=200, deadline=None)
@given(index=st.integers(0, 2**32 - 1), epoch=st.integers(0, 2**32 - 1), flags=st.integers(0, 3),
       start=st.integers(0, 2**63), length=st.integers(0, 10**6), payload=st.binary(max_size=8))
def test_v2_frame_headers_round_trip_and_v1_headers_still_parse(index: int, epoch: int, flags: int, start: int,
                                                                  length: int, payload: bytes) -> None:
    header = protocol.FrameHeader(index, 3, index * 40_000, "rgb", version=2, epoch=epoch, flags=flags,
                                  audio_start=start, audio_end=start + length, size=protocol.FRAME_HEADER_V2.size)
    message = header.pack() + payload
    parsed = protocol.FrameHeader.unpack(message)
    assert parsed == header and message[parsed.size:] == payload
    # The first 20 bytes keep v1's layout; a v1 header parses as before (no epoch, no span).
    assert protocol.FRAME_HEADER.unpack_from(message)[2:] == (1, index, 3, index * 40_000)
    old = protocol.FrameHeader(index, 3, index * 40_000, "jpeg").pack() + payload
    assert len(old) - len(payload) == 20
    assert protocol.FrameHeader.unpack(old) == protocol.FrameHeader(index, 3, index * 40_000, "jpeg")


@pytest.mark.parametrize("data", [b"FH\x02\x00" + bytes(16), b"FH\x03\x00" + bytes(40),
                                  protocol.FRAME_HEADER_V2.pack(b"FH", 2, 0, 0, 0, 0, 0, 0, 999, 0, 0)])
def test_truncated_or_unknown_frame_headers_are_value_errors(data: bytes) -> None:
    with pytest.raises(ValueError):
        protocol.FrameHeader.unpack(data)
