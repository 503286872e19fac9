"""Group calls as a client feature: :class:`~boxless.calls.group.GroupCallCore` on the wire.

Theory of operation. A group call is a mesh: every participant's browser holds
one RTCPeerConnection per other participant (at most 8 people). Every signal
— ring, join, leave, keep-alive ("who is in"), and each pair's offer, answer
and ICE candidates — is a :class:`~boxless.chat.envelope.CallSignal` with the
group's id, Olm-encrypted to one member's devices (their card from the group,
so members need not be contacts) and sent ephemeral on the member's contact
topic, like typing indicators: never stored by the outbox, never re-sent; the
core's timers cover a lost one. The DTLS fingerprints travel inside these
end-to-end encrypted SDPs, and each pair shows its own call code.

Who may signal: the receive pipeline proves the sender's device (Olm); here
the device must be the member's as the group knows it (its card, or a device
its identity certified), the group must be ours, and the core gets the
group's *current* members, so a non-member, a removed member, a replay of an
ended call, a foreign group and a ring storm are dropped with a counted
reason (``GroupCallCore.dropped``, plus ``unknown device``, ``not our group``,
``stale`` and ``unexpected signal`` here).

For the browser (api/calls_group.py) the plug-in keeps, per other
participant, what the browser needs: whether it must make the offer, the
remote offer/answer and candidates, the pair's code, and the pair's round
(``epoch``: a new connection, ``gen``: a new offer/answer, e.g. an ICE
restart). Each change is a ``group_call`` event; the browser then reads
``current()`` (also on reconnect, so a page opened mid-ring shows the call).
``session`` counts our joins: a page that started or joined holds the media
until another page rejoins (a reload, a second tab); ``detach`` (the page went
away) leaves unless a page rejoins within ``DETACH_GRACE``. An ended call is
written to the history (``call_store.put_group_call``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from boxless.calls.group import (
    RING_TIMEOUT,
    GroupCall,
    GroupCallCore,
    GroupChanged,
    GroupOut,
    GroupSend,
    GroupSignal,
    GroupSignalKind,
    MakeOffer,
    PairCandidates,
    PairReset,
    PeerGone,
    RemoteDescription,
)
from boxless.chat import envelope as env
from boxless.chat.topics import contact_topic
from boxless.client import call_store
from boxless.client import events as ev
from boxless.client import group_store as gs
from boxless.client import store as db
from boxless.client.channel import DirectChannel, FollowUp, Received
from boxless.client.timer_loop import TimerLoop
from boxless.errors import NetworkError, UsageError

if TYPE_CHECKING:
    from boxless.client.groups import GroupManager

logger = logging.getLogger(__name__)

__all__ = ["GroupCalls", "group_history_json"]

_KINDS: dict[env.CallSignalKind, GroupSignalKind] = {
    env.CallSignalKind.RING: GroupSignalKind.RING,
    env.CallSignalKind.JOIN: GroupSignalKind.JOIN,
    env.CallSignalKind.LEAVE: GroupSignalKind.LEAVE,
    env.CallSignalKind.OFFER: GroupSignalKind.OFFER,
    env.CallSignalKind.ANSWER: GroupSignalKind.ANSWER,
    env.CallSignalKind.CANDIDATES: GroupSignalKind.CANDIDATES,
    env.CallSignalKind.KEEPALIVE: GroupSignalKind.KEEPALIVE,
}
_WIRE = {v: k for k, v in _KINDS.items()}


@dataclass(slots=True)
class _Pair:
    """What our browser needs for its peer connection with one participant."""

    need_offer: bool = False
    remote_kind: str = ""
    remote_sdp: str = ""
    candidates: list[str] = field(default_factory=list)


def _ms(t: float | None) -> int | None:
    return None if t is None else int(t * 1000)


def group_history_json(row: call_store.GroupCallRow, me: bytes) -> dict[str, Any]:
    return {
        "call_id": row.call_id.hex(),
        "chat": f"group:{row.group_id.hex()}",
        "group": True,
        "outgoing": row.started_by == me,
        "started_by": row.started_by.hex(),
        "participants": [p.hex() for p in row.participants],
        "video": row.video,
        "reason": "ended" if row.joined_at_ms is not None else "missed",
        "started_at_ms": row.started_at_ms,
        "connected_at_ms": row.joined_at_ms,
        "ended_at_ms": row.ended_at_ms,
        "duration_s": row.duration_s,
    }


class GroupCalls:
    """The client's group calls (``client.calls.group``); :meth:`run` drives the timers."""

    def __init__(
        self,
        channel: DirectChannel,
        groups: GroupManager,
        *,
        busy: Callable[[], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.channel = channel
        self.groups = groups
        self.db = channel.db
        self.clock = clock
        self.me = channel.me
        self.busy = busy  # a 1:1 call runs: we can't start or join one
        self.core = GroupCallCore(self.me)
        self._pairs: dict[bytes, _Pair] = {}
        self._started_by = b""
        self._seen: dict[bytes, None] = {}  # everyone heard in the running call, in order
        self._joined_at: float | None = None
        self._session = 0  # +1 for each start/join/rejoin: which page holds the media
        self._timers = TimerLoop(lambda: self.clock())

    async def run(self) -> None:
        """Ring timeouts, keep-alives, silent participants; until cancelled."""
        await self._timers.run(
            self.core.get_timer, lambda now: self._execute(self.core.handle_timer(now))
        )

    # -- for the API ---------------------------------------------------------------------

    def _members(self, group_id: bytes) -> set[bytes]:
        with self.db.transaction() as cur:
            return set(self.groups.core.member_log(cur, group_id).state.members)

    def current(self) -> dict[str, Any] | None:
        call = self.core.current
        if call is None:
            return None
        with self.db.transaction() as cur:
            names = {
                k: self.groups.core.name(cur, call.group_id, k)
                for k in [*call.participants, self._started_by]
                if k
            }
        people = []
        for key in call.participants:
            pair = call.pairs.get(key)
            mine = self._pairs.get(key, _Pair())
            people.append(
                {
                    "key": key.hex(),
                    "name": names.get(key, ""),
                    "offerer": bool(pair and pair.offerer),
                    "need_offer": bool(pair and pair.offerer and not pair.local_sdp),
                    "described": bool(pair and pair.local_sdp),
                    "remote_kind": mine.remote_kind or None,
                    "remote_sdp": mine.remote_sdp or None,
                    "remote_candidates": list(mine.candidates),
                    "code": pair.code if pair else "",
                    "connected": bool(pair and pair.connected),
                    "epoch": pair.epoch if pair else 0,
                    "gen": pair.gen if pair else 0,
                }
            )
        return {
            "call_id": call.call_id.hex(),
            "chat": f"group:{call.group_id.hex()}",
            "video": call.video,
            "ringing": call.ringing,
            "rung": call.ringing and call.rung,
            "session": self._session,
            "detached": call.detached_at is not None,
            "started_by": self._started_by.hex(),
            "started_by_name": names.get(self._started_by, ""),
            "started_at_ms": _ms(call.started_at),
            "joined_at_ms": _ms(self._joined_at),
            "participants": people,
        }

    async def start(self, group_id: bytes, video: bool) -> dict[str, Any]:
        """Start a call in a group we are a member of and ring the other members."""
        if self.busy():
            raise UsageError("you are already in a call: hang up first")
        members = self._members(group_id)
        call_id = os.urandom(env.CALL_ID_BYTES)
        now = self.clock()
        out = self.core.start(group_id, members, call_id, video, now)
        self._reset(self.me)
        self._joined_at = now
        self._session += 1
        await self._execute(out)
        return self.current() or {}

    async def join(self, call_id: bytes) -> dict[str, Any]:
        """Join the call we were rung to (or saw running in the group); in a call we
        are in already (a reloaded page, another tab) rejoin: new connections with
        everyone, and this page holds the media from now on."""
        if self.busy():
            raise UsageError("you are already in a call: hang up first")
        call = self._running(call_id)
        members = self._members(call.group_id)
        if call.ringing:
            out = self.core.join(call_id, members, self.clock())
            self._joined_at = self.clock()
        else:
            out = self.core.rejoin(call_id, members, self.clock())
        self._session += 1
        await self._execute(out)
        return self.current() or {}

    async def retry(self, call_id: bytes, peer: bytes) -> dict[str, Any]:
        """A new connection with one participant (its pair was lost)."""
        await self._execute(self.core.retry(call_id, peer, self.clock()))
        return self.current() or {}

    async def detach(self, call_id: bytes, session: int | None = None) -> dict[str, Any]:
        """The page holding the media went away: we leave unless a page rejoins soon
        (``session``: that page's; a page that no longer holds the media changes nothing)."""
        if session is None or session == self._session:
            await self._execute(self.core.detach(call_id, self.clock()))
        return self.current() or {}

    async def leave(self, call_id: bytes) -> dict[str, Any]:
        """Leave the call (or decline its ring)."""
        call = self._running(call_id)
        try:
            members = self._members(call.group_id)
        except UsageError:
            members = set()  # we were removed: tell those in the call only
        await self._execute(self.core.leave(call_id, members, self.clock()))
        return {"call_id": call_id.hex(), "ended": True}

    async def describe(
        self,
        call_id: bytes,
        peer: bytes,
        sdp: str,
        epoch: int | None = None,
        gen: int | None = None,
    ) -> dict[str, Any]:
        """Our browser's offer or answer for its connection with ``peer`` (made for
        round ``epoch``/``gen``); a new offer for an answered pair restarts its ICE."""
        out = self.core.local_description(call_id, peer, sdp, self.clock(), epoch=epoch, gen=gen)
        await self._execute(out)
        return self.current() or {}

    async def add_candidates(
        self, call_id: bytes, peer: bytes, candidates: tuple[str, ...]
    ) -> None:
        step = env.MAX_CALL_CANDIDATES
        for i in range(0, max(1, len(candidates)), step):
            chunk = candidates[i : i + step]
            await self._execute(self.core.local_candidates(call_id, peer, chunk, self.clock()))

    async def pair_connected(self, call_id: bytes, peer: bytes) -> dict[str, Any]:
        await self._execute(self.core.pair_connected(call_id, peer, self.clock()))
        return self.current() or {}

    def history(self, group_id: bytes | None = None, limit: int = 50) -> list[dict[str, Any]]:
        with self.db.transaction() as cur:
            rows = call_store.group_calls(cur, group_id, limit)
        return [group_history_json(r, self.me) for r in rows]

    def _running(self, call_id: bytes) -> GroupCall:
        call = self.core.current
        if call is None or call.call_id != call_id:
            raise UsageError("no such group call running")
        return call

    def _reset(self, started_by: bytes) -> None:
        self._pairs = {}
        self._seen = {}
        self._started_by = started_by
        self._joined_at = None

    # -- from the receive pipeline -------------------------------------------------------

    def on_signal(self, cur: db.Cursor, r: Received, body: env.CallSignal) -> FollowUp | None:
        """A group call signal from ``r.sender`` (proved by Olm, not yet placed)."""
        core, gid = self.groups.core, body.group_id
        known = core.device(cur, r.sender)
        devices = self.channel.devices
        if known != r.device_key and not (
            devices is not None and devices.certified(cur, r.sender, r.device_key)
        ):
            return self._drop("unknown device")  # not the member's device as the group knows it
        if not gs.has_group(cur, gid):
            return self._drop("not our group")
        kind = _KINDS.get(body.kind)
        if kind is None:
            return self._drop("unexpected signal")
        now = self.clock()
        if r.message.sent_at_ms / 1000 < now - RING_TIMEOUT:
            return self._drop("stale")  # a replay from a store, or a very late signal
        members = set(core.log(cur, gid).state.members)
        signal = GroupSignal(body.call_id, gid, kind, body.sdp, body.candidates, body.video)
        before = self.core.current
        out = self.core.receive(r.sender, signal, now, members=members)
        if not out:
            return None
        now_call = self.core.current  # rung, or a running call seen (maybe instead of a banner)
        new = now_call is not None and (before is None or before.call_id != now_call.call_id)
        replaced: list[GroupOut] = [
            o for o in out if new and isinstance(o, GroupChanged) and o.call.ended
        ]

        async def follow_up() -> None:  # after the receive transaction committed
            if replaced:
                await self._execute(replaced)  # the banner's end, under its own caller
            if new:
                self._reset(r.sender)
            await self._execute([o for o in out if o not in replaced])

        return follow_up

    def _drop(self, why: str) -> FollowUp | None:
        self.core.dropped[why] += 1
        return None

    # -- running the core's outputs ------------------------------------------------------

    def _apply(self, out: list[GroupOut]) -> None:
        """Bookkeeping, history and events, before the signals go out."""
        for o in out:
            if isinstance(o, MakeOffer):
                self._pairs[o.peer] = _Pair(need_offer=True)
            elif isinstance(o, RemoteDescription):
                pair = self._pairs.setdefault(o.peer, _Pair())
                pair.remote_kind, pair.remote_sdp = o.kind, o.sdp
            elif isinstance(o, PairCandidates):
                self._pairs.setdefault(o.peer, _Pair()).candidates.extend(o.candidates)
            elif isinstance(o, PeerGone):
                self._pairs.pop(o.peer, None)
            elif isinstance(o, PairReset):
                self._pairs[o.peer] = _Pair()  # a new round: the old remote side is gone
            elif isinstance(o, GroupChanged):
                for key in o.call.participants:
                    self._seen.setdefault(key, None)
                if o.call.ended:
                    self._ended(o.call)
        changed = [o for o in out if isinstance(o, GroupChanged)]
        call = changed[-1].call if changed else self.core.current
        if call is not None and any(not isinstance(o, GroupSend) for o in out):
            self.channel.emit(
                ev.GroupCallChanged(
                    call.call_id.hex(),
                    f"group:{call.group_id.hex()}",
                    call.video,
                    call.ringing,
                    call.ended,
                    len(call.participants),
                )
            )

    def _ended(self, call: GroupCall) -> None:
        row = call_store.GroupCallRow(
            call.call_id,
            call.group_id,
            self._started_by or self.me,
            tuple(self._seen),
            call.video,
            int(call.started_at * 1000),
            _ms(self._joined_at),
            int(self.clock() * 1000),
        )
        with self.db.transaction() as cur:
            call_store.put_group_call(cur, row)
        self._pairs = {}

    async def _execute(self, out: list[GroupOut]) -> None:
        self._apply(out)
        per_peer: dict[bytes, list[GroupSend]] = {}
        for o in out:
            if isinstance(o, GroupSend):
                per_peer.setdefault(o.peer, []).append(o)

        async def send_in_order(sends: list[GroupSend]) -> None:
            for o in sends:
                await self._send(o)

        # members in parallel (a join tells up to 7), each member's signals in order
        async with trio.open_nursery() as nursery:
            for sends in per_peer.values():
                nursery.start_soon(send_in_order, sends)
        if out:
            self._timers.wake()  # a new deadline, maybe

    async def _send(self, o: GroupSend) -> None:
        s = o.signal
        body = env.CallSignal(
            s.call_id, _WIRE[s.kind], s.sdp, s.candidates, s.video, group_id=s.group_id
        )
        msg = env.new_message(body, lamport=0, sent_at_ms=int(self.clock() * 1000))
        try:
            with self.db.transaction() as cur:
                card = self.groups.core.card(cur, o.peer)
            if card is None:
                raise UsageError("no card of this member yet")
            await self.channel.send_card(
                card, contact_topic(o.peer), env.encode(msg), ephemeral=True
            )
        except (UsageError, NetworkError) as exc:  # the core's timers cover a lost signal
            logger.info("group call signal %s not sent: %s", s.kind.name, exc)
