"""The delivery state machine and the outbox, with a fake clock and a fake random."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxless.chat.outbox import (
    ROW_COLUMNS,
    TRANSITIONS,
    DeliveryEvent,
    DeliveryState,
    Outbox,
    RetryPolicy,
    StateChange,
    next_state,
)
from boxless.errors import StorageError, UsageError

Q, S, D, R, F = (
    DeliveryState.QUEUED,
    DeliveryState.SENT,
    DeliveryState.DELIVERED,
    DeliveryState.READ,
    DeliveryState.FAILED,
)
RANK = {Q: 0, S: 1, D: 2, R: 3}
BOB = b"B" * 32
TOPIC = "/boxless/1/chat-" + "0" * 32 + "/proto"
T0 = 1_700_000_000.0


def mid(n: int) -> bytes:
    return n.to_bytes(16, "big")


def fixed(r: float) -> Callable[[], float]:
    return lambda: r


def outbox(r: float = 0.5, **policy: float) -> Outbox:
    return Outbox(RetryPolicy(**policy), random=fixed(r))


def add(box: Outbox, n: int, now: float = T0, recipient: bytes = BOB) -> None:
    box.add(mid(n), recipient, TOPIC, b"encoded chat message %d" % n, now)


# --- the table ------------------------------------------------------------------------


def test_receipts_are_legal_in_every_state() -> None:
    # they come from peers: a peer's message must never make us raise
    for state in DeliveryState:
        for event in (DeliveryEvent.DELIVERED, DeliveryEvent.READ):
            assert (state, event) in TRANSITIONS


def test_illegal_local_transitions_raise() -> None:
    with pytest.raises(UsageError, match="'rejected' is illegal in state 'sent'"):
        next_state(S, DeliveryEvent.REJECTED)
    with pytest.raises(UsageError):
        next_state(F, DeliveryEvent.ACCEPTED)


@given(st.lists(st.sampled_from(DeliveryEvent), max_size=12))
def test_states_never_go_back(events: list[DeliveryEvent]) -> None:
    state = Q
    for event in events:
        try:
            new = next_state(state, event)
        except UsageError:
            assert event in (
                DeliveryEvent.REJECTED,
                DeliveryEvent.ACCEPTED,
                DeliveryEvent.SEND_FAILED,
            )
            continue
        if new is F:
            assert state in (Q, F)  # FAILED only before the network ever took it
        elif state is not F:
            assert RANK[new] >= RANK[state]
        state = new


# --- scheduling -----------------------------------------------------------------------


def test_new_message_is_due_at_once_and_leased() -> None:
    box = outbox()
    add(box, 1)
    assert box.get_timer() == T0
    [entry] = box.due(T0)
    assert entry.state is Q and entry.attempts == 1
    assert box.due(T0 + 1) == []  # in flight: not handed out twice
    assert box.get_timer() == T0 + 60  # the lease
    assert [e.message_id for e in box.due(T0 + 60)] == [mid(1)]  # the sender task died


def test_due_is_oldest_first_and_limited() -> None:
    box = outbox()
    for n, t in ((3, T0 + 2), (1, T0), (2, T0 + 1)):
        add(box, n, now=t)
    assert [e.message_id for e in box.due(T0 + 5)] == [mid(1), mid(2), mid(3)]
    box2 = outbox()
    for n in range(5):
        add(box2, n, now=T0 + n)
    assert [e.message_id for e in box2.due(T0 + 9, limit=2)] == [mid(0), mid(1)]


def test_backoff_schedule_doubles_from_2s_to_a_10_minute_cap() -> None:
    box = outbox(r=0.5)  # the middle of the jitter range: no jitter
    add(box, 1)
    now = T0
    delays = []
    for _ in range(12):
        [entry] = box.due(now)
        assert box.on_send_failed(entry.message_id, now) is None  # still QUEUED
        timer = box.get_timer()
        assert timer is not None
        delays.append(timer - now)
        now = timer
    assert delays == [2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600]
    assert box.get(mid(1)) is not None and box.get(mid(1)).failures == 12  # type: ignore[union-attr]


@given(st.integers(1, 80), st.floats(0, 1, exclude_max=True))
def test_jitter_stays_within_bounds(failures: int, r: float) -> None:
    policy = RetryPolicy()
    base = min(600.0, 2.0 * 2 ** min(failures - 1, 64))
    delay = policy.failure_delay(failures, r)
    assert 0.8 * base - 1e-9 <= delay <= min(600.0, 1.2 * base) + 1e-9
    resend = policy.resend_delay(failures, r)
    assert 0 < resend <= 3600.0


def test_jitter_comes_from_the_injected_random() -> None:
    low, high = outbox(r=0.0), outbox(r=0.999999)
    for box in (low, high):
        add(box, 1)
        box.due(T0)
        box.on_send_failed(mid(1), T0)
    assert low.get_timer() == pytest.approx(T0 + 1.6)
    assert high.get_timer() == pytest.approx(T0 + 2.4, abs=1e-4)


def test_undelivered_message_is_resent_with_backoff() -> None:
    box = outbox(r=0.5)
    add(box, 1)
    box.due(T0)
    change = box.on_sent(mid(1), T0 + 1)
    assert change == StateChange(mid(1), BOB, Q, S)
    assert box.due(T0 + 30) == []
    now = T0 + 31
    gaps = []
    for _ in range(9):
        [entry] = box.due(now)  # re-send: the recipient may have missed it
        assert entry.state is S
        assert box.on_sent(mid(1), now) is None  # SENT -> SENT: nothing new to show
        timer = box.get_timer()
        assert timer is not None
        gaps.append(timer - now)
        now = timer
    assert gaps == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    entry = box.get(mid(1))
    assert entry is not None and entry.sends == 10 and entry.attempts == 10


def test_failed_resend_keeps_sent_and_backs_off() -> None:
    box = outbox(r=0.5)
    add(box, 1)
    box.due(T0)
    box.on_sent(mid(1), T0)
    box.due(T0 + 30)
    assert box.on_send_failed(mid(1), T0 + 30) is None
    entry = box.get(mid(1))
    assert entry is not None and entry.state is S and entry.next_attempt_at == T0 + 32


def test_delivery_settles_and_removes_the_message() -> None:
    box = outbox()
    add(box, 1)
    box.due(T0)
    box.on_sent(mid(1), T0)
    assert box.on_delivered(mid(1)) == StateChange(mid(1), BOB, S, D)
    assert len(box) == 0 and box.get_timer() is None and box.row(mid(1)) is None
    assert box.on_read(mid(1)) is None  # the client advances its message row itself
    assert next_state(D, DeliveryEvent.READ) is R


def test_receipt_before_sent_jumps_ahead_and_never_goes_back() -> None:
    box = outbox()
    add(box, 1)
    [entry] = box.due(T0)  # send in flight ...
    assert box.on_read(entry.message_id) == StateChange(mid(1), BOB, Q, R)  # ... raced by a receipt
    assert box.on_sent(entry.message_id, T0 + 1) is None  # the late answer changes nothing
    assert box.on_send_failed(entry.message_id, T0 + 1) is None
    assert box.due(T0 + 10_000) == []


def test_receipts_for_unknown_ids_are_ignored() -> None:
    box = outbox()
    assert box.on_delivered(mid(9)) is None and box.on_read(mid(9)) is None


def test_permanent_failure_only_for_a_message_never_taken() -> None:
    box = outbox()
    add(box, 1)
    add(box, 2)
    box.due(T0)
    assert box.on_send_failed(mid(1), T0, permanent=True) == StateChange(mid(1), BOB, Q, F)
    assert mid(1) not in box
    box.on_sent(mid(2), T0)
    with pytest.raises(UsageError, match="illegal in state 'sent'"):
        box.on_send_failed(mid(2), T0 + 30, permanent=True)
    entry = box.get(mid(2))
    assert entry is not None and entry.state is S  # unchanged by the refused event


def test_duplicate_add_is_a_usage_error() -> None:
    box = outbox()
    add(box, 1)
    with pytest.raises(UsageError, match="already in the outbox"):
        add(box, 1)


def test_retry_now_for_one_recipient() -> None:
    box = outbox()
    carol = b"C" * 32
    add(box, 1)
    add(box, 2, recipient=carol)
    box.due(T0)
    box.on_send_failed(mid(1), T0)
    box.on_send_failed(mid(2), T0)
    for _ in range(5):
        box.due(T0 + 1000)
        box.on_send_failed(mid(1), T0 + 1000)
        box.on_send_failed(mid(2), T0 + 1000)
    assert box.retry_now(T0 + 1001, recipient=carol) == 1
    assert [e.message_id for e in box.due(T0 + 1001)] == [mid(2)]
    box.on_send_failed(mid(2), T0 + 1001)
    assert box.get_timer() == T0 + 1003  # the backoff starts over


def test_remove_and_repr() -> None:
    box = outbox()
    add(box, 1)
    assert "encoded chat message" not in repr(box.get(mid(1))) + repr(box)
    assert box.remove(mid(1)) is not None and box.remove(mid(1)) is None


# --- restart safety ---------------------------------------------------------------------


def _busy_outbox() -> Outbox:
    box = outbox(r=0.3)
    for n in range(5):
        add(box, n, now=T0 + n)
    box.due(T0 + 5)
    box.on_sent(mid(0), T0 + 5)
    box.on_send_failed(mid(1), T0 + 5)
    box.on_sent(mid(2), T0 + 5)
    box.on_delivered(mid(2))
    box.on_send_failed(mid(3), T0 + 5, permanent=True)
    return box  # 0: SENT, 1: QUEUED with a failure, 4: leased


def test_restart_through_sql_rows_continues_the_same_schedule() -> None:
    box = _busy_outbox()
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE TABLE outbox ({', '.join(ROW_COLUMNS)})")
    db.executemany(
        f"INSERT INTO outbox VALUES ({', '.join('?' * len(ROW_COLUMNS))})", box.to_rows()
    )

    rows = db.execute(f"SELECT {', '.join(ROW_COLUMNS)} FROM outbox").fetchall()
    restored = Outbox.from_rows(rows, now=T0 + 6, random=fixed(0.3))
    assert restored.entries() == box.entries()
    assert restored.get_timer() == box.get_timer()
    for t in (T0 + 7, T0 + 40, T0 + 70, T0 + 200):
        assert restored.due(t) == box.due(t)
        for entry in box.entries():
            assert restored.on_send_failed(entry.message_id, t) == box.on_send_failed(
                entry.message_id, t
            )
    assert restored.to_rows() == box.to_rows()


def test_each_event_gives_the_row_to_upsert() -> None:
    box = _busy_outbox()
    row = box.row(mid(0))
    assert row is not None and dict(zip(ROW_COLUMNS, row, strict=True))["state"] == "sent"
    assert box.row(mid(2)) is None  # delivered: delete the row


def test_clock_jump_back_is_clamped_on_load() -> None:
    box = outbox()
    add(box, 1, now=T0)
    box.due(T0)
    box.on_send_failed(mid(1), T0)
    restored = Outbox.from_rows(box.to_rows(), now=T0 - 86_400)  # the clock went back a day
    assert restored.get_timer() == T0 - 86_400


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda r: r[:-1], "columns"),
        (lambda r: (*r[:4], "delivered", *r[5:]), "settled"),
        (lambda r: (*r[:4], "lost", *r[5:]), "unknown state"),
        (lambda r: ("id", *r[1:]), "message_id"),
        (lambda r: (*r[:7], -1, *r[8:]), "attempts"),
        (lambda r: (*r[:6], "soon", *r[7:]), "next_attempt_at"),
        (lambda r: (*r[:2], 5, *r[3:]), "content_topic"),
    ],
)
def test_corrupt_rows_are_storage_errors(
    change: Callable[[tuple[object, ...]], tuple[object, ...]], reason: str
) -> None:
    box = outbox()
    add(box, 1)
    [row] = box.to_rows()
    with pytest.raises(StorageError, match=reason):
        Outbox.from_rows([change(row)], now=T0)
    with pytest.raises(StorageError, match="repeat"):
        Outbox.from_rows([row, row], now=T0)


def test_policy_is_validated() -> None:
    with pytest.raises(UsageError):
        RetryPolicy(initial=0)
    with pytest.raises(UsageError):
        RetryPolicy(jitter=1.0)
    with pytest.raises(UsageError):
        RetryPolicy(resend_if_undelivered_after=7200)
