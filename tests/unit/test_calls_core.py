"""The sans-IO call core and the SDP checks: states, timeouts, and attackers."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.calls import CallCore, Changed, EndReason, Phase, RemoteCandidates, Send, call_code
from boxless.calls.core import CONNECT_TIMEOUT, KEEPALIVE_EVERY, LOST_AFTER, RING_TIMEOUT
from boxless.calls.sdp import parse_sdp
from boxless.chat import envelope as env
from boxless.chat.envelope import CallSignal, CallSignalKind
from boxless.errors import DecodeError, UsageError

ALICE, BOB, EVE = b"a" * 32, b"b" * 32, b"e" * 32


def sdp(fp_byte: int, ufrag: str = "abcd") -> str:
    fp = ":".join([f"{fp_byte:02X}"] * 32)
    return (
        "v=0\r\no=- 46117 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        "a=group:BUNDLE 0 1\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n"
        f"a=ice-ufrag:{ufrag}\r\na=ice-pwd:aaaaaaaaaaaaaaaaaaaaaa\r\n"
        f"a=fingerprint:sha-256 {fp}\r\na=setup:actpass\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n"
        f"a=ice-ufrag:{ufrag}\r\na=fingerprint:sha-256 {fp}\r\n"
    )


def pair() -> tuple[CallCore, CallCore]:
    return CallCore(), CallCore()


def deliver(outs: list, to: CallCore, sender: bytes, now: float, allowed: bool = True) -> list:
    got: list = []
    for o in outs:
        if isinstance(o, Send):
            got += to.receive(sender, o.signal, now, now, allowed=allowed)
    return got


def test_sdp_facts_and_code() -> None:
    facts = parse_sdp(sdp(0xAB))
    assert facts.fingerprint == b"\xab" * 32 and facts.ice_ufrag == "abcd"
    assert facts.media == ("audio", "video")
    cid = os.urandom(16)
    code = call_code(cid, b"\x01" * 32, b"\x02" * 32)
    assert code == call_code(cid, b"\x01" * 32, b"\x02" * 32)
    assert code != call_code(cid, b"\x01" * 32, b"\x03" * 32)
    assert len(code) == 9 and code[4] == " "


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "x=0\r\n",
        sdp(1).replace("a=fingerprint:sha-256", "a=fingerprint:sha-1", 1),
        sdp(1) + "a=fingerprint:sha-256 " + ":".join(["02"] * 32) + "\r\n",  # two certificates
        sdp(1).replace("abcd", "ab", 1),
        sdp(1).replace("m=audio", "M=audio"),
        "v=0\r\n" + "a=x\r\n" * 500,
        sdp(1) + "a=" + "x" * 17000,
        "v=0\r\na=ice-ufrag:abcd\r\n",  # no media, no fingerprint
    ],
)
def test_bad_sdp_is_a_clear_decode_error(bad: str) -> None:
    with pytest.raises(DecodeError):
        parse_sdp(bad)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000))
def test_parse_sdp_never_crashes(text: str) -> None:
    try:
        parse_sdp(text)
    except DecodeError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_decode_call_signal_garbage(data: bytes) -> None:
    try:
        env.decode(b"\x08\x01\x12\x10" + b"i" * 16 + b"\xfa\x01" + bytes([len(data) % 128]) + data)
    except DecodeError:
        pass


@settings(max_examples=100, deadline=None)
@given(
    kind=st.sampled_from(list(CallSignalKind)),
    sdp_text=st.text(max_size=200),
    cands=st.lists(st.text(min_size=1, max_size=40), max_size=16),
    video=st.booleans(),
)
def test_call_signal_round_trip(kind, sdp_text, cands, video) -> None:
    sig = CallSignal(os.urandom(16), kind, sdp_text, tuple(cands), video)
    msg = env.new_message(sig, lamport=1, sent_at_ms=5)
    assert env.decode(env.encode(msg)).body == sig
    assert not env.is_reliable(sig)


def test_call_signal_limits() -> None:
    with pytest.raises(UsageError):
        CallSignal(b"short", CallSignalKind.OFFER)
    with pytest.raises(UsageError):
        CallSignal(os.urandom(16), CallSignalKind.CANDIDATES, candidates=("c",) * 17)
    with pytest.raises(UsageError):
        CallSignal(os.urandom(16), CallSignalKind.OFFER, sdp="x" * 17000)


def test_call_answered_connected_hung_up() -> None:
    a, b = pair()
    cid = os.urandom(16)
    outs = a.start(BOB, cid, sdp(1), True, 0.0)
    assert a.current is not None and a.current.phase is Phase.OUTGOING
    rung = deliver(outs, b, ALICE, 0.1)
    assert [o.call.phase for o in rung if isinstance(o, Changed)] == [Phase.INCOMING]
    with pytest.raises(UsageError):
        b.start(ALICE, os.urandom(16), sdp(3), False, 0.2)  # already in a call
    outs = b.accept(cid, sdp(2), 1.0)
    deliver(outs, a, BOB, 1.1)
    assert a.current.phase is Phase.CONNECTING and b.current.phase is Phase.CONNECTING
    assert a.current.code == b.current.code != ""
    outs = a.local_candidates(cid, ("candidate:1 1 udp 1 127.0.0.1 5000 typ host",), 1.2)
    assert isinstance(deliver(outs, b, ALICE, 1.2)[0], RemoteCandidates)
    a.connected(cid, 1.5)
    b.connected(cid, 1.5)
    outs = a.hang_up(cid, 61.5)
    assert isinstance(outs[-1], Changed) and outs[-1].call.duration == 60.0
    ended = deliver(outs, b, ALICE, 61.6)
    assert ended[-1].call.reason is EndReason.HUNG_UP and b.current is None and a.current is None


def test_decline_busy_and_missed() -> None:
    a, b = pair()
    cid = os.urandom(16)
    deliver(a.start(BOB, cid, sdp(1), False, 0.0), b, ALICE, 0.0)
    got = deliver(b.decline(cid, 2.0), a, BOB, 2.0)
    assert got[-1].call.reason is EndReason.DECLINED and a.current is None
    # busy: Bob is in a call with Eve when Alice rings
    eve = CallCore()
    deliver(eve.start(BOB, os.urandom(16), sdp(5), False, 10.0), b, EVE, 10.0)
    cid2 = os.urandom(16)
    back = deliver(a.start(BOB, cid2, sdp(1), False, 10.0), b, ALICE, 10.0)
    assert back[-1].call.reason is EndReason.BUSY and b.current.peer == EVE
    assert deliver(back, a, BOB, 10.1)[-1].call.reason is EndReason.BUSY
    # missed: nobody answers for the ring timeout; both sides end
    b2 = CallCore()
    cid3 = os.urandom(16)
    deliver(a.start(BOB, cid3, sdp(1), False, 100.0), b2, ALICE, 100.0)
    assert a.get_timer() == 100.0 + RING_TIMEOUT
    outs = a.handle_timer(100.0 + RING_TIMEOUT)
    assert outs[-1].call.reason is EndReason.MISSED
    assert deliver(outs, b2, ALICE, 145.0)[-1].call.reason is EndReason.MISSED


def test_connect_timeout_keepalive_and_lost() -> None:
    a, b = pair()
    cid = os.urandom(16)
    deliver(a.start(BOB, cid, sdp(1), False, 0.0), b, ALICE, 0.0)
    deliver(b.accept(cid, sdp(2), 1.0), a, BOB, 1.0)
    failed = a.handle_timer(1.0 + CONNECT_TIMEOUT)
    assert failed[-1].call.reason is EndReason.FAILED
    assert deliver(failed, b, ALICE, 21.0)[-1].call.reason is EndReason.HUNG_UP
    # a second call connects, then Bob's node goes silent
    cid = os.urandom(16)
    deliver(a.start(BOB, cid, sdp(1), False, 100.0), b, ALICE, 100.0)
    deliver(b.accept(cid, sdp(2), 101.0), a, BOB, 101.0)
    a.connected(cid, 102.0)
    t = 102.0
    outs = a.handle_timer(101.0 + KEEPALIVE_EVERY)
    assert outs and outs[0].signal.kind is CallSignalKind.KEEPALIVE
    deliver(outs, b, ALICE, t)
    ends = a.handle_timer(101.0 + LOST_AFTER)
    assert ends[-1].call.reason is EndReason.LOST


def test_attackers_are_dropped_with_a_reason() -> None:
    a, b = pair()
    cid = os.urandom(16)
    offer = CallSignal(cid, CallSignalKind.OFFER, sdp(1))
    # a stranger rings: nothing
    assert b.receive(EVE, offer, 0.0, 0.0, allowed=False) == []
    assert b.dropped["not a contact"] == 1
    # stale (store history) and malformed offers
    assert b.receive(ALICE, offer, 0.0, RING_TIMEOUT + 1, allowed=True) == []
    bad = CallSignal(os.urandom(16), CallSignalKind.OFFER, "v=0\r\nm=audio\r\n")
    assert b.receive(ALICE, bad, 100.0, 100.0, allowed=True) == []
    assert b.dropped["offer stale"] == 1 and b.dropped["offer with bad SDP"] == 1
    # the offer rings once; repeated or replayed after the end it never rings again
    now = 200.0
    assert b.receive(ALICE, offer, now, now, allowed=True)
    assert b.receive(ALICE, offer, now, now, allowed=True) == []
    b.decline(cid, now)
    assert b.receive(ALICE, offer, now, now + 1, allowed=True) == []
    assert b.dropped["offer repeated"] == 1 and b.dropped["offer for an ended call"] == 1
    # another contact cannot hang up or answer Alice's call
    a.start(BOB, cid2 := os.urandom(16), sdp(1), False, now)
    assert a.receive(EVE, CallSignal(cid2, CallSignalKind.HANGUP), now, now, allowed=True) == []
    assert (
        a.receive(
            BOB, CallSignal(os.urandom(16), CallSignalKind.ANSWER, sdp(2)), now, now, allowed=True
        )
        == []
    )
    assert a.current is not None and a.dropped["not the running call"] == 2


def test_offer_storm_rings_once_and_is_rate_limited() -> None:
    b = CallCore()
    now = 1000.0
    rang = 0
    for _ in range(1000):  # 1,000 offers in one second, each a fresh call id
        outs = b.receive(
            ALICE, CallSignal(os.urandom(16), CallSignalKind.OFFER, sdp(1)), now, now, allowed=True
        )
        rang += sum(1 for o in outs if isinstance(o, Changed) and o.call.phase is Phase.INCOMING)
        now += 0.001
    assert rang == 1
    assert b.dropped["offer rate"] >= 990
    assert len(b._ended) <= 1024


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([ALICE, BOB, EVE]),
            st.sampled_from(list(CallSignalKind)),
            st.integers(0, 3),  # which of four call ids
            st.booleans(),  # a valid SDP or garbage
            st.booleans(),  # the sender is a contact
            st.floats(0, 120),  # time step
        ),
        max_size=40,
    )
)
def test_any_signal_sequence_keeps_the_core_sane(steps) -> None:  # type: ignore[no-untyped-def]
    """Whatever peers send, in any order: no exception, at most one call, each rings once."""
    core = CallCore()
    ids = [bytes([i]) * 16 for i in range(4)]
    now = 0.0
    rung: list[bytes] = []
    for peer, kind, which, good, allowed, dt in steps:
        now += dt
        sig = CallSignal(ids[which], kind, sdp(7) if good else "v=0\r\nx", video=good)
        outs = core.receive(peer, sig, now, now, allowed=allowed)
        outs += core.handle_timer(now)
        for o in outs:
            if isinstance(o, Changed) and o.call.phase is Phase.INCOMING:
                assert o.call.call_id not in rung
                rung.append(o.call.call_id)
                assert allowed and good
        if core.current is not None:
            assert core.current.phase is not Phase.ENDED
