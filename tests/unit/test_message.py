"""Tests for boxless.waku.message: codec, deterministic hash, validation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.errors import DecodeError, UsageError, ValidationError
from boxless.waku.message import (
    MAX_MESSAGE_SIZE,
    MAX_TIMESTAMP_DRIFT_NS,
    WakuMessage,
    message_hash,
    validate,
)

SECOND = 1_000_000_000
NOW = 1_700_000_000 * SECOND
TOPIC = "/boxless/1/chat/proto"

# --- deterministic hash test vectors -------------------------------------------------

PUBSUB = "/waku/2/default-waku/proto"
CONTENT = "/waku/2/default-content/proto"
PAYLOAD = bytes.fromhex("010203045445535405060708")
META_12 = bytes.fromhex("73757065722d736563726574")
META_64 = bytes(range(64))
TS = 0x175789BFA23F8400
# js-waku test: new Date("2024-04-30T10:54:14.978Z").getTime() * 1_000_000
TS_2024 = 1_714_474_454_978 * 1_000_000

HASH_VECTORS = [
    # 14/WAKU2-MESSAGE "Test vectors" (all four listed there).
    pytest.param(
        WakuMessage(PAYLOAD, CONTENT, meta=META_12, timestamp=TS),
        "64cce733fed134e83da02b02c6f689814872b1a0ac97ea56b76095c3c72bfe05",
        id="spec-meta-12-bytes",
    ),
    pytest.param(
        WakuMessage(PAYLOAD, CONTENT, meta=META_64, timestamp=TS),
        "7158b6498753313368b9af8f6e0a0a05104f68f972981da42a43bc53fb0c1b27",
        id="spec-meta-64-bytes",
    ),
    pytest.param(
        WakuMessage(PAYLOAD, CONTENT, meta=None, timestamp=TS),
        "a2554498b31f5bcdfcbf7fa58ad1c2d45f0254f3f8110a85588ec3cf10720fd8",
        id="spec-meta-absent",
    ),
    pytest.param(
        WakuMessage(b"", CONTENT, meta=META_12, timestamp=TS),
        "483ea950cb63f9b9d6926b262bb36194d3f40a0463ce8446228350bd44e96de4",
        id="spec-payload-empty",
    ),
    # js-waku packages/core/src/lib/message_hash/message_hash.spec.ts (extra cases).
    pytest.param(
        WakuMessage(b"", CONTENT, meta=META_12, timestamp=None),
        "e1a9596237dbe2cc8aaf4b838c46a7052df6bc0d42ba214b998a8bfdbe8487d6",
        id="js-waku-timestamp-absent",
    ),
    pytest.param(
        WakuMessage(b"", CONTENT, meta=META_12, timestamp=TS_2024, version=0),
        "3f11bc950dce0e3ffdcf205ae6414c01130bb5d9f20644869bff80407fa52c8f",
        id="js-waku-with-version",
    ),
]


@pytest.mark.parametrize(("msg", "expected"), HASH_VECTORS)
def test_message_hash_vectors(msg: WakuMessage, expected: str) -> None:
    assert message_hash(PUBSUB, msg).hex() == expected


def test_hash_ignores_version_ephemeral_and_proof() -> None:
    base = WakuMessage(PAYLOAD, CONTENT, meta=META_12, timestamp=TS)
    other = WakuMessage(
        PAYLOAD,
        CONTENT,
        meta=META_12,
        timestamp=TS,
        version=1,
        ephemeral=True,
        rate_limit_proof=b"proof",
    )
    assert message_hash(PUBSUB, base) == message_hash(PUBSUB, other)


def test_hash_distinguishes_absent_from_zero_timestamp() -> None:
    absent = WakuMessage(PAYLOAD, CONTENT, timestamp=None)
    zero = WakuMessage(PAYLOAD, CONTENT, timestamp=0)
    assert message_hash(PUBSUB, absent) != message_hash(PUBSUB, zero)


def test_hash_of_negative_timestamp_is_twos_complement() -> None:
    import hashlib

    msg = WakuMessage(b"", "", timestamp=-1)
    assert message_hash("", msg) == hashlib.sha256(b"\xff" * 8).digest()


# --- codec ---------------------------------------------------------------------------

optional_bytes = st.none() | st.binary(max_size=80)
messages = st.builds(
    WakuMessage,
    payload=st.binary(max_size=300),
    content_topic=st.text(max_size=40),
    version=st.none() | st.integers(0, 2**32 - 1),
    timestamp=st.none() | st.integers(-(2**63), 2**63 - 1),
    meta=optional_bytes,
    rate_limit_proof=optional_bytes,
    ephemeral=st.none() | st.booleans(),
)


@given(messages)
@settings(max_examples=200)
def test_encode_decode_roundtrip(msg: WakuMessage) -> None:
    assert WakuMessage.decode(msg.encode()) == msg


@given(st.binary(max_size=200))
@settings(max_examples=300)
def test_decode_garbage_returns_message_or_decode_error(data: bytes) -> None:
    try:
        msg = WakuMessage.decode(data)
    except DecodeError:
        return
    assert isinstance(msg, WakuMessage)


def test_absent_and_zero_fields_stay_distinct() -> None:
    zeros = WakuMessage(
        b"", "t", version=0, timestamp=0, meta=b"", rate_limit_proof=b"", ephemeral=False
    )
    absent = WakuMessage(b"", "t")
    assert WakuMessage.decode(zeros.encode()) == zeros
    assert WakuMessage.decode(absent.encode()) == absent
    assert zeros.encode() != absent.encode()


def test_decode_known_bytes() -> None:
    # payload=b"x" (field 1), content_topic="/a/1/b/c" (field 2), timestamp=1 (field 10, zigzag 2)
    data = b"\x0a\x01x\x12\x08/a/1/b/c\x50\x02"
    assert WakuMessage.decode(data) == WakuMessage(b"x", "/a/1/b/c", timestamp=1)


def test_decode_skips_unknown_fields() -> None:
    data = WakuMessage(b"x", "t").encode() + b"\xa0\x06\x07"  # field 100, varint 7
    assert WakuMessage.decode(data) == WakuMessage(b"x", "t")


@pytest.mark.parametrize(
    "data",
    [
        b"\x0a\x05ab",  # truncated length-delimited field
        b"\x12\x02\xff\xfe",  # content_topic not UTF-8
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # bad tag varint
        b"\x0b",  # deprecated start-group wire type without end
    ],
)
def test_decode_rejects_malformed(data: bytes) -> None:
    with pytest.raises(DecodeError, match="malformed WakuMessage"):
        WakuMessage.decode(data)


def test_decode_rejects_oversized_before_parsing() -> None:
    data = WakuMessage(b"\x00" * MAX_MESSAGE_SIZE, "t").encode()
    with pytest.raises(DecodeError, match="exceeds"):
        WakuMessage.decode(data)
    with pytest.raises(DecodeError, match="exceeds"):
        WakuMessage.decode(b"\xff" * 11, max_size=10)


@pytest.mark.parametrize(
    "kwargs",
    [{"version": -1}, {"version": 2**32}, {"timestamp": 2**63}, {"timestamp": -(2**63) - 1}],
)
def test_construction_rejects_out_of_range_ints(kwargs: dict[str, int]) -> None:
    with pytest.raises(UsageError):
        WakuMessage(b"", "t", **kwargs)  # type: ignore[arg-type]


def test_message_is_frozen() -> None:
    msg = WakuMessage(b"", "t")
    with pytest.raises(AttributeError):
        msg.payload = b"x"  # type: ignore[misc]


# --- validation ----------------------------------------------------------------------


def test_valid_message_passes() -> None:
    validate(WakuMessage(b"hi", TOPIC, timestamp=NOW, meta=b"\x00" * 64), NOW)


def test_size_rule() -> None:
    # An empty payload is not serialised; a large one costs a tag byte and a 3-byte length.
    overhead = len(WakuMessage(b"", TOPIC).encode()) + 1 + 3
    fits = WakuMessage(b"\x00" * (MAX_MESSAGE_SIZE - overhead), TOPIC)
    assert len(fits.encode()) == MAX_MESSAGE_SIZE
    validate(fits, NOW)
    too_big = WakuMessage(b"\x00" * (MAX_MESSAGE_SIZE - overhead + 1), TOPIC)
    with pytest.raises(ValidationError, match="^size:"):
        validate(too_big, NOW)
    with pytest.raises(ValidationError, match="^size:"):
        validate(WakuMessage(b"\x00" * 10, TOPIC), NOW, max_size=10)


def test_meta_rule() -> None:
    with pytest.raises(ValidationError, match="^meta:"):
        validate(WakuMessage(b"", TOPIC, meta=b"\x00" * 65), NOW)


@pytest.mark.parametrize("offset", [-MAX_TIMESTAMP_DRIFT_NS, 0, MAX_TIMESTAMP_DRIFT_NS])
def test_timestamp_within_drift_passes(offset: int) -> None:
    validate(WakuMessage(b"", TOPIC, timestamp=NOW + offset), NOW)


@pytest.mark.parametrize(
    ("offset", "direction"),
    [(MAX_TIMESTAMP_DRIFT_NS + 1, "future"), (-MAX_TIMESTAMP_DRIFT_NS - 1, "past")],
)
def test_timestamp_rule(offset: int, direction: str) -> None:
    with pytest.raises(ValidationError, match=f"^timestamp: .* {direction}"):
        validate(WakuMessage(b"", TOPIC, timestamp=NOW + offset), NOW)


def test_timestamp_drift_limit_is_a_parameter() -> None:
    msg = WakuMessage(b"", TOPIC, timestamp=NOW + 2 * SECOND)
    validate(msg, NOW)
    with pytest.raises(ValidationError, match="^timestamp:"):
        validate(msg, NOW, max_drift_ns=SECOND)


@pytest.mark.parametrize("timestamp", [None, 0])
def test_unset_timestamp_is_not_checked(timestamp: int | None) -> None:
    validate(WakuMessage(b"", TOPIC, timestamp=timestamp), NOW)


@pytest.mark.parametrize("topic", ["", "chat", "/boxless/1/chat", "/1/boxless/1/chat/proto"])
def test_content_topic_rule(topic: str) -> None:
    with pytest.raises(ValidationError, match="^content-topic:"):
        validate(WakuMessage(b"", topic, timestamp=NOW), NOW)
