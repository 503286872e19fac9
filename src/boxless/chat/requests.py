"""Contact requests: the per-contact state machine and the gate for incoming messages.

Theory of operation
-------------------
*States.* For every other identity we are ``NONE`` (strangers),
``REQUEST_SENT`` (we asked), ``REQUEST_RECEIVED`` (they asked; we have not
answered), ``ACCEPTED`` (contacts), ``DECLINED`` or ``BLOCKED``.
:data:`TRANSITIONS` is the whole machine. Local events (the user's actions)
that make no sense in a state raise :class:`~boxless.errors.UsageError`;
remote events (what a peer sends) never raise: one that does not apply leaves
the state as it is. Two rules matter for safety and for people:

* An ``ACCEPT`` response counts only if we asked (``REQUEST_SENT``): a stranger
  cannot make themselves our contact by sending one.
* Two people who ask each other (requests cross, or one adds the other's link
  while a request from them is pending) become contacts: both said yes.

*The gate.* :class:`RequestGate` decides, before anything is stored or
shown, whether a decrypted message from ``sender`` goes on:

1. ``BLOCKED`` senders: dropped silently -- no receipt, no error, nothing they
   could observe.
2. Contacts, and people we sent a request to: accepted (anything; a reply can
   overtake the ACCEPT response).
3. Anyone else may only send a :class:`~boxless.chat.envelope.ContactRequest`,
   and only with a fresh, valid, *unspent* proof of work for *our* key and
   *their* key, within a per-sender and a global rate limit. Everything else
   is dropped.

Rule 3 spends things (the proof, tokens), and spending them for a sender who
was not proved would let anyone spend a chosen person's allowance: the Olm
session proves only a *device* key, and the identity key in the sealed
envelope is a claim until the request's card (or the stored contact) binds it
to that device. Hence two steps: :meth:`RequestGate.check` (pure, before the
card is looked at) and :meth:`RequestGate.commit` (after). A proof is spent
once; the global bucket is scaled with the proof-of-work cost, so that
starving honest strangers costs an attacker CPU for as long as it lasts (see
:func:`overall_limiter`), not ten proofs sent three times each.

A dropped message is not acknowledged, so an honest sender's outbox keeps
re-sending it: nothing is lost when, say, a contact's first text overtakes our
own acceptance. The client's pipeline for a decrypted message is therefore:
decode → ``BLOCKED``? drop → duplicate (ordering.DedupWindow / database)?
re-send our DELIVERED receipt and stop → :meth:`~RequestGate.check` → verify a
stranger's card against the sender and its device → :meth:`~RequestGate.commit`
→ store, then acknowledge. Checking duplicates before the gate matters for
requests: an outbox re-sending a request we already stored may carry a proof
that has gone stale meanwhile, and it still deserves its receipt (a re-send
whose proof is still fresh passes the gate as ``RESENT``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from boxless.chat.envelope import Body, ContactRequest
from boxless.chat.pow import (
    DEFAULT_DIFFICULTY,
    PowVerdict,
    RateLimiter,
    SpentProofs,
    check_proof,
    proof_digest,
)
from boxless.errors import UsageError

__all__ = [
    "GLOBAL_BURST",
    "GLOBAL_WORK_RATE",
    "TRANSITIONS",
    "ContactEvent",
    "ContactState",
    "GateDecision",
    "GateReason",
    "RequestGate",
    "next_contact_state",
    "overall_limiter",
]


class ContactState(enum.Enum):
    NONE = "none"
    REQUEST_SENT = "request_sent"
    REQUEST_RECEIVED = "request_received"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    BLOCKED = "blocked"


class ContactEvent(enum.Enum):
    # local: the user's actions
    SEND_REQUEST = "send_request"
    ACCEPT = "accept"
    DECLINE = "decline"
    BLOCK = "block"
    UNBLOCK = "unblock"
    REMOVE = "remove"
    # remote: what the peer sent (and the gate let through)
    REQUEST_RECEIVED = "request_received"
    ACCEPT_RECEIVED = "accept_received"
    DECLINE_RECEIVED = "decline_received"

    @property
    def remote(self) -> bool:
        return self in _REMOTE


_REMOTE: Final = frozenset(
    {ContactEvent.REQUEST_RECEIVED, ContactEvent.ACCEPT_RECEIVED, ContactEvent.DECLINE_RECEIVED}
)

_N, _SENT, _RECV, _ACC, _DEC, _BLK = (
    ContactState.NONE,
    ContactState.REQUEST_SENT,
    ContactState.REQUEST_RECEIVED,
    ContactState.ACCEPTED,
    ContactState.DECLINED,
    ContactState.BLOCKED,
)
_E = ContactEvent

TRANSITIONS: Final[Mapping[tuple[ContactState, ContactEvent], ContactState]] = MappingProxyType(
    {
        # --- local ---
        (_N, _E.SEND_REQUEST): _SENT,
        (_SENT, _E.SEND_REQUEST): _SENT,  # send again (e.g. with a new proof)
        (_RECV, _E.SEND_REQUEST): _ACC,  # they asked us already: both said yes
        (_ACC, _E.SEND_REQUEST): _ACC,
        (_DEC, _E.SEND_REQUEST): _SENT,  # a new try, paid with a new proof of work
        (_RECV, _E.ACCEPT): _ACC,
        (_RECV, _E.DECLINE): _DEC,
        (_N, _E.BLOCK): _BLK,
        (_SENT, _E.BLOCK): _BLK,
        (_RECV, _E.BLOCK): _BLK,
        (_ACC, _E.BLOCK): _BLK,
        (_DEC, _E.BLOCK): _BLK,
        (_BLK, _E.BLOCK): _BLK,
        (_BLK, _E.UNBLOCK): _N,
        (_N, _E.REMOVE): _N,
        (_SENT, _E.REMOVE): _N,
        (_RECV, _E.REMOVE): _N,
        (_ACC, _E.REMOVE): _N,
        (_DEC, _E.REMOVE): _N,
        # --- remote (pairs not listed: ignored, state unchanged) ---
        (_N, _E.REQUEST_RECEIVED): _RECV,
        (_SENT, _E.REQUEST_RECEIVED): _ACC,  # requests crossed: both said yes
        (_DEC, _E.REQUEST_RECEIVED): _RECV,  # asking again costs them a new proof
        (_SENT, _E.ACCEPT_RECEIVED): _ACC,
        (_SENT, _E.DECLINE_RECEIVED): _DEC,
        (_ACC, _E.DECLINE_RECEIVED): _DEC,  # they no longer want to talk
    }
)
"""The whole contact machine. Local pairs not listed are illegal; remote ones are ignored."""


def next_contact_state(state: ContactState, event: ContactEvent) -> ContactState:
    """Return the state after ``event``; :class:`UsageError` for an impossible local action."""
    new = TRANSITIONS.get((state, event))
    if new is not None:
        return new
    if event.remote:
        return state
    raise UsageError(f"cannot {event.value.replace('_', ' ')} a contact in state {state.value!r}")


class GateReason(enum.Enum):
    CONTACT = "contact"
    REQUESTED = "requested"  # we sent them a request
    NEW_REQUEST = "new_request"  # a stranger's request with a valid proof
    RESENT = "resent"  # the request we hold, sent again with its (spent) proof
    BLOCKED = "blocked"
    NOT_A_CONTACT = "not_a_contact"
    BAD_PROOF = "bad_proof"
    STALE_PROOF = "stale_proof"
    REPLAYED_PROOF = "replayed_proof"  # a proof spent before
    RATE_LIMITED = "rate_limited"
    UNVERIFIED_SENDER = "unverified_sender"  # a stranger's card does not bind the sender


_SPENDS: Final = frozenset({GateReason.NEW_REQUEST, GateReason.RESENT})


@dataclass(frozen=True, slots=True)
class GateDecision:
    """Whether to let a message through, and why (for counters and debug logs)."""

    accept: bool
    reason: GateReason

    @property
    def spends(self) -> bool:
        """True for a stranger's request: accepting it needs :meth:`RequestGate.commit`."""
        return self.accept and self.reason in _SPENDS


GLOBAL_WORK_RATE: Final = 1 << 23
"""Hashes per second whose proofs the global bucket lets through (see :class:`RequestGate`)."""
GLOBAL_BURST: Final = 1_000
"""Requests from all strangers together that may arrive at once."""


def overall_limiter(difficulty: int) -> RateLimiter:
    """The default bucket shared by all strangers, scaled with the proof-of-work cost.

    It refills at ``GLOBAL_WORK_RATE / 2**difficulty`` requests per second (8 per
    second at the default 20 bits), so keeping it empty takes an attacker that
    many solved proofs a second: about 6 CPython cores, flat out (0.75 s a
    proof). Draining the 1,000-request burst first costs ~750 CPU-seconds.
    """
    return RateLimiter(
        rate_per_s=GLOBAL_WORK_RATE / (1 << difficulty), burst=GLOBAL_BURST, max_keys=1
    )


class RequestGate:
    """Decides which incoming messages go on (sans-IO; time and contact state are arguments).

    Two steps, so that nothing is spent on behalf of a sender who was not
    proved:

    * :meth:`check` is pure: block list, contact state, the proof of work (one
      hash), whether the proof was spent, whether the buckets have a token.
    * :meth:`commit` -- called only once the *sender is verified* (their card's
      certificate binds ``sender`` to the device key the Olm session proved, or
      the stored contact's device key matched) -- checks again and, for a
      stranger's request, spends: it remembers the proof (single use, see
      :class:`~boxless.chat.pow.SpentProofs`) and takes a token from the
      sender's bucket and from the global one.

    ``per_sender`` limits one identity's requests (default: 3 at once, then one
    per 10 minutes, buckets for the 10,000 most recent identities);
    ``overall`` limits all strangers together (default: :func:`overall_limiter`,
    scaled with the difficulty so that an attacker's CPU, not the honest
    strangers' patience, is what runs out). ``spent`` bounds the memory of
    spent proofs (default 50,000, more than the default limits can admit in the
    70 minutes a proof stays fresh).
    """

    def __init__(
        self,
        own_identity_key: bytes,
        *,
        difficulty: int = DEFAULT_DIFFICULTY,
        per_sender: RateLimiter | None = None,
        overall: RateLimiter | None = None,
        spent: SpentProofs | None = None,
    ) -> None:
        self.own_identity_key = own_identity_key
        self.difficulty = difficulty
        # `is None`, not `or`: an empty RateLimiter is falsy (it has a length)
        if per_sender is None:
            per_sender = RateLimiter(rate_per_s=1 / 600, burst=3)
        if overall is None:
            overall = overall_limiter(difficulty)
        if spent is None:
            spent = SpentProofs()
        self.per_sender = per_sender
        self.overall = overall
        self.spent = spent

    def check(self, sender: bytes, body: Body, *, state: ContactState, now_ms: int) -> GateDecision:
        """Decide without changing anything (``sender`` need not be verified yet).

        A decision whose :attr:`~GateDecision.spends` is True is provisional:
        verify the sender, then :meth:`commit`.
        """
        if state is ContactState.BLOCKED:
            return GateDecision(False, GateReason.BLOCKED)
        if state is ContactState.ACCEPTED:
            return GateDecision(True, GateReason.CONTACT)
        if state is ContactState.REQUEST_SENT:
            return GateDecision(True, GateReason.REQUESTED)
        if not isinstance(body, ContactRequest):
            return GateDecision(False, GateReason.NOT_A_CONTACT)
        verdict = check_proof(
            self.own_identity_key, sender, body.proof, now_ms=now_ms, difficulty=self.difficulty
        )
        if verdict in (PowVerdict.STALE, PowVerdict.FUTURE):
            return GateDecision(False, GateReason.STALE_PROOF)
        if verdict is not PowVerdict.OK:
            return GateDecision(False, GateReason.BAD_PROOF)
        now = now_ms / 1000
        if self.spent.is_spent(self._digest(sender, body), body.proof.timestamp_ms):
            # Only the sender it names can have spent it (the proof binds their key): an
            # outbox re-sending the request we hold deserves its receipt again, nothing more.
            if state is not ContactState.REQUEST_RECEIVED:
                return GateDecision(False, GateReason.REPLAYED_PROOF)
            if not self.per_sender.available(sender, now):
                return GateDecision(False, GateReason.RATE_LIMITED)
            return GateDecision(True, GateReason.RESENT)
        if not self.per_sender.available(sender, now) or not self.overall.available(b"", now):
            return GateDecision(False, GateReason.RATE_LIMITED)
        return GateDecision(True, GateReason.NEW_REQUEST)

    def commit(
        self,
        sender: bytes,
        body: Body,
        *,
        state: ContactState,
        now_ms: int,
        verify_sender: Callable[[], bool] | None = None,
    ) -> GateDecision:
        """Decide for a *verified* ``sender`` and spend what a stranger's request costs.

        Same arguments as :meth:`check`. A re-sent request (``RESENT``) costs a token
        of the sender's bucket only; a new one costs the proof (never accepted
        again), a token of the sender's bucket and one of the global bucket.

        ``verify_sender``, if given, is called only when something would be spent,
        and must say whether ``sender`` is proved (the request's card binds it to
        the device the Olm session proved, or a stored contact's device matched);
        False refuses the message (``UNVERIFIED_SENDER``) and spends nothing.
        """
        decision = self.check(sender, body, state=state, now_ms=now_ms)
        if not decision.spends:
            return decision
        if verify_sender is not None and not verify_sender():
            return GateDecision(False, GateReason.UNVERIFIED_SENDER)
        assert isinstance(body, ContactRequest)  # check() passes no other body here
        now = now_ms / 1000
        self.per_sender.allow(sender, now)
        if decision.reason is GateReason.NEW_REQUEST:
            self.overall.allow(b"", now)
            self.spent.spend(self._digest(sender, body), body.proof.timestamp_ms, now_ms=now_ms)
        return decision

    def should_accept(
        self,
        sender: bytes,
        body: Body,
        *,
        state: ContactState,
        now_ms: int,
        verify_sender: Callable[[], bool] | None = None,
    ) -> GateDecision:
        """:meth:`commit` under its old name.

        Without ``verify_sender`` the caller must have verified ``sender`` already;
        a caller that checks the card later passes it here, or calls :meth:`check`,
        verifies, then :meth:`commit`.
        """
        return self.commit(sender, body, state=state, now_ms=now_ms, verify_sender=verify_sender)

    def _digest(self, sender: bytes, body: ContactRequest) -> bytes:
        return proof_digest(self.own_identity_key, sender, body.proof)
