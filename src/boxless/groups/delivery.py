"""The group feature's decisions about time: timers, retries, give-up, queue limits.

Theory of operation
-------------------
Sans-IO, like :mod:`boxless.sync` and :mod:`boxless.chat.outbox`: every
function and class here takes ``now`` (Unix seconds) and returns a decision;
the client's :class:`~boxless.client.groups.GroupManager` is the adapter that
arms one timer per loop at :meth:`GroupClock.get_timer` and acts on
:meth:`GroupClock.due`.

* :class:`GroupTimings` -- every delay and limit, one frozen value passed to
  the manager's constructor, so tests shorten them instead of waiting.
* :class:`GroupClock` -- per group: when its SDS timer (re-send, sync) is due
  and since when a dependency is missing; :meth:`~GroupClock.due` says which
  groups fire and which repair now, :meth:`~GroupClock.get_timer` how long to
  sleep: until the next real deadline, or until woken if there is none (a
  client with no groups, or only quiet ones, does not wake to look).
* :func:`key_deadline`, :meth:`QueueLimits.expiry_deadline`,
  :func:`outbox_sleep` -- the other deadlines: asking for a key that did not
  come, forgetting expired queue rows, the direct outbox's next due row.
* :func:`should_give_up` -- a missing message not in any store and not
  re-sent by its author for ``give_up_after_repairs`` repair rounds is let go.
* :class:`RateLimit` -- at most one action per key per interval (answering a
  member's request, asking for a key), with bounded memory.
* :class:`QueueLimits` -- the direct-body inbox (bodies from devices we
  cannot place yet) and the pending queue (group messages whose key has not
  come): per-sender and per-group caps, a total cap and expiry, so a stranger
  flooding them fills only its own share and is forgotten after a while.
* :func:`sync_point` -- how far an authenticated message may move a topic's
  catch-up point: to its timestamp, never past ``now`` plus a small skew, never
  back.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field, fields
from typing import Final

from boxless.errors import UsageError

__all__ = [
    "MAX_CLOCK_SKEW_S",
    "MIN_SLEEP_S",
    "GroupClock",
    "GroupTimings",
    "QueueLimits",
    "RateLimit",
    "key_deadline",
    "outbox_sleep",
    "should_give_up",
    "sync_point",
]

MAX_CLOCK_SKEW_S: Final = 120.0
MIN_SLEEP_S: Final = 0.05  # a deadline already past: look again this soon, not at once


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """Caps and expiry of the group inbox and pending queues (see the module doc)."""

    inbox_per_sender: int = 32
    inbox_total: int = 1000
    inbox_expiry_s: float = 24 * 3600.0
    pending_per_group: int = 2000
    pending_total: int = 10_000
    pending_expiry_s: float = 7 * 24 * 3600.0

    def inbox_admits(self, from_sender: int, total: int) -> bool:
        """Whether one more inbox row from a sender holding ``from_sender`` rows fits."""
        return from_sender < self.inbox_per_sender and total < self.inbox_total

    def pending_admits(self, in_group: int, total: int) -> bool:
        return in_group < self.pending_per_group and total < self.pending_total

    def expiry_deadline(
        self, oldest_inbox: float | None, oldest_pending: float | None
    ) -> float | None:
        """When the oldest queued row expires (Unix seconds); None: nothing queued."""
        due = [
            *([] if oldest_inbox is None else [oldest_inbox + self.inbox_expiry_s]),
            *([] if oldest_pending is None else [oldest_pending + self.pending_expiry_s]),
        ]
        return min(due, default=None)


@dataclass(frozen=True, slots=True)
class GroupTimings:
    """Every delay of the group feature (seconds); tests pass shorter ones."""

    sync_check_s: float = 5.0  # longest sleep of the SDS loop while messages are missing
    repair_after_s: float = 10.0  # a dependency missing this long is fetched from the store
    key_patience_s: float = 10.0  # a message waiting this long for its key stops holding others
    give_up_after_repairs: int = 40  # then a missing message not in any store is let go
    repair_lookback_s: float = 600.0  # store window before a gap with no retrieval hint
    retry_base_s: float = 2.0  # first retry of a direct body the network refused (chat/outbox)
    retry_max_s: float = 300.0
    idle_outbox_s: float = 0.0  # the outbox's sleep with nothing queued; 0: until woken
    resend_after_s: float = 0.0  # SDS re-send of an unacknowledged message; 0: SDS's 30 s
    request_interval_s: float = 30.0  # per member: one answered request (ops, key) this often
    key_request_interval_s: float = 60.0  # per missing session: one request this often
    limits: QueueLimits = field(default_factory=QueueLimits)

    def __post_init__(self) -> None:
        if min(self.sync_check_s, self.repair_after_s, self.retry_base_s) <= 0:
            raise UsageError("group timings must be positive")
        if self.resend_after_s < 0:
            raise UsageError("resend_after_s must not be negative (0: the SDS default)")
        if self.retry_base_s > self.retry_max_s:
            raise UsageError("retry_base_s must be at most retry_max_s")

    @classmethod
    def parse(cls, text: str) -> GroupTimings:
        """Timings from ``"repair_after_s=1,sync_check_s=0.5"`` (a command-line option or
        an environment variable, for tests of whole processes); unnamed fields keep
        their defaults. Raises UsageError saying which part is wrong."""
        values: dict[str, float | int] = {}
        names = {f.name: f.type for f in fields(cls) if f.name != "limits"}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, raw = part.partition("=")
            if not sep or name.strip() not in names:
                known = ", ".join(sorted(names))
                raise UsageError(f"group timing {part!r}: write name=seconds, one of {known}")
            try:
                number = float(raw)
            except ValueError:
                raise UsageError(f"group timing {part!r}: {raw!r} is not a number") from None
            key = name.strip()
            values[key] = int(number) if names[key] in ("int", int) else number
        return cls(**values)  # type: ignore[arg-type]


def should_give_up(timings: GroupTimings, missing_since: float, now: float) -> bool:
    """A dependency missing since ``missing_since``, after every repair so far failed."""
    return now - missing_since > timings.give_up_after_repairs * timings.repair_after_s


def sync_point(current_ns: int | None, timestamp_ns: int, now: float) -> int | None:
    """The topic's new catch-up point after an authenticated message stamped
    ``timestamp_ns`` (a sender's claim): never past now + skew, never backwards.
    None: leave it where it is."""
    capped = min(timestamp_ns, int((now + MAX_CLOCK_SKEW_S) * 1e9))
    if capped <= 0 or (current_ns is not None and capped <= current_ns):
        return None
    return capped


class GroupClock:
    """When each group's SDS timer fires and when its missing messages are repaired."""

    def __init__(self, timings: GroupTimings) -> None:
        self.timings = timings
        self._timers: dict[bytes, float] = {}  # group -> when its SDS timer is due
        self._missing_since: dict[bytes, float] = {}  # group -> oldest missing dependency
        self._armed = -math.inf  # when the sleeping loop wakes anyway (-inf: it is running)

    def arm(self, now: float, delay: float | None) -> None:
        """The loop sleeps ``delay`` seconds from ``now`` (None: until woken)."""
        self._armed = math.inf if delay is None else now + delay

    def disarm(self) -> None:
        """The loop is running: it reads every deadline before it sleeps again."""
        self._armed = -math.inf

    def wakes_early(self, deadline: float | None) -> bool:
        """Whether a new ``deadline`` comes before the sleeping loop would wake (so
        it must be woken); a change that does not move the next deadline costs no
        wake-up."""
        return deadline is not None and deadline < self._armed

    def deadline(self, group_id: bytes) -> float | None:
        """The group's next deadline (SDS timer or repair), None: it has none."""
        due = [self._timers.get(group_id), self._missing_since.get(group_id)]
        if due[1] is not None:
            due[1] += self.timings.repair_after_s
        return min((d for d in due if d is not None), default=None)

    def set_timer(self, group_id: bytes, due: float | None) -> None:
        if due is None:
            self._timers.pop(group_id, None)
        else:
            self._timers[group_id] = due

    def set_missing(self, group_id: bytes, since: Iterable[float]) -> None:
        """The ``since`` of every dependency the group's channel still misses."""
        oldest = min(since, default=None)
        if oldest is None:
            self._missing_since.pop(group_id, None)
        else:
            self._missing_since.setdefault(group_id, oldest)

    def forget(self, group_id: bytes) -> None:
        self._timers.pop(group_id, None)
        self._missing_since.pop(group_id, None)

    def take_repair(self, group_id: bytes, now: float) -> float:
        """Start a repair round: the oldest missing time it covers (cleared until re-set)."""
        return self._missing_since.pop(group_id, now)

    def retry_repair(self, group_id: bytes, now: float) -> None:
        """Something is still missing after a repair: try again a full period from now."""
        self._missing_since[group_id] = now

    def due(self, now: float) -> tuple[list[bytes], list[bytes]]:
        """``(groups whose SDS timer fires, groups to repair)`` at ``now``."""
        fire = [g for g, t in self._timers.items() if t <= now]
        after = self.timings.repair_after_s
        repair = [g for g, t in self._missing_since.items() if now - t >= after]
        return fire, repair

    def get_timer(self, now: float, also: Iterable[float] = ()) -> float | None:
        """How long the loop may sleep (it also wakes on any change); None: there is
        no deadline at all, sleep until woken.

        Deadlines: each group's SDS timer, each repair (``repair_after_s`` after the
        oldest missing dependency) and ``also`` (key patience, queue expiry: see
        :func:`key_deadline`, :meth:`QueueLimits.expiry_deadline`). Only while a
        group has missing messages does the loop also look every ``sync_check_s``;
        an idle client with no such work never wakes on its own.
        """
        after = self.timings.repair_after_s
        deadlines = [*self._timers.values(), *also]
        deadlines += [t + after for t in self._missing_since.values()]
        if not deadlines:
            return None
        delay = max(min(deadlines) - now, MIN_SLEEP_S)
        if self._missing_since:
            delay = min(delay, self.timings.sync_check_s)
        return delay


def key_deadline(waiting_since: Iterable[float], timings: GroupTimings) -> float | None:
    """When the oldest session still waiting for its key becomes worth asking for."""
    oldest = min(waiting_since, default=None)
    return None if oldest is None else oldest + timings.key_patience_s


def outbox_sleep(next_at: float | None, now: float, timings: GroupTimings) -> float | None:
    """How long the direct outbox may sleep: until its next row is due; with nothing
    queued until woken (queueing wakes it), or ``idle_outbox_s`` if that is set."""
    if next_at is not None:
        return max(0.0, next_at - now)
    return timings.idle_outbox_s or None


class RateLimit:
    """At most one allowed action per key per ``interval`` seconds; remembers the
    ``capacity`` most recent keys (an old key forgotten is allowed again)."""

    def __init__(self, interval: float, capacity: int = 4096) -> None:
        self.interval = interval
        self.capacity = capacity
        self._last: OrderedDict[Hashable, float] = OrderedDict()

    def allow(self, key: Hashable, now: float) -> bool:
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > self.capacity:
            self._last.popitem(last=False)
        return True
