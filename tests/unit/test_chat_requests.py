"""Contact requests: the state machine, and the gate in front of incoming messages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxless.chat.envelope import (
    ContactRequest,
    ContactResponse,
    Decision,
    Receipt,
    ReceiptKind,
    SessionReset,
    Text,
    Typing,
    Unsupported,
)
from boxless.chat.pow import ProofOfWork, RateLimiter, solve
from boxless.chat.requests import (
    TRANSITIONS,
    ContactEvent,
    ContactState,
    GateReason,
    RequestGate,
    next_contact_state,
)
from boxless.errors import UsageError

ME = b"M" * 32
ALICE = b"A" * 32
EVE = b"E" * 32
NOW = 1_700_000_000_000
EASY = 8

N, SENT, RECV, ACC, DEC, BLK = (
    ContactState.NONE,
    ContactState.REQUEST_SENT,
    ContactState.REQUEST_RECEIVED,
    ContactState.ACCEPTED,
    ContactState.DECLINED,
    ContactState.BLOCKED,
)
E = ContactEvent


def run(state: ContactState, *events: ContactEvent) -> ContactState:
    for event in events:
        state = next_contact_state(state, event)
    return state


# --- the state machine -------------------------------------------------------------------


def test_the_usual_paths() -> None:
    assert run(N, E.SEND_REQUEST, E.ACCEPT_RECEIVED) is ACC
    assert run(N, E.SEND_REQUEST, E.DECLINE_RECEIVED) is DEC
    assert run(N, E.REQUEST_RECEIVED, E.ACCEPT) is ACC
    assert run(N, E.REQUEST_RECEIVED, E.DECLINE) is DEC
    assert run(N, E.REQUEST_RECEIVED, E.BLOCK) is BLK
    assert run(BLK, E.UNBLOCK) is N
    assert run(ACC, E.REMOVE) is N


def test_mutual_requests_make_contacts() -> None:
    assert run(N, E.SEND_REQUEST, E.REQUEST_RECEIVED) is ACC  # crossed in flight
    assert run(N, E.REQUEST_RECEIVED, E.SEND_REQUEST) is ACC  # added their link meanwhile


def test_an_unrequested_accept_makes_no_contact() -> None:
    for state in (N, RECV, DEC, BLK):
        assert next_contact_state(state, E.ACCEPT_RECEIVED) is state


def test_blocked_ignores_everything_remote() -> None:
    for event in ContactEvent:
        if event.remote:
            assert next_contact_state(BLK, event) is BLK


def test_a_declined_stranger_may_ask_again() -> None:
    assert run(DEC, E.REQUEST_RECEIVED) is RECV
    assert run(DEC, E.SEND_REQUEST) is SENT


@pytest.mark.parametrize(
    ("state", "event"),
    [(N, E.ACCEPT), (N, E.DECLINE), (SENT, E.ACCEPT), (ACC, E.ACCEPT), (N, E.UNBLOCK)]
    + [(BLK, E.SEND_REQUEST), (BLK, E.REMOVE), (DEC, E.ACCEPT)],
)
def test_impossible_local_actions_raise(state: ContactState, event: ContactEvent) -> None:
    with pytest.raises(UsageError, match=f"in state '{state.value}'"):
        next_contact_state(state, event)


@given(st.lists(st.sampled_from([e for e in ContactEvent if e.remote]), max_size=20))
def test_remote_events_never_raise_unblock_or_befriend(events: list[ContactEvent]) -> None:
    for start in ContactState:
        end = run(start, *events)
        if start is BLK:
            assert end is BLK
        if end is ACC:
            assert start in (SENT, ACC)  # only our own request lets a peer in


def test_every_pair_in_the_table_is_reachable_from_its_state() -> None:
    for (state, event), new in TRANSITIONS.items():
        assert next_contact_state(state, event) is new


# --- the gate ----------------------------------------------------------------------------


def request(sender: bytes = ALICE, *, at: int = NOW, difficulty: int = EASY) -> ContactRequest:
    proof = solve(ME, sender, at, difficulty=difficulty)
    assert proof is not None
    return ContactRequest("hi, it's Alice", proof, b"card", b"s" * 32)


def gate(**kwargs: RateLimiter) -> RequestGate:
    return RequestGate(ME, difficulty=EASY, **kwargs)


def test_blocked_senders_are_dropped_whatever_they_send() -> None:
    g = gate()
    for body in (Text("hi"), request(), Receipt((b"x" * 16,), ReceiptKind.READ), SessionReset()):
        decision = g.should_accept(ALICE, body, state=BLK, now_ms=NOW)
        assert not decision.accept and decision.reason is GateReason.BLOCKED


def test_contacts_and_people_we_asked_pass() -> None:
    g = gate()
    for body in (Text("hi"), Typing(True), Unsupported("body field 40"), SessionReset()):
        assert g.should_accept(ALICE, body, state=ACC, now_ms=NOW).reason is GateReason.CONTACT
    # their text may overtake their ACCEPT response
    decision = g.should_accept(ALICE, Text("yes!"), state=SENT, now_ms=NOW)
    assert decision.accept and decision.reason is GateReason.REQUESTED
    response = ContactResponse(Decision.ACCEPT)
    assert g.should_accept(ALICE, response, state=SENT, now_ms=NOW).accept


@pytest.mark.parametrize("state", [N, RECV, DEC])
def test_strangers_may_only_send_a_paid_request(state: ContactState) -> None:
    g = gate()
    for body in (Text("buy now"), ContactResponse(Decision.ACCEPT), SessionReset(), Typing(True)):
        decision = g.should_accept(EVE, body, state=state, now_ms=NOW)
        assert not decision.accept and decision.reason is GateReason.NOT_A_CONTACT
    decision = g.should_accept(ALICE, request(), state=state, now_ms=NOW)
    assert decision.accept and decision.reason is GateReason.NEW_REQUEST


def test_requests_need_a_proof_for_us_from_them() -> None:
    g = gate()
    alices = request(ALICE, difficulty=16)
    assert g.should_accept(ALICE, alices, state=N, now_ms=NOW).accept
    strict = RequestGate(ME, difficulty=16)
    stolen = strict.should_accept(EVE, alices, state=N, now_ms=NOW)  # Eve replays Alice's proof
    assert not stolen.accept and stolen.reason is GateReason.BAD_PROOF
    forged = ContactRequest("", ProofOfWork(NOW, b"\xff" * 8), b"card", b"s" * 32)
    assert strict.should_accept(EVE, forged, state=N, now_ms=NOW).reason is GateReason.BAD_PROOF


def test_stale_proofs_are_dropped() -> None:
    g = gate()
    old = request(at=NOW - 3_600_001)
    assert g.should_accept(ALICE, old, state=N, now_ms=NOW).reason is GateReason.STALE_PROOF
    future = request(at=NOW + 3_600_000)
    assert g.should_accept(ALICE, future, state=N, now_ms=NOW).reason is GateReason.STALE_PROOF


def test_requests_are_rate_limited_per_sender_and_overall() -> None:
    g = gate(
        per_sender=RateLimiter(rate_per_s=1 / 60, burst=2),
        overall=RateLimiter(rate_per_s=1, burst=3, max_keys=1),
    )
    body = request(ALICE)
    results = [g.should_accept(ALICE, body, state=N, now_ms=NOW).reason for _ in range(3)]
    assert results == [GateReason.NEW_REQUEST, GateReason.NEW_REQUEST, GateReason.RATE_LIMITED]
    later = NOW + 60_000
    fresh = request(ALICE, at=later)
    assert g.should_accept(ALICE, fresh, state=N, now_ms=later).accept  # refilled
    # many identities: the overall bucket stops them
    others = [bytes([i]) * 32 for i in range(1, 6)]
    reasons = [
        g.should_accept(key, request(key, at=later), state=N, now_ms=later).reason for key in others
    ]
    assert reasons.count(GateReason.NEW_REQUEST) == 2  # 3 - 1 used above
    assert reasons[2:] == [GateReason.RATE_LIMITED] * 3


def test_bad_proofs_do_not_spend_the_senders_tokens() -> None:
    g = gate(per_sender=RateLimiter(rate_per_s=0, burst=1))
    forged = ContactRequest("", ProofOfWork(NOW, b"\xff" * 8), b"card", b"s" * 32)
    strict = RequestGate(ME, difficulty=20, per_sender=g.per_sender)
    for _ in range(5):
        assert (
            strict.should_accept(ALICE, forged, state=N, now_ms=NOW).reason is GateReason.BAD_PROOF
        )
    assert g.should_accept(ALICE, request(), state=N, now_ms=NOW).accept
