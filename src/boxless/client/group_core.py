"""What the parts of the group feature share: logs, SDS channels, keys, sends, events.

Theory of operation
-------------------
The group feature is four objects around one :class:`GroupCore`:
:class:`~boxless.client.groups.GroupManager` (the public API: local actions and
publishing), :class:`~boxless.client.group_direct.GroupDirect` (bodies over
Olm: key shares, ops, join requests, requests for ops or keys, the inbox),
:class:`~boxless.client.group_topic.GroupTopic` (messages on the group topics:
decrypt, authorise, deliver, pending keys) and
:class:`~boxless.client.group_timers.GroupTimers` (the direct outbox, SDS
re-sends and sync, repair). The core holds what they all use -- the op logs
and SDS channels (cached), this device's Megolm sessions, member devices and
cards -- and the only two ways out: :meth:`GroupCore.send_olm` (a body over
Olm to one device) and :meth:`GroupCore.send_group` (one Waku message on a
group topic), with :meth:`GroupCore.event` for every event. Decisions about
time and limits are in :mod:`boxless.groups.delivery`, who may do what in
:mod:`boxless.groups.auth`, every SQL statement in
:mod:`boxless.client.group_store`.

Ops enter a log only through :meth:`GroupLog.admit` (judged first: a refused
op is neither kept nor stored, so it never becomes a parent the others could
not fetch); parents still missing are asked for from the member who named
them (:class:`~boxless.groups.requests.GroupRequest`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import trio

from boxless.chat import envelope as env
from boxless.chat.outbox import Outbox, RetryPolicy
from boxless.chat.topics import contact_topic, group_topic
from boxless.client import events as ev
from boxless.client import group_store as gs
from boxless.client import store as db
from boxless.client.channel import DirectChannel, card_to_code
from boxless.client.profile_store import alias_of
from boxless.crypto.megolm import (
    GroupSessions,
    KeyShare,
    RotationNeeded,
    encode_group_message,
)
from boxless.errors import BoxlessError, DecodeError, UsageError
from boxless.groups import (
    Create,
    Demote,
    GroupLog,
    GroupOp,
    Invite,
    Join,
    Leave,
    OpStatus,
    Promote,
    Remove,
    Rename,
    SetAnnouncementsOnly,
    SetAvatar,
    SetDescription,
    SetHistorySharing,
    decode_op,
    encode_op,
)
from boxless.groups.delivery import (
    GroupClock,
    GroupTimings,
    RateLimit,
)
from boxless.groups.requests import GroupRequest
from boxless.identity.account import LocalAccount
from boxless.identity.contact_code import InvalidContactCode
from boxless.identity.keys import DeviceBundle
from boxless.sync import SdsChannel, SdsConfig
from boxless.waku.message import WakuMessage

logger = logging.getLogger("boxless.client.groups")

Cursor = db.Cursor

REQUEST_IDS = 24  # ids one GroupRequest names
KEY_REQUEST_FANOUT = 50  # member devices asked to re-share missing sessions
CARD_ASK_OTHERS = 2  # members asked for missing cards besides the ops' authors
OWN_ECHOES = 256  # our newest group publications recognised when they come back


class NotAMember(UsageError):
    """This device is not (or no longer) a member of that group, or there is no such group."""


class GroupCore:
    """The state and operations the group feature's parts share (see the module doc)."""

    def __init__(
        self,
        account: LocalAccount,
        channel: DirectChannel,
        *,
        clock: Callable[[], float],
        timings: GroupTimings,
    ) -> None:
        self.account = account
        self.db = account.db
        self.channel = channel
        self.transport = channel.transport
        self.emit = channel.emit
        self.card_to_code = card_to_code
        self.clock = clock
        self.me = account.identity.public_key
        self.sessions = GroupSessions(self.db, self.db.derive_key("megolm sessions v1"))
        self.logs: dict[bytes, GroupLog] = {}
        self.channels: dict[bytes, SdsChannel] = {}
        self.names: dict[bytes, str] = {}
        self.wake = trio.Event()  # the direct outbox has work
        self.sds_wake = trio.Event()  # an SDS timer or repair moved
        self.timings = timings
        self.gclock = GroupClock(timings)
        self.announce: list[tuple[bytes, env.GroupOpBody]] = []  # joins we granted, to publish
        self.touched: set[bytes] = set()  # groups whose ops changed (inbox triggers)
        self.carded: set[bytes] = set()  # members whose card we just learned (inbox triggers)
        self.answers = RateLimit(timings.request_interval_s)  # per requesting member
        self.asks = RateLimit(timings.key_request_interval_s)  # per thing we ask for
        self.unknown: dict[bytes, dict[bytes, float]] = {}  # group -> session -> since
        self.sds_config: SdsConfig | None = _sds_config(None, timings)  # None: SDS defaults
        self.published: OrderedDict[bytes, None] = OrderedDict()  # payload digests, newest last
        # Kinds of group content other features carry (attachments): the handler stores its
        # part in the receive transaction and returns the text the message shows
        self.content_handlers: dict[type, Callable[[Any, bytes, bytes, str, env.ChatMessage], str]] = {}

    def set_timings(self, timings: GroupTimings) -> None:
        self.timings = self.gclock.timings = timings
        self.answers.interval = timings.request_interval_s
        self.asks.interval = timings.key_request_interval_s
        config = _sds_config(self.sds_config, timings)
        if config != self.sds_config:
            self.sds_config = config
            self.channels.clear()  # reloaded from the database with that config
        self.sds_wake.set()
        self.wake.set()

    def event(self, event: ev.Event) -> None:
        self.emit(event)

    def changed(self, group_id: bytes) -> None:
        self.emit(ev.GroupChanged(group_id.hex()))

    def message_changed(self, group_id: bytes, message_id: str) -> None:
        self.emit(ev.GroupMessageChanged(group_id.hex(), message_id))

    async def send_olm(self, card: bytes | DeviceBundle, topic: str, payload: bytes) -> bool:
        """Olm-encrypt, seal and send to a member card's (or a bare bundle's) device."""
        if isinstance(card, DeviceBundle):
            return await self.channel.send_bundle(card, topic, payload)
        return await self.channel.send_card(card, topic, payload)

    def log(self, cur: Cursor, group_id: bytes) -> GroupLog:
        log = self.logs.get(group_id)
        if log is None:
            ops = [decode_op(raw) for raw in gs.list_ops(cur, group_id)]
            log = self.logs[group_id] = GroupLog.replay(group_id, ops)
        return log

    def member_log(self, cur: Cursor, group_id: bytes) -> GroupLog:
        if not gs.has_group(cur, group_id):
            raise NotAMember("no such group")
        log = self.log(cur, group_id)
        if not log.state.is_member(self.me):
            raise NotAMember("you are not a member of this group")
        return log

    def name(self, cur: Cursor, group_id: bytes | None, key: bytes) -> str:
        if key == self.me:
            return self.account.profile.display_name
        contact = db.get_contact(cur, key)
        if contact is not None and contact.display_name:
            return alias_of(cur, key) or str(contact.display_name)  # the user's alias wins
        if key not in self.names:
            card = gs.get_card(cur, key)
            if card is not None:
                try:
                    self.names[key] = self.card_to_code(card[0], self.clock()).display_name
                except InvalidContactCode:
                    pass
        if key in self.names:
            return self.names[key]
        if group_id is not None:
            log = self.log(cur, group_id)
            member = log.state.members.get(key)
            if member is not None and member.name:
                return member.name
            for op in log.ops():  # a former member: the label they were invited under
                if isinstance(op.body, Invite) and op.body.member == key and op.body.name:
                    return op.body.name
        return f"member {key.hex()[:8]}"

    def sds(self, cur: Cursor, group_id: bytes) -> SdsChannel:
        """The group's SDS channel, kept in memory once loaded (loading rebuilds the
        bloom filter: ~30 ms at 1,000 messages of history, ~330 ms at 10,000)."""
        channel = self.channels.get(group_id)
        if channel is not None:
            return channel
        state = gs.get_sds_state(cur, group_id)
        if state is None:
            raise NotAMember("no such group")
        channel = self.channels[group_id] = SdsChannel.from_state(state, config=self.sds_config)
        return channel

    def save_sds(self, cur: Cursor, group_id: bytes, sds: SdsChannel) -> None:
        gs.set_sds_state(cur, group_id, sds.to_state())
        self.gclock.set_timer(group_id, sds.get_timer())
        self.gclock.set_missing(group_id, (m.since for m in sds.missing()))
        self.wake_timers(self.gclock.deadline(group_id))

    def wake_timers(self, deadline: float | None) -> None:
        """Wake the timer loop if ``deadline`` comes before it would wake anyway."""
        if self.gclock.wakes_early(deadline):
            self.sds_wake.set()

    def settle_acks(self, cur: Cursor, group_id: bytes, sds: SdsChannel) -> None:
        """Our messages other members acknowledged (SDS) become "confirmed"."""
        for message_id in sds.take_acknowledged():
            if gs.set_message_state(cur, message_id, "confirmed"):
                self.message_changed(group_id, message_id)

    @contextmanager
    def forget_sds_on_error(self, group_id: bytes) -> Iterator[None]:
        """If the transaction fails, the in-memory channel is ahead of the database."""
        try:
            yield
        except BaseException:
            self.channels.pop(group_id, None)
            raise

    def is_own_echo(self, payload: bytes) -> bool:
        """A group message payload this device published recently (we hold no key
        to our own Megolm sessions: it would wait for one and ask for it)."""
        return _digest(payload) in self.published

    def encrypt(self, cur: Cursor, group_id: bytes, data: bytes, now: float) -> Any:
        try:
            return self.sessions.encrypt(group_id, data, now)
        except RotationNeeded:
            self.refresh_sessions(cur, group_id, now)
            return self.sessions.encrypt(group_id, data, now)

    async def send_group(self, group_id: bytes, ct: Any) -> Any:
        waku = WakuMessage(
            payload=encode_group_message(ct),
            content_topic=group_topic(group_id),
            timestamp=int(self.clock() * 1e9),
        )
        # The network hands our own message back to us (relay, filter), possibly
        # before the send returns and its hash is marked seen: recognise it then.
        self.published[_digest(waku.payload)] = None
        while len(self.published) > OWN_ECHOES:
            self.published.popitem(last=False)
        try:
            return await self.transport.send(waku)
        except BoxlessError as exc:
            logger.info("group message not sent (SDS will re-send it): %s", exc)
            return None

    def refresh_sessions(
        self, cur: Cursor, group_id: bytes, now: float, *, joined: bool = False
    ) -> None:
        """Run Megolm ``outbound()`` for the current members; queue the shares over Olm."""
        state = self.log(cur, group_id).state
        if not state.is_member(self.me):
            return
        devices: dict[bytes, bytes] = {}
        unknown: list[bytes] = []
        for member in state.members:
            if member == self.me:
                continue
            device = self.device(cur, member)
            if device is None:
                unknown.append(member)
                continue
            devices[device] = member
        if unknown:
            logger.info(
                "group %s: %d members' devices unknown yet", group_id.hex()[:8], len(unknown)
            )
            self.ask_for_cards(cur, group_id, unknown)
        _, shares = self.sessions.outbound(
            group_id, devices, now, share_history=state.history_sharing
        )
        if joined and not state.history_sharing:
            # A re-send goes out under the current session, which a new member now
            # holds: it would hand them what was said before they joined. Stop
            # re-sending what reached the network (members who missed it repair
            # from the store); what never left this device still goes, to all.
            sds = self.sds(cur, group_id)
            if sds.stop_resending(only_published=True):
                self.save_sds(cur, group_id, sds)
        self.queue_shares(cur, shares, devices)

    def queue_shares(
        self, cur: Cursor, shares: Iterable[KeyShare], owners: dict[bytes, bytes]
    ) -> None:
        for share in shares:
            self.queue_direct(cur, owners[share.device], env.GroupKeyShareBody(share.payload))

    def queue_direct(self, cur: Cursor, recipient: bytes, body: env.Body) -> None:
        """Queue a body for one member's device over Olm, in the caller's transaction
        (the entry of :class:`~boxless.chat.outbox.Outbox`, sent by the timers)."""
        now = self.clock()
        msg = env.new_message(body, lamport=0, sent_at_ms=ms(now))
        outbox = Outbox(self.retry_policy)
        outbox.add(msg.message_id, recipient, contact_topic(recipient), env.encode(msg), now)
        row = outbox.row(msg.message_id)
        assert row is not None
        gs.put_direct(cur, row)
        self.wake.set()

    @property
    def retry_policy(self) -> RetryPolicy:
        """chat/outbox's schedule with the group timings (a body is done once sent)."""
        t = self.timings
        return RetryPolicy(initial=t.retry_base_s, cap=t.retry_max_s, lease=t.retry_max_s + 60)

    def device(self, cur: Cursor, identity_key: bytes) -> bytes | None:
        contact = db.get_contact(cur, identity_key)
        if contact is not None:
            return contact.device_key
        card = gs.get_card(cur, identity_key)
        return None if card is None else card[1]

    def card(self, cur: Cursor, identity_key: bytes) -> bytes | None:
        if identity_key == self.me:
            return bytes(self.account.contact_code(self.clock()).to_bytes())
        contact = db.get_contact(cur, identity_key)
        if contact is not None:
            return contact.bundle
        card = gs.get_card(cur, identity_key)
        return None if card is None else card[0]

    def cards(self, cur: Cursor, members: Iterable[bytes]) -> tuple[bytes, ...]:
        cards = (self.card(cur, m) for m in members)
        return tuple(c for c in cards if c is not None)

    def add_event(self, cur: Cursor, group_id: bytes, op: GroupOp) -> None:
        """A membership or settings change as a line in the conversation."""
        log = self.log(cur, group_id)
        if log.verdict(op.op_id).status is not OpStatus.APPLIED:
            return
        text = self.event_text(cur, group_id, op)
        row = gs.GroupMessageRow(
            "op-" + op.op_id.hex(),
            group_id,
            op.author,
            op.author == self.me,
            op.created_at_ms,
            op.created_at_ms,
            ms(self.clock()),
            text,
            "confirmed" if op.author == self.me else "received",
            kind="event",
        )
        if gs.add_message(cur, row):
            self.message_changed(group_id, row.message_id)

    def event_text(self, cur: Cursor, group_id: bytes, op: GroupOp) -> str:
        who = self.name(cur, group_id, op.author)
        body = op.body

        def name(key: bytes) -> str:
            return self.name(cur, group_id, key)

        match body:
            case Create(title, _, _, _):
                return f"{who} created the group “{title}”"
            case Invite(member, label):
                return f"{who} added {label or name(member)}"
            case Join():
                return f"{who} joined by invite link"
            case Leave():
                return f"{who} left"
            case Remove(member):
                return f"{who} removed {name(member)}"
            case Promote(member):
                return f"{who} made {name(member)} an admin"
            case Demote(member):
                return f"{who} made {name(member)} a member (no longer an admin)"
            case Rename(title):
                return f"{who} renamed the group to “{title}”"
            case SetAvatar():
                return f"{who} changed the group photo"
            case SetDescription():
                return f"{who} changed the group description"
            case SetAnnouncementsOnly(on):
                return f"{who} " + ("let only admins post" if on else "let everyone post")
            case SetHistorySharing(on):
                state = "on" if on else "off"
                return f"{who} turned history sharing for new members {state}"
        return f"{who} changed the group"

    def apply_ops(self, cur: Cursor, group_id: bytes, body: env.GroupOpBody, sender: bytes) -> None:
        """Add ops (and member cards) to a known group; rotate/share keys if membership moved.

        Each op is judged before it is kept (:meth:`GroupLog.admit`): a forged or
        invalid op is neither added nor stored. Parents still missing afterwards
        are asked for from ``sender``, who named them. A card is kept for a member,
        and for the identity a still pending op of this body lets in (its parents
        may come later, its card may not); a member's card learned after it
        joined gets it our key. Members we still have no card for are asked for.
        """
        log = self.log(cur, group_id)
        before = set(log.state.members)
        added: list[GroupOp] = []
        decoded: list[GroupOp] = []
        for raw in body.ops:
            try:
                op = decode_op(raw)
            except DecodeError:
                continue
            decoded.append(op)
            if op.op_id in log:
                continue
            if log.admit(op).status is OpStatus.INVALID:
                continue
            gs.add_op(cur, group_id, op.op_id, raw)
            added.append(op)
        members = log.state.members
        waiting = {
            key
            for op in decoded
            if log.verdict(op.op_id).status is OpStatus.PENDING
            for key in admitted_by(op)
        }
        carded = self.learn_cards(cur, body.cards, set(members) | waiting)
        for op in added:
            self.add_event(cur, group_id, op)
        missing = sorted(log.missing())
        if missing:
            for i in range(0, len(missing), REQUEST_IDS):
                request = GroupRequest(group_id, ops=tuple(missing[i : i + REQUEST_IDS]))
                self.ask(cur, group_id, [sender], request)
        if set(members) != before or carded & set(members):
            joined = not set(members) <= before or bool(carded & set(members))
            self.refresh_sessions(cur, group_id, self.clock(), joined=joined)
        if added:
            self.touched.add(group_id)
            self.changed(group_id)

    def learn_cards(self, cur: Cursor, cards: Iterable[bytes], wanted: set[bytes]) -> set[bytes]:
        """Keep the valid cards of ``wanted`` identities that are not our contacts;
        returns the identities whose card is new or names a new device."""
        learned: set[bytes] = set()
        for card in cards:
            try:
                code = self.card_to_code(card, self.clock())
            except InvalidContactCode:
                continue
            key = code.identity_key
            if key not in wanted or key == self.me or db.get_contact(cur, key) is not None:
                continue
            device = code.bundle.certificate.device_curve25519
            if self.device(cur, key) != device:
                learned.add(key)
            gs.put_card(cur, key, card, device)
            self.carded.add(key)
        return learned

    def ask_for_cards(self, cur: Cursor, group_id: bytes, keys: Iterable[bytes]) -> None:
        """Members we know are in but have no card of: ask for the ops that let them
        in (the answer carries their cards) from those ops' authors and two other
        members (rate-limited like every request, see :meth:`ask`)."""
        wanted = set(keys) - {self.me}
        if not wanted:
            return
        log = self.log(cur, group_id)
        ids: list[bytes] = []
        authors: list[bytes] = []
        for op in reversed(log.ops()):  # the newest op that let each one in
            found = wanted & set(admitted_by(op))
            if not found:
                continue
            wanted -= found
            ids.append(op.op_id)
            if op.author not in authors:
                authors.append(op.author)
            if not wanted or len(ids) == REQUEST_IDS:
                break
        if not ids:
            return
        others = [m for m in sorted(log.state.members) if m not in authors][:CARD_ASK_OTHERS]
        self.ask(cur, group_id, [*authors, *others], GroupRequest(group_id, ops=tuple(ids)))
        logger.info("group %s: asked for %d member cards", group_id.hex()[:8], len(ids))

    def admit_member(self, cur: Cursor, group_id: bytes, member: bytes, now: float) -> None:
        """A new member: every op and member card to them over Olm, keys to everyone."""
        log = self.log(cur, group_id)
        ops = [encode_op(o) for o in log.ops()]
        cards = self.cards(cur, log.state.members)
        for i in range(0, len(ops), env.MAX_GROUP_OPS):
            chunk = tuple(ops[i : i + env.MAX_GROUP_OPS])
            for j in range(0, max(len(cards), 1), env.MAX_GROUP_CARDS):
                self.queue_direct(
                    cur, member, env.GroupOpBody(chunk, cards[j : j + env.MAX_GROUP_CARDS])
                )
        self.refresh_sessions(cur, group_id, now, joined=True)

    def ask(self, cur: Cursor, gid: bytes, members: Iterable[bytes], request: GroupRequest) -> None:
        """Send a request to these members' devices (each thing asked for once per interval)."""
        asked = (gid, request.ops, request.sessions)
        if not self.asks.allow(asked, self.clock()):
            return
        for member in list(members)[:KEY_REQUEST_FANOUT]:
            if member != self.me and self.device(cur, member) is not None:
                self.queue_direct(cur, member, env.GroupKeyShareBody(request.encode()))


def _sds_config(config: SdsConfig | None, timings: GroupTimings) -> SdsConfig | None:
    """``config`` with the timings' SDS re-send period, if they set one."""
    if not timings.resend_after_s:
        return config
    return dataclasses.replace(
        config or SdsConfig(), resend_unacknowledged_after=timings.resend_after_s
    )


def admitted_by(op: GroupOp) -> tuple[bytes, ...]:
    """The identities an op lets into the group (an Invite's member, a Join's author):
    whoever relays the op must send their cards along."""
    if isinstance(op.body, Invite):
        return (op.body.member,)
    if isinstance(op.body, Join):
        return (op.author,)
    return ()


def member_cards(cur: Cursor, core: GroupCore, ops: Iterable[GroupOp]) -> tuple[bytes, ...]:
    """The cards we hold of the members ``ops`` let in (at most a body's worth)."""
    keys = dict.fromkeys(k for op in ops for k in admitted_by(op))
    return core.cards(cur, keys)[: env.MAX_GROUP_CARDS]


def _digest(payload: bytes) -> bytes:
    return hashlib.sha256(payload).digest()


def ms(now: float) -> int:
    return int(now * 1000)
