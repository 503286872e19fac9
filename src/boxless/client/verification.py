"""Emoji verification (SAS) with a contact: one flow per contact, its messages, its timeout.

Theory of operation
-------------------
:class:`SasBook` is the pure core: it holds one :class:`SasSession` per
contact (a :class:`~boxless.crypto.verification.SasFlow` and what the user
sees), takes the user's actions and the contact's SAS messages with the
current time, and returns an :class:`Outcome`: messages to send, events to
emit, a contact to mark verified. Nothing in it awaits. :class:`SasManager`
is the thin adapter the client composes: it resolves the two devices' keys,
runs the outcomes (send through the client's ordinary Olm + sealed 1:1 path,
mark verified exactly like a confirmed safety number) and arms the timeout
timer. Messages are never stored as chat history; flows live in memory.

Messages (``SasRequest``, ``SasKey``, ``SasMac``, ``SasCancel`` in
``wire/chat.proto``; docs/verification.md has the whole story)::

    initiator                                   responder
    start: SasRequest(flow, commitment) ------>  "requested": the user must accept
                                      <-------  accept: SasKey(flow, key_R)
    SasKey(flow, key_I) ---------------------->  checks the commitment
    both show the same 7 emoji (and 3 numbers); each user says whether they match
    confirm: SasMac(flow, mac) <-------------->  confirm: SasMac(flow, mac)
    both MACs checked: the contact's device is verified on each side

Rules, so no message ever crashes anything:

- a flow lasts at most :data:`FLOW_TIMEOUT_S`; then it is cancelled (``timeout``)
  and the other side is told. A message sent longer ago than that (a store
  catch-up, a re-send after a restart) is ignored.
- a second flow with the same contact replaces the first (either side may start
  one), except that starting while the contact's request waits accepts it.
  Crossed requests: the request of the smaller identity key wins, and the
  other side takes it as accepted (its user asked to verify).
- a re-sent copy of a message (same message id) is ignored; a MAC that overtakes
  the key it follows is held until the key arrives. Anything else out of order,
  or for a flow that is not running, is answered with a cancel (``unexpected``);
  a cancel is never answered.
- a commitment or MAC that does not check is cancelled as ``mismatch``, like the
  user's "they don't match".

Privacy: emoji, decimals and flow ids are not secret (both users read them
aloud); the SAS secret stays inside vodozemac. Logs name states and reasons only.
"""

from __future__ import annotations

import enum
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from boxless.chat import envelope as env
from boxless.chat.requests import ContactState
from boxless.client import events as ev
from boxless.client import store as db
from boxless.client.channel import DirectChannel, FollowUp, Received
from boxless.crypto.errors import CryptoUsageError, SasMismatch
from boxless.crypto.verification import SasFlow, SasParty, SasRole, SasState
from boxless.errors import BoxlessError, UsageError
from boxless.identity.account import LocalAccount

if TYPE_CHECKING:
    from boxless.client.contacts import Contacts
    from boxless.client.conversations import Conversations

logger = logging.getLogger(__name__)

__all__ = [
    "FLOW_TIMEOUT_S",
    "Outcome",
    "SasBook",
    "SasManager",
    "SasSession",
    "SasStateError",
    "View",
]

FLOW_TIMEOUT_S = 600.0
_SEEN_IDS = 512


class SasStateError(UsageError):
    """The user's action does not fit the flow's state (e.g. confirm before the emoji)."""


class View(enum.Enum):
    """What the user sees of a flow."""

    REQUESTED = "requested"  # they asked; our user must accept
    WAITING = "waiting"  # waiting for the other side (to accept, or for its key)
    COMPARE = "compare"  # the emoji are shown; our user must say whether they match
    CONFIRMED = "confirmed"  # our user said they match; waiting for the other side's MAC
    VERIFIED = "verified"
    CANCELLED = "cancelled"


_RUNNING = frozenset({View.REQUESTED, View.WAITING, View.COMPARE, View.CONFIRMED})
_WIRE_REASON = {r: r.name.lower() for r in env.SasCancelReason}


@dataclass
class SasSession:
    """One flow with one contact, as the user sees it."""

    contact: bytes
    flow: SasFlow
    deadline: float
    view: View
    commitment: bytes | None = field(default=None, repr=False)  # incoming, until accepted
    emoji: list[tuple[str, str]] = field(default_factory=list)
    decimals: tuple[int, ...] = ()
    reason: str | None = None  # user, mismatch, timeout, unexpected, replaced
    by: str | None = None  # who ended it: "us" or "them"
    pending_mac: bytes | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.view in _RUNNING

    def to_json(self, now: float) -> dict[str, Any]:
        """The flow for the API and events (JSON; nothing secret in it)."""
        return {
            "contact": self.contact.hex(),
            "flow": self.flow.flow_id,
            "role": self.flow.role.value,
            "state": self.view.value,
            "emoji": [{"emoji": e, "name": n} for e, n in self.emoji],
            "decimals": list(self.decimals),
            "they_confirmed": self.flow.state in (SasState.THEIRS_VERIFIED, SasState.VERIFIED),
            "reason": self.reason,
            "by": self.by,
            "expires_in_s": max(0, round(self.deadline - now)) if self.running else 0,
        }


@dataclass
class Outcome:
    """What a step asks the adapter to do, in this order: verify, emit, send."""

    sends: list[tuple[bytes, env.Body]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    verified: list[tuple[bytes, bytes]] = field(default_factory=list)  # (contact, device key)


class SasBook:
    """Every contact's current flow; pure (see the module docstring)."""

    def __init__(self, ours: SasParty, *, timeout: float = FLOW_TIMEOUT_S) -> None:
        self.ours = ours
        self.timeout = timeout
        self.sessions: dict[bytes, SasSession] = {}
        self._seen: dict[bytes, None] = {}

    def current(self, contact: bytes) -> SasSession | None:
        return self.sessions.get(contact)

    # -- the user's actions ------------------------------------------------------------

    def start(self, contact: bytes, theirs: SasParty, now: float) -> Outcome:
        """Start a flow with ``contact`` (replacing any running one), or accept
        theirs if they asked first: two requests racing would only collide."""
        out = Outcome()
        asked = self.sessions.get(contact)
        if asked is not None and asked.view is View.REQUESTED:
            self._accept(asked, now, out)
            return out
        self._replace(contact, now, out)
        flow = SasFlow(self.ours, theirs, role=SasRole.INITIATOR, flow_id=secrets.token_urlsafe(12))
        session = SasSession(contact, flow, now + self.timeout, View.WAITING)
        self.sessions[contact] = session
        out.sends.append((contact, env.SasRequest(flow.flow_id, flow.start())))
        self._changed(session, now, out)
        return out

    def accept(self, contact: bytes, now: float) -> Outcome:
        """Our user accepts the contact's request: send our key."""
        session = self._expect(contact, {View.REQUESTED}, "there is no request to accept")
        out = Outcome()
        self._accept(session, now, out)
        return out

    def confirm(self, contact: bytes, now: float) -> Outcome:
        """Our user says the emoji match: send our MAC."""
        session = self._expect(contact, {View.COMPARE}, "there are no emoji to confirm")
        out = Outcome()
        mac = session.flow.confirm()
        out.sends.append((contact, env.SasMac(session.flow.flow_id, mac)))
        self._after_mac_step(session, now, out)
        return out

    def mismatch(self, contact: bytes, now: float) -> Outcome:
        """Our user says the emoji differ: cancel on both sides."""
        self._expect(contact, {View.COMPARE, View.CONFIRMED}, "there are no emoji to compare")
        return self._cancel_ours(contact, env.SasCancelReason.MISMATCH, now)

    def cancel(self, contact: bytes, now: float) -> Outcome:
        """Our user gives up (or declines a request)."""
        self._expect(contact, _RUNNING, "no emoji verification is running")
        return self._cancel_ours(contact, env.SasCancelReason.USER, now)

    # -- time -------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        deadlines = [s.deadline for s in self.sessions.values() if s.running]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> Outcome:
        out = Outcome()
        for contact, session in list(self.sessions.items()):
            if session.running and session.deadline <= now:
                logger.info("an emoji verification timed out")
                out = _merge(out, self._cancel_ours(contact, env.SasCancelReason.TIMEOUT, now))
        return out

    # -- the contact's messages ----------------------------------------------------------

    def receive(
        self,
        contact: bytes,
        theirs: SasParty,
        msg: env.ChatMessage,
        now: float,
    ) -> Outcome:
        """One SAS message from ``contact`` (whose device is ``theirs``)."""
        out = Outcome()
        body = msg.body
        if not isinstance(body, env.SAS_BODIES):
            raise CryptoUsageError("SasBook.receive takes SAS bodies only")
        if msg.message_id in self._seen:
            return out  # a re-sent copy: the first one was handled
        self._seen[msg.message_id] = None
        while len(self._seen) > _SEEN_IDS:
            del self._seen[next(iter(self._seen))]
        if now - msg.sent_at_ms / 1000 > self.timeout:
            logger.info("ignored an emoji-verification message older than a flow lasts")
            return out
        if isinstance(body, env.SasRequest):
            try:
                self._on_request(contact, theirs, body, now, out)
            except (SasMismatch, CryptoUsageError) as exc:
                logger.info("an emoji-verification request was unusable: %s", exc)
            return out
        session = self.sessions.get(contact)
        if session is None or session.flow.flow_id != body.flow_id:
            if not isinstance(body, env.SasCancel):
                out.sends.append((contact, env.SasCancel(body.flow_id, _UNEXPECTED)))
            return out
        if not session.running:
            return out  # a flow already over: its stragglers need no answer
        return self._step(session, body, now, out)

    def _step(self, session: SasSession, body: env.Body, now: float, out: Outcome) -> Outcome:
        contact = session.contact
        try:
            if isinstance(body, env.SasCancel):
                self._end(session, _WIRE_REASON[body.reason], "them", now, out)
            elif isinstance(body, env.SasKey):
                self._on_key(session, body.key, now, out)
            elif isinstance(body, env.SasMac):
                self._on_mac(session, body.mac, now, out)
        except SasMismatch as exc:
            logger.info("emoji verification failed a check: %s", exc)
            out = _merge(out, self._cancel_ours(contact, env.SasCancelReason.MISMATCH, now))
        except (_OutOfOrder, CryptoUsageError):
            logger.info("an emoji-verification message came out of order; cancelled")
            out = _merge(out, self._cancel_ours(contact, _UNEXPECTED, now))
        return out

    def device_changed(self, contact: bytes, now: float) -> Outcome:
        """The contact's device changed during the flow: what was checked is not theirs now."""
        return self._cancel_ours(contact, env.SasCancelReason.MISMATCH, now)

    def _on_request(
        self, contact: bytes, theirs: SasParty, body: env.SasRequest, now: float, out: Outcome
    ) -> None:
        mine = self.sessions.get(contact)
        crossed = (
            mine is not None
            and mine.running
            and mine.flow.role is SasRole.INITIATOR
            and mine.flow.state is SasState.COMMITTED
        )
        if crossed and self.ours.identity_key < contact:
            return  # ours wins: they drop theirs when ours arrives
        self._replace(contact, now, out)
        flow = SasFlow(self.ours, theirs, role=SasRole.RESPONDER, flow_id=body.flow_id)
        session = SasSession(
            contact, flow, now + self.timeout, View.REQUESTED, commitment=body.commitment
        )
        self.sessions[contact] = session
        if crossed:  # our user asked for a verification with them: theirs is it
            self._accept(session, now, out)
        else:
            self._changed(session, now, out)

    def _accept(self, session: SasSession, now: float, out: Outcome) -> None:
        commitment, session.commitment = session.commitment, None
        assert commitment is not None  # REQUESTED sessions hold one
        key = session.flow.receive_commitment(commitment)
        session.view = View.WAITING
        out.sends.append((session.contact, env.SasKey(session.flow.flow_id, key)))
        self._changed(session, now, out)

    def _on_key(self, session: SasSession, key: bytes, now: float, out: Outcome) -> None:
        flow = session.flow
        expected = SasState.COMMITTED if flow.role is SasRole.INITIATOR else SasState.AWAITING_KEY
        if session.view is not View.WAITING or flow.state is not expected:
            raise _OutOfOrder
        ours = flow.receive_key(key)
        if ours is not None:
            out.sends.append((session.contact, env.SasKey(flow.flow_id, ours)))
        session.emoji = flow.emoji()
        session.decimals = flow.decimals()
        session.view = View.COMPARE
        if session.pending_mac is not None:
            mac, session.pending_mac = session.pending_mac, None
            flow.receive_mac(mac)
        self._changed(session, now, out)

    def _on_mac(self, session: SasSession, mac: bytes, now: float, out: Outcome) -> None:
        flow = session.flow
        if flow.state is SasState.AWAITING_KEY and session.pending_mac is None:
            session.pending_mac = mac  # overtook the initiator's key: wait for it
            return
        if flow.state not in (SasState.KEYS_EXCHANGED, SasState.CONFIRMED):
            raise _OutOfOrder
        flow.receive_mac(mac)
        self._after_mac_step(session, now, out)

    def _after_mac_step(self, session: SasSession, now: float, out: Outcome) -> None:
        if session.flow.verified:
            session.view = View.VERIFIED
            out.verified.append((session.contact, session.flow.theirs.device_curve25519))
        elif session.flow.state is SasState.CONFIRMED:
            session.view = View.CONFIRMED
        self._changed(session, now, out)

    # -- endings ----------------------------------------------------------------------

    def _cancel_ours(self, contact: bytes, reason: env.SasCancelReason, now: float) -> Outcome:
        out = Outcome()
        session = self.sessions[contact]
        out.sends.append((contact, env.SasCancel(session.flow.flow_id, reason)))
        self._end(session, _WIRE_REASON[reason], "us", now, out)
        return out

    def _replace(self, contact: bytes, now: float, out: Outcome) -> None:
        old = self.sessions.get(contact)
        if old is not None and old.running:
            self._end(old, "replaced", "us", now, out)

    def _end(self, session: SasSession, reason: str, by: str, now: float, out: Outcome) -> None:
        if session.flow.state not in (SasState.FAILED, SasState.CANCELLED):
            session.flow.cancel()
        session.view = View.CANCELLED
        session.reason, session.by = reason, by
        session.emoji, session.decimals = [], ()
        session.commitment = session.pending_mac = None
        self._changed(session, now, out)

    def _expect(self, contact: bytes, views: set[View] | frozenset[View], why: str) -> SasSession:
        session = self.sessions.get(contact)
        if session is None or session.view not in views:
            shown = "none" if session is None else session.view.value
            raise SasStateError(f"{why} (the emoji verification is {shown})")
        return session

    @staticmethod
    def _changed(session: SasSession, now: float, out: Outcome) -> None:
        out.events.append({"type": "verification", **session.to_json(now)})


class _OutOfOrder(Exception):
    """A message the flow's state does not allow (internal: becomes a cancel)."""


_UNEXPECTED = env.SasCancelReason.UNEXPECTED


def _merge(a: Outcome, b: Outcome) -> Outcome:
    return Outcome(a.sends + b.sends, a.events + b.events, a.verified + b.verified)


class SasManager:
    """Runs :class:`SasBook` for the client: keys in, messages and marks out.

    Composed by :class:`~boxless.client.core.Client` as ``client.sas``; the
    client hands it every SAS message from an accepted contact
    (:meth:`on_message`) and runs :meth:`run` in its nursery.
    """

    def __init__(
        self,
        account: LocalAccount,
        channel: DirectChannel,
        conversations: Conversations,
        contacts: Contacts,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        cert = account.device.certificate
        ours = SasParty(account.identity.public_key, cert.device_curve25519, cert.device_ed25519)
        self.book = SasBook(ours)
        self.channel = channel
        self.conversations = conversations
        self.contacts = contacts
        self.clock = clock
        self._wake = trio.Event()
        channel.handlers.on_body(env.SAS_BODIES, self._on_message)

    async def run(self) -> None:
        """Cancel flows that time out, until cancelled (nothing is lost: flows are in memory)."""
        while True:
            timer = self.book.get_timer()
            delay = 3600.0 if timer is None else max(0.0, timer - self.clock())
            with trio.move_on_after(delay):
                await self._wake.wait()
            self._wake = trio.Event()
            await self._execute(self.book.handle_timer(self.clock()))

    # -- for the API -------------------------------------------------------------------

    def current(self, identity_key: bytes) -> dict[str, Any]:
        """The flow with this contact as JSON (``{"state": "none"}`` if there was none)."""
        self.conversations.accepted(identity_key)  # an unknown contact is a clear error
        session = self.book.current(identity_key)
        if session is None:
            return {"contact": identity_key.hex(), "state": "none"}
        return session.to_json(self.clock())

    def running(self) -> list[dict[str, Any]]:
        """Every flow still running, as JSON: a page opened after a request arrived
        shows its prompt from here (the event went out before the page listened)."""
        now = self.clock()
        return [s.to_json(now) for s in self.book.sessions.values() if s.running]

    async def start(self, identity_key: bytes) -> dict[str, Any]:
        """Start comparing emoji with an accepted contact (or accept their waiting request)."""
        theirs = self._their_party(self.conversations.accepted(identity_key))
        await self._execute(self.book.start(identity_key, theirs, self.clock()))
        return self.current(identity_key)

    async def accept(self, identity_key: bytes) -> dict[str, Any]:
        """Accept the contact's request: the emoji show once their key is in."""
        return await self._act(identity_key, self.book.accept)

    async def confirm(self, identity_key: bytes) -> dict[str, Any]:
        """The emoji match: send our MAC; verified once theirs checks too."""
        return await self._act(identity_key, self.book.confirm)

    async def mismatch(self, identity_key: bytes) -> dict[str, Any]:
        """The emoji differ: cancel on both sides (reason ``mismatch``)."""
        return await self._act(identity_key, self.book.mismatch)

    async def cancel(self, identity_key: bytes) -> dict[str, Any]:
        """Give up, or decline a request (reason ``user``)."""
        return await self._act(identity_key, self.book.cancel)

    async def _act(
        self, identity_key: bytes, step: Callable[[bytes, float], Outcome]
    ) -> dict[str, Any]:
        self.conversations.accepted(identity_key)
        await self._execute(step(identity_key, self.clock()))
        return self.current(identity_key)

    # -- from the client's receive pipeline ------------------------------------------------

    def _on_message(self, cur: db.Cursor, r: Received) -> FollowUp | None:
        """Take a SAS message (inside the client's receive transaction; never raises for
        the peer's sake); returns what to run once that transaction is over."""
        out = Outcome()
        contact, msg = r.contact, r.message
        if contact is None or contact.state != ContactState.ACCEPTED.value:
            logger.info("ignored an emoji-verification message from someone not a contact")
        else:
            try:
                theirs = self._their_party(contact)
            except BoxlessError as exc:
                logger.info("emoji verification impossible: %s", exc)
            else:
                out = self.book.receive(contact.identity_key, theirs, msg, self.clock())

        async def follow_up() -> None:
            await self._execute(out)

        return follow_up

    # -- internals ---------------------------------------------------------------------

    def _their_party(self, contact: db.ContactRow) -> SasParty:
        """The contact's device as we know it: its card's, or the newer bundle it published."""
        bundle = self.channel.contact_bundle(contact)
        return SasParty(contact.identity_key, bundle.curve25519, bundle.ed25519)

    async def _execute(self, out: Outcome) -> None:
        for contact, device_key in out.verified:
            if not self._mark_verified(contact, device_key):
                out = _merge(out, self.book.device_changed(contact, self.clock()))
        for event in out.events:
            self.channel.emit(_event(event))
        for contact, body in out.sends:
            try:
                await self.conversations.send_body(contact, body)
            except UsageError as exc:  # e.g. no longer a contact: the flow ends by timeout
                logger.info("emoji-verification message not sent: %s", exc)
        if out.sends or out.events:
            self._wake.set()  # a new deadline, maybe

    def _mark_verified(self, contact: bytes, device_key: bytes) -> bool:
        """Both MACs checked: remember this device as verified, as a safety number would."""
        try:
            row = self.conversations.accepted(contact)
        except UsageError:  # no longer a contact
            return False
        if row.device_key != device_key:  # they moved device during the flow
            logger.warning("a contact's device changed during emoji verification; not verified")
            return False
        self.contacts.confirm_verified(contact)
        logger.info("a contact was verified by emoji")
        return True


def _event(flow: dict[str, Any]) -> ev.VerificationChanged:
    """A flow's JSON (:meth:`SasSession.to_json`) as the typed event."""
    return ev.VerificationChanged(
        contact=flow["contact"],
        flow=flow["flow"],
        role=flow["role"],
        state=flow["state"],
        emoji=tuple(ev.SasEmoji(e["emoji"], e["name"]) for e in flow["emoji"]),
        decimals=tuple(flow["decimals"]),
        they_confirmed=flow["they_confirmed"],
        reason=flow["reason"],
        by=flow["by"],
        expires_in_s=flow["expires_in_s"],
    )
