"""The Waku message (14/WAKU2-MESSAGE): value type, codec, hash and validation.

Theory of operation
-------------------
:class:`WakuMessage` is an immutable value. Optional protobuf fields are ``None``
when absent, so "absent" stays distinct from zero/empty: that difference changes
the deterministic hash (an absent ``meta`` or ``timestamp`` is left out of it) and
must survive a decode/encode round trip.

:meth:`WakuMessage.decode` is the only entry point for untrusted bytes: it refuses
oversized input before parsing and turns every parse failure into
:class:`DecodeError`. :func:`validate` then applies the relay rules of
64/WAKU2-NETWORK (size, timestamp drift, meta length, content-topic syntax) and
raises :class:`ValidationError` naming the rule. The current time is an argument,
never read here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.errors import DecodeError, UsageError, ValidationError
from boxless.waku.sharding import parse_content_topic
from boxless.wire import message_pb2

__all__ = [
    "MAX_MESSAGE_SIZE",
    "MAX_META_SIZE",
    "MAX_TIMESTAMP_DRIFT_NS",
    "WakuMessage",
    "message_hash",
    "validate",
]

MAX_MESSAGE_SIZE = 150 * 1024
"""Largest encoded WakuMessage relayed on the network (64/WAKU2-NETWORK, nwaku's 150 KiB)."""

MAX_META_SIZE = 64
"""Largest ``meta`` attribute allowed by 14/WAKU2-MESSAGE."""

MAX_TIMESTAMP_DRIFT_NS = 20 * 1_000_000_000
"""How far (either way) a message timestamp may be from our clock: 20 s."""

_UINT32_MAX = 2**32 - 1
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class WakuMessage:
    """A Waku message; ``None`` in an optional field means the field is absent."""

    payload: bytes
    content_topic: str
    version: int | None = None
    timestamp: int | None = None
    meta: bytes | None = None
    rate_limit_proof: bytes | None = None
    ephemeral: bool | None = None

    def __post_init__(self) -> None:
        if self.version is not None and not 0 <= self.version <= _UINT32_MAX:
            raise UsageError(f"version {self.version} does not fit in uint32")
        if self.timestamp is not None and not _INT64_MIN <= self.timestamp <= _INT64_MAX:
            raise UsageError(f"timestamp {self.timestamp} does not fit in sint64")

    def encode(self) -> bytes:
        """Serialize to the protobuf wire format."""
        return self._to_proto().SerializeToString()

    @classmethod
    def decode(cls, data: bytes, *, max_size: int = MAX_MESSAGE_SIZE) -> WakuMessage:
        """Parse untrusted bytes; raise :class:`DecodeError` if they are not a message.

        Input longer than ``max_size`` is refused before any parsing.
        """
        if len(data) > max_size:
            raise DecodeError(f"WakuMessage of {len(data)} bytes exceeds {max_size} bytes")
        proto = message_pb2.WakuMessage()
        try:
            proto.ParseFromString(data)
        except ProtobufDecodeError as exc:
            raise DecodeError(f"malformed WakuMessage protobuf: {exc}") from exc
        return cls._from_proto(proto)

    def _to_proto(self) -> message_pb2.WakuMessage:
        """Build the protobuf object, setting only the optional fields present."""
        return message_pb2.WakuMessage(
            payload=self.payload,
            content_topic=self.content_topic,
            version=self.version,
            timestamp=self.timestamp,
            meta=self.meta,
            rate_limit_proof=self.rate_limit_proof,
            ephemeral=self.ephemeral,
        )

    @classmethod
    def _from_proto(cls, proto: message_pb2.WakuMessage) -> WakuMessage:
        """Build a message from a parsed protobuf, keeping absent fields as ``None``."""
        return cls(
            payload=proto.payload,
            content_topic=proto.content_topic,
            version=proto.version if proto.HasField("version") else None,
            timestamp=proto.timestamp if proto.HasField("timestamp") else None,
            meta=proto.meta if proto.HasField("meta") else None,
            rate_limit_proof=(
                proto.rate_limit_proof if proto.HasField("rate_limit_proof") else None
            ),
            ephemeral=proto.ephemeral if proto.HasField("ephemeral") else None,
        )


def message_hash(pubsub_topic: str, msg: WakuMessage) -> bytes:
    """Return the deterministic 32-byte hash of ``msg`` on ``pubsub_topic``.

    ``sha256(pubsub_topic ‖ payload ‖ content_topic ‖ meta ‖ timestamp)``, the
    timestamp as 8-byte big-endian two's complement, with absent ``meta`` and
    ``timestamp`` left out (14/WAKU2-MESSAGE; js-waku agrees). Note that nwaku
    always appends the timestamp, as 8 zero bytes when absent, so a message
    without a timestamp hashes differently there.
    """
    h = hashlib.sha256()
    h.update(pubsub_topic.encode())
    h.update(msg.payload)
    h.update(msg.content_topic.encode())
    if msg.meta is not None:
        h.update(msg.meta)
    if msg.timestamp is not None:
        h.update(msg.timestamp.to_bytes(8, "big", signed=True))
    return h.digest()


def validate(
    msg: WakuMessage,
    now_ns: int,
    *,
    max_size: int = MAX_MESSAGE_SIZE,
    max_drift_ns: int = MAX_TIMESTAMP_DRIFT_NS,
) -> None:
    """Check ``msg`` against the relay rules; raise :class:`ValidationError` if one fails.

    ``now_ns`` is the local clock in Unix nanoseconds. The error message starts
    with the rule's name: ``size``, ``meta``, ``timestamp`` or ``content-topic``.
    """
    _check_size(msg, max_size)
    _check_meta(msg)
    _check_timestamp(msg, now_ns, max_drift_ns)
    _check_content_topic(msg)


def _check_size(msg: WakuMessage, max_size: int) -> None:
    """Rule ``size``: the encoded message must not exceed ``max_size`` bytes."""
    size = len(msg.encode())
    if size > max_size:
        raise ValidationError(f"size: encoded message is {size} bytes, limit is {max_size}")


def _check_meta(msg: WakuMessage) -> None:
    """Rule ``meta``: the meta attribute holds at most 64 bytes."""
    if msg.meta is not None and len(msg.meta) > MAX_META_SIZE:
        raise ValidationError(f"meta: {len(msg.meta)} bytes, limit is {MAX_META_SIZE}")


def _check_timestamp(msg: WakuMessage, now_ns: int, max_drift_ns: int) -> None:
    """Rule ``timestamp``: a set timestamp is within ``max_drift_ns`` of ``now_ns``.

    As in nwaku, an unset timestamp is not checked: absent, or 0 (the spec reads
    an absent timestamp as 0, and nwaku cannot tell the two apart).
    """
    if not msg.timestamp:
        return
    drift = msg.timestamp - now_ns
    if abs(drift) > max_drift_ns:
        direction = "future" if drift > 0 else "past"
        raise ValidationError(
            f"timestamp: {abs(drift)} ns in the {direction}, limit is {max_drift_ns} ns"
        )


def _check_content_topic(msg: WakuMessage) -> None:
    """Rule ``content-topic``: the content topic has the 23/WAKU2-TOPICS syntax."""
    try:
        parse_content_topic(msg.content_topic)
    except ValidationError as exc:
        raise ValidationError(f"content-topic: {exc}") from exc
