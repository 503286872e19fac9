"""SDS with bloom filters sized to the recent window and short causal histories (issue 9).

Filters of any valid size are read by their size; acknowledgement still reaches
the sender through the small filter; a lost message is still noticed and
repaired with 3 causal-history entries; a filter's false positives cannot
acknowledge a message no store has.
"""

from __future__ import annotations

import hashlib
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.errors import DecodeError, UsageError
from boxless.sync import (
    DEFAULT_BLOOM_PARAMS,
    MAX_BLOOM_BYTES,
    WINDOW_BLOOM_PARAMS,
    AckState,
    BloomFilter,
    BloomParams,
    RollingBloomFilter,
    SdsChannel,
    SdsConfig,
    SdsMessage,
    decode_message,
    encode_message,
)
from tests.unit.test_sds import JS_IDS, Network

T0 = 1_760_000_000.0

# ------------------------------------------------------------------ the filter


def test_window_filter_is_js_wakus_128_ids_at_one_percent() -> None:
    p = WINDOW_BLOOM_PARAMS
    assert (p.capacity, p.error_rate, p.k_hashes, p.total_bits, p.n_bytes) == (
        128,
        0.01,
        7,
        1_280,
        168,
    )
    js = BloomParams.for_capacity(128, 0.01)  # js-waku's sizing of the same options
    assert (js.k_hashes, js.total_bits, js.n_bytes) == (7, 1_280, 168)
    assert BloomParams.for_wire_size(168) == BloomParams(133, 0.01, 7, 1_280)  # read back
    assert SdsConfig().bloom == WINDOW_BLOOM_PARAMS
    assert len(SdsChannel("g", "a", now=T0).to_state()) > 0


# js-waku @waku/sds 0.0.8: new BloomFilter({capacity: 128, errorRate: 0.01}, hashN) after
# inserting JS_IDS then sha256("id-0" ... "id-99") as hex: 168 bytes with this SHA-256.
JS_WINDOW_SHA256 = "913557cc2b6a46702e73fc621332e22498fcd0d763538c62ae0c77d17f87759a"


def test_window_filter_bytes_identical_to_js_waku() -> None:
    ids = [*JS_IDS, *(hashlib.sha256(f"id-{i}".encode()).hexdigest() for i in range(100))]
    bloom = BloomFilter(WINDOW_BLOOM_PARAMS)
    for item in ids:
        bloom.add(item)
    assert hashlib.sha256(bloom.to_bytes()).hexdigest() == JS_WINDOW_SHA256
    assert all(item in BloomFilter.from_bytes(bloom.to_bytes()) for item in ids)


@pytest.mark.parametrize(("capacity", "rate"), [(64, 0.01), (128, 0.01), (500, 0.001), (32, 0.05)])
def test_sizing_follows_the_formula_and_holds_its_rate(capacity: int, rate: float) -> None:
    params = BloomParams.for_window(capacity, rate)
    optimal = -capacity * math.log(rate) / math.log(2) ** 2  # bits at the optimal k
    assert optimal <= params.total_bits <= optimal * 1.05 + 64  # k=7, whole words
    assert params.total_bits % 64 == 0 and params.n_bytes == 8 * (1 + params.total_bits // 64)
    bloom = BloomFilter(params)
    for i in range(capacity):
        bloom.add(f"in-{i}")
    probes = 20_000
    measured = sum(f"out-{i}" in bloom for i in range(probes)) / probes
    assert measured < 2 * rate
    assert BloomFilter.from_bytes(bloom.to_bytes()).params.total_bits == params.total_bits


def test_sizes_out_of_range_are_refused() -> None:
    with pytest.raises(UsageError):
        BloomParams.for_window(10**6, 0.001)  # 1.8 MB: more than anyone reads
    with pytest.raises(UsageError):
        BloomParams.for_window(0, 0.01)
    for n in (0, 8, 12, 100, MAX_BLOOM_BYTES + 8):
        with pytest.raises(DecodeError):
            BloomParams.for_wire_size(n)
    assert BloomParams.for_wire_size(DEFAULT_BLOOM_PARAMS.n_bytes) == DEFAULT_BLOOM_PARAMS


@settings(max_examples=150)
@given(
    words=st.integers(2, 600),
    ids=st.lists(st.text(min_size=1, max_size=70), max_size=40),
)
def test_a_filter_of_any_valid_size_holds_what_its_sender_put_in(
    words: int, ids: list[str]
) -> None:
    params = BloomParams.for_wire_size(8 * words)
    sent = BloomFilter(params)
    for item in ids:
        sent.add(item)
    read = BloomFilter.from_bytes(sent.to_bytes())  # no parameters: the size says them
    assert read.params == params
    assert all(item in read for item in ids)  # never a false negative


@given(
    st.one_of(
        st.binary(max_size=1_200),
        st.integers(0, 9_000).map(lambda n: bytes(n)),
        st.just(b"\xff" * DEFAULT_BLOOM_PARAMS.n_bytes),
    )
)
def test_reading_any_bytes_as_a_filter_returns_or_raises_decode_error(data: bytes) -> None:
    try:
        bloom = BloomFilter.from_bytes(data)
    except DecodeError:
        n = len(data)
        assert n % 8 or n < 16 or n > MAX_BLOOM_BYTES
    else:
        assert bloom.to_bytes() == data


def test_rolling_window_filter_keeps_its_size_and_newest_ids() -> None:
    rolling = RollingBloomFilter(WINDOW_BLOOM_PARAMS)
    ids = [hashlib.sha256(bytes([i])).hexdigest() for i in range(200)]
    for item in ids:
        rolling.add(item)
        assert len(rolling.to_bytes()) == 168
    assert all(item in rolling for item in ids[-100:])
    assert len(rolling) <= 128


def test_for_group_sizes_the_filter_to_a_busy_groups_rate() -> None:
    assert SdsConfig.for_group(1_000).bloom == WINDOW_BLOOM_PARAMS
    busy = SdsConfig.for_group(1_000, messages_per_second=10).bloom
    assert busy.capacity == math.ceil(10 * 30 / 0.8) and busy.n_bytes < 500
    assert SdsConfig.for_group(5, messages_per_second=0.01).bloom == WINDOW_BLOOM_PARAMS
    with pytest.raises(UsageError):
        SdsConfig.for_group(5, messages_per_second=0)


# ---------------------------------------------------------- acknowledgement


def test_receivers_acks_reach_the_sender_through_small_filters() -> None:
    """Causal histories of 1 never name "first" (m0's "second" is always newer), so
    only the 168-byte filters of m1 and m2 can acknowledge it."""
    net = Network(3, seed=11, config=SdsConfig(causal_history_size=1))
    first = net.send("m0", b"first")
    net.send("m0", b"second")
    net.run(net.now + 1)
    net.send("m1", b"one")
    net.run(net.now + 1)
    assert net.members["m0"].ack_state(first) is AckState.POSSIBLY_ACKNOWLEDGED
    net.send("m2", b"two")
    net.run(net.now + 1)
    assert net.members["m0"].ack_state(first) is AckState.ACKNOWLEDGED
    for data in net.store.values():
        message = decode_message(data)
        assert [e.message_id for e in message.causal_history] != [first] or (
            message.sender_id == "m0"
        )
        assert message.bloom_filter is not None and len(message.bloom_filter) == 168


def test_members_on_different_filter_sizes_acknowledge_each_other() -> None:
    """A member sending js-waku's 18,752-byte filter (as js-waku peers do) and one
    sending the 168-byte window filter read each other's filters by their size.
    (A member still on the code from before issue 9 reads only 18,752-byte
    filters: it acknowledges ours through causal histories alone.)"""
    hint = b"\x01" * 32
    old_cfg = SdsConfig(causal_history_size=1, bloom=DEFAULT_BLOOM_PARAMS)
    new_cfg = SdsConfig(causal_history_size=1)
    me = SdsChannel("g", "me", now=T0, config=new_cfg)
    old, new = (
        SdsChannel("g", "old", now=T0, config=old_cfg),
        SdsChannel("g", "new", now=T0, config=new_cfg),
    )
    first, second = me.wrap(b"first", T0), me.wrap(b"second", T0 + 1)
    me.set_retrieval_hint(first.message_id, hint)
    for member in (old, new):
        member.receive(first.data, T0 + 2)
        member.receive(second.data, T0 + 2)
    from_old = old.wrap(b"from old", T0 + 3)  # names only "second"
    from_new = new.wrap(b"from new", T0 + 3)
    assert len(decode_message(from_old.data).bloom_filter or b"") == 18_752
    assert len(decode_message(from_new.data).bloom_filter or b"") == 168
    me.receive(from_old.data, T0 + 4)
    assert me.ack_state(first.message_id) is AckState.POSSIBLY_ACKNOWLEDGED
    me.receive(from_new.data, T0 + 4)
    assert me.ack_state(first.message_id) is AckState.ACKNOWLEDGED
    # And the other way round: the old member reads our small filters.
    old.set_retrieval_hint(from_old.message_id, hint)
    replies = []
    for k, member in enumerate((me, new)):
        member.receive(from_old.data, T0 + 5)
        member.wrap(b"x", T0 + 6 + k)  # newer than from_old: the next history names it
        replies.append(member.wrap(b"y", T0 + 6 + k))
    for reply in replies:
        names = [e.message_id for e in decode_message(reply.data).causal_history]
        assert from_old.message_id not in names
    old.receive(replies[0].data, T0 + 8)
    assert old.ack_state(from_old.message_id) is AckState.POSSIBLY_ACKNOWLEDGED
    old.receive(replies[1].data, T0 + 8)
    assert old.ack_state(from_old.message_id) is AckState.ACKNOWLEDGED


def test_filters_cannot_acknowledge_a_message_no_store_has() -> None:
    """Attack (or bad luck): two members send all-ones filters, which "hold" every
    id. On the old code our message that never reached the network (no retrieval
    hint: the publish failed) was then acknowledged and never re-sent. Now filters
    acknowledge only a message a store has; the re-send still goes out."""
    me = SdsChannel("g", "me", now=T0)
    lost = me.wrap(b"publish failed", T0)
    t_ms = int(T0 * 1000) + 5
    for liar in ("x", "y", "z"):
        forged = SdsMessage(liar, f"sync-{liar}", "g", t_ms, (), b"\xff" * 18_752)
        me.receive(encode_message(forged), T0 + 1)
    assert me.ack_state(lost.message_id) is AckState.POSSIBLY_ACKNOWLEDGED
    assert me.unacknowledged() == [lost.message_id]
    assert [w.message_id for w in me.handle_timer(T0 + 31)] == [lost.message_id]  # re-sent
    me.set_retrieval_hint(lost.message_id, b"\x02" * 32)  # the re-send reached a store
    assert me.unacknowledged() == [] and me.take_acknowledged() == [lost.message_id]


# ------------------------------------------------------------------ repair


def test_a_message_no_tail_names_is_still_named_and_repaired() -> None:
    """Three members' messages, sent after "m" but before they heard it, sort after
    it: "last 3" never named "m" again and a member who lost it never knew. The
    not-yet-named rule names it in the next message."""
    b = SdsChannel("g", "b", now=T0)
    m = b.wrap(b"m", T0)
    later = [SdsChannel("g", n, now=T0).wrap(n.encode(), T0 + 1) for n in ("c", "d", "e")]
    a = SdsChannel("g", "a", now=T0, config=SdsConfig(causal_history_size=3))
    lossy = SdsChannel("g", "lossy", now=T0)
    for w in (m, *later):
        a.receive(w.data, T0 + 2)
    a1, a2 = a.wrap(b"a1", T0 + 3), a.wrap(b"a2", T0 + 4)
    assert m.message_id not in [e.message_id for e in decode_message(a1.data).causal_history]
    assert m.message_id in [e.message_id for e in decode_message(a2.data).causal_history]
    for w in (*later, a1, a2):  # the lossy member lost "m" only
        lossy.receive(w.data, T0 + 5)
    assert [d.message_id for d in lossy.missing()] == [m.message_id]
    assert [d.message_id for d in lossy.receive(m.data, T0 + 6)] == [
        m.message_id,
        a2.message_id,
    ]


@pytest.mark.parametrize("seed", [21, 22])
def test_ten_members_one_losing_ten_percent_end_complete_with_the_defaults(seed: int) -> None:
    net = Network(10, seed=seed, lossy="m4", loss=0.10)
    for _ in range(6):
        net.chatter(50)
        net.repair("m4")
    net.run(net.now + 200)
    net.repair("m4")
    net.run(net.now + 5)
    everyone = sorted(mid for ids in net.sent.values() for mid in ids)
    assert net.dropped >= 20
    assert sorted(net.members["m4"].history()) == everyone
    assert net.members["m4"].history() == net.members["m0"].history()
    assert all(net.members[n].unacknowledged() == [] for n in net.names)


def test_state_keeps_what_was_named_and_reads_state_without_it() -> None:
    a = SdsChannel("g", "a", now=T0)
    b = SdsChannel("g", "b", now=T0)
    for i in range(4):
        b.receive(a.wrap(f"{i}".encode(), T0 + i).data, T0 + i)
    state = json.loads(json.dumps(b.to_state()))
    assert state["named"]
    assert SdsChannel.from_state(state).to_state() == b.to_state()
    del state["named"]  # written before issue 9
    assert SdsChannel.from_state(state).history() == b.history()
