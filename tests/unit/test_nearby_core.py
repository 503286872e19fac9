"""People Nearby's pure core: geohash cells, cards (checked, bounded), hellos."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.chat.pow import SpentProofs, solve
from boxless.client import nearby_core as nc
from boxless.identity import Device, Identity, generate_phrase, make_contact_code
from boxless.wire import nearby_pb2

NOW = 1_800_000_000_000
LISBON = (38.7223, -9.1393)
LISBON_2KM = (38.7350, -9.1550)  # same ~5 km cell or a neighbour
PORTO = (41.1579, -8.6291)
ALICE = Identity.from_phrase(generate_phrase())
LINK = make_contact_code(ALICE, Device.create(ALICE, NOW / 1000), "Alice", NOW / 1000).link
MALLORY = Identity.from_phrase(generate_phrase())


def test_geohash_known_values_and_neighbours() -> None:
    assert nc.encode_geohash(57.64911, 10.40744, 11) == "u4pruydqqvj"
    assert sorted(nc.neighbours("u4pru")) == sorted(
        ["u4pru", "u4r2h", "u4prs", "u4prv", "u4prg", "u4r2j", "u4r25", "u4prt", "u4pre"]
    )
    lat, lon = nc.decode_geohash("u4pruy")
    assert nc.encode_geohash(lat, lon, 6) == "u4pruy"
    with pytest.raises(Exception, match="latitude"):
        nc.encode_geohash(91, 0, 5)


def test_distance_buckets_from_areas() -> None:
    a = nc.encode_geohash(*LISBON, 6)
    assert nc.bucket(nc.distance_km(a, a)) == "< 1 km"
    assert nc.bucket(nc.distance_km(a, nc.encode_geohash(*LISBON_2KM, 6))) == "< 5 km"
    assert nc.bucket(nc.distance_km(a, nc.encode_geohash(*PORTO, 6))) == "> 10 km"


def _session(where: tuple[float, float] = LISBON, **kw: str) -> nc.Session:
    return nc.Session(*where, **kw)  # type: ignore[arg-type]


def test_a_card_round_trips_and_says_no_more_than_its_area() -> None:
    s = _session(name="Ana", status="coffee?")
    card = nc.open_card(s.card(NOW), s.cell, NOW)
    assert (card.name, card.status, card.cell, card.area) == ("Ana", "coffee?", s.cell, s.area)
    body = nearby_pb2.PresenceBody.FromString(
        nearby_pb2.SignedPresence.FromString(s.card(NOW)).body
    )
    assert len(body.area) == 6 and "38.7" not in str(body)


def _resigned(s: nc.Session, **changes: object) -> bytes:
    signed = nearby_pb2.SignedPresence.FromString(s.card(NOW))
    body = nearby_pb2.PresenceBody.FromString(signed.body)
    for k, v in changes.items():
        setattr(body, k, v)
    raw = body.SerializeToString()
    return nearby_pb2.SignedPresence(
        body=raw, signature=s._sign.sign(b"boxless nearby card v1" + raw)
    ).SerializeToString()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (
            lambda s: nearby_pb2.SignedPresence(
                body=nearby_pb2.SignedPresence.FromString(s.card(NOW)).body, signature=b"\x00" * 64
            ).SerializeToString(),
            nc.Drop.BAD_SIGNATURE,
        ),
        (lambda s: s.card(NOW - nc.CARD_TTL_MS - 1), nc.Drop.EXPIRED),
        (lambda s: s.card(NOW + 10 * 60_000), nc.Drop.FUTURE),
        (lambda s: _resigned(s, expires_at_ms=NOW + 3_600_000), nc.Drop.MALFORMED),
        (lambda s: _resigned(s, area="zzzzzz"), nc.Drop.MALFORMED),
        (lambda s: _resigned(s, name="a\u202eb"), nc.Drop.MALFORMED),
        (lambda s: _resigned(s, avatar=b"GIF89a"), nc.Drop.MALFORMED),
        (lambda s: b"\xff" * 40, nc.Drop.MALFORMED),
        (lambda s: b"\x00" * (nc.MAX_CARD_BYTES + 1), nc.Drop.MALFORMED),
    ],
)
def test_bad_cards_are_dropped_with_a_reason(mutate: object, reason: nc.Drop) -> None:
    s = _session()
    with pytest.raises(nc.Dropped) as got:
        nc.open_card(mutate(s), s.cell, NOW)  # type: ignore[operator]
    assert got.value.reason is reason


def test_a_card_on_another_cells_topic_is_dropped() -> None:
    s = _session()
    with pytest.raises(nc.Dropped) as got:
        nc.open_card(s.card(NOW), "u4pru", NOW)
    assert got.value.reason is nc.Drop.WRONG_CELL


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_the_card_decoder_takes_any_bytes(raw: bytes) -> None:
    try:
        card = nc.open_card(raw, "eyckr", NOW)
    except nc.Dropped:
        return
    assert card.cell == "eyckr"  # only a validly signed card could get here


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1024))
def test_the_hello_decoder_takes_any_bytes(raw: bytes) -> None:
    with pytest.raises(nc.Dropped):
        nc.open_hello(raw, _session(), SpentProofs(), now_ms=NOW, difficulty=0)


def test_a_flood_in_one_cell_stays_bounded_and_rate_limited() -> None:
    table = nc.CardTable(max_per_cell=200)
    sessions = [_session() for _ in range(250)]
    for i, s in enumerate(sessions):
        assert table.put(nc.open_card(s.card(NOW + i), s.cell, NOW + i), NOW + i)
    assert len(table) == 200 and table.evicted == 50
    keys = {c.card_key for c in table.cards(NOW + 300)}
    assert sessions[0].card_key not in keys and sessions[-1].card_key in keys  # oldest went
    # one sender re-publishing fast: 3 in a burst, then refused
    s = sessions[-1]
    took = [
        table.put(nc.open_card(s.card(NOW + 1000 + i), s.cell, NOW), NOW + 1000 + i)
        for i in range(1, 6)
    ]
    assert took.count(True) <= 3 and table.drops["rate_limited"] >= 2
    # a replay of an older card is refused; expiry empties the table
    assert not table.put(nc.open_card(s.card(NOW + 250), s.cell, NOW), NOW + 2000)
    assert table.expire(NOW + 1_000_000) == 200 and len(table) == 0


def test_a_withdrawn_card_removes_its_sender() -> None:
    table = nc.CardTable()
    s = _session()
    table.put(nc.open_card(s.card(NOW), s.cell, NOW), NOW)
    table.put(
        nc.open_card(s.card(NOW + 30_000, withdrawn=True), s.cell, NOW + 30_000), NOW + 30_000
    )
    assert len(table) == 0


def _solver(difficulty: int):  # type: ignore[no-untyped-def]
    def solve_for(recipient: bytes, sender: bytes):  # type: ignore[no-untyped-def]
        proof = solve(recipient, sender, NOW, difficulty=difficulty)
        assert proof is not None
        return proof

    return solve_for


def test_hellos_open_only_for_their_card_with_work_done_once() -> None:
    alice, bob, eve = _session(name="A"), _session(name="B"), _session()
    hello = nc.Hello(nc.HelloKind.HELLO, alice.card_key, alice.box_key, LINK, "hi", b"t" * 16, "A")
    sealed = nc.seal_hello(hello, bob.card_key, bob.box_key, _solver(8), ALICE.sign)
    spent = SpentProofs()
    got = nc.open_hello(sealed, bob, spent, now_ms=NOW, difficulty=8)
    assert got == hello
    with pytest.raises(nc.Dropped) as replay:
        nc.open_hello(sealed, bob, spent, now_ms=NOW, difficulty=8)
    assert replay.value.reason is nc.Drop.REPLAYED
    with pytest.raises(nc.Dropped) as other:  # Eve cannot read it (and the proof is not hers)
        nc.open_hello(sealed, eve, SpentProofs(), now_ms=NOW, difficulty=8)
    assert other.value.reason in (nc.Drop.POW, nc.Drop.UNREADABLE)
    cheap = nc.seal_hello(hello, bob.card_key, bob.box_key, _solver(0), ALICE.sign)
    with pytest.raises(nc.Dropped) as lazy:
        nc.open_hello(cheap, bob, SpentProofs(), now_ms=NOW, difficulty=16)
    assert lazy.value.reason is nc.Drop.POW


def test_only_an_acceptance_may_come_without_a_proof_of_work() -> None:
    alice, bob = _session(), _session()
    base = (alice.card_key, alice.box_key, LINK, "", b"t" * 16, "A")
    answer = nc.Hello(nc.HelloKind.ACCEPTED, *base)
    sealed = nc.seal_hello(answer, bob.card_key, bob.box_key, None, ALICE.sign)
    assert nc.open_hello(sealed, bob, SpentProofs(), now_ms=NOW, difficulty=20) == answer
    free_hello = nc.seal_hello(
        nc.Hello(nc.HelloKind.HELLO, *base), bob.card_key, bob.box_key, None, ALICE.sign
    )
    with pytest.raises(nc.Dropped) as got:
        nc.open_hello(free_hello, bob, SpentProofs(), now_ms=NOW, difficulty=20)
    assert got.value.reason is nc.Drop.POW


def test_a_hello_cannot_pass_off_someone_elses_link() -> None:
    mallory, bob = _session(), _session()
    hello = nc.Hello(nc.HelloKind.HELLO, mallory.card_key, mallory.box_key, LINK, "", b"t" * 16, "")
    sealed = nc.seal_hello(hello, bob.card_key, bob.box_key, _solver(4), MALLORY.sign)
    with pytest.raises(nc.Dropped) as got:
        nc.open_hello(sealed, bob, SpentProofs(), now_ms=NOW, difficulty=4)
    assert got.value.reason is nc.Drop.BAD_SIGNATURE
    bad_link = nc.Hello(
        nc.HelloKind.HELLO, mallory.card_key, mallory.box_key, "x", "", b"t" * 16, ""
    )
    sealed = nc.seal_hello(bad_link, bob.card_key, bob.box_key, _solver(4), MALLORY.sign)
    with pytest.raises(nc.Dropped) as got:
        nc.open_hello(sealed, bob, SpentProofs(), now_ms=NOW, difficulty=4)
    assert got.value.reason is nc.Drop.MALFORMED
