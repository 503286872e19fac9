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

*The gate.* :meth:`RequestGate.should_accept` decides, before anything is
stored or shown, whether a decrypted message from ``sender`` goes on:

1. ``BLOCKED`` senders: dropped silently -- no receipt, no error, nothing they
   could observe.
2. Contacts, and people we sent a request to: accepted (anything; a reply can
   overtake the ACCEPT response).
3. Anyone else may only send a :class:`~boxless.chat.envelope.ContactRequest`,
   and only with a fresh, valid proof of work for *our* key and *their* key,
   within a per-sender and a global rate limit. Everything else is dropped.

A dropped message is not acknowledged, so an honest sender's outbox keeps
re-sending it: nothing is lost when, say, a contact's first text overtakes our
own acceptance. The client's pipeline for a decrypted message is therefore:
decode → ``BLOCKED``? drop → duplicate (ordering.DedupWindow / database)?
re-send our DELIVERED receipt and stop → :meth:`~RequestGate.should_accept` →
store, then acknowledge. Checking duplicates before the gate matters for
requests: an outbox re-sending a request we already stored may carry a proof
that has gone stale meanwhile, and it still deserves its receipt.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from boxless.chat.envelope import Body, ContactRequest
from boxless.chat.pow import (
    DEFAULT_DIFFICULTY,
    PowVerdict,
    RateLimiter,
    check_proof,
)
from boxless.errors import UsageError

__all__ = [
    "TRANSITIONS",
    "ContactEvent",
    "ContactState",
    "GateDecision",
    "GateReason",
    "RequestGate",
    "next_contact_state",
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
    BLOCKED = "blocked"
    NOT_A_CONTACT = "not_a_contact"
    BAD_PROOF = "bad_proof"
    STALE_PROOF = "stale_proof"
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True, slots=True)
class GateDecision:
    """Whether to let a message through, and why (for counters and debug logs)."""

    accept: bool
    reason: GateReason


class RequestGate:
    """Decides which incoming messages go on (sans-IO; time and contact state are arguments).

    ``per_sender`` limits one identity's requests (default: 3 at once, then one
    per 10 minutes); ``overall`` limits requests from all strangers together
    (default: 30 at once, then one per 10 seconds), because identities cost nothing.
    """

    def __init__(
        self,
        own_identity_key: bytes,
        *,
        difficulty: int = DEFAULT_DIFFICULTY,
        per_sender: RateLimiter | None = None,
        overall: RateLimiter | None = None,
    ) -> None:
        self.own_identity_key = own_identity_key
        self.difficulty = difficulty
        # `is None`, not `or`: an empty RateLimiter is falsy (it has a length)
        if per_sender is None:
            per_sender = RateLimiter(rate_per_s=1 / 600, burst=3)
        if overall is None:
            overall = RateLimiter(rate_per_s=1 / 10, burst=30, max_keys=1)
        self.per_sender = per_sender
        self.overall = overall

    def should_accept(
        self, sender: bytes, body: Body, *, state: ContactState, now_ms: int
    ) -> GateDecision:
        """Decide for a decrypted message whose Olm session proved ``sender``'s identity."""
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
        if not self.per_sender.allow(sender, now) or not self.overall.allow(b"", now):
            return GateDecision(False, GateReason.RATE_LIMITED)
        return GateDecision(True, GateReason.NEW_REQUEST)
