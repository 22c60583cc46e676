"""Native-messaging framing (issue 15): sizes, truncation, bad JSON, interleaving."""

from __future__ import annotations

import struct

import pytest

from helper.bridge.extension.framing import (
    MAX_INBOUND,
    MAX_OUTBOUND,
    BadFrame,
    Decoder,
    FrameTooLarge,
    ReplyTooLarge,
    TruncatedFrame,
    encode,
)


def frame(body: bytes) -> bytes:
    return struct.pack("<I", len(body)) + body


def test_encode_is_little_endian_length_then_utf8_json() -> None:
    data = encode({"msg": "登录"})
    body = '{"msg":"登录"}'.encode()
    assert data[:4] == struct.pack("<I", len(body))
    assert data[:4] != struct.pack(">I", len(body))
    assert data[4:] == body


def test_round_trip_byte_by_byte() -> None:
    messages = [{"id": i, "text": "x" * i} for i in range(5)]
    stream = b"".join(encode(m) for m in messages)
    decoder = Decoder()
    got = []
    for i in range(len(stream)):
        got += decoder.feed(stream[i : i + 1])
    assert got == messages
    assert decoder.close() is None


def test_interleaved_good_and_bad_frames_keep_order_and_sync() -> None:
    stream = (
        encode({"n": 1})
        + frame(b"not json")
        + encode({"n": 2})
        + frame(b"[1, 2]")
        + frame(b"\xff\xfe")
        + encode({"n": 3})
    )
    got = Decoder().feed(stream)
    kinds = [type(x).__name__ if isinstance(x, Exception) else x for x in got]
    assert kinds == [{"n": 1}, "BadFrame", {"n": 2}, "BadFrame", "BadFrame", {"n": 3}]


def test_inbound_limit_is_exact() -> None:
    # the largest JSON string body that fits exactly
    at_limit = b'"' + b"a" * (MAX_INBOUND - 2) + b'"'
    decoder = Decoder()
    got = decoder.feed(frame(at_limit))
    assert len(got) == 1 and isinstance(got[0], BadFrame)  # in sync: a string, not an object
    assert decoder.feed(encode({"ok": 1})) == [{"ok": 1}]


def test_oversized_inbound_frame_kills_the_decoder() -> None:
    decoder = Decoder()
    got = decoder.feed(encode({"a": 1}) + struct.pack("<I", MAX_INBOUND + 1) + b"{}")
    assert got[0] == {"a": 1}
    assert isinstance(got[1], FrameTooLarge) and got[1].code == "frame_too_large"
    assert decoder.dead
    assert decoder.feed(encode({"b": 2})) == []
    assert decoder.close() is None


def test_garbage_length_is_too_large_not_a_huge_allocation() -> None:
    got = Decoder().feed(b"\xff\xff\xff\xff")
    assert isinstance(got[0], FrameTooLarge)


@pytest.mark.parametrize("cut", [1, 3, 4, 10])
def test_truncated_frame_is_reported_at_end_of_input(cut: int) -> None:
    data = encode({"method": "login", "pad": "p" * 20})
    decoder = Decoder()
    assert decoder.feed(data[:cut]) == []
    left = decoder.close()
    assert isinstance(left, TruncatedFrame) and left.code == "truncated_frame"


def test_outbound_limit_is_one_mebibyte() -> None:
    overhead = len(encode({"d": ""})) - 4
    ok = encode({"d": "a" * (MAX_OUTBOUND - overhead)})
    assert len(ok) == MAX_OUTBOUND + 4
    with pytest.raises(ReplyTooLarge):
        encode({"d": "a" * (MAX_OUTBOUND - overhead + 1)})
