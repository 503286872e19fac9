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
current member → SDS receive → each delivered content, in causal order, is
authorised (:func:`boxless.groups.auth.authorize`) and then a text (stored),
ops (judged, then added to the log; member cards stored), a pin or a read
marker. A message whose session key has not arrived yet waits in
``client_group_pending`` and is retried when that session's key arrives; if
none comes, the members are asked to re-share it.

Direct group bodies (over Olm, routed here by the client core before its
contact-request gate): ``GroupKeyShareBody`` and ``GroupOpBody``, handled by
:class:`~boxless.client.group_direct.GroupDirect`; group topic messages by
:class:`~boxless.client.group_topic.GroupTopic`; what we send (texts, actions,
pins, read markers, other features' content) by
:class:`~boxless.client.group_send.GroupSender`; timers by
:class:`~boxless.client.group_timers.GroupTimers`; what they share is
:class:`~boxless.client.group_core.GroupCore`. This class is the public API.

Member devices: from the contacts table, else from member cards. In v1 an
admin invites only its own accepted contacts (it needs their card); the
invitee's card then travels to everyone with the Invite op, and the invitee
gets every op and every member's card over Olm.

Every op published goes with its nearest ancestors (a member who missed one
can still place it) and the cards of the members they let in (so does an
answer to a request for ops: :func:`~boxless.client.group_core.member_cards`),
and ops enter a log only once judged (:meth:`GroupLog.admit`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from boxless.chat import envelope as env
from boxless.chat.requests import ContactState
from boxless.chat.topics import contact_topic, group_topic
from boxless.client import group_store as gs
from boxless.client import store as db
from boxless.client.channel import DirectChannel
from boxless.client.group_actions import GroupActions
from boxless.client.group_core import (
    Cursor,
    GroupCore,
    NotAMember,
    member_cards,
    ms,
)
from boxless.client.group_direct import GroupDirect
from boxless.client.group_send import GroupSender, Publishable
from boxless.client.group_timers import GroupTimers
from boxless.client.group_topic import GroupTopic
from boxless.client.transport import Incoming
from boxless.crypto.megolm import (
    GroupSessions,
)
from boxless.errors import BoxlessError, UsageError
from boxless.groups import (
    DEFAULT_LINK_VALIDITY,
    Body,
    Demote,
    GroupLink,
    GroupLog,
    GroupOp,
    GroupState,
    Invite,
    Leave,
    Promote,
    Remove,
    Rename,
    SetAnnouncementsOnly,
    SetAvatar,
    SetDescription,
    SetHistorySharing,
    create_op,
    decode_group_link,
    encode_op,
    join_op,
    make_group_link,
)
from boxless.groups.delivery import (
    GroupTimings,
)
from boxless.identity.account import LocalAccount
from boxless.sync import SdsChannel, SdsConfig

__all__ = [
    "GroupManager",
    "GroupSummary",
    "NotAMember",
]

logger = logging.getLogger(__name__)

_GROUP_PREFIX = "/boxless/1/group-"
SEND_ALONG = 4  # an op published with this many of its nearest ancestors


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
        channel: DirectChannel,
        *,
        clock: Callable[[], float] = time.time,
        timings: GroupTimings | None = None,
    ) -> None:
        self.core = GroupCore(account, channel, clock=clock, timings=timings or GroupTimings())
        self.account = account
        self.db = account.db
        self.me: bytes = account.identity.public_key
        self.clock = clock
        self.actions = GroupActions(self.core)
        self.sender = GroupSender(self.core, self.actions, clock=clock)
        # what we send is GroupSender's job; its methods are this class's API too
        self.send_text = self.sender.send_text
        self.edit = self.sender.edit
        self.delete = self.sender.delete
        self.react = self.sender.react
        self.pin = self.sender.pin
        self.mark_read = self.sender.mark_read
        self.send_content = self.sender.send_content
        self.topic = GroupTopic(self.core, self.actions)
        self.direct = GroupDirect(self.core, self.topic)
        self.timers = GroupTimers(self.core, self.topic, self.handle)

    @property
    def sessions(self) -> GroupSessions:
        return self.core.sessions

    @property
    def sds_config(self) -> SdsConfig | None:
        return self.core.sds_config

    @sds_config.setter
    def sds_config(self, config: SdsConfig | None) -> None:
        self.core.sds_config = config

    @property
    def timings(self) -> GroupTimings:
        """Every delay and limit of the group feature (tests set shorter ones)."""
        return self.core.timings

    @timings.setter
    def timings(self, timings: GroupTimings) -> None:
        self.core.set_timings(timings)

    @property
    def repair_after(self) -> float:
        return self.core.timings.repair_after_s

    @repair_after.setter
    def repair_after(self, seconds: float) -> None:
        self.core.set_timings(dataclasses.replace(self.core.timings, repair_after_s=seconds))

    # -- the client core calls these ----------------------------------------------------

    async def run(self) -> None:
        """Run the group background work until cancelled."""
        await self.timers.run()

    async def handle(self, item: Incoming) -> None:
        """One Waku message on a group topic (live or from history)."""
        topic = item.message.content_topic
        try:
            gid = bytes.fromhex(topic[len(_GROUP_PREFIX) :].split("/")[0])
        except ValueError:
            return
        with self.db.transaction() as cur:
            self.topic.accept(cur, gid, item)
            self.direct.retry_inbox(cur, [])

    def on_direct(
        self, cur: Cursor, sender: bytes, device: bytes, msg: env.ChatMessage
    ) -> Callable[[], Awaitable[None]] | None:
        """A group body that arrived over Olm from ``device`` (inside the core's transaction).

        Returns the follow-up to run after commit (publish granted joins, subscribe
        to and catch up on groups we joined), or None.
        """
        new_groups = self.direct.receive(cur, sender, device, msg)
        announce, self.core.announce = self.core.announce, []
        if not new_groups and not announce:
            return None

        async def follow_up() -> None:
            for gid, body in announce:  # join requests we granted: tell the members
                await self._publish(gid, body)
            if not new_groups:
                return
            topics = [group_topic(g) for g in new_groups]
            await self.core.transport.subscribe(topics)
            for gid in new_groups:
                self.core.changed(gid)
            await self.catch_up(topics)

        return follow_up

    # -- queries ------------------------------------------------------------------------

    def topics(self) -> list[str]:
        with self.db.transaction() as cur:
            return [group_topic(g) for g in gs.group_ids(cur)]

    @staticmethod
    def owns(content_topic: str) -> bool:
        return content_topic.startswith(_GROUP_PREFIX)

    def groups(self) -> list[GroupState]:
        with self.db.transaction() as cur:
            return [self.core.log(cur, g).state for g in gs.group_ids(cur)]

    def state(self, group_id: bytes) -> GroupState:
        with self.db.transaction() as cur:
            if not gs.has_group(cur, group_id):
                raise NotAMember("no such group")
            return self.core.log(cur, group_id).state

    def summaries(self) -> list[GroupSummary]:
        """Every group we are (or were) in, with unread counts and the last message."""
        with self.db.transaction() as cur:
            return [self._summary(cur, g) for g in gs.group_ids(cur)]

    def summary(self, group_id: bytes) -> GroupSummary:
        with self.db.transaction() as cur:
            if not gs.has_group(cur, group_id):
                raise NotAMember("no such group")
            return self._summary(cur, group_id)

    def _summary(self, cur: Cursor, group_id: bytes) -> GroupSummary:
        state = self.core.log(cur, group_id).state
        meta = gs.meta(cur, group_id)
        role = state.role(self.me)
        last = gs.last_message(cur, group_id)
        return GroupSummary(
            state,
            role is not None,
            None if role is None else role.value,
            meta.muted,
            meta.unread,
            meta.mentions,
            self.actions.decorate(cur, [last])[0] if last else None,
        )

    def messages(
        self, group_id: bytes, limit: int = 50, before_seq: int | None = None
    ) -> list[tuple[int, gs.GroupMessageRow]]:
        with self.db.transaction() as cur:
            if not gs.has_group(cur, group_id):
                raise NotAMember("no such group")
            return self.actions.decorate(cur, gs.list_messages(cur, group_id, limit, before_seq))

    def message(self, message_id: str) -> tuple[int, gs.GroupMessageRow]:
        with self.db.transaction() as cur:
            found = gs.get_message(cur, message_id)
            if found is None:
                raise UsageError(f"no group message {message_id!r}")
            return self.actions.decorate(cur, [found])[0]

    def pins(self, group_id: bytes) -> list[tuple[int, gs.GroupMessageRow]]:
        with self.db.transaction() as cur:
            if not gs.has_group(cur, group_id):
                raise NotAMember("no such group")
            return self.actions.decorate(cur, gs.pinned_messages(cur, group_id))

    def joins(self) -> list[gs.PendingJoin]:
        """Groups we asked to join by link and are not in yet."""
        with self.db.transaction() as cur:
            return gs.list_joins(cur)

    def member_name(self, group_id: bytes, key: bytes) -> str:
        """What to call a member: our name for a contact, the name on their card, the
        inviter's label, else a short key."""
        with self.db.transaction() as cur:
            return self.core.name(cur, group_id, key)

    async def create(self, name: str, description: str = "") -> GroupState:
        """Create a group with us as its creator and only member."""
        now = self.clock()
        op = create_op(self.account.identity, name, int(now * 1000), description)
        gid = op.group_id
        log = GroupLog.replay(gid, [op])
        sds = SdsChannel(gid.hex(), self.me.hex(), now=now, config=self.core.sds_config)
        with self.db.transaction() as cur:
            gs.add_group(cur, gid, sds.to_state(), int(now * 1000))
            gs.add_op(cur, gid, op.op_id, encode_op(op))
            self.core.logs[gid] = log
            self.core.add_event(cur, gid, op)
            self.core.sessions.outbound(gid, [], now)
        await self.core.transport.subscribe([group_topic(gid)])
        logger.info("group %s created", gid.hex()[:8])
        self.core.changed(gid)
        return log.state

    async def invite(self, group_id: bytes, member: bytes) -> GroupState:
        """Invite an accepted contact: an Invite op for everyone, the whole log for them."""
        now = self.clock()
        with self.db.transaction() as cur:
            contact = db.get_contact(cur, member)
        if contact is None or contact.state != ContactState.ACCEPTED.value:
            raise UsageError("you can only invite your accepted contacts")
        with self.db.transaction() as cur:
            log = self.core.member_log(cur, group_id)
            op = log.next_op(self.account.identity, Invite(member, contact.display_name), ms(now))
            gs.add_op(cur, group_id, op.op_id, encode_op(op))
            self.core.add_event(cur, group_id, op)
            self.core.admit_member(cur, group_id, member, now)
            body = _with_ancestors(cur, self.core, log, op)
        await self._publish(group_id, body)
        self.core.changed(group_id)
        return log.state

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
        self.core.gclock.set_timer(group_id, None)
        return state

    async def _change(self, group_id: bytes, body: Body) -> GroupState:
        """Sign a membership/settings op, record it and announce it on the group topic.

        Announced under the current Megolm session, so a removed member learns of
        its removal too; membership changes then rotate before the next message.
        """
        now = self.clock()
        with self.db.transaction() as cur:
            log = self.core.member_log(cur, group_id)
            before = set(log.state.members)
            op = log.next_op(self.account.identity, body, ms(now), max_bytes=env.MAX_GROUP_OP_BYTES)
            gs.add_op(cur, group_id, op.op_id, encode_op(op))
            self.core.add_event(cur, group_id, op)
            published = _with_ancestors(cur, self.core, log, op)
        await self._publish(group_id, published, as_member=False)
        if set(log.state.members) != before:
            with self.db.transaction() as cur:
                self.core.refresh_sessions(cur, group_id, now)
            self.core.wake.set()
        self.core.changed(group_id)
        return log.state

    def make_link(self, group_id: bytes, validity_s: int = DEFAULT_LINK_VALIDITY) -> GroupLink:
        """A ``boxless://g/`` link anyone can join by while it is valid (admins only)."""
        with self.db.transaction() as cur:
            log = self.core.member_log(cur, group_id)
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
            if gs.has_group(cur, gid) and self.core.log(cur, gid).state.is_member(self.me):
                raise UsageError("you are already a member of this group")
        op = join_op(self.account.identity, parsed.token, ms(now))
        card = bytes(self.account.contact_code(now).to_bytes())
        msg = env.new_message(
            env.GroupOpBody((encode_op(op),), (card,)), lamport=0, sent_at_ms=ms(now)
        )
        with self.db.transaction() as cur:  # first: the admin's answer may come at once
            gs.add_join(
                cur, gs.PendingJoin(gid, parsed.name, parsed.admin_key, link.strip(), ms(now))
            )
        try:
            ok = await self.core.send_olm(
                parsed.admin_bundle, contact_topic(parsed.admin_key), env.encode(msg)
            )
        except BoxlessError as exc:
            logger.info("join request not sent: %s", exc)
            ok = False
        if not ok:
            with self.db.transaction() as cur:
                gs.drop_join(cur, gid)
            raise UsageError("the network did not take the join request; try again when online")
        self.core.changed(gid)
        logger.info("asked to join group %s", gid.hex()[:8])
        return gid

    def set_muted(self, group_id: bytes, muted: bool) -> None:
        """Muted groups still count unread messages but notify only for mentions."""
        with self.db.transaction() as cur:
            if not gs.has_group(cur, group_id):
                raise NotAMember("no such group")
            gs.set_muted(cur, group_id, muted)
        self.core.changed(group_id)

    async def _publish(
        self,
        group_id: bytes,
        body: Publishable,
        *,
        as_member: bool = True,
    ) -> gs.GroupMessageRow:
        """Our membership ops (and a test's forged bodies) go out as any message does."""
        return await self.sender.publish(group_id, body, as_member=as_member)

    def on_content(
        self,
        kinds: Sequence[type],
        handler: Callable[[Cursor, bytes, bytes, str, env.ChatMessage], str],
    ) -> None:
        """Carry another feature's message kinds in groups (members only, like texts):
        ``handler(cur, group, sender, message id, message)`` stores its part in the
        receive transaction and returns the text the message shows."""
        for kind in kinds:
            self.core.content_handlers[kind] = handler

    async def catch_up(self, topics: list[str]) -> None:
        """Fetch a group topic's history from store nodes (after joining)."""
        since = int((self.clock() - 7 * 86_400) * 1e9)
        try:
            async for item in self.core.transport.history(topics, since):
                await self.handle(item)
        except BoxlessError as exc:
            logger.info("group catch-up failed: %s", exc)


def _with_ancestors(cur: Cursor, core: GroupCore, log: GroupLog, op: GroupOp) -> env.GroupOpBody:
    """An op and its nearest ancestors (oldest first), with the card of every member
    they let in: a member who missed one of them can still place the op
    (duplicates are skipped by the log) and reach every member it admits."""
    ops = [*reversed(log.ancestors(op.op_id, SEND_ALONG)), op]
    return env.GroupOpBody(tuple(encode_op(o) for o in ops), member_cards(cur, core, ops))
