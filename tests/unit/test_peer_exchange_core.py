"""34/WAKU2-PEER-EXCHANGE sans-IO core: codec, hostile input, and the peer cache on a fake clock."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxless.errors import DecodeError, UsageError
from boxless.waku import peer_exchange as px
from boxless.waku.enr import Enr
from boxless.wire import peer_exchange_pb2 as pb


def make_enr(i: int, seq: int = 1) -> Enr:
    """A distinct valid record per ``i`` (key i+1)."""
    return Enr.build(
        (i + 1).to_bytes(32, "big"), seq, ip=f"10.0.{i // 250}.{i % 250 + 1}", tcp=60000
    )


ENRS = [make_enr(i) for i in range(12)]


def pid(enr: Enr) -> bytes:
    return enr.peer_id().to_bytes()


# -- codec ------------------------------------------------------------------------


def test_request_round_trip_and_cap() -> None:
    assert px.parse_request(px.build_request(5)) == 5
    assert px.parse_request(px.build_request(0)) == 0
    assert px.parse_request(px.build_request(1000)) == px.MAX_PEERS_PER_RESPONSE
    assert px.parse_request(px.build_request(10), cap=3) == 3


def test_request_wire_format() -> None:
    # field 1 (query, length-delimited) holding field 1 (num_peers, varint) = 60
    assert px.build_request(60) == bytes([0x0A, 0x02, 0x08, 60])


@pytest.mark.parametrize(
    "data",
    [
        b"",  # no query at all
        b"\xff\xff\xff",
        pb.PeerExchangeRPC(response=pb.PeerExchangeResponse()).SerializeToString(),
        b"\x0a\x02\x08" + b"\x00" * 100,  # too big to be a query
    ],
)
def test_bad_requests_are_refused(data: bytes) -> None:
    with pytest.raises(DecodeError):
        px.parse_request(data)


def test_response_round_trip() -> None:
    result = px.parse_response(px.build_response(ENRS[:3]))
    assert result == px.PeerExchangeResult(tuple(ENRS[:3]), 0)


def test_invalid_records_are_skipped_and_counted() -> None:
    tampered = bytearray(ENRS[1].encode())
    tampered[10] ^= 0xFF
    rpc = pb.PeerExchangeRPC(
        response=pb.PeerExchangeResponse(
            peer_infos=[
                pb.PeerInfo(enr=ENRS[0].encode()),
                pb.PeerInfo(enr=bytes(tampered)),
                pb.PeerInfo(),  # no enr
                pb.PeerInfo(enr=b"garbage"),
                pb.PeerInfo(enr=ENRS[2].encode()),
            ]
        )
    )
    result = px.parse_response(rpc.SerializeToString())
    assert result.enrs == (ENRS[0], ENRS[2])
    assert result.invalid == 3


def test_duplicates_keep_the_newest_and_extra_records_are_dropped() -> None:
    newer = make_enr(0, seq=9)
    data = px.build_response([ENRS[0], newer, ENRS[0], ENRS[1], ENRS[2]])
    result = px.parse_response(data, max_peers=2)
    assert result.enrs == (newer, ENRS[1])
    assert result.invalid == 3  # two duplicates of node 0, one beyond max_peers


@pytest.mark.parametrize(
    "data",
    [b"\xff", px.build_request(3), b"\x12\x03\x0a\x01", b"\x12" + b"\xff" * 12],
)
def test_bad_responses_are_refused(data: bytes) -> None:
    with pytest.raises(DecodeError):
        px.parse_response(data)


def test_oversized_response_is_refused() -> None:
    with pytest.raises(DecodeError, match="exceeds"):
        px.parse_response(b"\x12" + b"\x00" * px.MAX_RESPONSE_SIZE)


@given(st.binary(max_size=200))
def test_arbitrary_request_bytes(data: bytes) -> None:
    try:
        n = px.parse_request(data)
    except DecodeError:
        return
    assert 0 <= n <= px.MAX_PEERS_PER_RESPONSE


@given(st.binary(max_size=2000))
def test_arbitrary_response_bytes(data: bytes) -> None:
    try:
        result = px.parse_response(data)
    except DecodeError:
        return
    assert len(result.enrs) <= px.MAX_PEERS_PER_RESPONSE


@given(st.lists(st.sampled_from(ENRS) | st.binary(max_size=320), max_size=70))
def test_responses_with_arbitrary_entries(entries: list[Enr | bytes]) -> None:
    infos = [pb.PeerInfo(enr=e.encode() if isinstance(e, Enr) else e) for e in entries]
    data = pb.PeerExchangeRPC(
        response=pb.PeerExchangeResponse(peer_infos=infos)
    ).SerializeToString()
    result = px.parse_response(data)
    assert len(result.enrs) + result.invalid == len(entries)
    assert len({e.public_key for e in result.enrs}) == len(result.enrs)


# -- cache --------------------------------------------------------------------------


def cache(size: int = 5, ttl: float = 100.0) -> px.PeerCache:
    return px.PeerCache(max_size=size, ttl=ttl, rng=random.Random(7))


def test_add_replaces_only_with_newer_records() -> None:
    c = cache()
    assert c.add(ENRS[0], 0.0)
    assert not c.add(ENRS[0], 1.0)  # same record: refresh only
    assert c.add(make_enr(0, seq=5), 2.0)
    assert not c.add(ENRS[0], 3.0)  # older seq is ignored
    assert c.get(pid(ENRS[0])) == make_enr(0, seq=5)
    assert len(c) == 1


def test_entries_expire_after_ttl_unless_seen_again() -> None:
    c = cache(ttl=100.0)
    c.add(ENRS[0], 0.0)
    c.add(ENRS[1], 50.0)
    assert c.get_timer() == 100.0
    c.add(ENRS[0], 60.0)  # seen again: lives until 160
    assert c.get_timer() == 150.0
    c.handle_timer(150.0)
    assert pid(ENRS[1]) not in c and pid(ENRS[0]) in c
    assert c.sample(10, 159.9) == [ENRS[0]]
    assert c.sample(10, 160.0) == []
    assert c.get_timer() is None


def test_pinned_entries_never_expire_or_get_evicted() -> None:
    c = cache(size=2, ttl=10.0)
    c.add(ENRS[0], 0.0, pinned=True)
    for i in range(1, 6):
        c.add(ENRS[i], float(i))
    assert pid(ENRS[0]) in c
    assert len(c) == 3  # the pinned one plus max_size unpinned
    c.handle_timer(1000.0)
    assert len(c) == 1 and pid(ENRS[0]) in c
    assert c.get_timer() is None
    c.remove(pid(ENRS[0]))
    assert len(c) == 0


def test_full_cache_evicts_the_entry_seen_longest_ago() -> None:
    c = cache(size=3)
    c.add(ENRS[0], 0.0)
    c.add(ENRS[1], 1.0)
    c.add(ENRS[2], 2.0)
    c.add(ENRS[0], 3.0)  # refresh 0: now 1 is the oldest
    c.add(ENRS[3], 4.0)
    assert {pid(e) for e in c.sample(10, 4.0)} == {pid(ENRS[i]) for i in (0, 2, 3)}


def test_sample_is_bounded_random_and_excludes() -> None:
    c = px.PeerCache(max_size=100, ttl=100.0, rng=random.Random(1))
    for e in ENRS:
        c.add(e, 0.0)
    picks = c.sample(4, 1.0, exclude={pid(ENRS[0])})
    assert len(picks) == 4 and len(set(picks)) == 4 and ENRS[0] not in picks
    assert c.sample(0, 1.0) == [] and c.sample(-1, 1.0) == []
    assert len(c.sample(100, 1.0)) == len(ENRS)
    seen = {pid(e) for _ in range(50) for e in c.sample(2, 1.0)}
    assert len(seen) == len(ENRS)  # every record gets handed out eventually


def test_cache_arguments_are_checked() -> None:
    with pytest.raises(UsageError):
        px.PeerCache(max_size=0)
    with pytest.raises(UsageError):
        px.PeerCache(ttl=0)


@given(
    st.lists(
        st.tuples(st.integers(0, len(ENRS) - 1), st.floats(0, 10), st.booleans()),
        max_size=60,
    )
)
def test_cache_invariants(ops: list[tuple[int, float, bool]]) -> None:
    c = px.PeerCache(max_size=4, ttl=20.0, rng=random.Random(0))
    now = 0.0
    pinned: set[bytes] = set()
    for index, step, pin in ops:
        now += step
        c.add(ENRS[index], now, pinned=pin)
        if pin:
            pinned.add(pid(ENRS[index]))
        assert all(p in c for p in pinned)
        assert len(c) <= 4 + len(pinned)
        c.handle_timer(now)
        timer = c.get_timer()
        assert timer is None or timer > now
