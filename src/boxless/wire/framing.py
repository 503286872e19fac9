"""Unsigned-varint length-prefixed frames, as libp2p protocols exchange them.

Theory of operation
-------------------
Each frame is ``uvarint(len(payload)) ‖ payload``. The varint is the multiformats
unsigned varint: little-endian base-128 groups, high bit = "more bytes follow",
at most 9 bytes (so values below 2**63), and minimally encoded.

:class:`FrameDecoder` is sans-IO: the caller :meth:`~FrameDecoder.feed` s whatever
bytes arrived and pulls complete frames with :meth:`~FrameDecoder.next_frame`.
Bytes live in one ``bytearray`` with a read offset; consumed bytes are dropped
only when they are the larger half of the buffer, so total copying stays linear
in the bytes received. A declared length above ``max_frame_size`` is refused as
soon as the prefix shows it (even before the prefix is complete), so a peer can
never make us buffer an oversized frame. Once a decode error is raised the
stream is corrupt and every later call raises it again.
"""

from __future__ import annotations

from boxless.errors import DecodeError, UsageError

__all__ = [
    "MAX_UVARINT_BYTES",
    "FrameDecoder",
    "decode_uvarint",
    "encode_frame",
    "encode_uvarint",
]

MAX_UVARINT_BYTES = 9
"""Longest unsigned varint accepted (multiformats: 9 bytes, i.e. values < 2**63)."""

_MAX_UVARINT = 2**63 - 1
_COMPACT_MIN = 4096


def encode_uvarint(n: int) -> bytes:
    """Encode a non-negative integer below 2**63 as a minimal unsigned varint."""
    if not 0 <= n <= _MAX_UVARINT:
        raise UsageError(f"uvarint value out of range: {n}")
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def encode_frame(payload: bytes) -> bytes:
    """Prefix ``payload`` with its length as an unsigned varint."""
    return encode_uvarint(len(payload)) + payload


def _read_uvarint(buf: bytes | bytearray, offset: int, limit: int) -> tuple[int, int] | None:
    """Read a varint at ``offset``; return ``(value, end)`` or ``None`` if incomplete.

    Raises :class:`DecodeError` if the varint is too long, not minimal, or its
    value is certain to exceed ``limit`` (checked byte by byte, so an oversized
    length is refused before its prefix is even complete).
    """
    value = 0
    for i in range(MAX_UVARINT_BYTES):
        if offset + i >= len(buf):
            return None
        byte = buf[offset + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if byte == 0 and i > 0:
                raise DecodeError("uvarint is not minimally encoded")
            if value > limit:
                raise DecodeError(f"declared frame length {value} exceeds limit {limit}")
            return value, offset + i + 1
        if i == MAX_UVARINT_BYTES - 1:
            break
        # A continuation byte means the minimal value is at least 2**(7*(i+1)).
        if 1 << (7 * (i + 1)) > limit:
            raise DecodeError(f"declared frame length exceeds limit {limit}")
    raise DecodeError(f"uvarint longer than {MAX_UVARINT_BYTES} bytes")


def decode_uvarint(data: bytes | bytearray, offset: int = 0) -> tuple[int, int]:
    """Decode one unsigned varint at ``offset``; return ``(value, end_offset)``.

    Raises :class:`DecodeError` if it is truncated, too long or not minimal.
    """
    result = _read_uvarint(data, offset, _MAX_UVARINT)
    if result is None:
        raise DecodeError("truncated uvarint")
    return result


class FrameDecoder:
    """Split a byte stream into length-prefixed frames (sans-IO)."""

    def __init__(self, max_frame_size: int) -> None:
        """Create a decoder refusing frames whose payload exceeds ``max_frame_size`` bytes."""
        if max_frame_size < 0:
            raise UsageError(f"max_frame_size must be non-negative, got {max_frame_size}")
        self._max = max_frame_size
        self._buf = bytearray()
        self._pos = 0
        self._error: DecodeError | None = None

    def feed(self, data: bytes) -> None:
        """Append bytes received from the stream."""
        self._raise_if_failed()
        self._buf += data

    def next_frame(self) -> bytes | None:
        """Return the next complete frame's payload, or ``None`` if more bytes are needed.

        Raises :class:`DecodeError` on a malformed or oversized length prefix.
        """
        self._raise_if_failed()
        try:
            header = _read_uvarint(self._buf, self._pos, self._max)
        except DecodeError as exc:
            self._error = exc
            raise
        if header is None:
            return None
        length, start = header
        end = start + length
        if end > len(self._buf):
            return None
        frame = bytes(self._buf[start:end])
        self._pos = end
        self._compact()
        return frame

    def eof(self) -> None:
        """Signal the end of the stream; raise :class:`DecodeError` if a frame is cut off.

        Call it after draining :meth:`next_frame`.
        """
        self._raise_if_failed()
        pending = len(self._buf) - self._pos
        if pending:
            raise DecodeError(f"stream ended inside a frame ({pending} bytes pending)")

    @property
    def buffered(self) -> int:
        """Number of received bytes not yet returned as frames."""
        return len(self._buf) - self._pos

    def _compact(self) -> None:
        """Drop consumed bytes once they are the larger half of a non-trivial buffer."""
        if self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        elif self._pos >= _COMPACT_MIN and self._pos * 2 >= len(self._buf):
            del self._buf[: self._pos]
            self._pos = 0

    def _raise_if_failed(self) -> None:
        """Re-raise the error that already broke this stream, if any."""
        if self._error is not None:
            raise DecodeError(f"stream already failed: {self._error}")
