"""The SDS message: frozen values and their protobuf codec (``wire/sds.proto``).

Theory of operation
-------------------
One protobuf, three kinds, told apart as js-waku's ``Message.decode`` does:

=========  ===================  ===============
kind       ``lamport_timestamp``  ``content``
=========  ===================  ===============
content    set                  non-empty
sync       set                  empty or unset
ephemeral  unset                non-empty
=========  ===================  ===============

Anything else (no timestamp and no content) is not an SDS message and
:func:`decode_message` raises :class:`~boxless.errors.DecodeError`, as it does for
every other malformed input: truncated protobuf, invalid UTF-8 in a string,
oversized ids or histories, a Lamport timestamp past ``2**63 - 1`` (so a hostile
peer cannot push our clock to where ``+1`` overflows the ``uint64``). Limits are
generous enough for js-waku, whose default causal history is 200 entries.

Message ids: the spec leaves them to the application ("likely based on a message
hash"); js-waku uses ``hex(sha256(content))``, which makes two sends of the same
text one message. Ours (:func:`content_message_id`) also hashes the channel, the
sender and the Lamport timestamp, so every send is its own message while a
re-send repeats the same bytes. :func:`message_id_is_valid` accepts both forms, so
a member cannot claim another member's id for different content.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import Final

from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.errors import DecodeError, UsageError
from boxless.wire import sds_pb2

__all__ = [
    "MAX_HINT_BYTES",
    "MAX_HISTORY_ENTRIES",
    "MAX_ID_CHARS",
    "MAX_LAMPORT",
    "HistoryEntry",
    "Kind",
    "SdsMessage",
    "content_message_id",
    "decode_message",
    "encode_message",
    "ephemeral_message_id",
    "message_id_is_valid",
]

MAX_ID_CHARS: Final = 256
"""Longest message, sender or channel id accepted (ours are 64 hex characters)."""
MAX_HINT_BYTES: Final = 256
"""Longest retrieval hint accepted (ours are 32-byte Waku message hashes)."""
MAX_HISTORY_ENTRIES: Final = 512
"""Most causal-history or repair-request entries accepted (js-waku sends up to 200)."""
MAX_LAMPORT: Final = 2**63 - 1
"""Highest Lamport timestamp accepted from a peer."""


class Kind(enum.Enum):
    """What an SDS message is for (see the table in the module docstring)."""

    CONTENT = "content"
    SYNC = "sync"
    EPHEMERAL = "ephemeral"


def _check_id(value: str, what: str, *, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise UsageError(f"{what} must be a string")
    if not value and not allow_empty:
        raise UsageError(f"{what} must not be empty")
    if len(value) > MAX_ID_CHARS:
        raise UsageError(f"{what} is longer than {MAX_ID_CHARS} characters")


@dataclass(frozen=True)
class HistoryEntry:
    """One message a message depends on, with how to fetch it."""

    message_id: str
    retrieval_hint: bytes | None = None
    sender_id: str | None = None

    def __post_init__(self) -> None:
        _check_id(self.message_id, "history message_id")
        if self.retrieval_hint is not None and len(self.retrieval_hint) > MAX_HINT_BYTES:
            raise UsageError(f"retrieval hint is longer than {MAX_HINT_BYTES} bytes")
        if self.sender_id is not None:
            _check_id(self.sender_id, "history sender_id", allow_empty=True)

    def __repr__(self) -> str:
        return f"HistoryEntry({self.message_id[:12]}…)"


@dataclass(frozen=True)
class SdsMessage:
    """A decoded, validated SDS message (content is opaque bytes, never shown)."""

    sender_id: str
    message_id: str
    channel_id: str
    lamport_timestamp: int | None
    causal_history: tuple[HistoryEntry, ...] = ()
    bloom_filter: bytes | None = None
    content: bytes = b""
    repair_request: tuple[HistoryEntry, ...] = ()

    def __post_init__(self) -> None:
        _check_id(self.sender_id, "sender_id")
        _check_id(self.message_id, "message_id")
        _check_id(self.channel_id, "channel_id", allow_empty=True)
        lamport = self.lamport_timestamp
        if lamport is not None and not 0 <= lamport <= MAX_LAMPORT:
            raise UsageError("lamport_timestamp out of range")
        if lamport is None and not self.content:
            raise UsageError("an SDS message needs a lamport_timestamp or content")
        for entries in (self.causal_history, self.repair_request):
            if len(entries) > MAX_HISTORY_ENTRIES:
                raise UsageError(f"more than {MAX_HISTORY_ENTRIES} history entries")

    @property
    def kind(self) -> Kind:
        if self.lamport_timestamp is None:
            return Kind.EPHEMERAL
        return Kind.CONTENT if self.content else Kind.SYNC

    def __repr__(self) -> str:
        return (
            f"SdsMessage({self.kind.value}, id={self.message_id[:12]}…, "
            f"lamport={self.lamport_timestamp}, history={len(self.causal_history)}, "
            f"content={len(self.content)}B)"
        )


def _entry_to_pb(entry: HistoryEntry, pb: sds_pb2.HistoryEntry) -> None:
    pb.message_id = entry.message_id
    if entry.retrieval_hint is not None:
        pb.retrieval_hint = entry.retrieval_hint
    if entry.sender_id is not None:
        pb.sender_id = entry.sender_id


def encode_message(message: SdsMessage) -> bytes:
    """The wire bytes of ``message`` (``wire/sds.proto``, js-waku compatible)."""
    pb = sds_pb2.SdsMessage(
        sender_id=message.sender_id,
        message_id=message.message_id,
        channel_id=message.channel_id,
    )
    if message.lamport_timestamp is not None:
        pb.lamport_timestamp = message.lamport_timestamp
    for entry in message.causal_history:
        _entry_to_pb(entry, pb.causal_history.add())
    if message.bloom_filter is not None:
        pb.bloom_filter = message.bloom_filter
    for entry in message.repair_request:
        _entry_to_pb(entry, pb.repair_request.add())
    if message.content:
        pb.content = message.content
    return pb.SerializeToString()


def _entry_from_pb(pb: sds_pb2.HistoryEntry) -> HistoryEntry:
    return HistoryEntry(
        message_id=pb.message_id,
        retrieval_hint=pb.retrieval_hint if pb.HasField("retrieval_hint") else None,
        sender_id=pb.sender_id if pb.HasField("sender_id") else None,
    )


def decode_message(data: bytes) -> SdsMessage:
    """Decode a peer's bytes; raises :class:`DecodeError` and nothing else on bad input."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError("SDS message must be bytes")
    pb = sds_pb2.SdsMessage()
    try:
        pb.ParseFromString(bytes(data))
    except ProtobufDecodeError as exc:
        raise DecodeError(f"malformed SDS message: {exc}") from None
    if len(pb.causal_history) > MAX_HISTORY_ENTRIES or len(pb.repair_request) > MAX_HISTORY_ENTRIES:
        raise DecodeError(f"more than {MAX_HISTORY_ENTRIES} history entries")
    try:
        return SdsMessage(
            sender_id=pb.sender_id,
            message_id=pb.message_id,
            channel_id=pb.channel_id,
            lamport_timestamp=(pb.lamport_timestamp if pb.HasField("lamport_timestamp") else None),
            causal_history=tuple(_entry_from_pb(e) for e in pb.causal_history),
            bloom_filter=pb.bloom_filter if pb.HasField("bloom_filter") else None,
            content=pb.content,
            repair_request=tuple(_entry_from_pb(e) for e in pb.repair_request),
        )
    except UsageError as exc:
        raise DecodeError(f"invalid SDS message: {exc}") from None


def content_message_id(channel_id: str, sender_id: str, lamport: int, content: bytes) -> str:
    """Our id for a content message: hex SHA-256 over channel, sender, Lamport time, content."""
    h = hashlib.sha256(b"boxless/sds/v1\x00")
    for part in (channel_id.encode(), sender_id.encode()):
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    h.update(lamport.to_bytes(8, "big"))
    h.update(content)
    return h.hexdigest()


def ephemeral_message_id(content: bytes) -> str:
    """js-waku's id: hex SHA-256 of the content (we use it for ephemeral messages)."""
    return hashlib.sha256(content).hexdigest()


def message_id_is_valid(message: SdsMessage) -> bool:
    """True if a content message's id is ours or js-waku's derivation of its content."""
    if message.lamport_timestamp is None:
        return message.message_id == ephemeral_message_id(message.content)
    ours = content_message_id(
        message.channel_id, message.sender_id, message.lamport_timestamp, message.content
    )
    return message.message_id in (ours, ephemeral_message_id(message.content))
