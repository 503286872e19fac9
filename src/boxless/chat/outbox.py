"""Delivery states of outgoing messages, and the outbox that retries them until delivered.

Theory of operation
-------------------
*States.* An outgoing message is ``QUEUED`` (stored, not yet taken by the
network), ``SENT`` (a relay or light-push peer accepted it), ``DELIVERED`` (the
recipient's receipt came back) or ``READ``; ``FAILED`` only when the message
itself is invalid and can never be sent (the network refused it as malformed).
"The recipient blocked us" is not a state: we cannot know it, and that is the
point of blocking silently. :data:`TRANSITIONS` below is the whole machine.
States only move forward: a receipt can beat the "accepted" answer of a send
(the network raced), so ``QUEUED`` jumps to ``DELIVERED``, and the late
"accepted" leaves it there. Events from the network or the peer never raise;
a local event that cannot happen (``REJECTED`` after the network already took
the same bytes, anything but a receipt after ``FAILED``) raises
:class:`~boxless.errors.UsageError`, because it means the caller is confused.

*Outbox.* :class:`Outbox` holds the messages that are not settled yet
(``QUEUED`` or ``SENT``), each with a ``next_attempt_at``. The client adapter
arms one timer at :meth:`Outbox.get_timer`, and when it fires sends what
:meth:`Outbox.due` returns, reporting back with :meth:`~Outbox.on_sent` or
:meth:`~Outbox.on_send_failed`; receipts go to :meth:`~Outbox.on_delivered` /
:meth:`~Outbox.on_read`. ``due`` *leases* each entry it returns for
:attr:`RetryPolicy.lease` seconds, so a second call does not hand out the same
message while its send is in flight, and a send whose task died is retried.

* A failed send is retried after 2 s, 4 s, 8 s ... capped at 10 min.
* A ``SENT`` message not delivered within 30 s is re-sent (the recipient may
  have missed it; it deduplicates by message id, so re-sends are harmless),
  then after 60 s, 120 s ... capped at 1 h: while a recipient is offline for
  days its store nodes already hold copies, and each re-send is one more copy.
* Every delay is multiplied by a jitter factor in ``[1 - jitter, 1 + jitter]``
  (from an injected ``random``), then capped, so many clients do not retry in step.

A message leaves the outbox when it settles (``DELIVERED``, ``READ``,
``FAILED``); late events for it (a receipt after ``FAILED``, "accepted" after
"delivered") then find nothing and return ``None``. The display state of a
message lives in the client's message table, advanced with :func:`next_state`.

*Time* is Unix wall-clock seconds: the schedule is persisted and must mean the
same after a restart (a monotonic clock restarts with the machine).
:meth:`Outbox.from_rows` clamps times a clock jump pushed absurdly far out.

*Persistence* is the client's: :meth:`Outbox.row` gives one entry's row to
upsert after each event (``None``: delete it), :meth:`Outbox.to_rows` /
:meth:`Outbox.from_rows` the whole outbox, as plain tuples in
:data:`ROW_COLUMNS` order. The payload is the encoded ChatMessage: plaintext,
so it belongs only in the encrypted user database, and no repr shows it.
"""

from __future__ import annotations

import enum
import random as _random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final

from boxless.errors import StorageError, UsageError

__all__ = [
    "ROW_COLUMNS",
    "TRANSITIONS",
    "DeliveryEvent",
    "DeliveryState",
    "Outbox",
    "OutboxEntry",
    "OutboxRow",
    "RetryPolicy",
    "StateChange",
    "next_state",
]


class DeliveryState(enum.Enum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"

    @property
    def settled(self) -> bool:
        """Whether the outbox is done with a message in this state."""
        return self in (DeliveryState.DELIVERED, DeliveryState.READ, DeliveryState.FAILED)


class DeliveryEvent(enum.Enum):
    ACCEPTED = "accepted"  # a relay / light-push peer took the message
    SEND_FAILED = "send_failed"  # transient: no peers, timeout, refused for now
    REJECTED = "rejected"  # permanent: the message is invalid and never will be sent
    DELIVERED = "delivered"  # the recipient's DELIVERED receipt
    READ = "read"  # the recipient's READ receipt


_Q, _S, _D, _R, _F = (
    DeliveryState.QUEUED,
    DeliveryState.SENT,
    DeliveryState.DELIVERED,
    DeliveryState.READ,
    DeliveryState.FAILED,
)
_ACC, _ERR, _REJ, _DLV, _RD = (
    DeliveryEvent.ACCEPTED,
    DeliveryEvent.SEND_FAILED,
    DeliveryEvent.REJECTED,
    DeliveryEvent.DELIVERED,
    DeliveryEvent.READ,
)

TRANSITIONS: Final[Mapping[tuple[DeliveryState, DeliveryEvent], DeliveryState]] = MappingProxyType(
    {
        # state     event   -> new state
        (_Q, _ACC): _S,
        (_Q, _ERR): _Q,
        (_Q, _REJ): _F,
        (_Q, _DLV): _D,  # the receipt raced the send's answer: jump ahead
        (_Q, _RD): _R,
        (_S, _ACC): _S,  # a re-send was accepted too
        (_S, _ERR): _S,  # a re-send failed; the first copy is still out there
        (_S, _DLV): _D,
        (_S, _RD): _R,
        (_D, _ACC): _D,  # late answers of re-sends: never go back
        (_D, _ERR): _D,
        (_D, _DLV): _D,  # duplicate receipt
        (_D, _RD): _R,
        (_R, _ACC): _R,
        (_R, _ERR): _R,
        (_R, _DLV): _R,
        (_R, _RD): _R,
        (_F, _DLV): _F,  # a receipt for a message never sent is bogus: ignore it
        (_F, _RD): _F,
    }
)
"""The whole delivery machine. Pairs not listed are illegal (UsageError)."""


def next_state(state: DeliveryState, event: DeliveryEvent) -> DeliveryState:
    """Return the state after ``event``; :class:`UsageError` if it cannot happen."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise UsageError(
            f"delivery event {event.value!r} is illegal in state {state.value!r}"
        ) from None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry and re-send schedule, in seconds."""

    initial: float = 2.0
    cap: float = 600.0
    resend_if_undelivered_after: float = 30.0
    resend_cap: float = 3600.0
    jitter: float = 0.2
    lease: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.cap or not 0 < self.resend_if_undelivered_after:
            raise UsageError("retry delays must be positive and initial <= cap")
        if self.resend_if_undelivered_after > self.resend_cap:
            raise UsageError("resend_if_undelivered_after must be <= resend_cap")
        if not 0 <= self.jitter < 1 or self.lease <= 0:
            raise UsageError("jitter must be in [0, 1) and lease positive")

    def _delay(self, first: float, cap: float, n: int, r: float) -> float:
        base = min(cap, first * 2.0 ** min(max(n - 1, 0), 64))
        return min(cap, base * (1.0 + self.jitter * (2.0 * r - 1.0)))

    def failure_delay(self, failures: int, r: float) -> float:
        """Delay after the ``failures``-th consecutive failed send; ``r`` in [0, 1)."""
        return self._delay(self.initial, self.cap, failures, r)

    def resend_delay(self, sends: int, r: float) -> float:
        """Delay before re-sending a message the network accepted ``sends`` times."""
        return self._delay(self.resend_if_undelivered_after, self.resend_cap, sends, r)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One pending message. ``payload`` is the encoded ChatMessage (plaintext)."""

    message_id: bytes
    recipient: bytes
    content_topic: str
    payload: bytes = field(repr=False)
    state: DeliveryState
    queued_at: float
    next_attempt_at: float
    attempts: int = 0  # sends started (handed out by due())
    failures: int = 0  # consecutive failed sends
    sends: int = 0  # sends the network accepted
    last_sent_at: float | None = None


@dataclass(frozen=True, slots=True)
class StateChange:
    """A message's delivery state moved; the client updates its message row."""

    message_id: bytes
    recipient: bytes
    old: DeliveryState
    new: DeliveryState


OutboxRow = tuple[bytes, bytes, str, bytes, str, float, float, int, int, int, float | None]
ROW_COLUMNS: Final = (
    "message_id",
    "recipient",
    "content_topic",
    "payload",
    "state",
    "queued_at",
    "next_attempt_at",
    "attempts",
    "failures",
    "sends",
    "last_sent_at",
)


class Outbox:
    """Pending outgoing messages and their retry schedule (sans-IO, time as argument)."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.policy = RetryPolicy() if policy is None else policy
        self._random = random
        self._entries: dict[bytes, OutboxEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._entries

    def __repr__(self) -> str:
        return f"Outbox({len(self._entries)} pending)"

    def get(self, message_id: bytes) -> OutboxEntry | None:
        return self._entries.get(message_id)

    def entries(self) -> list[OutboxEntry]:
        """All pending entries, oldest first."""
        return sorted(self._entries.values(), key=lambda e: (e.queued_at, e.message_id))

    # --- local actions ---------------------------------------------------------

    def add(
        self, message_id: bytes, recipient: bytes, content_topic: str, payload: bytes, now: float
    ) -> OutboxEntry:
        """Queue a message, due at once."""
        if message_id in self._entries:
            raise UsageError("this message id is already in the outbox")
        entry = OutboxEntry(
            message_id, recipient, content_topic, payload, _Q, queued_at=now, next_attempt_at=now
        )
        self._entries[message_id] = entry
        return entry

    def remove(self, message_id: bytes) -> OutboxEntry | None:
        """Stop trying to deliver a message (e.g. it was deleted before it went out)."""
        return self._entries.pop(message_id, None)

    def retry_now(self, now: float, recipient: bytes | None = None) -> int:
        """Make every pending entry (of ``recipient``) due now, with a fresh backoff.

        For when the network comes back, or a contact accepts our request.
        Returns how many entries were rescheduled.
        """
        count = 0
        for entry in list(self._entries.values()):
            if recipient is None or entry.recipient == recipient:
                self._entries[entry.message_id] = replace(entry, next_attempt_at=now, failures=0)
                count += 1
        return count

    def defer(self, message_id: bytes, at: float) -> None:
        """Hold a due entry until ``at`` without counting a failure (its recipient's
        earlier message failed: it waits behind it, so order is kept)."""
        entry = self._entries.get(message_id)
        if entry is not None:
            self._entries[message_id] = replace(entry, next_attempt_at=at)

    # --- the timer ---------------------------------------------------------------

    def get_timer(self) -> float | None:
        """When :meth:`due` next has something to return (``None``: the outbox is empty)."""
        return min((e.next_attempt_at for e in self._entries.values()), default=None)

    def due(self, now: float, limit: int | None = None) -> list[OutboxEntry]:
        """Entries to send now, oldest first; each is leased for ``policy.lease`` seconds."""
        ready = sorted(
            (e for e in self._entries.values() if e.next_attempt_at <= now),
            key=lambda e: (e.queued_at, e.message_id),
        )[:limit]
        leased = []
        for entry in ready:
            entry = replace(
                entry, attempts=entry.attempts + 1, next_attempt_at=now + self.policy.lease
            )
            self._entries[entry.message_id] = entry
            leased.append(entry)
        return leased

    # --- what the network and the peer say ------------------------------------------

    def on_sent(self, message_id: bytes, now: float) -> StateChange | None:
        """The network accepted a send; schedule a re-send in case it never arrives."""
        entry = self._entries.get(message_id)
        if entry is None:
            return None  # settled meanwhile (its receipt beat this answer)
        sends = entry.sends + 1
        delay = self.policy.resend_delay(sends, self._random())
        scheduled = replace(
            entry, sends=sends, failures=0, last_sent_at=now, next_attempt_at=now + delay
        )
        return self._apply(scheduled, _ACC)

    def on_send_failed(
        self, message_id: bytes, now: float, *, permanent: bool = False
    ) -> StateChange | None:
        """A send failed: back off and retry, or give up when ``permanent`` (invalid message)."""
        entry = self._entries.get(message_id)
        if entry is None:
            return None
        if permanent:
            return self._apply(entry, _REJ)
        failures = entry.failures + 1
        delay = self.policy.failure_delay(failures, self._random())
        return self._apply(replace(entry, failures=failures, next_attempt_at=now + delay), _ERR)

    def on_delivered(self, message_id: bytes) -> StateChange | None:
        """The recipient's DELIVERED receipt; unknown ids (late, bogus) return ``None``."""
        return self._receipt(message_id, _DLV)

    def on_read(self, message_id: bytes) -> StateChange | None:
        """The recipient's READ receipt (implies delivered)."""
        return self._receipt(message_id, _RD)

    def _receipt(self, message_id: bytes, event: DeliveryEvent) -> StateChange | None:
        entry = self._entries.get(message_id)
        return None if entry is None else self._apply(entry, event)

    def _apply(self, entry: OutboxEntry, event: DeliveryEvent) -> StateChange | None:
        """Move ``entry`` (already rescheduled by the caller) through ``event``; store it."""
        new = next_state(entry.state, event)
        if new.settled:
            del self._entries[entry.message_id]
        else:
            self._entries[entry.message_id] = replace(entry, state=new)
        if new is entry.state:
            return None
        return StateChange(entry.message_id, entry.recipient, entry.state, new)

    # --- persistence -----------------------------------------------------------------

    def row(self, message_id: bytes) -> OutboxRow | None:
        """The row to store for one message, or ``None`` if it left the outbox."""
        entry = self._entries.get(message_id)
        return None if entry is None else _to_row(entry)

    def to_rows(self) -> list[OutboxRow]:
        """Every pending entry as a plain tuple, in :data:`ROW_COLUMNS` order."""
        return [_to_row(e) for e in self.entries()]

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[tuple[object, ...]],
        *,
        now: float,
        policy: RetryPolicy | None = None,
        random: Callable[[], float] = _random.random,
    ) -> Outbox:
        """Rebuild an outbox from stored rows; :class:`StorageError` if one is corrupt.

        A ``next_attempt_at`` further than the longest possible delay from ``now``
        (the wall clock went back) is pulled in to ``now``.
        """
        outbox = cls(policy, random=random)
        horizon = now + max(outbox.policy.cap, outbox.policy.resend_cap, outbox.policy.lease)
        for row in rows:
            entry = _from_row(row)
            if entry.next_attempt_at > horizon:
                entry = replace(entry, next_attempt_at=now)
            if entry.message_id in outbox._entries:
                raise StorageError("outbox rows repeat a message id")
            outbox._entries[entry.message_id] = entry
        return outbox


def _to_row(e: OutboxEntry) -> OutboxRow:
    return (
        e.message_id,
        e.recipient,
        e.content_topic,
        e.payload,
        e.state.value,
        e.queued_at,
        e.next_attempt_at,
        e.attempts,
        e.failures,
        e.sends,
        e.last_sent_at,
    )


def _bytes(value: object, name: str) -> bytes:
    if not isinstance(value, bytes):
        raise StorageError(f"outbox column {name} is not bytes")
    return value


def _time(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StorageError(f"outbox column {name} is not a number")
    return float(value)


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StorageError(f"outbox column {name} is not a count")
    return value


def _from_row(row: tuple[object, ...]) -> OutboxEntry:
    if len(row) != len(ROW_COLUMNS):
        raise StorageError(f"an outbox row has {len(row)} columns, not {len(ROW_COLUMNS)}")
    mid, recipient, topic, payload, state, queued, next_at, attempts, failures, sends, last = row
    try:
        parsed = DeliveryState(state)
    except ValueError:
        raise StorageError(f"an outbox row has an unknown state {state!r}") from None
    if parsed.settled:
        raise StorageError(f"an outbox row is in settled state {parsed.value!r}")
    if not isinstance(topic, str):
        raise StorageError("outbox column content_topic is not text")
    return OutboxEntry(
        _bytes(mid, "message_id"),
        _bytes(recipient, "recipient"),
        topic,
        _bytes(payload, "payload"),
        parsed,
        queued_at=_time(queued, "queued_at"),
        next_attempt_at=_time(next_at, "next_attempt_at"),
        attempts=_count(attempts, "attempts"),
        failures=_count(failures, "failures"),
        sends=_count(sends, "sends"),
        last_sent_at=None if last is None else _time(last, "last_sent_at"),
    )
