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
from boxless.chat.pow import ProofOfWork, RateLimiter, SpentProofs, solve
from boxless.chat.requests import (
    GLOBAL_BURST,
    GLOBAL_WORK_RATE,
    TRANSITIONS,
    ContactEvent,
    ContactState,
    GateReason,
    RequestGate,
    next_contact_state,
    overall_limiter,
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


def gate(
    *,
    per_sender: RateLimiter | None = None,
    overall: RateLimiter | None = None,
    spent: SpentProofs | None = None,
) -> RequestGate:
    return RequestGate(ME, difficulty=EASY, per_sender=per_sender, overall=overall, spent=spent)


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
    results = [
        g.should_accept(ALICE, request(ALICE, at=NOW - i), state=N, now_ms=NOW).reason
        for i in range(3)
    ]
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


# --- attacks on the gate (issue 10, finding 4) ------------------------------------------


def test_a_replayed_proof_is_refused() -> None:
    """Attack: one solved proof, sent again and again while it is fresh (an hour).

    The old gate judged each copy on its own, so 10 proofs sent 3 times each
    paid for 30 requests and emptied the bucket all strangers share.
    """
    g = gate()
    body = request(ALICE)
    assert g.commit(ALICE, body, state=N, now_ms=NOW).reason is GateReason.NEW_REQUEST
    for state in (N, DEC):  # removed or declined: asking again costs a new proof
        for later in (NOW, NOW + 1_000, NOW + 3_000_000):
            decision = g.commit(ALICE, body, state=state, now_ms=later)
            assert not decision.accept and decision.reason is GateReason.REPLAYED_PROOF
    # the same proof in another message (a new intro): still the same proof
    again = ContactRequest("other words", body.proof, b"card", b"t" * 32)
    assert g.check(ALICE, again, state=N, now_ms=NOW).reason is GateReason.REPLAYED_PROOF
    # a new proof is a new request
    assert g.commit(ALICE, request(ALICE, at=NOW + 1), state=N, now_ms=NOW).accept


def test_a_resent_request_we_hold_passes_without_spending_the_shared_bucket() -> None:
    """Attack: replaying one's own request we hold, to drain the bucket all strangers share.

    An outbox re-sends a request until it gets our receipt; the copy must still be
    answered (``RESENT``), but costs only the sender's own bucket.
    """
    g = gate(
        per_sender=RateLimiter(rate_per_s=0, burst=3),
        overall=RateLimiter(rate_per_s=0, burst=1, max_keys=1),
    )
    body = request(ALICE)
    assert g.commit(ALICE, body, state=N, now_ms=NOW).reason is GateReason.NEW_REQUEST
    resent = [g.commit(ALICE, body, state=RECV, now_ms=NOW).reason for _ in range(3)]
    assert resent == [GateReason.RESENT, GateReason.RESENT, GateReason.RATE_LIMITED]
    assert not g.check(EVE, request(EVE), state=N, now_ms=NOW).accept  # burst of 1: spent once


def test_a_forged_sender_cannot_spend_the_victims_allowance() -> None:
    """Attack: Eve claims to be Alice (the sealed envelope's identity key is a claim)
    and sends requests with proofs she solved for Alice's key. Her card cannot bind
    Alice's key to Eve's device, but the old gate spent Alice's bucket (and the shared
    one) before the card was checked: Alice's genuine request was then rate-limited.
    Now nothing is spent until the sender is verified.
    """
    g = gate(
        per_sender=RateLimiter(rate_per_s=0, burst=3),
        overall=RateLimiter(rate_per_s=0, burst=3, max_keys=1),
    )
    for i in range(10):
        forged = request(ALICE, at=NOW - 1 - i)
        decision = g.check(ALICE, forged, state=N, now_ms=NOW)
        assert decision.accept and decision.spends  # provisional: the card is checked next
        # ... and the card check fails: the pipeline never commits
    assert len(g.per_sender) == 0 and len(g.spent) == 0
    genuine = request(ALICE)
    assert g.commit(ALICE, genuine, state=N, now_ms=NOW).reason is GateReason.NEW_REQUEST


@pytest.mark.parametrize("attackers", [10, 100])
def test_attacker_proofs_do_not_stop_an_honest_stranger(attackers: int) -> None:
    """Attack: many free identities, each with a proof, sent at once (and every proof
    sent three times). The old gate shared one bucket of 30 among all strangers:
    10 proofs, 7 CPU-seconds, kept every honest stranger out. With the default
    limits (a global bucket scaled with the proof's cost) they do not.
    """
    g = gate(overall=overall_limiter(20))  # production limits, cheap test proofs
    keys = [i.to_bytes(2, "big") * 16 for i in range(1, attackers + 1)]
    for key in keys:
        body = request(key)
        reasons = [g.commit(key, body, state=N, now_ms=NOW).reason for _ in range(3)]
        assert reasons == [GateReason.NEW_REQUEST] + [GateReason.REPLAYED_PROOF] * 2
    assert g.commit(ALICE, request(ALICE), state=N, now_ms=NOW).reason is GateReason.NEW_REQUEST


def test_starving_strangers_costs_the_attacker_cpu_for_as_long_as_it_lasts() -> None:
    """What it takes to keep honest strangers out: drain the burst, then keep solving
    GLOBAL_WORK_RATE hashes' worth of proofs every second (6 CPython cores at 20 bits)."""
    g = gate(overall=overall_limiter(20))
    per_second = GLOBAL_WORK_RATE / 2**20
    assert per_second == 8
    for i in range(GLOBAL_BURST):
        key = i.to_bytes(4, "big") * 8
        assert g.commit(key, request(key), state=N, now_ms=NOW).accept
    late = g.check(ALICE, request(ALICE), state=N, now_ms=NOW)
    assert late.reason is GateReason.RATE_LIMITED  # the attacker paid ~750 CPU-seconds
    # the attacker stops solving: an eighth of a second later the honest stranger is in
    assert g.commit(ALICE, request(ALICE), state=N, now_ms=NOW + 125).accept


def test_a_request_refused_for_rate_spends_nothing() -> None:
    """The old gate took the sender's token even when the shared bucket then said no,
    and the proof could not be tried again later. Refused requests now cost nothing:
    the outbox's re-send with the same proof passes once the bucket refills."""
    g = gate(
        per_sender=RateLimiter(rate_per_s=0, burst=1),
        overall=RateLimiter(rate_per_s=1, burst=1, max_keys=1),
    )
    assert g.commit(EVE, request(EVE), state=N, now_ms=NOW).accept
    body = request(ALICE)
    assert g.commit(ALICE, body, state=N, now_ms=NOW).reason is GateReason.RATE_LIMITED
    assert g.per_sender.available(ALICE, NOW / 1000)
    assert g.commit(ALICE, body, state=N, now_ms=NOW + 1_000).reason is GateReason.NEW_REQUEST


def test_check_changes_nothing() -> None:
    g = gate(per_sender=RateLimiter(rate_per_s=0, burst=1))
    body = request(ALICE)
    for _ in range(5):
        assert g.check(ALICE, body, state=N, now_ms=NOW).reason is GateReason.NEW_REQUEST
    assert g.commit(ALICE, body, state=N, now_ms=NOW).accept
    assert g.check(ALICE, body, state=N, now_ms=NOW).reason is GateReason.REPLAYED_PROOF


def test_the_gates_tables_are_bounded() -> None:
    """Attack: a flood of identities and proofs to grow the gate's memory without end."""
    g = gate(
        per_sender=RateLimiter(rate_per_s=0, burst=1, max_keys=50),
        spent=SpentProofs(max_entries=40),
    )
    bodies = []
    for i in range(200):
        key = i.to_bytes(2, "big") * 16
        bodies.append((key, request(key, at=NOW + i)))
        assert g.commit(key, bodies[-1][1], state=N, now_ms=NOW + i).accept
    assert len(g.per_sender) == 50 and len(g.spent) == 40
    # forgotten proofs are refused all the same: the table's floor covers them
    for key, body in bodies:
        assert g.check(key, body, state=N, now_ms=NOW + 200).reason is GateReason.REPLAYED_PROOF
    # and a fresh proof, dated now, still passes
    assert g.commit(ALICE, request(ALICE, at=NOW + 200), state=N, now_ms=NOW + 200).accept


def test_the_default_spent_table_outlasts_what_the_default_limits_admit() -> None:
    g = RequestGate(ME)
    window_s = (3_600_000 + 600_000) / 1000  # a proof is fresh from -1 h to +10 min
    admitted = GLOBAL_BURST + g.overall.rate_per_s * window_s
    assert admitted < g.spent.max_entries


def test_a_forged_sender_is_refused_in_one_call_without_spending() -> None:
    """The same attack through the one-call form: the card check is handed to the gate,
    which runs it only when something would be spent, and spends nothing if it fails."""
    g = gate(
        per_sender=RateLimiter(rate_per_s=0, burst=1),
        overall=RateLimiter(rate_per_s=0, burst=1, max_keys=1),
    )
    calls: list[bytes] = []

    def card_does_not_bind() -> bool:
        calls.append(ALICE)
        return False

    for i in range(5):
        forged = request(ALICE, at=NOW - 1 - i)
        decision = g.should_accept(
            ALICE, forged, state=N, now_ms=NOW, verify_sender=card_does_not_bind
        )
        assert not decision.accept and decision.reason is GateReason.UNVERIFIED_SENDER
    # contacts' messages and refused requests never ask for the card
    g.should_accept(ALICE, Text("hi"), state=ACC, now_ms=NOW, verify_sender=card_does_not_bind)
    g.should_accept(ALICE, Text("hi"), state=N, now_ms=NOW, verify_sender=card_does_not_bind)
    assert len(calls) == 5
    genuine = g.should_accept(
        ALICE, request(ALICE), state=N, now_ms=NOW, verify_sender=lambda: True
    )
    assert genuine.reason is GateReason.NEW_REQUEST
