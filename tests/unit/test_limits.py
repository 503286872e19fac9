"""The sans-IO limiters of a service node, on a fake clock (issue 10, finding 6)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxless.archive import ArchivePage, ArchiveRow
from boxless.errors import UsageError
from boxless.node.config import ServiceLimits
from boxless.node.limits import (
    FairSlots,
    PeerRateLimiter,
    PeerTable,
    StreamGate,
    TokenBucket,
    Verdict,
)
from boxless.node.penalties import PenaltyBox
from boxless.waku.store import trim_page


def test_token_bucket_refills_at_its_rate_and_caps_at_burst() -> None:
    bucket = TokenBucket(rate=2, burst=3)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.retry_after(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) and not bucket.take(0.5)
    assert bucket.take(100.0) and bucket.tokens == 2.0  # capped at burst, minus one
    assert not bucket.take(99.0) or bucket.tokens >= 0  # a clock going back refills nothing


def test_token_bucket_rejects_nonsense() -> None:
    with pytest.raises(UsageError):
        TokenBucket(rate=0, burst=1)


def test_rate_limiter_answers_peer_limit_per_peer_only() -> None:
    """Attack: one peer floods store queries. It gets PEER_LIMIT after its burst;
    another peer, at the same instant, is still served."""
    limiter = PeerRateLimiter(rate=1, burst=5)
    assert [limiter.check("mallory", 0.0) for _ in range(6)][-2:] == [
        Verdict.OK,
        Verdict.PEER_LIMIT,
    ]
    assert limiter.check("alice", 0.0) is Verdict.OK
    assert limiter.check("mallory", 1.0) is Verdict.OK  # one more a second


def test_fresh_peer_ids_cannot_wash_out_a_known_peers_bucket() -> None:
    """Attack: a flood of fresh peer ids (free to make) pushes the LRU table to
    evict a drained bucket, so the flooder starts again with a full burst. The
    old unbounded-churn limiter forgot the bucket after ``max_peers`` fresh ids;
    with the paced budget the flood gets BUSY and the drained bucket stays."""
    limiter = PeerRateLimiter(rate=1, burst=3, max_peers=100, admit_rate=10, admit_burst=10)
    for _ in range(3):
        assert limiter.check("mallory", 0.0) is Verdict.OK
    verdicts = []
    for i in range(10_000):
        verdicts.append(limiter.check(f"fresh-{i}", 0.0))
        if i % 50 == 0:  # mallory keeps querying between its fresh ids
            assert limiter.check("mallory", 0.0) is Verdict.PEER_LIMIT  # still remembered
    assert limiter.tracked_peers == 100  # memory bounded
    assert verdicts.count(Verdict.BUSY) == 10_000 - 99 - 10


def test_peer_table_is_lru_and_paced_once_full() -> None:
    table: PeerTable[str, int] = PeerTable(3, admit_rate=1, admit_burst=1)
    for i, key in enumerate("abc"):
        assert table.admit(key, i, 0.0)
    assert table.get("a") == 0  # a is used again: known; b is the next to go
    assert table.admit("d", 3, 0.0)  # one token: evicts b
    assert "b" not in table and table.evicted == 1
    assert not table.admit("e", 4, 0.0) and table.refused == 1  # budget spent
    assert table.admit("e", 4, 1.0)  # one second later, one more turn-over (c)
    assert len(table) == 3 and "a" in table and table.oldest() == "d"


def test_fresh_ids_used_once_only_displace_each_other() -> None:
    """Attack: a flood of fresh ids, each used once, evicts the entries of the
    peers a node knows. Known peers (seen twice) sit in the protected segment."""
    table: PeerTable[str, int] = PeerTable(100, admit_rate=1000, admit_burst=1000)
    for i in range(50):
        table.admit(f"known-{i}", i, 0.0)
        table.get(f"known-{i}")
    for i in range(100_000):
        table.admit(f"fresh-{i}", i, i / 1000)
    assert all(f"known-{i}" in table for i in range(50)) and len(table) == 100


def test_penalty_box_tables_are_bounded_and_keep_repeat_offenders() -> None:
    """Attack: interleave fresh ids' single violations with one offender's, so
    LRU eviction wipes the offender's history before it reaches the threshold,
    and grow the (formerly unbounded) ban table with throwaway ids."""
    box = PenaltyBox(threshold=3, window=60, max_peers=50, max_bans=20, admit_rate=5)
    t = 0.0
    box.record("mallory", t)
    box.record("mallory", t)  # two strikes: a known offender now
    for i in range(10_000):
        box.record(f"fresh-{i}", t + i / 1000)
    t = 10.0
    banned = box.record("mallory", t)
    assert banned and box.is_banned("mallory", t)
    assert box.tracked_peers <= 50
    for i in range(500):  # many distinct offenders, each reaching the threshold
        for _ in range(3):
            box.record(f"offender-{i}", t)
        t += 0.01
    assert box.banned_peers <= 20 and box.forgotten > 0


def test_stream_gate_caps_per_peer_and_total() -> None:
    gate: StreamGate[int] = StreamGate(per_peer=2, total=4)
    assert gate.open("a", 1).admitted and gate.open("a", 2).admitted
    refused = gate.open("a", 3)
    assert not refused.admitted and refused.reason == "peer"
    assert gate.open("b", 4).admitted and gate.open("c", 5).admitted
    # total reached; every holder holds <= newcomer + 1: refuse the newcomer
    full = gate.open("c", 6)
    assert not full.admitted and full.reason == "total"
    gate.close("a", 1)
    assert gate.open("c", 6).admitted and gate.open_total == 4


def test_stream_gate_makes_room_for_a_peer_holding_little() -> None:
    """Attack: a peer (or a crowd) fills the node's stream total with idle
    streams; an honest peer's first stream must still get in, at the expense
    of the heaviest holder's oldest stream."""
    gate: StreamGate[str] = StreamGate(per_peer=8, total=8)
    for i in range(8):
        assert gate.open("mallory", f"m{i}").admitted
    honest = gate.open("alice", "a0")
    assert honest.admitted and honest.evict == "m0"
    assert gate.open_for("mallory") == 7 and gate.open_total == 8
    gate.close("mallory", "m0")  # the evicted handler's release is a no-op
    assert gate.open_total == 8


def test_service_limits_validate() -> None:
    with pytest.raises(Exception, match="streams_per_peer"):
        ServiceLimits(streams_per_peer=10, streams_total=5)


def _row(i: int, size: int) -> ArchiveRow:
    return ArchiveRow(bytes([i]) * 32, "/waku/2/rs/42/0", "/a/1/b/c", i, b"x" * size, i)


@given(
    sizes=st.lists(st.integers(0, 5000), min_size=1, max_size=30),
    forward=st.booleans(),
    cap=st.integers(1, 40_000),
)
def test_trimmed_pages_resume_where_they_stopped(sizes: list[int], forward: bool, cap: int) -> None:
    """However a page is cut, paging on from the new cursor the way js-waku does
    (``messages[-1]`` forward, ``messages[0]`` backward) skips and repeats nothing."""
    rows = tuple(_row(i, s) for i, s in enumerate(sizes))
    page = ArchivePage(rows, None)
    cut = trim_page(page, forward, cap)
    assert cut.rows  # never empty
    if cut is page:
        return
    assert len(cut.rows) < len(rows)
    assert cut.next_cursor == (cut.rows[-1] if forward else cut.rows[0]).message_hash
    if forward:
        assert cut.rows == rows[: len(cut.rows)]
    else:
        assert cut.rows == rows[-len(cut.rows) :]
    if len(cut.rows) > 1:
        assert sum(len(r.message) + len(r.pubsub_topic) + 64 for r in cut.rows) <= cap


def test_fair_slots_serve_the_peer_with_the_fewest_running_first() -> None:
    """Attack: one peer queues a deep backlog of store queries; with a FIFO
    thread pool an honest query waits behind all of it. With fair slots it
    waits behind at most one query of each busier peer."""
    slots: FairSlots[str] = FairSlots(2)
    assert slots.acquire("mallory", "m0") and slots.acquire("mallory", "m1")
    for i in range(2, 50):
        assert not slots.acquire("mallory", f"m{i}")
    assert not slots.acquire("alice", "a0")
    assert slots.release("mallory") == "a0"  # alice runs none: she goes first
    assert slots.release("mallory") == "m2"  # then mallory's backlog, in order
    slots.cancel("m3")
    assert slots.release("alice") == "m4" and slots.waiting == 45
    assert slots.running_for("mallory") == 2


def test_big_answers_cost_more_of_a_peers_rate() -> None:
    """Attack: ask for full pages of the largest messages: 100 queries of 15 MB
    cost as much as 100 of 1 KB under a count-only limit."""
    limiter = PeerRateLimiter(rate=1, burst=10)
    assert limiter.check("mallory", 0.0) is Verdict.OK
    limiter.charge("mallory", 0.0, 30)  # a big answer: into debt, at most one burst deep
    assert limiter.check("mallory", 5.0) is Verdict.PEER_LIMIT
    assert limiter.check("mallory", 11.0) is Verdict.OK
    limiter.charge("nobody", 0.0, 5)  # an unknown peer: nothing to charge
    assert limiter.tracked_peers == 1
