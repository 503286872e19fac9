"""The group feature's sans-IO decisions on time and limits, with ``now`` passed in."""

from __future__ import annotations

import pytest

from boxless.errors import UsageError
from boxless.groups.delivery import (
    GroupClock,
    GroupTimings,
    QueueLimits,
    RateLimit,
    should_give_up,
)

G1, G2 = b"\x01" * 32, b"\x02" * 32


def test_clock_fires_due_timers_and_repairs_after_the_delay() -> None:
    clock = GroupClock(GroupTimings(sync_check_s=5.0, repair_after_s=10.0))
    assert clock.due(0.0) == ([], []) and clock.get_timer(0.0) == 5.0
    clock.set_timer(G1, 3.0)
    clock.set_missing(G2, [1.0, 2.0])
    assert clock.get_timer(0.0) == 3.0
    assert clock.due(3.0) == ([G1], [])
    clock.set_timer(G1, None)
    assert clock.get_timer(3.0) == 5.0  # sync check caps the sleep
    assert clock.due(11.0) == ([], [G2])
    assert clock.take_repair(G2, 11.0) == 1.0  # the oldest missing time
    assert clock.due(30.0) == ([], [])
    clock.retry_repair(G2, 30.0)
    assert clock.due(39.0) == ([], []) and clock.due(40.0) == ([], [G2])
    clock.set_missing(G2, [])
    assert clock.due(100.0) == ([], [])


def test_a_later_missing_time_does_not_postpone_the_repair() -> None:
    clock = GroupClock(GroupTimings(repair_after_s=10.0))
    clock.set_missing(G1, [5.0])
    clock.set_missing(G1, [8.0])
    assert clock.due(15.0) == ([], [G1])


def test_give_up_after_the_repair_rounds() -> None:
    t = GroupTimings(repair_after_s=10.0, give_up_after_repairs=40)
    assert not should_give_up(t, 0.0, 400.0)
    assert should_give_up(t, 0.0, 400.1)


def test_rate_limit_per_key_and_bounded() -> None:
    limit = RateLimit(30.0, capacity=2)
    assert limit.allow("a", 0.0) and not limit.allow("a", 29.0) and limit.allow("a", 30.0)
    assert limit.allow("b", 31.0) and limit.allow("c", 31.0)  # "a" forgotten: capacity 2
    assert limit.allow("a", 31.0)


def test_queue_limits_per_sender_and_in_all() -> None:
    limits = QueueLimits(inbox_per_sender=2, inbox_total=3, pending_per_group=1, pending_total=2)
    assert limits.inbox_admits(1, 2) and not limits.inbox_admits(2, 2)
    assert not limits.inbox_admits(0, 3)
    assert limits.pending_admits(0, 1) and not limits.pending_admits(1, 1)
    assert not limits.pending_admits(0, 2)


def test_timings_are_checked() -> None:
    with pytest.raises(UsageError):
        GroupTimings(repair_after_s=0)
    with pytest.raises(UsageError):
        GroupTimings(retry_base_s=10, retry_max_s=5)
