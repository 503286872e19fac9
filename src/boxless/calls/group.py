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
* **Repairs** (each a new *round* of a pair, :class:`PairReset`): the offerer's
  browser restarts a failed pair's ICE with a new offer on the same connection
  (same DTLS fingerprint, ``gen`` + 1); a new offer with another fingerprint is
  a new connection (``epoch`` + 1). ``rejoin`` (a reloaded page, a second tab)
  and ``retry`` (one pair) start new connections: we offer where it is our
  turn, and where it is theirs we send a ``JOIN``, which a participant that
  offers to us takes as "replace our pair". A peer gets
  :data:`RENEGOTIATE_BURST` such repairs, then one per
  :data:`RENEGOTIATE_EVERY` s (``renegotiation rate``), so a hostile member
  can't make us renegotiate in a loop.
* **Members not in the call** learn it from the ``JOIN`` s; one elected
  participant (the smallest key in the call) also sends them a keep-alive
  every :data:`SUMMARY_EVERY` s, so their banner stays while the call runs
  (:data:`SEEN_FOR` s after the last one heard, or until its last participant
  left). A call we left is shown again by such a keep-alive (not sooner than
  :data:`REJOIN_QUIET` s after we left; a replayed ``RING`` or ``JOIN`` of it
  stays dropped).
* ``detach``: the page holding the media went away (closed or reloading); if
  no page rejoins within :data:`DETACH_GRACE` s we leave.

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

from boxless.buckets import Buckets
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
    "PairReset",
    "PairState",
    "PeerGone",
    "RemoteDescription",
    "StaleRound",
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
RENEGOTIATE_BURST: Final = 4
RENEGOTIATE_EVERY: Final = 10.0
SUMMARY_EVERY: Final = 60.0
SEEN_FOR: Final = 150.0
REJOIN_QUIET: Final = 10.0
DETACH_GRACE: Final = 30.0


class StaleRound(UsageError):
    """Our browser's description was made for a pair's earlier round."""


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
    epoch: int = 0  # +1 for each new connection (rejoin, retry, a new fingerprint)
    gen: int = 0  # +1 for each new offer/answer round (an ICE restart, a new connection)


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
    rung: bool = False  # a RING made it (else a JOIN or keep-alive showed it running)
    members: frozenset[bytes] = frozenset()  # the group's members as last told
    heard_at: float = 0.0  # not joined: when a participant was last heard
    last_summary: float = 0.0  # joined: our last keep-alive to members not in the call
    detached_at: float | None = None  # the page holding the media went away


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


@dataclass(frozen=True, slots=True)
class PairReset:
    """A new round for the pair with ``peer``: its remote description and candidates
    are gone (a new connection if its ``epoch`` changed, else an ICE restart)."""

    peer: bytes


GroupOut = (
    GroupSend | GroupChanged | MakeOffer | RemoteDescription | PairCandidates | PeerGone | PairReset
)


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
        self._buckets = Buckets(RING_BURST, RING_EVERY, MAX_PEERS_TRACKED)  # rings
        # restart offers, "replace our pair" JOINs
        self._renego = Buckets(RENEGOTIATE_BURST, RENEGOTIATE_EVERY, MAX_PEERS_TRACKED)

    # -- local actions -------------------------------------------------------------------

    def start(
        self, group_id: bytes, members: set[bytes], call_id: bytes, video: bool, now: float
    ) -> list[GroupOut]:
        """Start a call in ``group_id`` and ring its other members."""
        if self.current is not None:
            raise UsageError("you are already in a call: hang up first")
        if self.me not in members:
            raise UsageError("you are not a member of this group")
        call = GroupCall(
            call_id, group_id, video, now, False, {}, {}, last_sent=now,
            members=frozenset(members), last_summary=now,
        )  # fmt: skip
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
        call = replace(
            call, ringing=False, last_sent=now, members=frozenset(members), last_summary=now
        )
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

    def rejoin(self, call_id: bytes, members: set[bytes], now: float) -> list[GroupOut]:
        """We are in this call, but our page lost its media (a reload, another tab):
        new connections with everyone — we offer where it is our turn, the others
        offer when our ``JOIN`` reaches them."""
        call = self._running(call_id)
        if call.ringing:
            raise UsageError("join the call first")
        self.current = replace(call, last_sent=now, members=frozenset(members), detached_at=None)
        hello = GroupSignal(call_id, call.group_id, GroupSignalKind.JOIN, video=call.video)
        out: list[GroupOut] = [GroupSend(m, hello) for m in sorted(members - {self.me})]
        for peer in sorted(call.participants):
            out += self._renew(peer)
        return [*out, GroupChanged(self._now_current())]

    def retry(self, call_id: bytes, peer: bytes, now: float) -> list[GroupOut]:
        """A new connection with ``peer`` (the user's Retry on a lost one)."""
        call = self._running(call_id)
        pair = call.pairs.get(peer)
        if call.ringing or pair is None:
            raise UsageError("no such participant in this call")
        out = self._renew(peer)
        if not pair.offerer:  # their turn to offer: ask with a JOIN
            hello = GroupSignal(call_id, call.group_id, GroupSignalKind.JOIN, video=call.video)
            out.append(GroupSend(peer, hello))
        self.current = replace(self._now_current(), last_sent=now)
        return [*out, GroupChanged(self._now_current())]

    def detach(self, call_id: bytes, now: float) -> list[GroupOut]:
        """The page holding our media went away: leave unless one rejoins soon."""
        call = self._running(call_id)
        if call.ringing:
            return []
        self.current = replace(call, detached_at=now)
        return [GroupChanged(self.current)]

    def local_description(
        self,
        call_id: bytes,
        peer: bytes,
        sdp: str,
        now: float,
        *,
        epoch: int | None = None,
        gen: int | None = None,
    ) -> list[GroupOut]:
        """Our browser's offer or answer for the pair with ``peer`` (``epoch``/``gen``:
        the round it was made for; an older one is refused). A new offer for an
        answered pair is an ICE restart: a new round."""
        call = self._running(call_id)
        pair = call.pairs.get(peer)
        if pair is None:
            raise UsageError("no such participant in this call")
        if (epoch is not None and epoch != pair.epoch) or (gen is not None and gen != pair.gen):
            raise StaleRound("this connection was replaced meanwhile: fetch the call again")
        facts = parse_sdp(sdp)  # our browser's: a DecodeError is a bug upstream
        kind = GroupSignalKind.OFFER if pair.offerer else GroupSignalKind.ANSWER
        if not pair.offerer and not pair.remote_sdp:
            raise UsageError("answer before their offer")
        out: list[GroupOut] = []
        if pair.offerer and pair.local_sdp and sdp != pair.local_sdp:
            # an ICE restart (or another offer before the answer): a new round
            pair = replace(
                pair, remote_sdp="", candidates=0, resends=0, connected=False, gen=pair.gen + 1
            )
            out.append(PairReset(peer))
        code = pair.code
        if pair.remote_sdp:
            theirs = parse_sdp(pair.remote_sdp).fingerprint
            code = call_code(call_id, *((facts.fingerprint, theirs)[:: 1 if pair.offerer else -1]))
        self._set_pair(peer, replace(pair, local_sdp=sdp, code=code, sent_at=now), now)
        signal = GroupSignal(call_id, call.group_id, kind, sdp=sdp, video=call.video)
        return [*out, GroupSend(peer, signal), GroupChanged(self._now_current())]

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
        call = self.current
        ended_at = self._ended.get(signal.call_id)
        shown = call is not None and call.call_id == signal.call_id  # shown again (below)
        if (
            ended_at is not None
            and not shown
            and not (
                # a call we left (or that rang out) still running: its keep-alive shows it again
                signal.kind is GroupSignalKind.KEEPALIVE
                and call is None
                and now >= ended_at + REJOIN_QUIET
            )
        ):
            return self._drop("ended call")
        if signal.kind is GroupSignalKind.RING:
            return self._ring(peer, signal, now)
        if call is None or call.call_id != signal.call_id:
            if signal.kind in (GroupSignalKind.JOIN, GroupSignalKind.KEEPALIVE) and call is None:
                return self._ring(peer, signal, now)  # a call runs in the group: show it
            return self._drop("not the running call")
        if signal.group_id != call.group_id:
            return self._drop("another group")
        self.current = call = replace(call, members=frozenset(members))
        match signal.kind:
            case GroupSignalKind.JOIN | GroupSignalKind.KEEPALIVE:
                if call.ringing:
                    self.current = replace(call, heard_at=now)
                elif signal.kind is GroupSignalKind.JOIN and peer in call.pairs:
                    return self._rejoined(peer, now)
                return self._heard(peer, now)
            case GroupSignalKind.LEAVE:
                if peer not in call.participants:
                    return self._drop("not a participant")
                out = self._gone(peer)
                if call.ringing and not self._now_current().participants:
                    return [*out, *self._end(now)]  # everyone left: the call is over
                return out
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
        out: list[GroupOut] = []
        if self.current is not None:
            if self.current.call_id == signal.call_id:
                return self._drop("ring repeated")
            shown = self.current.ringing and not self.current.rung  # only a banner
            if not (shown and signal.kind is GroupSignalKind.RING):
                return self._drop("busy")  # our own call goes on; theirs rings elsewhere
            # a call seen running gives way to a ring for us: else one member's
            # keep-alives for a made-up call would make every real ring "busy"
            out = self._end(now)
        call = GroupCall(
            signal.call_id, signal.group_id, signal.video, now, True, {peer: now}, {},
            rung=signal.kind is GroupSignalKind.RING, heard_at=now,
        )  # fmt: skip
        self.current = call
        return [*out, GroupChanged(call)]

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

    def _renew(self, peer: bytes) -> list[GroupOut]:
        """A new connection with ``peer`` (its pair must exist): we offer if ours to."""
        old = self._now_current().pairs[peer]
        fresh = PairState(old.offerer, epoch=old.epoch + 1, gen=old.gen + 1)
        self._set_pair(peer, fresh, None)
        return [PairReset(peer), *([MakeOffer(peer)] if old.offerer else [])]

    def _rejoined(self, peer: bytes, now: float) -> list[GroupOut]:
        """A JOIN from a participant we pair with: its page rejoined (or it asks for a
        new connection). Where we offer, the pair is replaced; where they offer,
        their new offer will do it."""
        call = self._now_current()
        self.current = replace(call, participants={**call.participants, peer: now})
        if not call.pairs[peer].offerer:
            return []
        if not self._renegotiation_token(peer, now):
            return self._drop("renegotiation rate")
        return [*self._renew(peer), GroupChanged(self._now_current())]

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
            if signal.sdp == pair.remote_sdp:
                if pair.local_sdp and pair.resends < MAX_RESENDS:
                    # our answer was lost: the offerer re-sent its offer; answer again
                    self._set_pair(peer, replace(pair, resends=pair.resends + 1), None)
                    again = GroupSignal(
                        call.call_id, call.group_id, GroupSignalKind.ANSWER, sdp=pair.local_sdp
                    )
                    return [GroupSend(peer, again)]
                return self._drop("offer repeated")
            return self._new_round(peer, signal, now)
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

    def _new_round(self, peer: bytes, signal: GroupSignal, now: float) -> list[GroupOut]:
        """Another offer from the offerer of an answered pair: an ICE restart (the same
        DTLS fingerprint) or a new connection (another one), at a bounded rate."""
        call = self._now_current()
        pair = call.pairs[peer]
        try:
            theirs = parse_sdp(signal.sdp)
        except DecodeError:
            return self._drop("bad SDP")
        if not self._renegotiation_token(peer, now):
            return self._drop("renegotiation rate")
        same = parse_sdp(pair.remote_sdp).fingerprint == theirs.fingerprint
        epoch = pair.epoch if same else pair.epoch + 1
        fresh = PairState(False, remote_sdp=signal.sdp, epoch=epoch, gen=pair.gen + 1)
        self.current = replace(call, participants={**call.participants, peer: now})
        self._set_pair(peer, fresh, None)
        return [
            PairReset(peer),
            RemoteDescription(peer, "offer", signal.sdp),
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
            return self._ring_ends(call)
        times = [call.last_sent + KEEPALIVE_EVERY]
        if self._summarizer(call):
            times.append(call.last_summary + SUMMARY_EVERY)
        if call.detached_at is not None:
            times.append(call.detached_at + DETACH_GRACE)
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
            return self._end(now) if now >= self._ring_ends(call) else []
        if not call.participants and now >= call.started_at + RING_TIMEOUT:
            return self._end(now)  # nobody came
        if call.detached_at is not None and now >= call.detached_at + DETACH_GRACE:
            return self.leave(call.call_id, set(call.members), now)  # no page came back
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
        call = self._now_current()
        if self._summarizer(call) and now >= call.last_summary + SUMMARY_EVERY:
            # "still running" for the members not in it (their banner), from one of us
            ka = GroupSignal(call.call_id, call.group_id, GroupSignalKind.KEEPALIVE)
            others = call.members - call.participants.keys() - {self.me}
            out += [GroupSend(p, ka) for p in sorted(others)]
            self.current = replace(call, last_summary=now)
        return out

    def _summarizer(self, call: GroupCall) -> bool:
        """We keep the members who are not in the call informed: the smallest key in it."""
        return not call.ringing and all(self.me < p for p in call.participants)

    @staticmethod
    def _ring_ends(call: GroupCall) -> float:
        if call.rung:
            return call.started_at + RING_TIMEOUT
        return max(call.started_at, call.heard_at) + SEEN_FOR  # seen running: until silent

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
        return self._buckets.take(peer, now)

    def _renegotiation_token(self, peer: bytes, now: float) -> bool:
        return self._renego.take(peer, now)
