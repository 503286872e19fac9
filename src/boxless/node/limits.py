"""Bounded per-peer state and rate limits for service protocols, sans-IO.

Theory of operation
-------------------
A libp2p peer id is free to make: a key pair and one Noise handshake. So any
table keyed by peer id is a memory (and fairness) target, and every limit that
restarts per id can be dodged by changing id. Three rules follow, and every
per-peer table of a service node keeps them:

1. **Bounded.** A :class:`PeerTable` holds at most ``capacity`` entries,
   least recently used first out, and peers used once (fresh ids) go out
   before peers used again (known ones).
2. **Paced churn (the global budget).** While the table has room a new peer is
   admitted freely; once it is full, admitting one evicts the least recently
   used entry, and evictions draw on one global :class:`TokenBucket`
   (``admit_rate`` per second). When that bucket is empty the newcomer is
   *refused* and nobody is evicted. A flood of fresh ids therefore displaces
   at most ``admit_rate`` entries a second: a known peer active within the last
   ``capacity / admit_rate`` seconds keeps its state (its rate-limit bucket,
   its violation history), and the flood itself gets "busy" answers.
3. **Fair shares of the workers.** :class:`FairSlots` hands ``slots``
   workers (e.g. store query threads) to waiting requests, next to the peer
   with the fewest running, oldest first: a peer that asks once waits behind
   at most one request of each busier peer, however deep their queues are.
4. **Fair caps on concurrency.** :class:`StreamGate` caps open inbound
   service streams per peer and in total; at the total cap a newcomer that
   holds fewer streams than the heaviest holder takes that holder's oldest
   slot, so one peer (or a crowd of greedy ones) cannot shut out a peer that
   holds little.

Nothing here reads a clock or does I/O: time is passed in (seconds, any
monotonic origin, e.g. ``trio.current_time()``), so tests use a fake clock.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from boxless.errors import UsageError

__all__ = [
    "Admission",
    "FairSlots",
    "PeerRateLimiter",
    "PeerTable",
    "StreamGate",
    "TokenBucket",
    "Verdict",
]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T", bound=Hashable)


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``; starts full."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float) -> None:
        if rate <= 0 or burst < 1:
            raise UsageError(f"a token bucket needs rate > 0 and burst >= 1, got {rate}, {burst}")
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.last: float | None = None

    def _refill(self, now: float) -> None:
        if self.last is not None:
            self.tokens = min(self.burst, self.tokens + max(0.0, now - self.last) * self.rate)
        self.last = now if self.last is None else max(self.last, now)

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens at ``now``; False (and nothing taken) if too few."""
        self._refill(now)
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True

    def spend(self, now: float, cost: float) -> None:
        """Take ``cost`` tokens even if that leaves a debt (at most one burst deep):
        for costs known only after the work, such as an answer's size."""
        self._refill(now)
        self.tokens = max(-self.burst, self.tokens - cost)

    def retry_after(self, now: float, cost: float = 1.0) -> float:
        """Seconds from ``now`` until ``cost`` tokens are there (0 if they are)."""
        self._refill(now)
        return max(0.0, (cost - self.tokens) / self.rate)


class PeerTable(Generic[K, V]):
    """A bounded map whose churn, once full, is paced by a global budget.

    Two LRU segments (as in the 2Q / segmented-LRU caches): a key enters
    *probation*; used again, it moves to *protected* (at most 80 % of the
    capacity; the overflow goes back to probation). Evictions take probation's
    least recently used first, so a flood of fresh ids, each used once, only
    displaces other fresh ids, never a peer seen twice. ``capacity`` entries at
    most; when full, :meth:`admit` evicts only if the admission bucket
    (``admit_rate``/s, bursts of ``admit_burst``) has a token, else refuses.
    ``evicted`` and ``refused`` count both outcomes (for metrics).
    """

    def __init__(self, capacity: int, *, admit_rate: float = 50.0, admit_burst: int = 100) -> None:
        if capacity < 1:
            raise UsageError(f"a peer table needs capacity >= 1, got {capacity}")
        self.capacity = capacity
        self.protected_capacity = max(1, capacity * 4 // 5)
        self._budget = TokenBucket(admit_rate, admit_burst)
        self._probation: OrderedDict[K, V] = OrderedDict()
        self._protected: OrderedDict[K, V] = OrderedDict()
        self.evicted = 0
        self.refused = 0

    def __len__(self) -> int:
        return len(self._probation) + len(self._protected)

    def __contains__(self, key: object) -> bool:
        return key in self._probation or key in self._protected

    def __iter__(self) -> Iterator[K]:
        return iter([*self._probation, *self._protected])

    def get(self, key: K) -> V | None:
        """The entry for ``key`` (marking it recently used, and known), or None."""
        if key in self._protected:
            self._protected.move_to_end(key)
            return self._protected[key]
        if key not in self._probation:
            return None
        value = self._probation.pop(key)
        self._protected[key] = value
        if len(self._protected) > self.protected_capacity:
            demoted, old = self._protected.popitem(last=False)
            self._probation[demoted] = old
        return value

    def peek(self, key: K) -> V | None:
        """The entry for ``key`` without touching its recency."""
        if key in self._protected:
            return self._protected[key]
        return self._probation.get(key)

    def admit(self, key: K, value: V, now: float) -> bool:
        """Insert (or replace) ``key``; False if the table is full and the budget spent."""
        if key in self:
            self.get(key)
            segment = self._protected if key in self._protected else self._probation
            segment[key] = value
            return True
        if len(self) >= self.capacity:
            if not self._budget.take(now):
                self.refused += 1
                return False
            victims = self._probation if self._probation else self._protected
            victims.popitem(last=False)
            self.evicted += 1
        self._probation[key] = value
        return True

    def get_or_admit(self, key: K, factory: Callable[[], V], now: float) -> V | None:
        """The entry for ``key``, admitting ``factory()`` if new; None if refused."""
        value = self.get(key)
        if value is not None:
            return value
        value = factory()
        return value if self.admit(key, value, now) else None

    def pop(self, key: K) -> V | None:
        """Remove and return ``key``'s entry (None if absent)."""
        if key in self._protected:
            return self._protected.pop(key)
        return self._probation.pop(key, None)

    def oldest(self) -> K | None:
        """The next key to be evicted, or None when empty."""
        return next(iter(self._probation or self._protected), None)


class Verdict(enum.Enum):
    """What a rate limiter says about one request."""

    OK = "ok"
    PEER_LIMIT = "peer"  # this peer used its allowance
    BUSY = "busy"  # too many new peers at once: the global budget is spent


class PeerRateLimiter:
    """Per-peer token buckets (``rate``/s, bursts of ``burst``) in a bounded
    :class:`PeerTable`; a fresh peer id past the table's budget gets BUSY.

    ``allow`` keeps the interface of ``waku.lightpush.TokenBucketLimiter``.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_peers: int = 10_000,
        admit_rate: float = 50.0,
        admit_burst: int = 100,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise UsageError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self.table: PeerTable[Hashable, TokenBucket] = PeerTable(
            max_peers, admit_rate=admit_rate, admit_burst=admit_burst
        )

    def check(self, peer: Hashable, now: float) -> Verdict:
        """Take one request's token for ``peer`` at ``now``."""
        bucket = self.table.get_or_admit(peer, lambda: TokenBucket(self.rate, self.burst), now)
        if bucket is None:
            return Verdict.BUSY
        return Verdict.OK if bucket.take(now) else Verdict.PEER_LIMIT

    def allow(self, peer: Hashable, now: float) -> bool:
        return self.check(peer, now) is Verdict.OK

    def charge(self, peer: Hashable, now: float, cost: float) -> None:
        """Charge ``peer`` ``cost`` more tokens after the fact (e.g. for a big
        answer); its next requests wait until the debt is paid off."""
        bucket = self.table.peek(peer)
        if bucket is not None and cost > 0:
            bucket.spend(now, cost)

    def forget(self, peer: Hashable) -> None:
        self.table.pop(peer)

    @property
    def tracked_peers(self) -> int:
        return len(self.table)


@dataclass(frozen=True, slots=True)
class Admission(Generic[T]):
    """The gate's answer: admit (maybe evicting ``evict``) or refuse for ``reason``."""

    admitted: bool
    reason: str | None = None  # "peer" or "total" when refused
    evict: T | None = None  # another peer's stream to reset to make room


class StreamGate(Generic[T]):
    """Caps open inbound service streams: ``per_peer`` each, ``total`` overall.

    Streams are opaque tokens. :meth:`open` decides, :meth:`close` releases.
    At the total cap the newcomer takes the oldest slot of the peer holding the
    most streams, if that peer holds at least two more than the newcomer;
    otherwise it is refused. So one idle pre-opened stream per protocol per
    honest peer (js-waku's habit) stays usable under a flood.
    """

    def __init__(self, *, per_peer: int = 16, total: int = 2048) -> None:
        if per_peer < 1 or total < per_peer:
            raise UsageError(f"need 1 <= per_peer <= total, got {per_peer}, {total}")
        self.per_peer = per_peer
        self.total = total
        self._open: dict[Hashable, OrderedDict[T, None]] = {}
        self._count = 0

    @property
    def open_total(self) -> int:
        return self._count

    def open_for(self, peer: Hashable) -> int:
        return len(self._open.get(peer, ()))

    def open(self, peer: Hashable, token: T) -> Admission[T]:
        """Decide on a new stream ``token`` from ``peer``."""
        held = self.open_for(peer)
        if held >= self.per_peer:
            return Admission(False, "peer")
        evict: T | None = None
        if self._count >= self.total:
            heaviest = max(self._open, key=lambda p: len(self._open[p]))
            if len(self._open[heaviest]) < held + 2:
                return Admission(False, "total")
            evict = next(iter(self._open[heaviest]))
            self.close(heaviest, evict)
        self._open.setdefault(peer, OrderedDict())[token] = None
        self._count += 1
        return Admission(True, None, evict)

    def close(self, peer: Hashable, token: T) -> None:
        """Release ``token`` (a no-op if it was evicted or never admitted)."""
        streams = self._open.get(peer)
        if streams is None or token not in streams:
            return
        del streams[token]
        self._count -= 1
        if not streams:
            del self._open[peer]


class FairSlots(Generic[T]):
    """``slots`` workers shared fairly among peers; waiters are opaque tokens.

    :meth:`acquire` says whether ``token`` may run now; if not it waits (the
    adapter parks it) until a :meth:`release` returns it as the next to run.
    The next is the waiter of the peer with the fewest running, ties broken
    by arrival. :meth:`cancel` withdraws a waiter that gave up.
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise UsageError(f"need at least one slot, got {slots}")
        self.slots = slots
        self._running: dict[Hashable, int] = {}
        self._busy = 0
        self._waiting: OrderedDict[T, Hashable] = OrderedDict()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def running_for(self, peer: Hashable) -> int:
        return self._running.get(peer, 0)

    def acquire(self, peer: Hashable, token: T) -> bool:
        """True: ``token`` runs now (call :meth:`release` when done). False: it waits."""
        if self._busy < self.slots and not self._waiting:
            self._start(peer)
            return True
        self._waiting[token] = peer
        return False

    def cancel(self, token: T) -> None:
        """Withdraw a waiting ``token`` (a no-op if it is not waiting)."""
        self._waiting.pop(token, None)

    def release(self, peer: Hashable) -> T | None:
        """One of ``peer``'s runs ended; return the waiter that runs next, if any."""
        left = self._running.get(peer, 0) - 1
        if left > 0:
            self._running[peer] = left
        else:
            self._running.pop(peer, None)
        self._busy -= 1
        if not self._waiting:
            return None
        token = min(self._waiting, key=lambda t: self._running.get(self._waiting[t], 0))
        self._start(self._waiting.pop(token))
        return token

    def _start(self, peer: Hashable) -> None:
        self._running[peer] = self._running.get(peer, 0) + 1
        self._busy += 1
