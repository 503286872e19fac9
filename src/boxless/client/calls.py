"""Voice and video calls as a client feature: the call core run over the 1:1 channel.

Theory of operation. The browser owns the WebRTC peer connection; this module
relays its SDP and ICE candidates to the contact inside end-to-end encrypted,
ephemeral :class:`~boxless.chat.envelope.CallSignal` bodies (sent like typing
indicators: never stored as history, never re-sent, never acknowledged) and
runs :class:`~boxless.calls.CallCore`, which decides everything (ringing,
timeouts, keep-alives, busy, who may signal). Each change is a ``call`` event;
ICE candidates from the peer are kept for the running call (bounded by the core)
and announced with a ``call_ice`` event so every open UI can fetch them. An
ended call is written to the call history (``call_store``).

Signalling of a 1:1 call is accepted only from accepted contacts: the core is
told whether the sender is an accepted contact (``not a contact``). The handler
is registered ungated because group calls (``group_id`` set, client/calls_group.py)
also come from members who are not contacts; that plug-in places the sender in
the group itself.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from boxless.calls import Call, CallCore, Changed, Out, Phase, RemoteCandidates, Send
from boxless.chat import envelope as env
from boxless.chat.requests import ContactState
from boxless.client import call_store
from boxless.client import events as ev
from boxless.client import store as db
from boxless.client.calls_group import GroupCalls
from boxless.client.channel import DirectChannel, FollowUp, Received
from boxless.client.timer_loop import TimerLoop
from boxless.errors import BoxlessError, NetworkError, UsageError
from boxless.node.turn import turn_credentials

if TYPE_CHECKING:
    from boxless.client.conversations import Conversations
    from boxless.client.groups import GroupManager

logger = logging.getLogger(__name__)

__all__ = ["Calls", "call_json", "history_json"]

TURN_ASK_EVERY = 60.0  # seconds between asks when the node gave no TURN credentials


def _ms(t: float | None) -> int | None:
    return None if t is None else int(t * 1000)


def call_json(call: Call, candidates: list[str] | None = None) -> dict[str, Any]:
    """A call as the API shows it; the SDP the browser needs from the other side."""
    remote = call.answer_sdp if call.outgoing else call.offer_sdp
    return {
        "call_id": call.call_id.hex(),
        "chat": f"contact:{call.peer.hex()}",
        "outgoing": call.outgoing,
        "video": call.video,
        "phase": call.phase.value,
        "reason": None if call.reason is None else call.reason.value,
        "code": call.code,
        "started_at_ms": _ms(call.started_at),
        "connected_at_ms": _ms(call.connected_at),
        "duration_s": int(call.duration),
        "remote_sdp": remote or None,
        "remote_candidates": list(candidates or []),
        "restarts": call.restarts,
    }


def history_json(row: call_store.CallRow) -> dict[str, Any]:
    return {
        "call_id": row.call_id.hex(),
        "chat": f"contact:{row.peer.hex()}",
        "outgoing": row.outgoing,
        "video": row.video,
        "reason": row.reason,
        "started_at_ms": row.started_at_ms,
        "connected_at_ms": row.connected_at_ms,
        "ended_at_ms": row.ended_at_ms,
        "duration_s": row.duration_s,
    }


class Calls:
    """The client's calls (``client.calls``); :meth:`run` drives the timers."""

    def __init__(
        self,
        channel: DirectChannel,
        conversations: Conversations,
        *,
        clock: Callable[[], float] = time.time,
        groups: GroupManager | None = None,
    ) -> None:
        self.channel = channel
        self.conversations = conversations
        self.db = channel.db
        self.clock = clock
        self.core = CallCore()
        self.ice_servers: list[str] = []  # STUN/TURN URLs for the browser (boxless up --ice-server)
        self.turn_secret: bytes | None = None  # a TURN node's REST-API secret (--turn-secret-file)
        # asks our service node for TURN credentials (node/turn_service.py), if it offers TURN
        self.turn_source: Callable[[], Awaitable[dict[str, Any]]] | None = None
        self._grant: dict[str, Any] | None = None  # the node's last answer, until it expires
        self._grant_until = 0.0
        self._grant_asked = -3600.0
        self._nursery: trio.Nursery | None = None
        self._candidates: list[str] = []
        self._signal_bytes = 0  # plaintext bytes of the running call's signals we sent
        self._restarts = 0  # the running call's ICE restarts we have seen
        self._timers = TimerLoop(lambda: self.clock())
        # group calls (client/calls_group.py): one call at a time, 1:1 or group
        self.group: GroupCalls | None = None
        if groups is not None:
            self.group = GroupCalls(
                channel, groups, busy=lambda: self.core.current is not None, clock=clock
            )
        channel.handlers.on_body((env.CallSignal,), self._on_signal, gated=False)

    async def run(self) -> None:
        """Ring and connect timeouts, keep-alives, lost peers; until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery  # TURN asks run here (ice_servers_now)
            if self.group is not None:
                nursery.start_soon(self.group.run)
            nursery.start_soon(self._run)

    async def _run(self) -> None:
        await self._timers.run(
            self.core.get_timer, lambda now: self._execute(self.core.handle_timer(now))
        )

    # -- for the API ---------------------------------------------------------------------

    async def ice_servers_now(self) -> list[dict[str, Any]]:
        """:meth:`ice_config` plus the TURN our service node advertises. The node is
        asked in the background (never on the ring's path) when the last grant is past
        half its life, a node that offered none again after :data:`TURN_ASK_EVERY` s;
        our own configuration is the fallback."""
        now = self.clock()
        stale = self._grant is None or now > self._grant_until
        if self.turn_source is not None and stale and now - self._grant_asked >= TURN_ASK_EVERY:
            if self._nursery is not None:
                self._grant_asked = now
                self._nursery.start_soon(self._ask_turn, self.turn_source)
        out: list[dict[str, Any]] = list(self.ice_config())
        g = self._grant
        if g is not None and now <= self._grant_until + int(g["ttl_s"]) / 2:
            out.append(
                {"urls": g["urls"], "username": g["username"], "credential": g["credential"]}
            )
        return out

    async def _ask_turn(self, source: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        try:
            with trio.fail_after(10):
                grant = await source()
        except (BoxlessError, trio.TooSlowError) as exc:
            logger.info("no TURN from our service node: %s", exc)
            return
        self._grant = grant
        self._grant_until = self.clock() + int(grant["ttl_s"]) / 2

    def ice_config(self) -> list[dict[str, str]]:
        """RTCPeerConnection ``iceServers``: turn: URLs get fresh short-lived credentials."""
        out: list[dict[str, str]] = []
        label = os.urandom(6).hex()  # not our identity: the TURN node learns nothing of who
        for url in self.ice_servers:
            entry = {"urls": url}
            if url.startswith(("turn:", "turns:")) and self.turn_secret is not None:
                user, password = turn_credentials(self.turn_secret, label, self.clock())
                entry |= {"username": user, "credential": password}
            out.append(entry)
        return out

    def current(self) -> dict[str, Any] | None:
        call = self.core.current
        if call is None:
            return None
        return {**call_json(call, self._candidates), "signal_bytes_sent": self._signal_bytes}

    async def start(self, identity_key: bytes, offer_sdp: str, video: bool) -> dict[str, Any]:
        """Ring an accepted contact with our browser's offer."""
        self.conversations.accepted(identity_key)
        self._not_in_group_call()
        call_id = os.urandom(env.CALL_ID_BYTES)
        out = self.core.start(identity_key, call_id, offer_sdp, video, self.clock())
        await self._execute(out)
        return self._json(out)

    async def accept(self, call_id: bytes, answer_sdp: str) -> dict[str, Any]:
        self._not_in_group_call()
        out = self.core.accept(call_id, answer_sdp, self.clock())
        await self._execute(out)
        return self._json(out)

    async def decline(self, call_id: bytes) -> dict[str, Any]:
        out = self.core.decline(call_id, self.clock())
        await self._execute(out)
        return self._json(out)

    async def hang_up(self, call_id: bytes) -> dict[str, Any]:
        out = self.core.hang_up(call_id, self.clock())
        await self._execute(out)
        return self._json(out)

    async def restart(self, call_id: bytes, offer_sdp: str) -> dict[str, Any]:
        """Our browser (the caller's) restarts ICE: a new offer on the same connection."""
        out = self.core.restart(call_id, offer_sdp, self.clock())
        await self._execute(out)
        return self._json(out)

    async def connected(self, call_id: bytes) -> dict[str, Any]:
        out = self.core.connected(call_id, self.clock())
        await self._execute(out)
        return self.current() or {}

    async def add_candidates(self, call_id: bytes, candidates: tuple[str, ...]) -> None:
        """Our browser's ICE candidates, for the peer (in signals of at most 16)."""
        step = env.MAX_CALL_CANDIDATES
        for i in range(0, max(1, len(candidates)), step):
            chunk = candidates[i : i + step]
            await self._execute(self.core.local_candidates(call_id, chunk, self.clock()))

    def _not_in_group_call(self) -> None:
        running = self.group.core.current if self.group is not None else None
        if running is not None and not running.ringing:
            raise UsageError("you are in a group call: leave it first")

    def history(self, identity_key: bytes | None = None, limit: int = 50) -> list[dict[str, Any]]:
        with self.db.transaction() as cur:
            rows = call_store.calls(cur, identity_key, limit)
        return [history_json(r) for r in rows]

    def _json(self, out: list[Out]) -> dict[str, Any]:
        for o in reversed(out):
            if isinstance(o, Changed):
                return call_json(o.call, self._candidates)
        return self.current() or {}

    # -- from the receive pipeline -------------------------------------------------------

    def _on_signal(self, cur: db.Cursor, r: Received) -> FollowUp | None:
        body = r.message.body
        assert isinstance(body, env.CallSignal)
        if body.group_id:
            if self.group is None:
                return None
            return self.group.on_signal(cur, r, body)
        allowed = r.contact is not None and r.contact.state == ContactState.ACCEPTED.value
        out = self.core.receive(
            r.sender, body, r.message.sent_at_ms / 1000, self.clock(), allowed=allowed
        )
        if not out:
            return None

        async def follow_up() -> None:
            await self._execute(out)

        return follow_up

    # -- running the core's outputs ------------------------------------------------------

    async def _execute(self, out: list[Out]) -> None:
        for o in out:
            if isinstance(o, Changed):
                if o.call.phase in (Phase.OUTGOING, Phase.INCOMING):
                    self._candidates = []  # a new call rings
                    self._signal_bytes = 0
                elif o.call.restarts != self._restarts:
                    self._candidates = []  # an ICE restart: the new round's candidates
                self._restarts = o.call.restarts
                self._changed(o.call)
            elif isinstance(o, RemoteCandidates):
                self._candidates.extend(o.candidates)
                self.channel.emit(ev.CallIce(o.call_id.hex(), len(self._candidates)))
        for o in out:
            if isinstance(o, Send):
                await self._send(o)
        if out:
            self._timers.wake()  # a new deadline, maybe

    def _changed(self, call: Call) -> None:
        if call.ended_at is not None and call.reason is not None:
            row = call_store.CallRow(
                call.call_id,
                call.peer,
                call.outgoing,
                call.video,
                call.reason.value,
                int(call.started_at * 1000),
                _ms(call.connected_at),
                int(call.ended_at * 1000),
            )
            with self.db.transaction() as cur:
                call_store.put_call(cur, row)
        self.channel.emit(
            ev.CallChanged(
                call.call_id.hex(),
                f"contact:{call.peer.hex()}",
                call.outgoing,
                call.video,
                call.phase.value,
                None if call.reason is None else call.reason.value,
                call.code,
                int(call.duration),
            )
        )

    async def _send(self, o: Send) -> None:
        try:
            contact = self.conversations.accepted(o.peer)
            data = env.encode(self.conversations.new_message(contact, o.signal))
            await self.channel.send_contact(
                contact, contact.conversation_topic, data, ephemeral=True
            )
            if self.core.current is not None and self.core.current.call_id == o.signal.call_id:
                self._signal_bytes += len(data)
        except (UsageError, NetworkError) as exc:  # the core's timers end the call
            logger.info("call signal %s not sent: %s", o.signal.kind.name, exc)
