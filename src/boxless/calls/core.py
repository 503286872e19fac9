"""The call state machine, sans-IO: signals and the time in, signals and states out.

Theory of operation. One user has at most one call at a time. A call is
``outgoing`` (we ring them) or ``incoming`` (they ring us) until the callee
accepts, then ``connecting`` until the browser reports ICE connected, then
``connected``; every path ends in ``ended`` with a reason::

    idle -> outgoing --answer--> connecting --connected--> connected
    idle -> incoming --accept--> connecting                     |
    outgoing/incoming --ring timeout--> ended(missed)           |
    outgoing --decline/busy--> ended(declined/busy)             |
    connecting --connect timeout--> ended(failed)               |
    any --hang up--> ended(hung_up)       connected --peer silent--> ended(lost)

Every input from the network is attacker-controlled: the caller of
:meth:`CallCore.receive` says whether the sender may call us at all (a contact),
and the core drops, with a counted reason, an offer that is replayed (its call
id already ended), stale (sent longer ago than the ring timeout), from a peer
over its rate, or with bad SDP, and any signal that does not belong to the
running call with this peer. Nothing rings twice for one call id.

``now`` is seconds on any monotonic-enough clock (the client's); a signal's
``sent_at`` is the sender's wall clock in the same unit. :meth:`get_timer` and
:meth:`handle_timer` drive the timeouts and keep-alives.
"""

from __future__ import annotations

import enum
from collections import Counter, OrderedDict
from dataclasses import dataclass, replace
from typing import Final

from boxless.buckets import Buckets
from boxless.calls.sdp import SdpFacts, call_code, parse_sdp
from boxless.chat.envelope import CallSignal, CallSignalKind
from boxless.errors import DecodeError, UsageError

__all__ = [
    "CONNECT_TIMEOUT",
    "KEEPALIVE_EVERY",
    "LOST_AFTER",
    "RING_TIMEOUT",
    "Call",
    "CallCore",
    "Changed",
    "EndReason",
    "Out",
    "Phase",
    "RemoteCandidates",
    "Send",
]

RING_TIMEOUT: Final = 45.0
CONNECT_TIMEOUT: Final = 20.0
KEEPALIVE_EVERY: Final = 5.0
LOST_AFTER: Final = 20.0
OFFER_BURST: Final = 5
"""Offers a peer may send at once; then one per OFFER_EVERY seconds."""
OFFER_EVERY: Final = 2.0
MAX_REMOTE_CANDIDATES: Final = 64
ENDED_REMEMBERED: Final = 1024
MAX_PEERS_TRACKED: Final = 1024
MAX_RESTARTS: Final = 10
"""ICE restarts per call (the caller's new offer on the same connection)."""


class Phase(enum.Enum):
    OUTGOING = "outgoing"
    INCOMING = "incoming"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    ENDED = "ended"


class EndReason(enum.Enum):
    HUNG_UP = "hung_up"
    DECLINED = "declined"
    BUSY = "busy"
    MISSED = "missed"
    FAILED = "failed"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class Call:
    """A snapshot of one call."""

    call_id: bytes
    peer: bytes
    outgoing: bool
    video: bool
    phase: Phase
    started_at: float
    offer_sdp: str
    answer_sdp: str = ""
    code: str = ""
    phase_at: float = 0.0
    connected_at: float | None = None
    ended_at: float | None = None
    reason: EndReason | None = None
    last_heard: float = 0.0
    last_sent: float = 0.0
    remote_candidates: int = 0
    restarts: int = 0  # ICE restarts so far (each a new offer/answer on the same connection)

    @property
    def duration(self) -> float:
        """Seconds connected (0 for a call that never connected)."""
        if self.connected_at is None:
            return 0.0
        end = self.ended_at if self.ended_at is not None else self.connected_at
        return max(0.0, end - self.connected_at)


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``signal`` to ``peer`` (ephemeral)."""

    peer: bytes
    signal: CallSignal


@dataclass(frozen=True, slots=True)
class Changed:
    """A call changed (rings, connects, ends...)."""

    call: Call


@dataclass(frozen=True, slots=True)
class RemoteCandidates:
    """ICE candidates from the peer, for our browser."""

    call_id: bytes
    candidates: tuple[str, ...]


Out = Send | Changed | RemoteCandidates


class CallCore:
    """One user's calls: at most one running, the ended ones remembered (bounded)."""

    def __init__(self) -> None:
        self.current: Call | None = None
        self.dropped: Counter[str] = Counter()
        self._ended: OrderedDict[bytes, float] = OrderedDict()
        self._buckets = Buckets(OFFER_BURST, OFFER_EVERY, MAX_PEERS_TRACKED)

    # -- local actions (the user, through the API) ----------------------------------------

    def start(
        self, peer: bytes, call_id: bytes, offer_sdp: str, video: bool, now: float
    ) -> list[Out]:
        """Ring ``peer`` with our browser's offer; :class:`UsageError` if a call runs."""
        self._idle_or_raise()
        parse_sdp(offer_sdp)  # our own browser's: a DecodeError here is a bug upstream
        call = Call(
            call_id,
            peer,
            True,
            video,
            Phase.OUTGOING,
            now,
            offer_sdp,
            phase_at=now,
            last_heard=now,
            last_sent=now,
        )
        self.current = call
        offer = CallSignal(call_id, CallSignalKind.OFFER, sdp=offer_sdp, video=video)
        return [Send(peer, offer), Changed(call)]

    def accept(self, call_id: bytes, answer_sdp: str, now: float) -> list[Out]:
        """Answer the ringing incoming call with our browser's answer."""
        call = self._running(call_id)
        if self._restarting(call) and not call.outgoing:  # the answer to a restart
            parse_sdp(answer_sdp)
            self.current = replace(call, answer_sdp=answer_sdp, last_sent=now)
            again = CallSignal(call_id, CallSignalKind.ANSWER, sdp=answer_sdp)
            return [Send(call.peer, again), Changed(self.current)]
        if call.phase is not Phase.INCOMING:
            raise UsageError("this call is not ringing")
        answer = parse_sdp(answer_sdp)
        code = call_code(call_id, parse_sdp(call.offer_sdp).fingerprint, answer.fingerprint)
        call = replace(
            call,
            phase=Phase.CONNECTING,
            phase_at=now,
            answer_sdp=answer_sdp,
            code=code,
            last_sent=now,
            last_heard=now,
        )
        self.current = call
        return [
            Send(call.peer, CallSignal(call_id, CallSignalKind.ANSWER, sdp=answer_sdp)),
            Changed(call),
        ]

    def decline(self, call_id: bytes, now: float) -> list[Out]:
        """Decline the ringing incoming call."""
        call = self._running(call_id)
        if call.phase is not Phase.INCOMING:
            raise UsageError("this call is not ringing")
        return [
            Send(call.peer, CallSignal(call_id, CallSignalKind.DECLINE)),
            *self._end(EndReason.DECLINED, now),
        ]

    def hang_up(self, call_id: bytes, now: float) -> list[Out]:
        """End the call (or stop ringing them); an incoming ringing call is declined."""
        call = self._running(call_id)
        if call.phase is Phase.INCOMING:
            return self.decline(call_id, now)
        return [
            Send(call.peer, CallSignal(call_id, CallSignalKind.HANGUP)),
            *self._end(EndReason.HUNG_UP, now),
        ]

    def restart(self, call_id: bytes, offer_sdp: str, now: float) -> list[Out]:
        """The caller's browser restarts ICE: a new offer on the same connection (same
        DTLS certificate); the callee answers it with :meth:`accept`."""
        call = self._running(call_id)
        if not call.outgoing or call.phase not in (Phase.CONNECTING, Phase.CONNECTED):
            raise UsageError("only the caller restarts a call that was answered")
        if call.restarts >= MAX_RESTARTS:
            raise UsageError("this call was restarted too often: hang up and call again")
        if parse_sdp(offer_sdp).fingerprint != parse_sdp(call.offer_sdp).fingerprint:
            raise UsageError("a restart keeps the connection (its certificate)")
        self.current = replace(
            call, offer_sdp=offer_sdp, answer_sdp="", restarts=call.restarts + 1,
            remote_candidates=0, last_sent=now,
        )  # fmt: skip
        offer = CallSignal(call_id, CallSignalKind.OFFER, sdp=offer_sdp, video=call.video)
        return [Send(call.peer, offer), Changed(self.current)]

    def connected(self, call_id: bytes, now: float) -> list[Out]:
        """Our browser's ICE connection is up."""
        call = self._running(call_id)
        if call.phase is Phase.CONNECTED:
            return []
        if call.phase is not Phase.CONNECTING:
            raise UsageError("this call is not connecting")
        self.current = replace(call, phase=Phase.CONNECTED, phase_at=now, connected_at=now)
        return [Changed(self.current)]

    def local_candidates(
        self, call_id: bytes, candidates: tuple[str, ...], now: float
    ) -> list[Out]:
        """Our browser's ICE candidates, for the peer."""
        call = self._running(call_id)
        self.current = replace(call, last_sent=now)
        return [
            Send(call.peer, CallSignal(call_id, CallSignalKind.CANDIDATES, candidates=candidates))
        ]

    # -- the network -----------------------------------------------------------------------

    def receive(
        self, peer: bytes, signal: CallSignal, sent_at: float, now: float, *, allowed: bool
    ) -> list[Out]:
        """A signal from ``peer``; ``allowed``: they may call us (a contact)."""
        if not allowed:
            return self._drop("not a contact")
        if signal.kind is CallSignalKind.OFFER:
            return self._offer(peer, signal, sent_at, now)
        call = self.current
        if call is None or call.call_id != signal.call_id or call.peer != peer:
            return self._drop("not the running call")
        self.current = call = replace(call, last_heard=now)
        match signal.kind:
            case CallSignalKind.ANSWER:
                return self._answer(call, signal, now)
            case CallSignalKind.CANDIDATES:
                if call.remote_candidates + len(signal.candidates) > MAX_REMOTE_CANDIDATES:
                    return self._drop("too many candidates")
                self.current = replace(
                    call, remote_candidates=call.remote_candidates + len(signal.candidates)
                )
                return [RemoteCandidates(call.call_id, signal.candidates)]
            case CallSignalKind.HANGUP:
                ringing = call.phase is Phase.INCOMING
                return self._end(EndReason.MISSED if ringing else EndReason.HUNG_UP, now)
            case CallSignalKind.DECLINE | CallSignalKind.BUSY:
                if not (call.outgoing and call.phase is Phase.OUTGOING):
                    return self._drop("unexpected signal")
                why = EndReason.BUSY if signal.kind is CallSignalKind.BUSY else EndReason.DECLINED
                return self._end(why, now)
            case CallSignalKind.KEEPALIVE:
                return []
        return self._drop("unexpected signal")

    def _offer(self, peer: bytes, signal: CallSignal, sent_at: float, now: float) -> list[Out]:
        if not self._take_token(peer, now):
            return self._drop("offer rate")
        if signal.call_id in self._ended:
            return self._drop("offer for an ended call")
        if self.current is not None and self.current.call_id == signal.call_id:
            call = self.current
            if call.peer != peer or call.outgoing or signal.sdp == call.offer_sdp:
                return self._drop("offer repeated")
            return self._restart_offer(call, signal, now)
        if sent_at < now - RING_TIMEOUT or sent_at > now + RING_TIMEOUT:
            return self._drop("offer stale")
        try:
            parse_sdp(signal.sdp)
        except DecodeError:
            return self._drop("offer with bad SDP")
        call = Call(
            signal.call_id,
            peer,
            False,
            signal.video,
            Phase.INCOMING,
            now,
            signal.sdp,
            phase_at=now,
            last_heard=now,
            last_sent=now,
        )
        if self.current is not None:
            # Busy: tell them, and keep a row of the call we could not take.
            ended = replace(call, phase=Phase.ENDED, ended_at=now, reason=EndReason.BUSY)
            self._remember(signal.call_id, now)
            return [Send(peer, CallSignal(signal.call_id, CallSignalKind.BUSY)), Changed(ended)]
        self.current = call
        return [Changed(call)]

    def _restart_offer(self, call: Call, signal: CallSignal, now: float) -> list[Out]:
        """The caller's ICE restart of the running call (rate-limited with its offers)."""
        if call.phase not in (Phase.CONNECTING, Phase.CONNECTED):
            return self._drop("offer repeated")
        if call.restarts >= MAX_RESTARTS:
            return self._drop("too many restarts")
        try:
            facts = parse_sdp(signal.sdp)
        except DecodeError:
            return self._drop("offer with bad SDP")
        if facts.fingerprint != parse_sdp(call.offer_sdp).fingerprint:
            return self._drop("restart with another certificate")
        self.current = replace(
            call, offer_sdp=signal.sdp, answer_sdp="", restarts=call.restarts + 1,
            remote_candidates=0, last_heard=now,
        )  # fmt: skip
        return [Changed(self.current)]

    @staticmethod
    def _restarting(call: Call) -> bool:
        """A restart offer went out (or came) and its answer did not yet."""
        return call.restarts > 0 and not call.answer_sdp and call.phase in (
            Phase.CONNECTING, Phase.CONNECTED,
        )  # fmt: skip

    def _answer(self, call: Call, signal: CallSignal, now: float) -> list[Out]:
        if call.outgoing and self._restarting(call):
            try:
                parse_sdp(signal.sdp)
            except DecodeError:
                return self._drop("answer with bad SDP")
            self.current = replace(call, answer_sdp=signal.sdp)
            return [Changed(self.current)]
        if not (call.outgoing and call.phase is Phase.OUTGOING):
            return self._drop("unexpected signal")
        try:
            facts: SdpFacts = parse_sdp(signal.sdp)
        except DecodeError:
            return self._drop("answer with bad SDP")
        code = call_code(call.call_id, parse_sdp(call.offer_sdp).fingerprint, facts.fingerprint)
        self.current = replace(
            call, phase=Phase.CONNECTING, phase_at=now, answer_sdp=signal.sdp, code=code
        )
        return [Changed(self.current)]

    # -- time --------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` must next run (None: no call)."""
        call = self.current
        if call is None:
            return None
        match call.phase:
            case Phase.OUTGOING | Phase.INCOMING:
                return call.started_at + RING_TIMEOUT
            case Phase.CONNECTING:
                return min(call.phase_at + CONNECT_TIMEOUT, call.last_sent + KEEPALIVE_EVERY)
            case _:
                return min(call.last_heard + LOST_AFTER, call.last_sent + KEEPALIVE_EVERY)

    def handle_timer(self, now: float) -> list[Out]:
        """Ring and connect timeouts, lost peers, keep-alives."""
        call = self.current
        if call is None:
            return []
        bye = Send(call.peer, CallSignal(call.call_id, CallSignalKind.HANGUP))
        if call.phase in (Phase.OUTGOING, Phase.INCOMING):
            if now >= call.started_at + RING_TIMEOUT:
                return (
                    [bye, *self._end(EndReason.MISSED, now)]
                    if call.outgoing
                    else self._end(EndReason.MISSED, now)
                )
            return []
        if call.phase is Phase.CONNECTING and now >= call.phase_at + CONNECT_TIMEOUT:
            return [bye, *self._end(EndReason.FAILED, now)]
        if now >= call.last_heard + LOST_AFTER:
            return [bye, *self._end(EndReason.LOST, now)]
        if now >= call.last_sent + KEEPALIVE_EVERY:
            self.current = replace(call, last_sent=now)
            return [Send(call.peer, CallSignal(call.call_id, CallSignalKind.KEEPALIVE))]
        return []

    # -- helpers -----------------------------------------------------------------------------

    def _idle_or_raise(self) -> None:
        if self.current is not None:
            raise UsageError("you are already in a call: hang up first")

    def _running(self, call_id: bytes) -> Call:
        if self.current is None or self.current.call_id != call_id:
            raise UsageError("no such call running")
        return self.current

    def _end(self, reason: EndReason, now: float) -> list[Out]:
        call = self.current
        assert call is not None
        ended = replace(call, phase=Phase.ENDED, ended_at=now, reason=reason)
        self.current = None
        self._remember(call.call_id, now)
        return [Changed(ended)]

    def _remember(self, call_id: bytes, now: float) -> None:
        self._ended[call_id] = now
        while len(self._ended) > ENDED_REMEMBERED:
            self._ended.popitem(last=False)

    def _drop(self, why: str) -> list[Out]:
        self.dropped[why] += 1
        return []

    def _take_token(self, peer: bytes, now: float) -> bool:
        return self._buckets.take(peer, now)
