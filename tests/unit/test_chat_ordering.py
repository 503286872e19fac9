"""Lamport clocks, the display order, and the bounded dedup window."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxless.chat.envelope import MAX_LAMPORT, Text, new_message
from boxless.chat.ordering import DedupWindow, LamportClock, OrderKey, Seen, order_key
from boxless.errors import UsageError


def test_tick_and_observe() -> None:
    alice, bob = LamportClock(), LamportClock()
    a1 = alice.tick()
    bob.observe(a1)
    b1 = bob.tick()
    assert b1 > a1  # written after reading: sorts after
    alice.observe(b1)
    assert alice.tick() > b1
    bob.observe(1)  # old values never move a clock back
    assert bob.value == b1


def test_clock_saturates_instead_of_overflowing() -> None:
    clock = LamportClock()
    clock.observe(MAX_LAMPORT)  # a hostile peer
    assert clock.tick() == MAX_LAMPORT
    assert clock.tick() == MAX_LAMPORT
    with pytest.raises(UsageError):
        clock.observe(MAX_LAMPORT + 1)
    with pytest.raises(UsageError):
        LamportClock(-1)


def test_restored_clock_continues() -> None:
    clock = LamportClock(41)
    assert clock.tick() == 42 and repr(clock) == "LamportClock(42)"


def test_order_key_is_total_and_stable() -> None:
    a = new_message(Text("a"), lamport=2, sent_at_ms=500, message_id=b"\x02" * 16)
    b = new_message(Text("b"), lamport=2, sent_at_ms=100, message_id=b"\x09" * 16)
    c = new_message(Text("c"), lamport=2, sent_at_ms=100, message_id=b"\x01" * 16)
    d = new_message(Text("d"), lamport=1, sent_at_ms=900, message_id=b"\x05" * 16)
    ordered = sorted([a, b, c, d], key=order_key)
    assert [m.body for m in ordered] == [Text("d"), Text("c"), Text("b"), Text("a")]
    assert order_key(a) == OrderKey(2, 500, b"\x02" * 16)


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=30))
def test_every_device_sorts_the_same_way(specs: list[tuple[int, int]]) -> None:
    msgs = [
        new_message(Text("x"), lamport=lam, sent_at_ms=ms, message_id=i.to_bytes(16, "big"))
        for i, (lam, ms) in enumerate(specs)
    ]
    assert sorted(msgs, key=order_key) == sorted(reversed(msgs), key=order_key)


def test_dedup_window_detects_duplicates() -> None:
    window = DedupWindow(capacity=10)
    mid = b"\x01" * 16
    assert window.check(mid, 5) is Seen.NEW
    window.add(mid, 5)
    window.add(mid, 5)
    assert window.check(mid, 5) is Seen.DUPLICATE and len(window) == 1 and mid in window


def test_dedup_window_is_bounded_and_honest_about_what_it_forgot() -> None:
    window = DedupWindow(capacity=3)
    ids = [bytes([i]) * 16 for i in range(6)]
    for lamport, mid in enumerate(ids, start=1):
        window.add(mid, lamport)
    assert len(window) == 3
    assert window.watermark == 3  # lamports 1..3 were evicted
    assert window.check(ids[0], 1) is Seen.UNKNOWN  # forgotten: ask the database
    assert window.check(ids[5], 6) is Seen.DUPLICATE
    assert window.check(b"\xee" * 16, 7) is Seen.NEW
    assert window.check(b"\xee" * 16, 3) is Seen.UNKNOWN


def test_dedup_window_evicts_lowest_lamport_first() -> None:
    window = DedupWindow(capacity=2)
    window.add(b"a" * 16, 10)
    window.add(b"b" * 16, 1)  # a late, old message
    window.add(b"c" * 16, 11)
    assert window.watermark == 1
    assert window.check(b"a" * 16, 10) is Seen.DUPLICATE


@given(st.lists(st.tuples(st.integers(0, 15), st.integers(0, 40)), max_size=200))
def test_dedup_window_never_calls_a_seen_message_new(events: list[tuple[int, int]]) -> None:
    window = DedupWindow(capacity=5)
    lamport_of: dict[bytes, int] = {}  # a message keeps its Lamport value on every copy
    for n, lamport in events:
        mid = bytes([n]) * 16
        seen_before = mid in lamport_of
        lamport = lamport_of.setdefault(mid, lamport)
        if seen_before:
            assert window.check(mid, lamport) is not Seen.NEW
        window.add(mid, lamport)
        assert len(window) <= 5


def test_restored_window_keeps_its_watermark() -> None:
    window = DedupWindow(capacity=100, watermark=40)
    assert window.check(b"z" * 16, 40) is Seen.UNKNOWN
    assert window.check(b"z" * 16, 41) is Seen.NEW
    with pytest.raises(UsageError):
        DedupWindow(capacity=0)
