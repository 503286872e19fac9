"""Scalable Data Sync: one participant's state for one group channel, sans-IO.

Theory of operation
-------------------
Spec: vacp2p/rfc-index ``docs/ift-ts/raw/sds.md``. Every member appends to the
channel's log by broadcasting an SDS message; everyone ends up with the same log in
the same order. :class:`SdsChannel` takes bytes and the current time (Unix epoch
seconds, a float: the Lamport clock is pegged to epoch milliseconds) and returns
bytes and events. It never awaits, reads a clock or touches the network.

Sending (:meth:`SdsChannel.wrap`): the Lamport clock becomes
``max(now_ms, clock + 1)``; the message carries ``causal_history_size`` ids of our
log (with retrieval hints): the newest, then the newest that no content message
we have seen names yet, then the newest others -- so every message gets named by
a later one and a member who lost both finds the first through the second -- and
our bloom filter of received ids, sized to the recent window (see
:mod:`boxless.sync.bloom` and docs/groups.md); it joins our log, our bloom filter
and the *outgoing buffer* of messages not yet acknowledged.

Receiving (:meth:`SdsChannel.receive`): our own messages, other channels' and
duplicates are ignored; ephemeral messages are delivered at once. Every other
message -- content or sync -- first reviews the outgoing buffer: an id in its
causal history is **acknowledged**; an id its bloom filter probably holds is
**possibly acknowledged**, and becomes acknowledged once the filters of
``possible_acks_threshold`` *distinct* senders hold it (js-waku counts filters, but
a false positive in one member's filter stays in that member's later filters, so
only distinct members are independent evidence) and it has a retrieval hint (a
store has it: a false positive then costs members a fetch by hash when our next
message names it, never a message nobody can get). Filters of any size are read
(their size says how); one of an impossible size is ignored. A content message then enters
our bloom filter and is delivered if every id in its causal history is in our log;
otherwise it waits in the *incoming buffer*. Ids neither in the log nor buffered
are *missing* (:meth:`SdsChannel.missing`): the client fetches them -- from a Waku
store by the retrieval hint (a Waku message hash), or from members -- and feeds
them to :meth:`SdsChannel.receive`, or gives up with
:meth:`SdsChannel.mark_irretrievable`, which lets the messages that waited on them
through. Delivering a message may release buffered ones; :meth:`receive` returns
them all, in causal order. The log itself is ordered by (Lamport time, id).

Timers (:meth:`SdsChannel.get_timer` / :meth:`SdsChannel.handle_timer`): messages
still **unacknowledged** are re-broadcast after ``resend_unacknowledged_after``,
**possibly acknowledged** ones after the longer ``resend_possibly_acknowledged_after``,
both doubling per attempt, at most ``max_resends`` times (they stay in
:meth:`SdsChannel.unacknowledged` after that: the UI shows them unconfirmed). A
*sync message* (empty content; never logged, buffered or acknowledged) goes out
when the channel has been quiet for ``sync_interval`` plus a pseudo-random share of
``sync_jitter``: any message sent or received restarts the wait, so with the jitter
scaled to the group (:meth:`SdsConfig.for_group`) a quiet group of thousands sends
about one sync message per period, not one per member.

No receipts: acknowledgement comes only from causal histories and bloom filters
that members send anyway, so the cost per message does not grow with the group.
The SDS-R repair extension (``repair_request``) is decoded but not acted on.
"""

from __future__ import annotations

import bisect
import enum
import hashlib
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from boxless.errors import DecodeError, UsageError, ValidationError
from boxless.sync.bloom import (
    ROLL_KEEP_FRACTION,
    WINDOW_BLOOM_PARAMS,
    BloomFilter,
    BloomParams,
    RollingBloomFilter,
    base_hashes,
)
from boxless.sync.message import (
    MAX_HINT_BYTES,
    HistoryEntry,
    Kind,
    SdsMessage,
    content_message_id,
    decode_message,
    encode_message,
    ephemeral_message_id,
    message_id_is_valid,
)

__all__ = [
    "HISTORY_SCAN",
    "STATE_VERSION",
    "AckState",
    "Delivered",
    "MissingDependency",
    "SdsChannel",
    "SdsConfig",
    "Wrapped",
    "bloom_for_rate",
]

log = logging.getLogger(__name__)

HISTORY_SCAN: Final = 128
"""How far back (log entries) a causal history looks for messages nobody has named yet."""
_NAMED_LIMIT: Final = 4 * HISTORY_SCAN  # named ids remembered (only the scan window matters)

STATE_VERSION: Final = 1
"""Version of the dict :meth:`SdsChannel.to_state` writes."""


@dataclass(frozen=True)
class SdsConfig:
    """Per-channel settings (members may differ: filters are read by their size)."""

    causal_history_size: int = 3
    """Ids of our log each message depends on: the newest, then the newest that no
    content message we have seen names yet (:data:`HISTORY_SCAN`), then the newest.

    The spec recommends two and leaves the choice to the application. A message
    missed by one member is only noticed when a later message it receives names
    it. With the plain "last N" rule a burst pushed messages out of every tail
    unnamed: in the unit test's network (10 % loss to one member, overlapping
    sends, 6 seeds) the last 3 left 5-6 % of lost messages unnoticed and even the
    last 10 were needed. Naming the unnamed first chains every message to a later
    one, so a member who lost both finds the first through the second: 0 of ~200
    unnoticed at 3 entries with 4 or 10 members (and 1 at 2 entries with 10). An
    entry is ~102 bytes (a 64-hex id and a 32-byte Waku hash as hint)."""
    possible_acks_threshold: int = 2
    """Distinct members whose bloom filters must hold a message to acknowledge it."""
    resend_unacknowledged_after: float = 30.0
    resend_possibly_acknowledged_after: float = 120.0
    max_resends: int = 5
    sync_interval: float = 30.0
    """A member sends a sync message after the channel is quiet this long, plus a jitter."""
    sync_jitter: float = 30.0
    """Spread of the random extra wait. The first member's timer fires about
    ``sync_jitter / members`` after ``sync_interval``, and the others hear its sync
    message and wait again, so a jitter of (members x propagation delay) keeps a
    quiet group to about one sync message per period: see :meth:`for_group`."""
    history_limit: int = 10_000
    """Log entries kept (for dependencies and dedup); older ones are forgotten."""
    max_buffered: int = 5_000
    """Incoming messages waiting for dependencies; more are refused (re-fetchable)."""
    bloom: BloomParams = WINDOW_BLOOM_PARAMS
    """The filter we send: :data:`~boxless.sync.bloom.WINDOW_BLOOM_PARAMS` (128 ids
    at 1 %, 168 bytes). We read members' filters of any size, whatever this is."""
    verify_message_ids: bool = True
    """Refuse content messages whose id is not a hash of their content (ours or js-waku's)."""

    def __post_init__(self) -> None:
        if self.causal_history_size < 1:
            raise UsageError("causal_history_size must be at least 1")
        if self.possible_acks_threshold < 1:
            raise UsageError("possible_acks_threshold must be at least 1")
        if min(self.resend_unacknowledged_after, self.resend_possibly_acknowledged_after) <= 0:
            raise UsageError("resend periods must be positive")
        if self.max_resends < 0 or self.sync_interval <= 0 or self.sync_jitter < 0:
            raise UsageError("max_resends, sync_interval and sync_jitter out of range")
        if self.history_limit < self.causal_history_size or self.max_buffered < 1:
            raise UsageError("history_limit must cover the causal history; max_buffered >= 1")

    @classmethod
    def for_group(
        cls,
        members: int,
        *,
        propagation_delay: float = 0.5,
        messages_per_second: float | None = None,
    ) -> SdsConfig:
        """Defaults, with the sync jitter scaled to a group of ``members`` and, given
        the group's peak ``messages_per_second``, a bloom filter that still holds an
        id when its sender's first re-send is due (:func:`bloom_for_rate`)."""
        jitter = max(30.0, members * propagation_delay)
        if messages_per_second is None:
            return cls(sync_jitter=jitter)
        resend = cls.resend_unacknowledged_after
        return cls(sync_jitter=jitter, bloom=bloom_for_rate(messages_per_second, resend))


def bloom_for_rate(messages_per_second: float, window: float) -> BloomParams:
    """A 1 % filter that holds the last ``window`` seconds of a channel at this rate
    even right after it rolls over (it keeps 80 %), and never less than the default."""
    if not messages_per_second > 0 or not window > 0:
        raise UsageError("messages_per_second and window must be positive")
    ids = math.ceil(messages_per_second * window / ROLL_KEEP_FRACTION)
    return BloomParams.for_window(max(WINDOW_BLOOM_PARAMS.capacity, ids), 0.01)


class AckState(enum.Enum):
    """Where one of our messages stands (spec: "Participant state")."""

    UNACKNOWLEDGED = "unacknowledged"
    POSSIBLY_ACKNOWLEDGED = "possibly_acknowledged"
    ACKNOWLEDGED = "acknowledged"


@dataclass(frozen=True)
class Wrapped:
    """Bytes to broadcast on the channel, the SDS id they carry, and their kind.

    Once a :attr:`Kind.CONTENT` message is in a Waku message, give its hash to
    :meth:`SdsChannel.set_retrieval_hint`; sync and ephemeral messages have none.
    """

    message_id: str
    data: bytes
    kind: Kind = Kind.CONTENT

    def __repr__(self) -> str:
        return f"Wrapped({self.kind.value}, {self.message_id[:12]}…, {len(self.data)}B)"


@dataclass(frozen=True)
class Delivered:
    """A message delivered to the application, in causal order."""

    message_id: str
    sender_id: str
    lamport_timestamp: int | None
    content: bytes
    retrieval_hint: bytes | None = None
    ephemeral: bool = False

    def __repr__(self) -> str:
        kind = "ephemeral" if self.ephemeral else f"lamport={self.lamport_timestamp}"
        return f"Delivered({self.message_id[:12]}…, {kind}, {len(self.content)}B)"


@dataclass(frozen=True)
class MissingDependency:
    """A message others' causal histories name that we have not received."""

    message_id: str
    retrieval_hint: bytes | None
    sender_id: str | None
    since: float
    """When we first learned it was missing (for the client's give-up timeout)."""


@dataclass
class _Entry:
    lamport: int
    sender_id: str
    hint: bytes | None


@dataclass
class _Pending:
    message: SdsMessage
    received_at: float
    hint: bytes | None
    unmet: set[str]


@dataclass
class _Outgoing:
    data: bytes
    base: tuple[int, int]  # bloom base hashes: positions for any filter size
    next_resend: float
    resends: int = 0
    possible_ackers: set[str] = field(default_factory=set)


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _unhex(value: object) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("expected a hex string")
    return bytes.fromhex(value)


class SdsChannel:
    """One participant's SDS state for one channel (see the module docstring)."""

    def __init__(
        self,
        channel_id: str,
        participant_id: str,
        *,
        now: float,
        config: SdsConfig | None = None,
    ) -> None:
        if not participant_id or len(channel_id) > 256 or len(participant_id) > 256:
            raise UsageError("participant_id must be non-empty; ids at most 256 characters")
        self.channel_id = channel_id
        self.participant_id = participant_id
        self.config = config if config is not None else SdsConfig()
        self._lamport = int(now * 1000)
        self._bloom = RollingBloomFilter(self.config.bloom)
        self._log: list[tuple[int, str]] = []  # sorted (lamport, message_id)
        self._entries: dict[str, _Entry] = {}
        self._buffer: dict[str, _Pending] = {}
        self._waiters: dict[str, set[str]] = {}
        self._missing: dict[str, MissingDependency] = {}
        self._lost: dict[str, None] = {}  # insertion-ordered set
        self._named: dict[str, None] = {}  # ids some content message's history named
        self._outgoing: dict[str, _Outgoing] = {}
        self._acked: list[str] = []
        self._sync_seq = 0
        self._next_sync = now + self._sync_backoff()

    # ----------------------------------------------------------------- sending

    @property
    def lamport_timestamp(self) -> int:
        """The channel's Lamport clock (epoch milliseconds or later)."""
        return self._lamport

    def wrap(self, content: bytes, now: float) -> Wrapped:
        """Make a content message to broadcast; it awaits acknowledgement from now on."""
        if not content:
            raise UsageError("SDS content must not be empty (empty content is a sync message)")
        lamport = self._tick(now)
        message_id = content_message_id(self.channel_id, self.participant_id, lamport, content)
        data = encode_message(
            SdsMessage(
                sender_id=self.participant_id,
                message_id=message_id,
                channel_id=self.channel_id,
                lamport_timestamp=lamport,
                causal_history=self._causal_history(mark=True),
                bloom_filter=self._bloom.to_bytes(),
                content=bytes(content),
            )
        )
        self._remember(message_id, lamport, self.participant_id, None)
        self._bloom.add(message_id)
        self._outgoing[message_id] = _Outgoing(
            data=data,
            base=base_hashes(message_id),
            next_resend=now + self.config.resend_unacknowledged_after,
        )
        self._quiet_from(now)
        return Wrapped(message_id, data)

    def wrap_ephemeral(self, content: bytes) -> Wrapped:
        """Make an ephemeral message (typing, presence): no ordering, no acknowledgement."""
        if not content:
            raise UsageError("ephemeral content must not be empty")
        message_id = ephemeral_message_id(content)
        message = SdsMessage(
            sender_id=self.participant_id,
            message_id=message_id,
            channel_id=self.channel_id,
            lamport_timestamp=None,
            content=bytes(content),
        )
        return Wrapped(message_id, encode_message(message), Kind.EPHEMERAL)

    def set_retrieval_hint(self, message_id: str, hint: bytes) -> None:
        """Record how others can fetch one of our messages (its Waku message hash).

        Call it once the wrapped bytes are in a Waku message: later causal histories
        then carry the hint, so members who missed the message can fetch it by hash.
        """
        if len(hint) > MAX_HINT_BYTES:
            raise UsageError(f"retrieval hint is longer than {MAX_HINT_BYTES} bytes")
        entry = self._entries.get(message_id)
        if entry is None:
            raise UsageError("no such message in this channel's log")
        entry.hint = bytes(hint)
        out = self._outgoing.get(message_id)
        if out is not None:
            self._maybe_acknowledge(message_id, out)

    # --------------------------------------------------------------- receiving

    def receive(
        self, data: bytes, now: float, *, retrieval_hint: bytes | None = None
    ) -> list[Delivered]:
        """Process a broadcast (or a message fetched for repair); return what is delivered.

        ``retrieval_hint`` is how we got it (its Waku message hash): it goes into our
        causal histories so others can fetch it too. Raises :class:`DecodeError` or
        :class:`ValidationError` (both :class:`~boxless.errors.PeerError`) for a
        peer's bad bytes; returns ``[]`` for duplicates, our own messages, other
        channels, sync messages and messages still waiting for dependencies.
        """
        message = decode_message(data)
        if retrieval_hint is not None and len(retrieval_hint) > MAX_HINT_BYTES:
            raise UsageError(f"retrieval hint is longer than {MAX_HINT_BYTES} bytes")
        if message.channel_id != self.channel_id:
            log.debug("SDS: ignoring a message for another channel")
            return []
        if message.sender_id == self.participant_id and (
            message.kind is not Kind.CONTENT or message.message_id in self._entries
        ):
            return []  # ours; a content message another device of ours sent is delivered
        kind = message.kind
        if kind is Kind.EPHEMERAL:
            return [self._delivered(message, retrieval_hint, ephemeral=True)]
        if kind is Kind.CONTENT:
            if message.message_id in self._entries or message.message_id in self._buffer:
                return []
            if self.config.verify_message_ids and not message_id_is_valid(message):
                raise ValidationError("SDS message id is not a hash of its content")
        self._quiet_from(now)
        self._review_acks(message)
        if kind is Kind.SYNC:
            self._note_missing(message.causal_history, now)
            return []
        return self._accept(message, now, retrieval_hint)

    def _accept(self, message: SdsMessage, now: float, hint: bytes | None) -> list[Delivered]:
        own_id = message.message_id
        history = [e for e in message.causal_history if e.message_id != own_id]
        unmet = {e.message_id for e in history if not self._satisfied(e.message_id)}
        if unmet and len(self._buffer) >= self.config.max_buffered:
            log.warning("SDS: incoming buffer full (%d); refusing a message", len(self._buffer))
            return []
        self._bloom.add(message.message_id)
        self._missing.pop(message.message_id, None)
        self._lost.pop(message.message_id, None)
        self._note_missing(history, now)
        self._mark_named(e.message_id for e in history)
        if unmet:
            self._buffer[message.message_id] = _Pending(message, now, hint, unmet)
            for dep in unmet:
                self._waiters.setdefault(dep, set()).add(message.message_id)
            return []
        delivered = [self._deliver(message, hint)]
        self._release(message.message_id, delivered)
        return delivered

    def _satisfied(self, message_id: str) -> bool:
        return message_id in self._entries or message_id in self._lost

    def _note_missing(self, history: Iterable[HistoryEntry], now: float) -> None:
        for entry in history:
            mid = entry.message_id
            if self._satisfied(mid) or mid in self._buffer:
                continue
            known = self._missing.get(mid)
            if known is None or (known.retrieval_hint is None and entry.retrieval_hint):
                since = now if known is None else known.since
                self._missing[mid] = MissingDependency(
                    mid, entry.retrieval_hint, entry.sender_id, since
                )

    def _deliver(self, message: SdsMessage, hint: bytes | None) -> Delivered:
        lamport = message.lamport_timestamp
        assert lamport is not None  # content messages only
        self._lamport = max(self._lamport, lamport)
        self._remember(message.message_id, lamport, message.sender_id, hint)
        return self._delivered(message, hint, ephemeral=False)

    @staticmethod
    def _delivered(message: SdsMessage, hint: bytes | None, *, ephemeral: bool) -> Delivered:
        return Delivered(
            message_id=message.message_id,
            sender_id=message.sender_id,
            lamport_timestamp=message.lamport_timestamp,
            content=message.content,
            retrieval_hint=hint,
            ephemeral=ephemeral,
        )

    def _release(self, satisfied_id: str, delivered: list[Delivered]) -> None:
        """Deliver every buffered message whose last unmet dependency was ``satisfied_id``."""
        stack = [satisfied_id]
        while stack:
            dep = stack.pop()
            waiting = self._waiters.pop(dep, set())
            ready = []
            for waiter in waiting:
                pending = self._buffer[waiter]
                pending.unmet.discard(dep)
                if not pending.unmet:
                    ready.append(pending)
            # Deterministic order; later ones pop first, so push in reverse.
            ready.sort(key=lambda p: (p.message.lamport_timestamp or 0, p.message.message_id))
            for pending in ready:
                del self._buffer[pending.message.message_id]
                delivered.append(self._deliver(pending.message, pending.hint))
            stack.extend(p.message.message_id for p in reversed(ready))

    # ------------------------------------------------------------------ repair

    def missing(self) -> list[MissingDependency]:
        """Messages we know of but lack, oldest first: fetch them, then :meth:`receive`."""
        return sorted(self._missing.values(), key=lambda m: (m.since, m.message_id))

    def mark_irretrievable(self, message_id: str) -> list[Delivered]:
        """Give up on a missing message; return the messages this lets through.

        Call it when a dependency could not be fetched in time (or cannot be read,
        like messages from before we joined). If it arrives later after all, it is
        still delivered.
        """
        if message_id in self._buffer or self._satisfied(message_id):
            return []  # it arrived after all (it may itself wait: see missing())
        self._missing.pop(message_id, None)
        self._lost[message_id] = None
        while len(self._lost) > self.config.history_limit:
            del self._lost[next(iter(self._lost))]
        delivered: list[Delivered] = []
        self._release(message_id, delivered)
        return delivered

    # ---------------------------------------------------------- acknowledgement

    def _review_acks(self, message: SdsMessage) -> None:
        if not self._outgoing:
            return
        for entry in message.causal_history:
            if entry.message_id in self._outgoing:
                self._acknowledge(entry.message_id)
        if message.bloom_filter is None or not self._outgoing:
            return
        try:
            bloom = BloomFilter.from_bytes(message.bloom_filter)
        except DecodeError:
            log.debug("SDS: ignoring a bloom filter of an impossible size")
            return
        params = bloom.params
        for message_id, out in list(self._outgoing.items()):
            if bloom.contains_positions(params.positions_of(out.base)):
                out.possible_ackers.add(message.sender_id)
                self._maybe_acknowledge(message_id, out)

    def _maybe_acknowledge(self, message_id: str, out: _Outgoing) -> None:
        """Bloom filters acknowledge only a message a store has (it has a retrieval
        hint): a false positive then costs a fetch by hash, never a lost message."""
        if len(out.possible_ackers) < self.config.possible_acks_threshold:
            return
        entry = self._entries.get(message_id)
        if entry is not None and entry.hint:
            self._acknowledge(message_id)

    def _acknowledge(self, message_id: str) -> None:
        del self._outgoing[message_id]
        self._acked.append(message_id)

    def stop_resending(self, *, only_published: bool = False) -> int:
        """Forget our outstanding messages without acknowledging them (the group's
        membership changed: re-sends would reach the newcomers); with
        ``only_published``, only those with a retrieval hint (they reached the
        network, so a store has them). Returns how many."""
        drop = [
            mid
            for mid in self._outgoing
            if not only_published or (mid in self._entries and self._entries[mid].hint)
        ]
        for mid in drop:
            del self._outgoing[mid]
        return len(drop)

    def acknowledge(self, message_id: str) -> bool:
        """The application learned another way that a member has our message (a read
        marker covering it): stop re-sending it. False if it was not outstanding."""
        if message_id not in self._outgoing:
            return False
        self._acknowledge(message_id)
        return True

    def unacknowledged(self) -> list[str]:
        """Our messages not yet acknowledged (including possibly acknowledged), oldest first."""
        return list(self._outgoing)

    def ack_state(self, message_id: str) -> AckState:
        """The state of one of our messages (ids we never sent read as acknowledged)."""
        out = self._outgoing.get(message_id)
        if out is None:
            return AckState.ACKNOWLEDGED
        if out.possible_ackers:
            return AckState.POSSIBLY_ACKNOWLEDGED
        return AckState.UNACKNOWLEDGED

    def take_acknowledged(self) -> list[str]:
        """Our messages acknowledged since the last call (for "confirmed" ticks)."""
        acked, self._acked = self._acked, []
        return acked

    # ------------------------------------------------------------------ timers

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` next has work (epoch seconds), or ``None``."""
        deadlines = [
            out.next_resend
            for out in self._outgoing.values()
            if out.resends < self.config.max_resends
        ]
        if self._log:
            deadlines.append(self._next_sync)
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> list[Wrapped]:
        """Re-sends and a sync message that are due, to broadcast in this order."""
        cfg = self.config
        out: list[Wrapped] = []
        for message_id, pending in self._outgoing.items():
            if pending.resends >= cfg.max_resends or pending.next_resend > now:
                continue
            pending.resends += 1
            period = (
                cfg.resend_possibly_acknowledged_after
                if pending.possible_ackers
                else cfg.resend_unacknowledged_after
            )
            pending.next_resend = now + period * 2**pending.resends
            out.append(Wrapped(message_id, pending.data))
        if out:
            self._quiet_from(now)
        elif self._log and now >= self._next_sync:
            out.append(self._sync_message(now))
            self._quiet_from(now)
        return out

    def _sync_message(self, now: float) -> Wrapped:
        lamport = self._tick(now)
        digest = hashlib.sha256(f"{self.participant_id}\x00{lamport}".encode()).hexdigest()
        message_id = f"sync-{digest[:32]}"
        message = SdsMessage(
            sender_id=self.participant_id,
            message_id=message_id,
            channel_id=self.channel_id,
            lamport_timestamp=lamport,
            causal_history=self._causal_history(),
            bloom_filter=self._bloom.to_bytes(),
        )
        return Wrapped(message_id, encode_message(message), Kind.SYNC)

    def _quiet_from(self, now: float) -> None:
        self._next_sync = now + self._sync_backoff()

    def _sync_backoff(self) -> float:
        """``sync_interval`` plus a pseudo-random share of ``sync_jitter`` (per member, per call)."""
        self._sync_seq += 1
        seed = f"{self.participant_id}\x00{self._sync_seq}".encode()
        fraction = int.from_bytes(hashlib.sha256(seed).digest()[:8], "big") / 2**64
        return self.config.sync_interval + self.config.sync_jitter * fraction

    # --------------------------------------------------------------- the log

    def history(self) -> list[str]:
        """Our log: message ids ordered by (Lamport time, id), oldest first."""
        return [mid for _, mid in self._log]

    def _tick(self, now: float) -> int:
        self._lamport = max(int(now * 1000), self._lamport + 1)
        return self._lamport

    def _causal_history(self, *, mark: bool = False) -> tuple[HistoryEntry, ...]:
        """The newest log entry, then the newest entries no content message has named
        yet (within the last :data:`HISTORY_SCAN`), then the newest others; in log order."""
        log_ = self._log
        size = min(self.config.causal_history_size, len(log_))
        if not size:
            return ()
        chosen = [len(log_) - 1]
        floor = max(0, len(log_) - 1 - HISTORY_SCAN)
        i = len(log_) - 2
        while len(chosen) < size and i >= floor:
            if log_[i][1] not in self._named:
                chosen.append(i)
            i -= 1
        i = len(log_) - 2
        while len(chosen) < size:
            if i not in chosen:
                chosen.append(i)
            i -= 1
        chosen.sort()
        if mark:
            self._mark_named(log_[i][1] for i in chosen)
        return tuple(
            HistoryEntry(message_id=log_[i][1], retrieval_hint=self._entries[log_[i][1]].hint)
            for i in chosen
        )

    def _named_in_window(self) -> list[str]:
        """The named ids a causal history can still pass over (what is worth saving)."""
        window = {mid for _, mid in self._log[-HISTORY_SCAN - 1 :]}
        return [mid for mid in self._named if mid in window]

    def _mark_named(self, ids: Iterable[str]) -> None:
        named = self._named
        for mid in ids:
            named.pop(mid, None)
            named[mid] = None
        while len(named) > _NAMED_LIMIT:
            del named[next(iter(named))]

    def _remember(self, message_id: str, lamport: int, sender_id: str, hint: bytes | None) -> None:
        self._entries[message_id] = _Entry(lamport, sender_id, hint)
        bisect.insort(self._log, (lamport, message_id))
        while len(self._log) > self.config.history_limit:
            _, old = self._log.pop(0)
            del self._entries[old]

    # ------------------------------------------------------------ persistence

    def to_state(self) -> dict[str, object]:
        """Everything needed to resume, as JSON-ready dicts, lists, strings and numbers."""
        return {
            "version": STATE_VERSION,
            "channel_id": self.channel_id,
            "participant_id": self.participant_id,
            "lamport": self._lamport,
            "bloom_ids": self._bloom.ids(),
            "log": [
                [lamport, mid, self._entries[mid].sender_id, _hex(self._entries[mid].hint)]
                for lamport, mid in self._log
            ],
            "buffer": [
                [encode_message(p.message).hex(), p.received_at, _hex(p.hint)]
                for p in self._buffer.values()
            ],
            "missing": [
                [m.message_id, _hex(m.retrieval_hint), m.sender_id, m.since]
                for m in self._missing.values()
            ],
            "lost": list(self._lost),
            "named": self._named_in_window(),
            "outgoing": [
                [mid, o.data.hex(), o.next_resend, o.resends, sorted(o.possible_ackers)]
                for mid, o in self._outgoing.items()
            ],
            "acked": list(self._acked),
            "next_sync": self._next_sync,
            "sync_seq": self._sync_seq,
        }

    @classmethod
    def from_state(
        cls, state: Mapping[str, object], *, config: SdsConfig | None = None
    ) -> SdsChannel:
        """Resume from :meth:`to_state`; raises :class:`UsageError` if the state is corrupt."""
        try:
            return cls._from_state(state, config)
        except (KeyError, TypeError, ValueError, IndexError, DecodeError) as exc:
            raise UsageError(f"corrupt SDS channel state: {exc!r}") from None

    @classmethod
    def _from_state(cls, state: Mapping[str, object], config: SdsConfig | None) -> SdsChannel:
        if state["version"] != STATE_VERSION:
            raise ValueError(f"unknown state version {state['version']!r}")
        channel = cls(
            _str(state["channel_id"]), _str(state["participant_id"]), now=0.0, config=config
        )
        channel._lamport = _int(state["lamport"])
        channel._bloom = RollingBloomFilter.from_ids(
            (_str(i) for i in _list(state["bloom_ids"])), channel.config.bloom
        )
        for lamport, mid, sender, hint in _rows(state["log"]):
            channel._remember(_str(mid), _int(lamport), _str(sender), _unhex(hint))
        for data, received_at, hint in _rows(state["buffer"]):
            message = decode_message(_unhex(data) or b"")
            channel._accept(message, _float(received_at), _unhex(hint))
        for mid, hint, sender, since in _rows(state["missing"]):
            channel._missing[_str(mid)] = MissingDependency(
                _str(mid), _unhex(hint), None if sender is None else _str(sender), _float(since)
            )
        channel._lost = dict.fromkeys(_str(i) for i in _list(state["lost"]))
        channel._named = dict.fromkeys(_str(i) for i in _list(state.get("named", [])))
        for mid, data, next_resend, resends, ackers in _rows(state["outgoing"]):
            channel._outgoing[_str(mid)] = _Outgoing(
                data=_unhex(data) or b"",
                base=base_hashes(_str(mid)),
                next_resend=_float(next_resend),
                resends=_int(resends),
                possible_ackers={_str(a) for a in _list(ackers)},
            )
        channel._acked = [_str(i) for i in _list(state["acked"])]
        channel._next_sync = _float(state["next_sync"])
        channel._sync_seq = _int(state["sync_seq"])
        return channel


def _list(value: object) -> list[object]:
    if not isinstance(value, (list, tuple)):
        raise TypeError("expected a list")
    return list(value)


def _rows(value: object) -> list[list[object]]:
    return [_list(row) for row in _list(value)]


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("expected an integer")
    return value


def _float(value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError("expected a number")
    return float(value)
