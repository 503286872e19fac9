"""The bot's inbox: a bounded queue per user, a token bucket per user, fair turns.

Theory of operation
-------------------
Everything a bot is asked (a chat message, an app request) comes from a user
who may flood it. :class:`Inbox` is sans-IO (``now`` is passed in): ``offer``
admits a job only while the user's bucket has a token (``rate`` per second,
``burst`` at most) and the user's queue holds fewer than ``per_user`` jobs;
otherwise the job is dropped and counted (``dropped``), never queued, so a
flooding user costs a counter, not memory. The number of users with queued work
is bounded too (``max_users``). ``take`` serves users round-robin, one job
each, so a flooder's backlog delays another user by at most one job (plus
the one running).
Buckets of idle users are forgotten once full again (the table stays small).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Limits:
    rate: float = 5.0  # jobs per second per user, sustained
    burst: int = 20  # jobs a user may send at once
    per_user: int = 32  # queued jobs per user
    max_users: int = 10_000  # users with queued work or a non-full bucket

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1 or self.per_user < 1 or self.max_users < 1:
            raise ValueError("bot limits must be positive")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


@dataclass
class Inbox(Generic[T]):
    limits: Limits = field(default_factory=Limits)
    dropped: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._queues: OrderedDict[str, deque[T]] = OrderedDict()

    def offer(self, user: str, job: T, now: float) -> bool:
        """Queue ``job`` from ``user``; False (and counted) when the user is over a limit."""
        bucket = self._refill(user, now)
        queue = self._queues.get(user)
        if (
            bucket is None
            or bucket.tokens < 1
            or (queue is not None and len(queue) >= self.limits.per_user)
        ):
            self.dropped[user] = self.dropped.get(user, 0) + 1
            if len(self.dropped) > self.limits.max_users:
                self.dropped.pop(next(iter(self.dropped)))
            return False
        bucket.tokens -= 1
        if queue is None:
            queue = self._queues[user] = deque()
        queue.append(job)
        return True

    def take(self) -> tuple[str, T] | None:
        """The next job, users in turn; None when nothing waits."""
        if not self._queues:
            return None
        user, queue = next(iter(self._queues.items()))
        job = queue.popleft()
        del self._queues[user]
        if queue:
            self._queues[user] = queue  # to the back of the line
        return user, job

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def _refill(self, user: str, now: float) -> _Bucket | None:
        lim = self.limits
        bucket = self._buckets.get(user)
        if bucket is None:
            self._forget_full(now)
            if len(self._buckets) >= lim.max_users:
                return None  # too many active users at once: the newcomer waits
            bucket = self._buckets[user] = _Bucket(float(lim.burst), now)
        else:
            elapsed = max(0.0, now - bucket.at)
            bucket.tokens = min(float(lim.burst), bucket.tokens + elapsed * lim.rate)
            bucket.at = now
            self._buckets.move_to_end(user)
        return bucket

    def _forget_full(self, now: float) -> None:
        """Drop the oldest buckets that have refilled completely (idle users)."""
        lim = self.limits
        while self._buckets:
            user, b = next(iter(self._buckets.items()))
            if user in self._queues or b.tokens + (now - b.at) * lim.rate < lim.burst:
                return
            del self._buckets[user]
