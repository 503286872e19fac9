"""Group calls, sans-IO: a mesh of 1:1 peer connections, coordinated per call.

Theory of operation. A group call has an id and belongs to one group; up to
:data:`MAX_PARTICIPANTS` members take part. Every participant holds one
RTCPeerConnection per other participant (a mesh). Signals are addressed to one
member each (``Send(peer, signal)``); the client carries them end-to-end
encrypted (docs/calls.md "Group calls").

* ``start`` rings every other member (``RING``); ``join`` (accepting a ring,
  or joining a call that runs) tells every member we are in (``JOIN``) — the
  ``JOIN`` and every participant's keep-alive carry nothing but the call id, so
  a member learns the roster only from the members themselves.
* **Who offers** (no glare by construction): of each pair, the participant
  with the smaller identity key makes the offer. When we learn of a
  participant whose key is larger than ours the core asks our browser for an
  offer for that pair (:class:`MakeOffer`); an offer from a participant whose
  key is larger than ours is glare and dropped (``offer from the answerer``).
* **Per-pair call codes**: each pair has its own DTLS certificates' code
  (``call_code(call id, offerer fp, answerer fp)``), shown on the tile.
* ``leave`` tells the participants; a participant silent for
  :data:`LOST_AFTER` s is dropped from our roster (:class:`PeerGone`), a ring
  nobody joins ends after :data:`RING_TIMEOUT` s.

Every input is attacker-controlled: the caller says which identities are
current members of the group (``members``). The core drops, with a counted
reason, signals from non-members (``not a member``), for another group, for
ended calls (``ended call``, 1,024 remembered), rings over the per-peer rate,
joins beyond the participant limit (``call full``), offers/answers with bad
SDP, out-of-turn answers, and more than :data:`MAX_REMOTE_CANDIDATES`
candidates per pair.
"""

from __future__ import annotations

import enum
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace
from typing import Final

from boxless.calls.sdp import call_code, parse_sdp
from boxless.errors import DecodeError, UsageError

__all__ = [
    "MAX_PARTICIPANTS",
    "GroupCall",
    "GroupCallCore",
    "GroupChanged",
    "GroupOut",
    "GroupSend",
    "GroupSignal",
    "GroupSignalKind",
    "MakeOffer",
    "PairCandidates",
    "PairState",
    "PeerGone",
    "RemoteDescription",
]

MAX_PARTICIPANTS: Final = 8
RING_TIMEOUT: Final = 45.0
KEEPALIVE_EVERY: Final = 5.0
LOST_AFTER: Final = 20.0
MAX_REMOTE_CANDIDATES: Final = 64
ENDED_REMEMBERED: Final = 1024
RING_BURST: Final = 3
RING_EVERY: Final = 10.0
MAX_PEERS_TRACKED: Final = 1024
RESEND_EVERY: Final = 3.0
MAX_RESENDS: Final = 5


class GroupSignalKind(enum.Enum):
    RING = "ring"
    JOIN = "join"
    LEAVE = "leave"
    OFFER = "offer"
    ANSWER = "answer"
    CANDIDATES = "candidates"
    KEEPALIVE = "keepalive"


@dataclass(frozen=True, slots=True)
class GroupSignal:
    call_id: bytes
    group_id: bytes
    kind: GroupSignalKind
    sdp: str = field(default="", repr=False)
    candidates: tuple[str, ...] = field(default=(), repr=False)
    video: bool = False


@dataclass(frozen=True, slots=True)
class PairState:
    """Our peer connection with one other participant."""

    offerer: bool  # we make the offer (our key is the smaller)
    local_sdp: str = ""
    remote_sdp: str = ""
    code: str = ""
    candidates: int = 0
    connected: bool = False
    sent_at: float = 0.0  # when our offer last went out (re-sent until answered)
    resends: int = 0


@dataclass(frozen=True, slots=True)
class GroupCall:
    call_id: bytes
    group_id: bytes
    video: bool
    started_at: float
    ringing: bool  # invited, not joined (yet)
    participants: dict[bytes, float]  # other participants -> last heard
    pairs: dict[bytes, PairState]
    last_sent: float = 0.0
    ended: bool = False


@dataclass(frozen=True, slots=True)
class GroupSend:
    peer: bytes
    signal: GroupSignal


@dataclass(frozen=True, slots=True)
class GroupChanged:
    call: GroupCall


@dataclass(frozen=True, slots=True)
class MakeOffer:
    """Our browser must create an offer for the pair with ``peer``."""

    peer: bytes


@dataclass(frozen=True, slots=True)
class RemoteDescription:
    peer: bytes
    kind: str  # "offer" or "answer"
    sdp: str


@dataclass(frozen=True, slots=True)
class PairCandidates:
    peer: bytes
    candidates: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PeerGone:
    peer: bytes


GroupOut = GroupSend | GroupChanged | MakeOffer | RemoteDescription | PairCandidates | PeerGone


def _unanswered(pair: PairState) -> bool:
    """Our offer went out, no answer came, and we may still re-send it."""
    return (
        pair.offerer and bool(pair.local_sdp) and not pair.remote_sdp and pair.resends < MAX_RESENDS
    )


class GroupCallCore:
    """One user's group call (at most one at a time; 1:1 calls are :class:`CallCore`)."""

    def __init__(self, me: bytes) -> None:
        self.me = me
        self.current: GroupCall | None = None
        self.dropped: Counter[str] = Counter()
        self._ended: OrderedDict[bytes, float] = OrderedDict()
        self._buckets: OrderedDict[bytes, tuple[float, float]] = OrderedDict()

    # -- local actions -------------------------------------------------------------------

    def start(
        self, group_id: bytes, members: set[bytes], call_id: bytes, video: bool, now: float
    ) -> list[GroupOut]:
        """Start a call in ``group_id`` and ring its other members."""
        if self.current is not None:
            raise UsageError("you are already in a call: hang up first")
        if self.me not in members:
            raise UsageError("you are not a member of this group")
        call = GroupCall(call_id, group_id, video, now, False, {}, {}, last_sent=now)
        self.current = call
        ring = GroupSignal(call_id, group_id, GroupSignalKind.RING, video=video)
        return [*(GroupSend(m, ring) for m in sorted(members - {self.me})), GroupChanged(call)]

    def join(self, call_id: bytes, members: set[bytes], now: float) -> list[GroupOut]:
        """Join the call we were rung to: tell every member; offer to the larger keys."""
        call = self._running(call_id)
        if not call.ringing:
            raise UsageError("you are already in this call")
        if len(call.participants) + 1 > MAX_PARTICIPANTS:
            raise UsageError(f"this call is full ({MAX_PARTICIPANTS} people)")
        call = replace(call, ringing=False, last_sent=now)
        self.current = call
        hello = GroupSignal(call_id, call.group_id, GroupSignalKind.JOIN, video=call.video)
        out: list[GroupOut] = [GroupSend(m, hello) for m in sorted(members - {self.me})]
        for peer in sorted(call.participants):
            out += self._pair(peer)
        return [*out, GroupChanged(self.current)]

    def leave(self, call_id: bytes, members: set[bytes], now: float) -> list[GroupOut]:
        """Leave (or decline the ring): every member is told (a ringing one keeps a roster)."""
        call = self._running(call_id)
        bye = GroupSignal(call_id, call.group_id, GroupSignalKind.LEAVE)
        out: list[GroupOut] = []
        if not call.ringing:
            out = [
                GroupSend(p, bye) for p in sorted((members | set(call.participants)) - {self.me})
            ]
        return [*out, *self._end(now)]

    def local_description(
        self, call_id: bytes, peer: bytes, sdp: str, now: float
    ) -> list[GroupOut]:
        """Our browser's offer or answer for the pair with ``peer``."""
        call = self._running(call_id)
        pair = call.pairs.get(peer)
        if pair is None:
            raise UsageError("no such participant in this call")
        facts = parse_sdp(sdp)  # our browser's: a DecodeError is a bug upstream
        kind = GroupSignalKind.OFFER if pair.offerer else GroupSignalKind.ANSWER
        if not pair.offerer and not pair.remote_sdp:
            raise UsageError("answer before their offer")
        code = pair.code
        if pair.remote_sdp:
            theirs = parse_sdp(pair.remote_sdp).fingerprint
            code = call_code(call_id, *((facts.fingerprint, theirs)[:: 1 if pair.offerer else -1]))
        self._set_pair(peer, replace(pair, local_sdp=sdp, code=code, sent_at=now), now)
        signal = GroupSignal(call_id, call.group_id, kind, sdp=sdp, video=call.video)
        return [GroupSend(peer, signal), GroupChanged(self._now_current())]

    def local_candidates(
        self, call_id: bytes, peer: bytes, candidates: tuple[str, ...], now: float
    ) -> list[GroupOut]:
        call = self._running(call_id)
        if peer not in call.pairs:
            raise UsageError("no such participant in this call")
        self.current = replace(call, last_sent=now)
        signal = GroupSignal(
            call_id, call.group_id, GroupSignalKind.CANDIDATES, candidates=candidates
        )
        return [GroupSend(peer, signal)]

    def pair_connected(self, call_id: bytes, peer: bytes, now: float) -> list[GroupOut]:
        call = self._running(call_id)
        pair = call.pairs.get(peer)
        if pair is None or pair.connected:
            return []
        self._set_pair(peer, replace(pair, connected=True), now)
        return [GroupChanged(self._now_current())]

    # -- the network ---------------------------------------------------------------------

    def receive(
        self, peer: bytes, signal: GroupSignal, now: float, *, members: set[bytes]
    ) -> list[GroupOut]:
        """A signal from ``peer``; ``members``: the group's current members (ours to know)."""
        if peer == self.me:
            return self._drop("from myself")
        if peer not in members or self.me not in members:
            return self._drop("not a member")
        if signal.call_id in self._ended:
            return self._drop("ended call")
        call = self.current
        if signal.kind is GroupSignalKind.RING:
            return self._ring(peer, signal, now)
        if call is None or call.call_id != signal.call_id:
            if signal.kind is GroupSignalKind.JOIN and call is None:
                return self._ring(peer, signal, now)  # a call runs in the group: show it
            return self._drop("not the running call")
        if signal.group_id != call.group_id:
            return self._drop("another group")
        match signal.kind:
            case GroupSignalKind.JOIN | GroupSignalKind.KEEPALIVE:
                return self._heard(peer, now)
            case GroupSignalKind.LEAVE:
                if peer not in call.participants:
                    return self._drop("not a participant")
                return self._gone(peer)
            case GroupSignalKind.OFFER | GroupSignalKind.ANSWER:
                return self._description(peer, signal, now)
            case GroupSignalKind.CANDIDATES:
                pair = call.pairs.get(peer)
                if pair is None:
                    return self._drop("not a participant")
                if pair.candidates + len(signal.candidates) > MAX_REMOTE_CANDIDATES:
                    return self._drop("too many candidates")
                self._heard(peer, now)
                self._set_pair(
                    peer, replace(pair, candidates=pair.candidates + len(signal.candidates)), None
                )
                return [PairCandidates(peer, signal.candidates)]
        return self._drop("unexpected signal")

    def _ring(self, peer: bytes, signal: GroupSignal, now: float) -> list[GroupOut]:
        if not self._take_token(peer, now):
            return self._drop("ring rate")
        if self.current is not None:
            if self.current.call_id == signal.call_id:
                return self._drop("ring repeated")
            return self._drop("busy")  # our own call goes on; theirs rings elsewhere
        call = GroupCall(signal.call_id, signal.group_id, signal.video, now, True, {peer: now}, {})
        self.current = call
        return [GroupChanged(call)]

    def _heard(self, peer: bytes, now: float) -> list[GroupOut]:
        call = self.current
        assert call is not None
        if peer in call.participants:
            self.current = replace(call, participants={**call.participants, peer: now})
            return []
        if len(call.participants) + (0 if call.ringing else 1) >= MAX_PARTICIPANTS:
            return self._drop("call full")
        self.current = replace(call, participants={**call.participants, peer: now})
        if call.ringing:
            return [GroupChanged(self.current)]
        return [*self._pair(peer), GroupChanged(self._now_current())]

    def _pair(self, peer: bytes) -> list[GroupOut]:
        call = self.current
        assert call is not None
        if peer in call.pairs:
            return []
        offerer = self.me < peer
        self.current = replace(call, pairs={**call.pairs, peer: PairState(offerer)})
        return [MakeOffer(peer)] if offerer else []

    def _description(self, peer: bytes, signal: GroupSignal, now: float) -> list[GroupOut]:
        call = self.current
        assert call is not None
        if call.ringing:
            return self._drop("not joined")
        offer = signal.kind is GroupSignalKind.OFFER
        prefix: list[GroupOut] = []
        if peer not in call.participants:
            if not offer:
                return self._drop("not a participant")
            prefix = self._heard(peer, now)  # its offer is also its hello
            call = self._now_current()
            if peer not in call.participants:
                return prefix
        pair = call.pairs.get(peer)
        if pair is None:
            return self._drop("not a participant")
        if offer and pair.offerer:
            return self._drop("offer from the answerer")
        if not offer and (not pair.offerer or not pair.local_sdp or pair.remote_sdp):
            return self._drop("unexpected answer")
        if offer and pair.remote_sdp:
            if signal.sdp == pair.remote_sdp and pair.local_sdp and pair.resends < MAX_RESENDS:
                # our answer was lost: the offerer re-sent its offer; answer again
                self._set_pair(peer, replace(pair, resends=pair.resends + 1), None)
                again = GroupSignal(
                    call.call_id, call.group_id, GroupSignalKind.ANSWER, sdp=pair.local_sdp
                )
                return [GroupSend(peer, again)]
            return self._drop("offer repeated")
        try:
            theirs = parse_sdp(signal.sdp)
        except DecodeError:
            return self._drop("bad SDP")
        code = ""
        if pair.local_sdp:
            mine = parse_sdp(pair.local_sdp).fingerprint
            code = call_code(call.call_id, mine, theirs.fingerprint)
        self.current = replace(call, participants={**call.participants, peer: now})
        self._set_pair(peer, replace(pair, remote_sdp=signal.sdp, code=code), None)
        kind = "offer" if offer else "answer"
        return [
            *prefix,
            RemoteDescription(peer, kind, signal.sdp),
            GroupChanged(self._now_current()),
        ]

    def _gone(self, peer: bytes) -> list[GroupOut]:
        call = self.current
        assert call is not None
        participants = {p: t for p, t in call.participants.items() if p != peer}
        pairs = {p: s for p, s in call.pairs.items() if p != peer}
        self.current = replace(call, participants=participants, pairs=pairs)
        return [PeerGone(peer), GroupChanged(self.current)]

    # -- time ----------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        call = self.current
        if call is None:
            return None
        if call.ringing:
            return call.started_at + RING_TIMEOUT
        times = [call.last_sent + KEEPALIVE_EVERY]
        times += [t + LOST_AFTER for t in call.participants.values()]
        times += [p.sent_at + RESEND_EVERY for p in call.pairs.values() if _unanswered(p)]
        if not call.participants:
            times.append(call.started_at + RING_TIMEOUT)
        return min(times)

    def handle_timer(self, now: float) -> list[GroupOut]:
        call = self.current
        if call is None:
            return []
        if call.ringing:
            return self._end(now) if now >= call.started_at + RING_TIMEOUT else []
        if not call.participants and now >= call.started_at + RING_TIMEOUT:
            return self._end(now)  # nobody came
        out: list[GroupOut] = []
        for peer, heard in sorted(call.participants.items()):
            if now >= heard + LOST_AFTER:
                out += self._gone(peer)
        call = self._now_current()
        for peer, pair in sorted(call.pairs.items()):
            if _unanswered(pair) and now >= pair.sent_at + RESEND_EVERY:
                # an offer or its answer was lost (ephemeral signals): offer again
                self._set_pair(peer, replace(pair, sent_at=now, resends=pair.resends + 1), None)
                offer = GroupSignal(
                    call.call_id, call.group_id, GroupSignalKind.OFFER, sdp=pair.local_sdp,
                    video=call.video,
                )  # fmt: skip
                out.append(GroupSend(peer, offer))
        call = self._now_current()
        if now >= call.last_sent + KEEPALIVE_EVERY:
            ka = GroupSignal(call.call_id, call.group_id, GroupSignalKind.KEEPALIVE)
            out += [GroupSend(p, ka) for p in sorted(call.participants)]
            self.current = replace(call, last_sent=now)
        return out

    # -- helpers -------------------------------------------------------------------------

    def _now_current(self) -> GroupCall:
        assert self.current is not None
        return self.current

    def _running(self, call_id: bytes) -> GroupCall:
        if self.current is None or self.current.call_id != call_id:
            raise UsageError("no such group call running")
        return self.current

    def _set_pair(self, peer: bytes, pair: PairState, now: float | None) -> None:
        call = self._now_current()
        self.current = replace(call, pairs={**call.pairs, peer: pair})
        if now is not None:
            self.current = replace(self.current, last_sent=now)

    def _end(self, now: float) -> list[GroupOut]:
        call = self._now_current()
        self.current = None
        self._ended[call.call_id] = now
        while len(self._ended) > ENDED_REMEMBERED:
            self._ended.popitem(last=False)
        return [GroupChanged(replace(call, ended=True, participants={}, pairs={}))]

    def _drop(self, why: str) -> list[GroupOut]:
        self.dropped[why] += 1
        return []

    def _take_token(self, peer: bytes, now: float) -> bool:
        tokens, at = self._buckets.pop(peer, (float(RING_BURST), now))
        tokens = min(float(RING_BURST), tokens + max(0.0, now - at) / RING_EVERY)
        ok = tokens >= 1.0
        self._buckets[peer] = (tokens - 1.0 if ok else tokens, now)
        while len(self._buckets) > MAX_PEERS_TRACKED:
            self._buckets.popitem(last=False)
        return ok
