"""The group feature's sans-IO decisions on time and limits, with ``now`` passed in."""

from __future__ import annotations

import pytest

from boxless.errors import UsageError
from boxless.groups.delivery import (
    GroupClock,
    GroupTimings,
    QueueLimits,
    RateLimit,
    key_deadline,
    outbox_sleep,
    should_give_up,
)

G1, G2 = b"\x01" * 32, b"\x02" * 32


def test_clock_fires_due_timers_and_repairs_after_the_delay() -> None:
    clock = GroupClock(GroupTimings(sync_check_s=5.0, repair_after_s=10.0))
    assert clock.due(0.0) == ([], []) and clock.get_timer(0.0) is None  # nothing to do
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


def test_the_sleep_lasts_until_the_next_real_deadline() -> None:
    """An idle client must not wake to look: only missing messages make the loop
    check every sync_check_s; SDS timers, key patience and expiry are deadlines."""
    t = GroupTimings(sync_check_s=5.0, repair_after_s=10.0, key_patience_s=10.0)
    clock = GroupClock(t)
    assert clock.get_timer(0.0) is None
    clock.set_timer(G1, 45.0)  # a quiet group: its next sync message
    assert clock.get_timer(0.0) == 45.0
    assert clock.get_timer(0.0, [30.0]) == 30.0  # another deadline comes first
    assert clock.get_timer(50.0) == pytest.approx(0.05)  # overdue: look again soon
    clock.set_missing(G2, [0.0])  # work: a missing message, repaired at 10
    assert clock.get_timer(0.0) == 5.0
    assert key_deadline([], t) is None and key_deadline([7.0, 3.0], t) == 13.0
    limits = QueueLimits(inbox_expiry_s=100.0, pending_expiry_s=1000.0)
    assert limits.expiry_deadline(None, None) is None
    assert limits.expiry_deadline(50.0, 20.0) == 150.0
    assert limits.expiry_deadline(None, 20.0) == 1020.0
    assert outbox_sleep(None, 0.0, t) is None  # nothing queued: until woken
    assert outbox_sleep(12.0, 10.0, t) == 2.0 and outbox_sleep(5.0, 10.0, t) == 0.0
    assert outbox_sleep(None, 0.0, GroupTimings(idle_outbox_s=60.0)) == 60.0


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


def test_timings_can_shorten_the_sds_resend_period() -> None:
    from boxless.client.group_core import _sds_config
    from boxless.sync import SdsConfig

    assert _sds_config(None, GroupTimings()) is None  # SDS defaults stay
    config = _sds_config(SdsConfig(max_resends=2), GroupTimings.parse("resend_after_s=2"))
    assert config is not None and config.resend_unacknowledged_after == 2.0
    assert config.max_resends == 2  # the rest of an explicit config is kept
    with pytest.raises(UsageError):
        GroupTimings(resend_after_s=-1)
