"""Group chats in the client: membership ops, Megolm keys, SDS, one topic per group.

Theory of operation
-------------------
A group is its signed op log (:class:`boxless.groups.GroupLog`, rows of
``client_group_ops``), this device's Megolm sessions for it
(:class:`boxless.crypto.megolm.GroupSessions`) and one SDS channel
(:class:`boxless.sync.SdsChannel`, JSON in ``client_groups``).

Sending (O(1) in the group's size): the content -- an encoded
:class:`~boxless.chat.envelope.ChatMessage` holding a ``Text`` or a
``GroupOpBody`` -- is SDS-wrapped (causal history, bloom filter), the SDS
bytes Megolm-encrypted once, and published as one Waku message on
:func:`~boxless.chat.topics.group_topic`. When Megolm has no usable session
(:class:`RotationNeeded`) or membership changed, :meth:`GroupSessions.outbound`
runs with the member devices; the key shares it returns are queued, in the
same transaction, in ``client_group_outbox`` and sent over Olm (sealed, on the
recipient's contact-request partition topic, which every client listens to).

Receiving a group message: dedup by Waku hash → Megolm decrypt → the SDS
sender must be the Megolm sender (the device that shared the session) and a
current member → SDS receive → each delivered content, in causal order, is a
text (stored) or ops (added to the log; member cards stored). A message whose
session key has not arrived yet waits in ``client_group_pending`` and is
retried when a key share for the group arrives.

Direct group bodies (over Olm, routed here by the client core before its
contact-request gate): ``GroupKeyShareBody`` and ``GroupOpBody``. The Olm
session proves the sender *device*; it must be the identity's device as we
know it (a contact's, or the card an admin's op message brought). A body from
a device we cannot place yet waits in ``client_group_inbox`` and is retried
whenever ops arrive. A ``GroupOpBody`` that makes a group we did not know is
accepted only if the ops make us and the sender members.

Member devices: from the contacts table, else from member cards. In v1 an
admin invites only its own accepted contacts (it needs their card); the
invitee's card then travels to everyone with the Invite op, and the invitee
gets every op and every member's card over Olm.

Not here yet: SDS timers (re-sends, sync messages) and repair of missing
messages by hash (an offline member catches up from the store's history of
the group topic instead), join by link, leave, admin changes from the API.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import trio

from boxless.chat import envelope as env
from boxless.chat.requests import ContactState
from boxless.chat.topics import contact_topic, group_topic
from boxless.client import events as ev
from boxless.client import group_store as gs
from boxless.client import store as db
from boxless.client.transport import Incoming, Transport
from boxless.crypto.errors import DuplicateMessage, TamperedMessage
from boxless.crypto.megolm import (
    GroupSessions,
    KeyShare,
    MessageBeforeKeyShare,
    RotationNeeded,
    UnknownGroupSession,
    decode_group_message,
    decode_key_share,
    encode_group_message,
    session_id_bytes,
)
from boxless.errors import BoxlessError, DecodeError, UsageError, ValidationError
from boxless.groups import (
    DEFAULT_LINK_VALIDITY,
    Body,
    Create,
    Demote,
    GroupLink,
    GroupLog,
    GroupOp,
    GroupState,
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
    check_token_fresh,
    create_op,
    decode_group_link,
    decode_op,
    encode_op,
    join_op,
    make_group_link,
)
from boxless.groups.auth import Action, Target, authorize
from boxless.groups.delivery import (
    GroupClock,
    GroupTimings,
    RateLimit,
    retry_delay,
    should_give_up,
    sync_point,
)
from boxless.groups.requests import GroupRequest, decode_request, is_request
from boxless.identity.account import LocalAccount
from boxless.identity.contact_code import InvalidContactCode
from boxless.identity.keys import DeviceBundle
from boxless.sync import SdsChannel, SdsConfig, decode_message
from boxless.waku.message import WakuMessage

logger = logging.getLogger(__name__)

_GROUP_PREFIX = "/boxless/1/group-"

Transmit = Callable[[bytes, str, bytes], Awaitable[bool]]
"""``transmit(card, content_topic, plaintext)``: Olm-encrypt, seal and send to a card's device."""
TransmitBundle = Callable[[DeviceBundle, str, bytes], Awaitable[bool]]
"""The same to a bare device bundle (a group link's admin, who is no contact of ours yet)."""
Emit = Callable[[ev.Event], None]
CardToCode = Callable[[bytes, float], Any]


READ_EVENTS = 10  # events per read marker for messages whose only change is the count
READ_ACKS = 50  # our messages one read marker may acknowledge
SEND_ALONG = 4  # an op published with this many of its nearest ancestors
KEY_REQUEST_FANOUT = 50  # member devices asked to re-share missing sessions
MAX_KEY_REQUEST_SESSIONS = 24  # sessions one request names
_MENTION_ALL = re.compile(r"(?<![\w@])@all\b", re.IGNORECASE)


class NotAMember(UsageError):
    """This device is not (or no longer) a member of that group, or there is no such group."""


@dataclass(frozen=True, slots=True)
class GroupSummary:
    """A group as the chat list shows it."""

    state: GroupState
    member: bool
    my_role: str | None
    muted: bool
    unread: int
    mentions: int
    last: tuple[int, gs.GroupMessageRow] | None


class GroupManager:
    """The groups of one client. Run :meth:`run` in the client's nursery."""

    def __init__(
        self,
        account: LocalAccount,
        transport: Transport,
        *,
        transmit: Transmit,
        emit: Emit,
        card_to_code: CardToCode,
        transmit_bundle: TransmitBundle | None = None,
        clock: Callable[[], float] = time.time,
        timings: GroupTimings | None = None,
    ) -> None:
        self.account = account
        self.db = account.db
        self.transport = transport
        self.transmit = transmit
        self.transmit_bundle = transmit_bundle
        self.emit = emit
        self.card_to_code = card_to_code
        self.clock = clock
        self.me = account.identity.public_key
        self.sessions = GroupSessions(self.db, self.db.derive_key("megolm sessions v1"))
        self._logs: dict[bytes, GroupLog] = {}
        self._wake = trio.Event()
        self._sds_wake = trio.Event()
        self._timings = timings or GroupTimings()
        self._clock = GroupClock(self._timings)
        self._names: dict[bytes, str] = {}
        self._announce: list[tuple[bytes, env.GroupOpBody]] = []
        self._channels: dict[bytes, SdsChannel] = {}
        self._touched: set[bytes] = set()  # groups whose ops or cards changed (inbox triggers)
        self._carded: set[bytes] = set()  # members whose card we just learned
        self._answers = RateLimit(self._timings.request_interval_s)  # per requesting member
        self._asks = RateLimit(self._timings.key_request_interval_s)  # per thing we ask for
        self._unknown: dict[bytes, dict[bytes, float]] = {}  # group -> session -> since
        self.sds_config: SdsConfig | None = None  # None: SDS defaults

    @property
    def timings(self) -> GroupTimings:
        """Every delay and limit of the group feature (tests set shorter ones)."""
        return self._timings

    @timings.setter
    def timings(self, timings: GroupTimings) -> None:
        self._timings = self._clock.timings = timings
        self._answers.interval = timings.request_interval_s
        self._asks.interval = timings.key_request_interval_s
        self._sds_wake.set()
        self._wake.set()

    @property
    def repair_after(self) -> float:
        return self._timings.repair_after_s

    @repair_after.setter
    def repair_after(self, seconds: float) -> None:
        self.timings = dataclasses.replace(self._timings, repair_after_s=seconds)

    # -- the channel: every send and event goes through these -------------------------

    def _event(self, event: ev.Event) -> None:
        self.emit(event)

    def _changed(self, group_id: bytes) -> None:
        self.emit(ev.GroupChanged(group_id.hex()))

    def _message_changed(self, group_id: bytes, message_id: str) -> None:
        self.emit(ev.GroupMessageChanged(group_id.hex(), message_id))

    async def _send_olm(self, card: bytes | DeviceBundle, topic: str, payload: bytes) -> bool:
        """Olm-encrypt, seal and send to a member card's (or a bare bundle's) device."""
        if isinstance(card, DeviceBundle):
            if self.transmit_bundle is None:
                raise UsageError("this client cannot join groups by link")
            return await self.transmit_bundle(card, topic, payload)
        return await self.transmit(card, topic, payload)

    # -- queries ------------------------------------------------------------------------

    def topics(self) -> list[str]:
        with self.db.transaction() as cur:
            return [group_topic(g) for g in gs.group_ids(cur)]

    @staticmethod
    def owns(content_topic: str) -> bool:
        return content_topic.startswith(_GROUP_PREFIX)

    def groups(self) -> list[GroupState]:
        with self.db.transaction() as cur:
            return [self._log(cur, g).state for g in gs.group_ids(cur)]

    def state(self, group_id: bytes) -> GroupState:
        with self.db.transaction() as cur:
            if not gs.has_group(cur, group_id):
                raise NotAMember("no such group")
            return self._log(cur, group_id).state

    def summaries(self) -> list[GroupSummary]:
        """Every group we are (or were) in, with unread counts and the last message."""
        with self.db.transaction() as cur:
            return [self._summary(cur, g) for g in gs.group_ids(cur)]

    def summary(self, group_id: bytes) -> GroupSummary:
        with self.db.transaction() as cur:
            if not gs.has_group(cur, group_id):
                raise NotAMember("no such group")
            return self._summary(cur, group_id)

    def _summary(self, cur: Any, group_id: bytes) -> GroupSummary:
        state = self._log(cur, group_id).state
        meta = gs.meta(cur, group_id)
        role = state.role(self.me)
        return GroupSummary(
            state,
            role is not None,
            None if role is None else role.value,
            meta.muted,
            meta.unread,
            meta.mentions,
            gs.last_message(cur, group_id),
        )

    def messages(
        self, group_id: bytes, limit: int = 50, before_seq: int | None = None
    ) -> list[tuple[int, gs.GroupMessageRow]]:
        with self.db.transaction() as cur:
            if not gs.has_group(cur, group_id):
                raise NotAMember("no such group")
            return gs.list_messages(cur, group_id, limit, before_seq)

    def message(self, message_id: str) -> tuple[int, gs.GroupMessageRow]:
        with self.db.transaction() as cur:
            found = gs.get_message(cur, message_id)
        if found is None:
            raise UsageError(f"no group message {message_id!r}")
        return found

    def pins(self, group_id: bytes) -> list[tuple[int, gs.GroupMessageRow]]:
        with self.db.transaction() as cur:
            if not gs.has_group(cur, group_id):
                raise NotAMember("no such group")
            return gs.pinned_messages(cur, group_id)

    def joins(self) -> list[gs.PendingJoin]:
        """Groups we asked to join by link and are not in yet."""
        with self.db.transaction() as cur:
            return gs.list_joins(cur)

    def member_name(self, group_id: bytes, key: bytes) -> str:
        """What to call a member: our name for a contact, the name on their card, the
        inviter's label, else a short key."""
        with self.db.transaction() as cur:
            return self._name(cur, group_id, key)

    def _name(self, cur: Any, group_id: bytes | None, key: bytes) -> str:
        if key == self.me:
            return self.account.profile.display_name
        contact = db.get_contact(cur, key)
        if contact is not None and contact.display_name:
            return str(contact.display_name)
        if key not in self._names:
            card = gs.get_card(cur, key)
            if card is not None:
                try:
                    self._names[key] = self.card_to_code(card[0], self.clock()).display_name
                except InvalidContactCode:
                    pass
        if key in self._names:
            return self._names[key]
        if group_id is not None:
            log = self._log(cur, group_id)
            member = log.state.members.get(key)
            if member is not None and member.name:
                return member.name
            for op in log.ops():  # a former member: the label they were invited under
                if isinstance(op.body, Invite) and op.body.member == key and op.body.name:
                    return op.body.name
        return f"member {key.hex()[:8]}"

    def _log(self, cur: Any, group_id: bytes) -> GroupLog:
        log = self._logs.get(group_id)
        if log is None:
            ops = [decode_op(raw) for raw in gs.list_ops(cur, group_id)]
            log = self._logs[group_id] = GroupLog.replay(group_id, ops)
        return log

    # -- local actions ------------------------------------------------------------------

    async def create(self, name: str, description: str = "") -> GroupState:
        """Create a group with us as its creator and only member."""
        now = self.clock()
        op = create_op(self.account.identity, name, int(now * 1000), description)
        gid = op.group_id
        log = GroupLog.replay(gid, [op])
        sds = SdsChannel(gid.hex(), self.me.hex(), now=now, config=self.sds_config)
        with self.db.transaction() as cur:
            gs.add_group(cur, gid, sds.to_state(), int(now * 1000))
            gs.add_op(cur, gid, op.op_id, encode_op(op))
            self._logs[gid] = log
            self._add_event(cur, gid, op)
            self.sessions.outbound(gid, [], now)
        await self.transport.subscribe([group_topic(gid)])
        logger.info("group %s created", gid.hex()[:8])
        self._changed(gid)
        return log.state

    async def invite(self, group_id: bytes, member: bytes) -> GroupState:
        """Invite an accepted contact: an Invite op for everyone, the whole log for them."""
        now = self.clock()
        with self.db.transaction() as cur:
            contact = db.get_contact(cur, member)
        if contact is None or contact.state != ContactState.ACCEPTED.value:
            raise UsageError("you can only invite your accepted contacts")
        with self.db.transaction() as cur:
            log = self._member_log(cur, group_id)
            op = log.next_op(self.account.identity, Invite(member, contact.display_name), _ms(now))
            gs.add_op(cur, group_id, op.op_id, encode_op(op))
            self._add_event(cur, group_id, op)
            self._admit(cur, group_id, member, now)
        await self._publish(group_id, _with_ancestors(log, op, (contact.bundle,)))
        self._changed(group_id)
        return log.state

    def _admit(self, cur: Any, group_id: bytes, member: bytes, now: float) -> None:
        """A new member: every op and member card to them over Olm, keys to everyone."""
        log = self._log(cur, group_id)
        ops = [encode_op(o) for o in log.ops()]
        cards = self._cards(cur, log.state.members)
        for i in range(0, len(ops), env.MAX_GROUP_OPS):
            chunk = tuple(ops[i : i + env.MAX_GROUP_OPS])
            for j in range(0, max(len(cards), 1), env.MAX_GROUP_CARDS):
                self._queue_direct(
                    cur, member, env.GroupOpBody(chunk, cards[j : j + env.MAX_GROUP_CARDS])
                )
        self._refresh_sessions(cur, group_id, now, joined=True)

    async def remove(self, group_id: bytes, member: bytes) -> GroupState:
        """Remove a member; our Megolm session rotates so they read nothing that follows."""
        return await self._change(group_id, Remove(member))

    async def set_role(self, group_id: bytes, member: bytes, admin: bool) -> GroupState:
        """Promote a member to admin or demote an admin (admins only)."""
        return await self._change(group_id, Promote(member) if admin else Demote(member))

    async def update(
        self,
        group_id: bytes,
        *,
        name: str | None = None,
        description: str | None = None,
        avatar: bytes | None = None,
        announcements_only: bool | None = None,
        history_sharing: bool | None = None,
    ) -> GroupState:
        """Change the group's settings (admins only); one signed op per change."""
        state = self.state(group_id)
        bodies: list[Body] = []
        if name is not None and name != state.name:
            bodies.append(Rename(name))
        if description is not None and description != state.description:
            bodies.append(SetDescription(description))
        if avatar is not None and avatar != state.avatar:
            bodies.append(SetAvatar(avatar))
        if announcements_only is not None and announcements_only != state.announcements_only:
            bodies.append(SetAnnouncementsOnly(announcements_only))
        if history_sharing is not None and history_sharing != state.history_sharing:
            bodies.append(SetHistorySharing(history_sharing))
        for body in bodies:
            state = await self._change(group_id, body)
        return state

    async def leave(self, group_id: bytes) -> GroupState:
        """Leave the group; the others rotate their keys. The group stays listed, read-only."""
        state = await self._change(group_id, Leave())
        self._clock.set_timer(group_id, None)
        return state

    async def _change(self, group_id: bytes, body: Body) -> GroupState:
        """Sign a membership/settings op, record it and announce it on the group topic.

        Announced under the current Megolm session, so a removed member learns of
        its removal too; membership changes then rotate before the next message.
        """
        now = self.clock()
        with self.db.transaction() as cur:
            log = self._member_log(cur, group_id)
            before = set(log.state.members)
            op = log.next_op(self.account.identity, body, _ms(now))
            gs.add_op(cur, group_id, op.op_id, encode_op(op))
            self._add_event(cur, group_id, op)
        await self._publish(group_id, _with_ancestors(log, op), as_member=False)
        if set(log.state.members) != before:
            with self.db.transaction() as cur:
                self._refresh_sessions(cur, group_id, now)
            self._wake.set()
        self._changed(group_id)
        return log.state

    # -- links --------------------------------------------------------------------------

    def make_link(self, group_id: bytes, validity_s: int = DEFAULT_LINK_VALIDITY) -> GroupLink:
        """A ``boxless://g/`` link anyone can join by while it is valid (admins only)."""
        with self.db.transaction() as cur:
            log = self._member_log(cur, group_id)
            return make_group_link(
                self.account.identity,
                self.account.device,
                log,
                self.account.profile.display_name,
                self.clock(),
                validity_s,
            )

    def preview_link(self, link: str) -> GroupLink:
        """Decode and verify a group link (raises InvalidGroupLink saying what is wrong)."""
        return decode_group_link(link.strip(), self.clock())

    async def join(self, link: str) -> bytes:
        """Ask the link's admin to let us in: a signed Join op and our card, over Olm.

        The group appears once the admin's ops arrive (the admin may be offline
        for a while: the request is re-sent until the network takes it).
        """
        parsed = self.preview_link(link)
        gid = parsed.group_id
        now = self.clock()
        with self.db.transaction() as cur:
            if gs.has_group(cur, gid) and self._log(cur, gid).state.is_member(self.me):
                raise UsageError("you are already a member of this group")
        op = join_op(self.account.identity, parsed.token, _ms(now))
        card = bytes(self.account.contact_code(now).to_bytes())
        msg = env.new_message(
            env.GroupOpBody((encode_op(op),), (card,)), lamport=0, sent_at_ms=_ms(now)
        )
        ok = await self._send_olm(
            parsed.admin_bundle, contact_topic(parsed.admin_key), env.encode(msg)
        )
        if not ok:
            raise UsageError("the network did not take the join request; try again when online")
        with self.db.transaction() as cur:
            gs.add_join(
                cur, gs.PendingJoin(gid, parsed.name, parsed.admin_key, link.strip(), _ms(now))
            )
        self._changed(gid)
        logger.info("asked to join group %s", gid.hex()[:8])
        return gid

    # -- messages -----------------------------------------------------------------------

    async def send_text(
        self,
        group_id: bytes,
        text: str,
        *,
        mentions: Sequence[bytes] | None = None,
        mention_all: bool | None = None,
    ) -> gs.GroupMessageRow:
        """Send a text to the group: one Megolm encryption, one Waku message.

        ``mentions`` default to the members the text names as ``@name``, and
        ``mention_all`` to whether it says ``@all``.
        """
        with self.db.transaction() as cur:
            state = self._member_log(cur, group_id).state
            if state.announcements_only and not state.is_admin(self.me):
                raise UsageError("only admins can post in this group (announcements only)")
            if mentions is None:
                mentions = self._mentioned(cur, state, text)
            keys = tuple(dict.fromkeys(k for k in mentions if state.is_member(k)))
        if mention_all is None:
            mention_all = _MENTION_ALL.search(text) is not None
        return await self._publish(group_id, env.Text(text, None, keys, mention_all))

    def _mentioned(self, cur: Any, state: GroupState, text: str) -> tuple[bytes, ...]:
        if "@" not in text:
            return ()
        lowered = text.casefold()
        found = []
        for key in state.members:
            name = self._name(cur, state.group_id, key).casefold()
            at = lowered.find("@" + name)
            while at >= 0:
                end = at + 1 + len(name)
                if end == len(lowered) or not lowered[end].isalnum():
                    found.append(key)
                    break
                at = lowered.find("@" + name, end)
        return tuple(found)

    async def pin(self, group_id: bytes, message_id: str, pinned: bool = True) -> None:
        """Pin or unpin a message for every member."""
        with self.db.transaction() as cur:
            state = self._member_log(cur, group_id).state
            found = gs.get_message(cur, message_id)
            if found is None or found[1].group_id != group_id:
                raise UsageError("no such message in this group")
            if state.announcements_only and not state.is_admin(self.me):
                raise UsageError("only admins can pin in this group (announcements only)")
            gs.set_pinned(cur, group_id, message_id, pinned)
        self._message_changed(group_id, message_id)
        await self._publish(group_id, env.GroupPin(message_id, pinned))

    def set_muted(self, group_id: bytes, muted: bool) -> None:
        """Muted groups still count unread messages but notify only for mentions."""
        with self.db.transaction() as cur:
            if not gs.has_group(cur, group_id):
                raise NotAMember("no such group")
            gs.set_muted(cur, group_id, muted)
        self._changed(group_id)

    async def mark_read(self, group_id: bytes, seq: int) -> None:
        """We read up to ``seq``; members learn our read position (one message, any size)."""
        with self.db.transaction() as cur:
            if not gs.has_group(cur, group_id):
                raise NotAMember("no such group")
            if not gs.set_read_seq(cur, group_id, seq):
                return
            lamport = gs.newest_read_lamport(cur, group_id, seq)
            member = self._log(cur, group_id).state.is_member(self.me)
        self._changed(group_id)
        if lamport is not None and member:
            await self._publish(group_id, env.GroupRead(int(lamport)), ephemeral=True)

    def _member_log(self, cur: Any, group_id: bytes) -> GroupLog:
        if not gs.has_group(cur, group_id):
            raise NotAMember("no such group")
        log = self._log(cur, group_id)
        if not log.state.is_member(self.me):
            raise NotAMember("you are not a member of this group")
        return log

    async def _publish(
        self,
        group_id: bytes,
        body: env.Text | env.GroupOpBody | env.GroupPin | env.GroupRead,
        *,
        as_member: bool = True,
        ephemeral: bool = False,
    ) -> gs.GroupMessageRow:
        """SDS-wrap, Megolm-encrypt once, publish once. Texts are stored as ours."""
        now = self.clock()
        msg = env.new_message(body, lamport=0, sent_at_ms=_ms(now))
        with self.db.transaction() as cur, self._forget_sds_on_error(group_id):
            if as_member:
                self._member_log(cur, group_id)
            sds = self._sds(cur, group_id)
            content = env.encode(msg)
            wrapped = sds.wrap_ephemeral(content) if ephemeral else sds.wrap(content, now)
            ct = self._encrypt(cur, group_id, wrapped.data, now)
            text = body.text if isinstance(body, env.Text) else ""
            row = gs.GroupMessageRow(
                wrapped.message_id,
                group_id,
                self.me,
                True,
                sds.lamport_timestamp,
                msg.sent_at_ms,
                None,
                text,
                "queued",
            )
            if isinstance(body, env.Text):
                gs.add_message(cur, row)
            self._save_sds(cur, group_id, sds)
        self._wake.set()
        sent = await self._send_group(group_id, ct)
        if sent is None:
            return row
        with self.db.transaction() as cur:
            db.mark_seen(cur, sent.message_hash, _ms(self.clock()))
            if not ephemeral:
                sds = self._sds(cur, group_id)
                if sent.accepted:  # a hint says "a store has it": only if the network took it
                    sds.set_retrieval_hint(wrapped.message_id, sent.message_hash)
                if sent.accepted and isinstance(body, env.Text):
                    gs.set_message_state(cur, wrapped.message_id, "sent", only_from="queued")
                self._settle_acks(cur, group_id, sds)
                self._save_sds(cur, group_id, sds)
        if isinstance(body, env.Text):
            self._message_changed(group_id, wrapped.message_id)
        return row

    @contextmanager
    def _forget_sds_on_error(self, group_id: bytes) -> Iterator[None]:
        """If the transaction fails, the in-memory channel is ahead of the database."""
        try:
            yield
        except BaseException:
            self._channels.pop(group_id, None)
            raise

    def _encrypt(self, cur: Any, group_id: bytes, data: bytes, now: float) -> Any:
        try:
            return self.sessions.encrypt(group_id, data, now)
        except RotationNeeded:
            self._refresh_sessions(cur, group_id, now)
            return self.sessions.encrypt(group_id, data, now)

    async def _send_group(self, group_id: bytes, ct: Any) -> Any:
        waku = WakuMessage(
            payload=encode_group_message(ct),
            content_topic=group_topic(group_id),
            timestamp=int(self.clock() * 1e9),
        )
        try:
            return await self.transport.send(waku)
        except BoxlessError as exc:
            logger.info("group message not sent (SDS will re-send it): %s", exc)
            return None

    def _save_sds(self, cur: Any, group_id: bytes, sds: SdsChannel) -> None:
        gs.set_sds_state(cur, group_id, sds.to_state())
        self._clock.set_timer(group_id, sds.get_timer())
        self._clock.set_missing(group_id, (m.since for m in sds.missing()))
        self._sds_wake.set()

    def _settle_acks(self, cur: Any, group_id: bytes, sds: SdsChannel) -> None:
        """Our messages other members acknowledged (SDS) become "confirmed"."""
        for message_id in sds.take_acknowledged():
            if gs.set_message_state(cur, message_id, "confirmed"):
                self._message_changed(group_id, message_id)

    def _sds(self, cur: Any, group_id: bytes) -> SdsChannel:
        """The group's SDS channel, kept in memory once loaded (loading rebuilds the
        bloom filter: ~30 ms at 1,000 messages of history, ~330 ms at 10,000)."""
        channel = self._channels.get(group_id)
        if channel is not None:
            return channel
        state = gs.get_sds_state(cur, group_id)
        if state is None:
            raise NotAMember("no such group")
        channel = self._channels[group_id] = SdsChannel.from_state(state, config=self.sds_config)
        return channel

    def _refresh_sessions(
        self, cur: Any, group_id: bytes, now: float, *, joined: bool = False
    ) -> None:
        """Run Megolm ``outbound()`` for the current members; queue the shares over Olm."""
        state = self._log(cur, group_id).state
        if not state.is_member(self.me):
            return
        devices: dict[bytes, bytes] = {}
        for member in state.members:
            if member == self.me:
                continue
            device = self._device(cur, member)
            if device is None:
                logger.info("group %s: a member's device is unknown yet", group_id.hex()[:8])
                continue
            devices[device] = member
        _, shares = self.sessions.outbound(
            group_id, devices, now, share_history=state.history_sharing
        )
        if joined and not state.history_sharing:
            # A re-send goes out under the current session, which a new member now
            # holds: it would hand them what was said before they joined. Stop
            # re-sending what reached the network (members who missed it repair
            # from the store); what never left this device still goes, to all.
            sds = self._sds(cur, group_id)
            if sds.stop_resending(only_published=True):
                self._save_sds(cur, group_id, sds)
        self._queue_shares(cur, shares, devices)

    def _queue_shares(
        self, cur: Any, shares: Iterable[KeyShare], owners: dict[bytes, bytes]
    ) -> None:
        for share in shares:
            self._queue_direct(cur, owners[share.device], env.GroupKeyShareBody(share.payload))

    def _queue_direct(self, cur: Any, recipient: bytes, body: env.Body) -> None:
        msg = env.new_message(body, lamport=0, sent_at_ms=_ms(self.clock()))
        gs.queue_direct(cur, recipient, env.encode(msg), self.clock())
        self._wake.set()

    def _device(self, cur: Any, identity_key: bytes) -> bytes | None:
        contact = db.get_contact(cur, identity_key)
        if contact is not None:
            return contact.device_key
        card = gs.get_card(cur, identity_key)
        return None if card is None else card[1]

    def _card(self, cur: Any, identity_key: bytes) -> bytes | None:
        if identity_key == self.me:
            return bytes(self.account.contact_code(self.clock()).to_bytes())
        contact = db.get_contact(cur, identity_key)
        if contact is not None:
            return contact.bundle
        card = gs.get_card(cur, identity_key)
        return None if card is None else card[0]

    def _cards(self, cur: Any, members: Iterable[bytes]) -> tuple[bytes, ...]:
        cards = (self._card(cur, m) for m in members)
        return tuple(c for c in cards if c is not None)

    def _add_event(self, cur: Any, group_id: bytes, op: GroupOp) -> None:
        """A membership or settings change as a line in the conversation."""
        log = self._log(cur, group_id)
        if log.verdict(op.op_id).status is not OpStatus.APPLIED:
            return
        text = self._event_text(cur, group_id, op)
        row = gs.GroupMessageRow(
            "op-" + op.op_id.hex(),
            group_id,
            op.author,
            op.author == self.me,
            op.created_at_ms,
            op.created_at_ms,
            _ms(self.clock()),
            text,
            "confirmed" if op.author == self.me else "received",
            kind="event",
        )
        if gs.add_message(cur, row):
            self._message_changed(group_id, row.message_id)

    def _event_text(self, cur: Any, group_id: bytes, op: GroupOp) -> str:
        who = self._name(cur, group_id, op.author)
        body = op.body

        def name(key: bytes) -> str:
            return self._name(cur, group_id, key)

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

    # -- timers: the Olm outbox, SDS re-sends and sync, repair ------------------------

    async def run(self) -> None:
        """Run the group background work until cancelled."""
        with self.db.transaction() as cur:
            for gid in gs.group_ids(cur):
                if self._log(cur, gid).state.is_member(self.me):
                    self._save_sds(cur, gid, self._sds(cur, gid))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._outbox_loop)
            nursery.start_soon(self._sds_loop)

    async def _sds_loop(self) -> None:
        """Fire due SDS timers (re-send unacknowledged messages, sync when quiet) and
        repair: fetch what members' causal histories name but we never got."""
        while True:
            self._sds_wake = trio.Event()
            now = self.clock()
            fire, repair = self._clock.due(now)
            for gid in fire:
                await self._fire_timer(gid, now)
            for gid in repair:
                await self._repair(gid)
            self._ask_for_keys(now)
            self._expire_queues(now)
            with trio.move_on_after(self._clock.get_timer(self.clock())):
                await self._sds_wake.wait()

    async def _fire_timer(self, group_id: bytes, now: float) -> None:
        with self.db.transaction() as cur:
            if not self._log(cur, group_id).state.is_member(self.me):
                self._clock.set_timer(group_id, None)
                return
            sds = self._sds(cur, group_id)
            due = sds.handle_timer(now)
            cts = [self._encrypt(cur, group_id, w.data, now) for w in due]
            self._save_sds(cur, group_id, sds)
        self._wake.set()
        for ct in cts:
            await self._send_group(group_id, ct)

    async def _repair(self, group_id: bytes) -> None:
        """Fetch the missing messages from the store (they may be there even if the
        live path lost them): by their Waku hashes (the SDS retrieval hints), and,
        for any named without a hint, the group topic around the gap. Give up on
        what never comes."""
        since = self._clock.take_repair(group_id, self.clock())
        topic = group_topic(group_id)
        with self.db.transaction() as cur:
            missing = self._sds(cur, group_id).missing()
            hints = [
                m.retrieval_hint
                for m in missing
                if m.retrieval_hint and not db.was_seen(cur, m.retrieval_hint)
            ]
        unhinted = any(not m.retrieval_hint for m in missing)
        fetched = 0
        try:
            if hints:
                async for item in self.transport.fetch(topic, hints):
                    fetched += 1
                    await self.handle(item)
            if unhinted:
                start = int((since - self.timings.repair_lookback_s) * 1e9)
                async for item in self.transport.history([topic], start):
                    fetched += 1
                    await self.handle(item)
        except BoxlessError as exc:
            logger.info("group repair from the store failed: %s", exc)
        with self.db.transaction() as cur:
            sds = self._sds(cur, group_id)
            stale = [m for m in sds.missing() if m.since <= since]
            released: list[Any] = self._give_up_unreadable(cur, sds)
            for dep in stale:  # not in the store either: members' re-sends may still come
                if should_give_up(self.timings, dep.since, self.clock()):
                    released += sds.mark_irretrievable(dep.message_id)
            for d in released:
                self._deliver(cur, group_id, bytes.fromhex(d.sender_id), d.message_id, d)
            self._save_sds(cur, group_id, sds)
            if sds.missing():
                self._clock.retry_repair(group_id, self.clock())
        logger.info(
            "group %s repair: %d by hash, %s; %d messages from the store",
            group_id.hex()[:8],
            len(hints),
            "and a time window" if unhinted else "no time window",
            fetched,
        )

    def _expire_queues(self, now: float) -> None:
        limits = self.timings.limits
        with self.db.transaction() as cur:
            gone = gs.expire_queues(
                cur, _ms(now - limits.inbox_expiry_s), _ms(now - limits.pending_expiry_s)
            )
        if gone:
            logger.info("group queues: %d expired rows forgotten", gone)

    async def _outbox_loop(self) -> None:
        """Send queued direct group bodies until cancelled (undelivered ones stay queued)."""
        while True:
            self._wake = trio.Event()
            now = self.clock()
            with self.db.transaction() as cur:
                due = gs.due_direct(cur, now)
            for row_id, recipient, payload, attempts in due:
                await self._send_direct(row_id, recipient, payload, attempts)
            with self.db.transaction() as cur:
                next_at = gs.next_direct_at(cur)
            idle = self.timings.idle_outbox_s
            delay = idle if next_at is None else max(0.0, next_at - self.clock())
            with trio.move_on_after(delay):
                await self._wake.wait()

    async def _send_direct(self, row_id: int, recipient: bytes, payload: bytes, tries: int) -> None:
        with self.db.transaction() as cur:
            card = self._card(cur, recipient)
        if card is None:
            with self.db.transaction() as cur:
                gs.done_direct(cur, row_id)
            return
        try:
            ok = await self._send_olm(card, contact_topic(recipient), payload)
        except BoxlessError as exc:
            logger.info("group key share or ops not sent, will retry: %s", exc)
            ok = False
        with self.db.transaction() as cur:
            if ok:
                gs.done_direct(cur, row_id)
            else:
                backoff = retry_delay(self.timings, tries)
                gs.retry_direct(cur, row_id, tries + 1, self.clock() + backoff)

    # -- receiving over Olm -------------------------------------------------------------

    def on_direct(self, cur: Any, sender: bytes, device: bytes, msg: env.ChatMessage) -> Any:
        """A group body that arrived over Olm from ``device`` (inside the core's transaction).

        Returns a coroutine of follow-ups (subscribe, catch up, send) or None.
        """
        new_groups: list[bytes] = []
        self._direct(cur, sender, device, msg, new_groups, queue=True)
        self._retry_inbox(cur, new_groups)
        self._wake.set()
        announce, self._announce = self._announce, []
        if not new_groups and not announce:
            return None

        async def follow_up() -> None:
            for gid, body in announce:  # join requests we granted: tell the members
                await self._publish(gid, body)
            if not new_groups:
                return
            topics = [group_topic(g) for g in new_groups]
            await self.transport.subscribe(topics)
            for gid in new_groups:
                self._changed(gid)
            await self.catch_up(topics)

        return follow_up()

    def _direct(
        self,
        cur: Any,
        sender: bytes,
        device: bytes,
        msg: env.ChatMessage,
        new_groups: list[bytes],
        *,
        queue: bool,
    ) -> None:
        body = msg.body
        known = self._device(cur, sender)
        if known is not None and known != device:
            logger.warning("group body from a device that is not the member's; dropped")
            return
        if isinstance(body, env.GroupKeyShareBody) and is_request(body.payload):
            if known is not None:
                self._answer(cur, sender, device, body.payload)
        elif isinstance(body, env.GroupKeyShareBody):
            self._key_share(cur, sender, device, known, msg, queue)
        elif isinstance(body, env.GroupOpBody):
            if self._join_request(cur, sender, device, body):
                return
            contact = db.get_contact(cur, sender)
            is_contact = contact is not None and contact.state == ContactState.ACCEPTED.value
            if known is None and not is_contact and not self._awaited(cur, sender, device, body):
                self._to_inbox(cur, sender, device, _ops_group(body), msg, queue)
                return
            self._direct_ops(cur, sender, device, body, new_groups)

    def _key_share(
        self,
        cur: Any,
        sender: bytes,
        device: bytes,
        known: bytes | None,
        msg: env.ChatMessage,
        queue: bool,
    ) -> None:
        assert isinstance(msg.body, env.GroupKeyShareBody)
        try:
            gid = decode_key_share(msg.body.payload).group_id
        except DecodeError:
            logger.info("malformed group key share; dropped")
            return
        state = self._log(cur, gid).state if gs.has_group(cur, gid) else None
        if known is None or authorize(state, sender, Action.KEY_SHARE) is not None:
            self._to_inbox(cur, sender, device, gid, msg, queue)  # its sender may be placed later
            return
        try:
            self.sessions.add_key_share(sender, device, msg.body.payload)
        except (DecodeError, ValidationError) as exc:
            logger.info("group key share refused: %s", exc)
            return
        self._retry_pending(cur, gid)

    def _answer(self, cur: Any, sender: bytes, device: bytes, payload: bytes) -> None:
        """A member asks for ops by id or a re-share of our session (rate-limited per member)."""
        try:
            request = decode_request(payload)
        except DecodeError as exc:
            logger.info("malformed group request: %s", exc)
            return
        gid = request.group_id
        state = self._log(cur, gid).state if gs.has_group(cur, gid) else None
        refused = authorize(state, sender, Action.REQUEST)
        if refused is not None or not self._answers.allow((gid, sender), self.clock()):
            logger.info("group request not answered: %s", refused or "too many")
            return
        log = self._log(cur, gid)
        ops = [o for o in (log.get(i) for i in request.ops) if o is not None]
        if ops:
            self._queue_direct(cur, sender, env.GroupOpBody(tuple(encode_op(o) for o in ops)))
        for session_id in request.sessions:
            share = self.sessions.reshare(gid, session_id, device)
            if share is not None:
                self._queue_direct(cur, sender, env.GroupKeyShareBody(share.payload))

    def _ask(self, cur: Any, gid: bytes, members: Iterable[bytes], request: GroupRequest) -> None:
        """Send a request to these members' devices (each thing asked for once per interval)."""
        asked = (gid, request.ops, request.sessions)
        if not self._asks.allow(asked, self.clock()):
            return
        for member in list(members)[:KEY_REQUEST_FANOUT]:
            if member != self.me and self._device(cur, member) is not None:
                self._queue_direct(cur, member, env.GroupKeyShareBody(request.encode()))

    def _awaited(self, cur: Any, sender: bytes, device: bytes, body: env.GroupOpBody) -> bool:
        """Ops from the admin whose group link we used, from the device the link named."""
        gid = _ops_group(body)
        for join in gs.list_joins(cur):
            if join.group_id != gid or join.admin != sender:
                continue
            try:
                link = decode_group_link(join.link, join.requested_at_ms / 1000)
            except UsageError:
                return False
            return link.admin_bundle.certificate.device_curve25519 == device
        return False

    def _join_request(self, cur: Any, sender: bytes, device: bytes, body: env.GroupOpBody) -> bool:
        """A Join op by link for a group we admin, with the joiner's card: let them in.

        The token is checked against our real clock here; the op itself by every
        member's log (the token's issuer must have been an admin at its heads).
        Judged before it is added: a refused Join never enters our log (it would
        become a head our next op names, which no other member could ever fetch).
        Returns False if this is not a join request (handled as ordinary ops).
        """
        if len(body.ops) != 1 or len(body.cards) != 1:
            return False
        try:
            op = decode_op(body.ops[0])
        except DecodeError:
            return False
        if not isinstance(op.body, Join) or op.author != sender:
            return False
        gid = op.group_id
        if not gs.has_group(cur, gid):
            logger.info("join request for a group we are not in; dropped")
            return True
        log = self._log(cur, gid)
        if not log.state.is_admin(self.me) or op.op_id in log:
            return True
        try:
            check_token_fresh(op.body.token, self.clock())
            code = self.card_to_code(body.cards[0], self.clock())
        except (UsageError, InvalidContactCode) as exc:
            logger.info("join request refused: %s", exc)
            return True
        if code.identity_key != sender or code.bundle.certificate.device_curve25519 != device:
            logger.warning("join request whose card is not the sender's device; dropped")
            return True
        verdict = log.admit(op, only_applied=True)  # judged first: a refused Join is not kept
        if verdict.status is not OpStatus.APPLIED or not log.state.is_member(sender):
            logger.info("join request refused by the group's rules: %s", verdict.reason)
            return True
        gs.add_op(cur, gid, op.op_id, body.ops[0])
        if db.get_contact(cur, sender) is None:
            gs.put_card(cur, sender, body.cards[0], device)
        self._add_event(cur, gid, op)
        self._admit(cur, gid, sender, self.clock())
        self._announce.append((gid, env.GroupOpBody(body.ops, body.cards)))
        self._changed(gid)
        logger.info("admitted a member to group %s by link", gid.hex()[:8])
        return True

    def _to_inbox(
        self,
        cur: Any,
        sender: bytes,
        device: bytes,
        group_id: bytes | None,
        msg: env.ChatMessage,
        queue: bool,
    ) -> None:
        """Keep a body we cannot place yet, within the sender's share of the inbox."""
        if not queue:
            return
        limits = self.timings.limits
        if not limits.inbox_admits(*gs.inbox_counts(cur, sender)):
            logger.debug("group inbox: no room for this sender; dropped")
            return
        gs.add_inbox(cur, sender, device, group_id, env.encode(msg), _ms(self.clock()))

    def _direct_ops(
        self,
        cur: Any,
        sender: bytes,
        device: bytes,
        body: env.GroupOpBody,
        new_groups: list[bytes],
    ) -> None:
        try:
            ops = [decode_op(raw) for raw in body.ops]
        except DecodeError:
            logger.info("group ops with a malformed op; dropped")
            return
        gid = ops[0].group_id
        if gs.has_group(cur, gid):
            refused = authorize(self._log(cur, gid).state, sender, Action.OPS)
            if refused is None:
                self._apply_ops(cur, gid, body, sender)
            else:
                logger.info("group ops dropped: %s", refused)
            return
        trial = GroupLog.replay(gid, ops)
        invites_us = trial.state.is_member(self.me) and trial.state.is_member(sender)
        if authorize(None, sender, Action.OPS, Target(invites_us=invites_us)) is not None:
            logger.info("group ops that do not make us a member; dropped")
            return
        now = self.clock()
        gs.add_group(
            cur,
            gid,
            SdsChannel(gid.hex(), self.me.hex(), now=now, config=self.sds_config).to_state(),
            _ms(now),
        )
        gs.drop_join(cur, gid)
        self._apply_ops(cur, gid, body, sender)
        new_groups.append(gid)
        logger.info("joined group %s", gid.hex()[:8])

    def _apply_ops(self, cur: Any, group_id: bytes, body: env.GroupOpBody, sender: bytes) -> None:
        """Add ops (and member cards) to a known group; rotate/share keys if membership moved.

        Each op is judged before it is kept (:meth:`GroupLog.admit`): a forged or
        invalid op is neither added nor stored. Parents still missing afterwards
        are asked for from ``sender``, who named them.
        """
        log = self._log(cur, group_id)
        before = set(log.state.members)
        added: list[GroupOp] = []
        for raw in body.ops:
            try:
                op = decode_op(raw)
            except DecodeError:
                continue
            if op.op_id in log:
                continue
            if log.admit(op).status is OpStatus.INVALID:
                continue
            gs.add_op(cur, group_id, op.op_id, raw)
            added.append(op)
        members = log.state.members
        for card in body.cards:
            try:
                code = self.card_to_code(card, self.clock())
            except InvalidContactCode:
                continue
            if code.identity_key in members and code.identity_key != self.me:
                device = code.bundle.certificate.device_curve25519
                if db.get_contact(cur, code.identity_key) is None:
                    gs.put_card(cur, code.identity_key, card, device)
                    self._carded.add(code.identity_key)
        for op in added:
            self._add_event(cur, group_id, op)
        missing = sorted(log.missing())
        if missing:
            for i in range(0, len(missing), 24):
                request = GroupRequest(group_id, ops=tuple(missing[i : i + 24]))
                self._ask(cur, group_id, [sender], request)
        if set(members) != before:
            joined = not set(members) <= before
            self._refresh_sessions(cur, group_id, self.clock(), joined=joined)
        if added:
            self._touched.add(group_id)
            self._changed(group_id)

    def _retry_inbox(self, cur: Any, new_groups: list[bytes]) -> None:
        """Re-process the inbox rows that what just happened could place: rows of groups
        whose ops changed (or that we joined) and rows from members whose card arrived.
        Never the whole inbox: junk rows cost nothing until their group or sender moves."""
        for _ in range(4):  # a placed row can place others (it made us join); bounded
            groups = self._touched | set(new_groups)
            senders = set(self._carded)
            self._touched.clear()
            self._carded.clear()
            if not groups and not senders:
                return
            for sender, device, raw in gs.take_inbox_for(cur, groups, senders):
                try:
                    msg = env.decode(raw)
                except DecodeError:
                    continue
                self._direct(cur, sender, device, msg, new_groups, queue=True)

    # -- receiving on group topics ------------------------------------------------------

    async def catch_up(self, topics: list[str]) -> None:
        """Fetch a group topic's history from store nodes (after joining)."""
        since = int((self.clock() - 7 * 86_400) * 1e9)
        try:
            async for item in self.transport.history(topics, since):
                await self.handle(item)
        except BoxlessError as exc:
            logger.info("group catch-up failed: %s", exc)

    async def handle(self, item: Incoming) -> None:
        """One Waku message on a group topic (live or from history).

        The topic's catch-up point moves only for a message that decrypted and
        verified (a sender-chosen timestamp on junk must not blind catch-up), and
        never past now (plus a little skew)."""
        topic = item.message.content_topic
        try:
            gid = bytes.fromhex(topic[len(_GROUP_PREFIX) :].split("/")[0])
        except ValueError:
            return
        with self.db.transaction() as cur:
            if db.was_seen(cur, item.message_hash):
                return
            now = self.clock()
            db.mark_seen(cur, item.message_hash, _ms(now))
            if not gs.has_group(cur, gid):
                return
            if self._receive(cur, gid, item.message_hash, item.message.payload):
                point = sync_point(db.get_sync(cur, topic), item.message.timestamp or 0, now)
                if point is not None:
                    db.set_sync(cur, topic, point)
            new_groups: list[bytes] = []
            self._retry_inbox(cur, new_groups)
        self._wake.set()

    def _receive(self, cur: Any, gid: bytes, message_hash: bytes, payload: bytes) -> bool:
        """Decrypt, check and deliver one group message; True if it was authentic."""
        try:
            ct = decode_group_message(payload)
            plain = self.sessions.decrypt(gid, None, ct)
        except UnknownGroupSession:
            self._wait_for_key(cur, gid, message_hash, payload)
            return False
        except (DecodeError, DuplicateMessage, MessageBeforeKeyShare, TamperedMessage) as exc:
            logger.info("group message dropped: %s", type(exc).__name__)
            return False
        log = self._log(cur, gid)
        sender = plain.sender_identity
        if not log.state.is_member(sender):
            logger.info("group message from a non-member; dropped")
            return False
        try:
            if decode_message(plain.plaintext).sender_id != sender.hex():
                logger.warning("group message whose SDS sender is not its Megolm sender; dropped")
                return False
            sds = self._sds(cur, gid)
            delivered = sds.receive(plain.plaintext, self.clock(), retrieval_hint=message_hash)
        except (DecodeError, ValidationError) as exc:
            logger.info("group message with bad SDS framing: %s", exc)
            return False
        delivered += self._give_up_unreadable(cur, sds)
        for d in delivered:
            self._deliver(cur, gid, bytes.fromhex(d.sender_id), d.message_id, d)
        self._settle_acks(cur, gid, sds)
        self._save_sds(cur, gid, sds)
        return True

    def _wait_for_key(self, cur: Any, gid: bytes, message_hash: bytes, payload: bytes) -> None:
        """Keep a message whose key has not come (within the group's share of the
        queue) and note its session: if no key comes, the members are asked."""
        if not self.timings.limits.pending_admits(*gs.pending_counts(cur, gid)):
            logger.info("group %s: too many messages wait for keys; dropped", gid.hex()[:8])
            return
        gs.add_pending(cur, message_hash, gid, payload, _ms(self.clock()))
        try:
            session = session_id_bytes(decode_group_message(payload).session_id)
        except (DecodeError, BoxlessError):
            return
        unknown = self._unknown.setdefault(gid, {})
        if len(unknown) < MAX_KEY_REQUEST_SESSIONS:
            unknown.setdefault(session, self.clock())

    def _ask_for_keys(self, now: float) -> None:
        """Sessions we have waited ``key_patience_s`` for: ask the members to re-share
        (one round per group per ``key_request_interval_s``, however many sessions)."""
        for gid, unknown in list(self._unknown.items()):
            ripe = [s for s, t in unknown.items() if now - t >= self.timings.key_patience_s]
            if not ripe:
                continue
            del self._unknown[gid]
            with self.db.transaction() as cur:
                state = self._log(cur, gid).state
                if not state.is_member(self.me) or not self._asks.allow((gid, "keys"), now):
                    continue
                request = GroupRequest(gid, sessions=tuple(ripe))
                for member in sorted(state.members)[:KEY_REQUEST_FANOUT]:
                    if member != self.me and self._device(cur, member) is not None:
                        self._queue_direct(cur, member, env.GroupKeyShareBody(request.encode()))
            logger.info("group %s: asked members to re-share %d keys", gid.hex()[:8], len(ripe))

    def _give_up_unreadable(self, cur: Any, sds: SdsChannel) -> list[Any]:
        """Missing dependencies whose Waku message we processed and could not read
        will never come (sent before our key share: before we joined), or not soon
        (waiting for a key longer than ``key_patience_s``: its sender, offline, never
        shared it with us -- say we were removed and re-admitted meanwhile): let
        the messages waiting on them through. If the key comes later, the message
        is delivered then, in its place by Lamport time."""
        released: list[Any] = []
        now_ms = _ms(self.clock())
        for dep in sds.missing():
            hint = dep.retrieval_hint
            if not hint or not db.was_seen(cur, hint):
                continue
            since = gs.pending_since(cur, hint)
            if since is None or now_ms - since > self.timings.key_patience_s * 1000:
                released += sds.mark_irretrievable(dep.message_id)
        return released

    def _deliver(self, cur: Any, gid: bytes, sender: bytes, sds_id: str, d: Any) -> None:
        """One delivered group content, authorised by :func:`authorize` before it counts."""
        try:
            msg = env.decode(d.content)
        except DecodeError:
            logger.info("group content that is not a chat message; dropped")
            return
        body = msg.body
        state = self._log(cur, gid).state
        if isinstance(body, env.Text):
            refused = authorize(state, sender, Action.TEXT)
            if refused is None:
                self._store_text(cur, gid, sender, sds_id, d, msg, body)
        elif isinstance(body, env.GroupOpBody):
            refused = authorize(state, sender, Action.OPS)
            if refused is None:
                self._apply_ops(cur, gid, body, sender)
        elif isinstance(body, env.GroupPin):
            found = gs.get_message(cur, body.target)
            target = Target(in_group=found is not None and found[1].group_id == gid)
            refused = authorize(state, sender, Action.PIN, target)
            if refused is None and gs.set_pinned(cur, gid, body.target, body.pinned):
                self._message_changed(gid, body.target)
        elif isinstance(body, env.GroupRead):
            horizon = self._sds(cur, gid).lamport_timestamp
            target = Target(lamport=body.lamport, horizon=horizon)
            refused = authorize(state, sender, Action.READ, target)
            if refused is None and gs.put_read(cur, gid, sender, body.lamport):
                self._on_read(cur, gid, body.lamport)
        else:
            refused = "not a group body"
        if refused is not None:
            logger.info("group %s: %s refused: %s", gid.hex()[:8], type(body).__name__, refused)

    def _store_text(
        self,
        cur: Any,
        gid: bytes,
        sender: bytes,
        sds_id: str,
        d: Any,
        msg: env.ChatMessage,
        body: env.Text,
    ) -> None:
        mentions_me = body.mention_all or self.me in body.mentions
        row = gs.GroupMessageRow(
            sds_id,
            gid,
            sender,
            False,
            d.lamport_timestamp or 0,
            msg.sent_at_ms,
            _ms(self.clock()),
            body.text,
            "received",
            mentions_me=mentions_me,
        )
        if gs.add_message(cur, row):
            self._message_changed(gid, sds_id)
            if mentions_me:
                self._event(ev.GroupMention(gid.hex(), sds_id))

    def _on_read(self, cur: Any, gid: bytes, lamport: int) -> None:
        """A member read up to ``lamport``: our messages up to there reached them --
        an acknowledgement too (no more re-sends; "confirmed" in the UI)."""
        sds = self._sds(cur, gid)
        for i, (message_id, state) in enumerate(gs.outgoing_up_to(cur, gid, lamport, READ_ACKS)):
            sds.acknowledge(message_id)
            changed = state != "confirmed" and gs.set_message_state(cur, message_id, "confirmed")
            if changed or i < READ_EVENTS:  # read counts moved; the UI shows the newest
                self._message_changed(gid, message_id)

    def _retry_pending(self, cur: Any, gid: bytes) -> None:
        for message_hash, payload in gs.take_pending(cur, gid):
            self._receive(cur, gid, message_hash, payload)


def _ms(now: float) -> int:
    return int(now * 1000)


def _with_ancestors(log: GroupLog, op: GroupOp, cards: tuple[bytes, ...] = ()) -> env.GroupOpBody:
    """An op and its nearest ancestors (oldest first): a member who missed one of them
    can still place the op (duplicates are skipped by the log)."""
    along = list(reversed(log.ancestors(op.op_id, SEND_ALONG)))
    return env.GroupOpBody(tuple(encode_op(o) for o in [*along, op]), cards)


def _ops_group(body: env.GroupOpBody) -> bytes | None:
    """The group of a body's first op (None if it does not decode)."""
    try:
        return decode_op(body.ops[0]).group_id
    except DecodeError:
        return None
