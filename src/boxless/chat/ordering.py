"""Ordering and deduplication within one conversation.

Theory of operation
-------------------
*Lamport clock.* Each conversation has a :class:`LamportClock`. Sending a
message that is stored (text, edit, reaction, ...) calls :meth:`~LamportClock.tick`
and puts the value in the envelope; receiving any message calls
:meth:`~LamportClock.observe` with its value. A message written after reading
another therefore sorts after it, whatever the two devices' wall clocks say.
Ephemeral messages (typing, receipts) may carry :attr:`~LamportClock.value`
without ticking. The clock saturates at :data:`MAX_LAMPORT` instead of
overflowing: a peer that sends a huge value can only spoil the order of its own
conversation, which then falls back to the other two key fields.

*Display order.* :func:`order_key` is ``(lamport, sent_at_ms, message_id)``: a
total order every device computes identically (the message id, random and
unique, breaks the remaining ties). It matches the client's SQL index
``(contact, lamport, sent_at_ms, message_id)``.

*Deduplication.* The same message can arrive several times: from relay and
from store, or re-sent by an outbox that missed our receipt. A
:class:`DedupWindow` remembers the ids of recent messages, at most ``capacity``
of them, evicting the lowest Lamport values first and remembering the highest
value it has evicted (the *watermark*). A message that is not in the window is
certainly new if its Lamport value is above the watermark; at or below it the
window cannot tell (:attr:`Seen.UNKNOWN`) and the caller asks its database.
This holds because a message's id and Lamport value never change: re-sends
repeat the same encoded envelope.
"""

from __future__ import annotations

import enum
import heapq
from typing import NamedTuple

from boxless.chat.envelope import MAX_LAMPORT, ChatMessage
from boxless.errors import UsageError

__all__ = ["DedupWindow", "LamportClock", "OrderKey", "Seen", "order_key"]


class LamportClock:
    """A Lamport clock for one conversation; persist :attr:`value` with the conversation."""

    __slots__ = ("_value",)

    def __init__(self, value: int = 0) -> None:
        if not 0 <= value <= MAX_LAMPORT:
            raise UsageError(f"a Lamport value must be 0..2^63-1, got {value}")
        self._value = value

    @property
    def value(self) -> int:
        return self._value

    def tick(self) -> int:
        """Advance for a new outgoing message and return its Lamport value."""
        self._value = min(self._value + 1, MAX_LAMPORT)
        return self._value

    def observe(self, remote: int) -> None:
        """Take a received message's Lamport value into account."""
        if not 0 <= remote <= MAX_LAMPORT:
            raise UsageError(f"a Lamport value must be 0..2^63-1, got {remote}")
        self._value = max(self._value, remote)

    def __repr__(self) -> str:
        return f"LamportClock({self._value})"


class OrderKey(NamedTuple):
    """Sort key for display; compares as a tuple."""

    lamport: int
    sent_at_ms: int
    message_id: bytes


def order_key(msg: ChatMessage) -> OrderKey:
    """Return the stable display-order key of a message."""
    return OrderKey(msg.lamport, msg.sent_at_ms, msg.message_id)


class Seen(enum.Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"  # evicted range: ask the database


class DedupWindow:
    """Bounded memory of the message ids seen in one conversation."""

    def __init__(self, capacity: int = 4096, watermark: int = -1) -> None:
        if capacity < 1:
            raise UsageError("a dedup window needs a capacity of at least 1")
        self.capacity = capacity
        self._watermark = watermark
        self._lamports: dict[bytes, int] = {}
        self._heap: list[tuple[int, bytes]] = []

    @property
    def watermark(self) -> int:
        """Highest Lamport value evicted so far (-1: none); persist it to restore the window."""
        return self._watermark

    def __len__(self) -> int:
        return len(self._lamports)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._lamports

    def check(self, message_id: bytes, lamport: int) -> Seen:
        """Say whether a message was seen, without recording it."""
        if message_id in self._lamports:
            return Seen.DUPLICATE
        if lamport <= self._watermark:
            return Seen.UNKNOWN
        return Seen.NEW

    def add(self, message_id: bytes, lamport: int) -> None:
        """Record a message as seen (call it once the message is stored)."""
        if message_id in self._lamports:
            return
        self._lamports[message_id] = lamport
        heapq.heappush(self._heap, (lamport, message_id))
        while len(self._lamports) > self.capacity:
            low, evicted = heapq.heappop(self._heap)
            del self._lamports[evicted]
            self._watermark = max(self._watermark, low)
