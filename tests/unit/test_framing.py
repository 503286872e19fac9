"""Tests for boxless.wire.framing: unsigned varints and length-prefixed frames."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.errors import DecodeError, UsageError
from boxless.wire.framing import FrameDecoder, decode_uvarint, encode_frame, encode_uvarint

# --- unsigned varint -----------------------------------------------------------------

# Examples from the multiformats unsigned-varint spec.
UVARINT_VECTORS = [
    (1, "01"),
    (127, "7f"),
    (128, "8001"),
    (255, "ff01"),
    (300, "ac02"),
    (16384, "808001"),
    (2**63 - 1, "ffffffffffffffff7f"),
]


@pytest.mark.parametrize(("value", "encoded"), [(0, "00"), *UVARINT_VECTORS])
def test_uvarint_vectors(value: int, encoded: str) -> None:
    assert encode_uvarint(value).hex() == encoded
    assert decode_uvarint(bytes.fromhex(encoded)) == (value, len(encoded) // 2)


@pytest.mark.parametrize("value", [-1, 2**63])
def test_encode_uvarint_rejects_out_of_range(value: int) -> None:
    with pytest.raises(UsageError):
        encode_uvarint(value)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"\x80", "truncated"),
        (b"\xff" * 8, "truncated"),
        (b"\xff" * 9 + b"\x01", "longer than 9"),
        (b"\x80\x00", "not minimally encoded"),
        (b"\xff\x80\x00", "not minimally encoded"),
    ],
)
def test_decode_uvarint_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_uvarint(data)


@given(st.integers(0, 2**63 - 1), st.binary(max_size=4))
def test_uvarint_roundtrip(value: int, trailer: bytes) -> None:
    encoded = encode_uvarint(value)
    assert decode_uvarint(b"\xaa" + encoded + trailer, 1) == (value, 1 + len(encoded))


# --- frame decoder -------------------------------------------------------------------


def drain(decoder: FrameDecoder) -> list[bytes]:
    """Return every complete frame currently available."""
    frames = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame)
    return frames


def test_encode_frame() -> None:
    assert encode_frame(b"") == b"\x00"
    assert encode_frame(b"abc") == b"\x03abc"
    assert encode_frame(b"x" * 300) == b"\xac\x02" + b"x" * 300


def test_decoder_basic() -> None:
    decoder = FrameDecoder(max_frame_size=1024)
    assert decoder.next_frame() is None
    decoder.feed(b"\x03ab")
    assert decoder.next_frame() is None
    decoder.feed(b"c\x00\x01")
    assert drain(decoder) == [b"abc", b""]
    assert decoder.buffered == 1
    decoder.feed(b"z")
    assert drain(decoder) == [b"z"]
    decoder.eof()


def test_frame_of_exactly_max_size_is_accepted() -> None:
    decoder = FrameDecoder(max_frame_size=300)
    decoder.feed(encode_frame(b"y" * 300))
    assert drain(decoder) == [b"y" * 300]


def test_oversized_prefix_rejected_before_body_arrives() -> None:
    decoder = FrameDecoder(max_frame_size=300)
    decoder.feed(encode_uvarint(301))
    with pytest.raises(DecodeError, match="exceeds limit 300"):
        decoder.next_frame()


def test_oversized_prefix_rejected_before_prefix_completes() -> None:
    decoder = FrameDecoder(max_frame_size=1 << 20)
    decoder.feed(b"\xff\xff\xff")  # any minimal continuation means >= 2**21
    with pytest.raises(DecodeError, match="exceeds limit"):
        decoder.next_frame()


def test_partial_prefix_within_limit_waits() -> None:
    decoder = FrameDecoder(max_frame_size=1 << 20)
    decoder.feed(b"\xff\xff")  # could still be a length below 2**20
    assert decoder.next_frame() is None


def test_overlong_varint_rejected() -> None:
    decoder = FrameDecoder(max_frame_size=2**63 - 1)
    decoder.feed(b"\xff" * 10)
    with pytest.raises(DecodeError, match="longer than 9"):
        decoder.next_frame()


def test_error_is_sticky() -> None:
    decoder = FrameDecoder(max_frame_size=10)
    decoder.feed(b"\x80\x00")
    with pytest.raises(DecodeError):
        decoder.next_frame()
    with pytest.raises(DecodeError, match="already failed"):
        decoder.feed(b"\x01x")
    with pytest.raises(DecodeError, match="already failed"):
        decoder.next_frame()
    with pytest.raises(DecodeError, match="already failed"):
        decoder.eof()


@pytest.mark.parametrize("tail", [b"\x05ab", b"\x80"])
def test_eof_inside_frame(tail: bytes) -> None:
    decoder = FrameDecoder(max_frame_size=1024)
    decoder.feed(encode_frame(b"ok") + tail)
    assert drain(decoder) == [b"ok"]
    with pytest.raises(DecodeError, match="stream ended inside a frame"):
        decoder.eof()


def test_negative_max_frame_size_is_misuse() -> None:
    with pytest.raises(UsageError):
        FrameDecoder(max_frame_size=-1)


def test_many_small_frames_keep_buffer_small() -> None:
    decoder = FrameDecoder(max_frame_size=16)
    frame = encode_frame(b"0123456789")
    for _ in range(2000):
        decoder.feed(frame)
        decoder.feed(frame[:3])
        assert decoder.next_frame() == b"0123456789"
        decoder.feed(frame[3:])
        assert decoder.next_frame() == b"0123456789"
    assert decoder.buffered == 0
    decoder.eof()


def test_large_stream_in_one_feed() -> None:
    frames = [bytes([i % 256]) * (i % 50) for i in range(20_000)]
    decoder = FrameDecoder(max_frame_size=64)
    decoder.feed(b"".join(encode_frame(f) for f in frames))
    assert drain(decoder) == frames
    decoder.eof()


@st.composite
def frames_and_splits(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    """Draw some frames and a random chunking of their encoded stream."""
    frames = draw(st.lists(st.binary(max_size=300), max_size=12))
    stream = b"".join(encode_frame(f) for f in frames)
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    return frames, chunks


@given(frames_and_splits())
@settings(max_examples=300)
def test_any_chunking_yields_the_same_frames(case: tuple[list[bytes], list[bytes]]) -> None:
    frames, chunks = case
    decoder = FrameDecoder(max_frame_size=300)
    received: list[bytes] = []
    for chunk in chunks:
        decoder.feed(chunk)
        received.extend(drain(decoder))
    assert received == frames
    decoder.eof()


@given(st.lists(st.binary(max_size=40), max_size=8), st.integers(0, 200))
@settings(max_examples=300)
def test_garbage_only_raises_decode_error(chunks: list[bytes], max_frame_size: int) -> None:
    decoder = FrameDecoder(max_frame_size=max_frame_size)
    try:
        for chunk in chunks:
            decoder.feed(chunk)
            for frame in drain(decoder):
                assert len(frame) <= max_frame_size
        decoder.eof()
    except DecodeError:
        pass
