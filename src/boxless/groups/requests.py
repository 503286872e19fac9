"""A member asking another member's device for what it lacks: ops by id, a Megolm key.

Theory of operation
-------------------
Two gaps a group member cannot close from the group topic alone:

* an op names parents this device never got (its :meth:`GroupLog.missing`):
  the op's sender holds them, so we ask it for them by id;
* a group message's Megolm session never reached us (its key share was lost):
  we ask the members for a re-share of that session; only its owner answers.

A :class:`GroupRequest` travels over Olm to one device, inside the payload of
a ``GroupKeyShareBody`` (the body kind every client routes to its group
feature, ungated), marked by :data:`MAGIC` so it can never be mistaken for a
key share: a key share is protobuf, whose first byte is never 0x00 (field 0
does not exist), and an older client's key share decoder drops it as
malformed. The answer is an ordinary ``GroupOpBody`` or key share.

Who may ask, and how often, is decided by the receiver
(:func:`boxless.groups.auth.authorize` and :class:`boxless.groups.queues.RateLimit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from boxless.errors import DecodeError, UsageError

__all__ = ["MAGIC", "MAX_REQUEST_IDS", "GroupRequest", "decode_request", "is_request"]

MAGIC: Final = b"\x00bxgr1"
MAX_REQUEST_IDS: Final = 24
"""Ids (ops and sessions together) in one request: 6 + 32 + 2 + 24 * 32 = 808 bytes,
under the key share body's 1,024."""
_ID: Final = 32


@dataclass(frozen=True, slots=True)
class GroupRequest:
    """Send me these ops of ``group_id`` / re-share these Megolm sessions of it."""

    group_id: bytes
    ops: tuple[bytes, ...] = ()
    sessions: tuple[bytes, ...] = ()  # Megolm session ids (32 raw bytes each)

    def __post_init__(self) -> None:
        if len(self.group_id) != _ID:
            raise UsageError("a group id is 32 bytes")
        ids = (*self.ops, *self.sessions)
        if not 0 < len(ids) <= MAX_REQUEST_IDS or any(len(i) != _ID for i in ids):
            raise UsageError(f"a group request names 1..{MAX_REQUEST_IDS} ids of 32 bytes")

    def encode(self) -> bytes:
        return (
            MAGIC
            + self.group_id
            + bytes([len(self.ops), len(self.sessions)])
            + b"".join(self.ops)
            + b"".join(self.sessions)
        )


def is_request(payload: bytes) -> bool:
    """Whether a key share body's payload is a request (not a key share)."""
    return payload.startswith(MAGIC)


def decode_request(payload: bytes) -> GroupRequest:
    """Decode a request from a peer; :class:`DecodeError` for anything malformed."""
    if not is_request(payload):
        raise DecodeError("not a group request")
    rest = payload[len(MAGIC) :]
    if len(rest) < _ID + 2:
        raise DecodeError("group request is truncated")
    group_id, n_ops, n_sessions = rest[:_ID], rest[_ID], rest[_ID + 1]
    body = rest[_ID + 2 :]
    if len(body) != (n_ops + n_sessions) * _ID:
        raise DecodeError("group request's ids do not match its counts")
    ids = [body[i : i + _ID] for i in range(0, len(body), _ID)]
    try:
        return GroupRequest(group_id, tuple(ids[:n_ops]), tuple(ids[n_ops:]))
    except UsageError as exc:
        raise DecodeError(f"malformed group request: {exc}") from None
