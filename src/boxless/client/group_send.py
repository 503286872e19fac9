"""Group messages out: texts, edits, deletes, reactions, pins, read markers and
other features' content (files, payment cards), for :class:`~boxless.client.groups.GroupManager`.

Theory of operation
-------------------
Sending is O(1) in the group's size (:meth:`GroupSender.publish`): the content
-- an encoded :class:`~boxless.chat.envelope.ChatMessage` -- is SDS-wrapped
(causal history, bloom filter), the SDS bytes Megolm-encrypted once
(:meth:`GroupCore.encrypt` rotates the session, and queues its key shares, when
needed), and published as one Waku message on the group's topic. A text (or
content sent with a text to show) is stored as ours, ``queued``, and becomes
``sent`` once the network took it. Our own edit, delete or reaction is judged
by the members' rules before it goes (:class:`GroupActions`). Sending reads
the group up to what we sent (:meth:`GroupSender.read_through`): one read
marker tells the members.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence

from boxless.chat import envelope as env
from boxless.chat.payment import PayRequest, TransferCard
from boxless.client import group_store as gs
from boxless.client import store as db
from boxless.client.group_actions import ActionBody, GroupActions
from boxless.client.group_core import Cursor, GroupCore, NotAMember, ms
from boxless.errors import UsageError
from boxless.groups import GroupState

__all__ = ["GroupSender", "Publishable"]

logger = logging.getLogger(__name__)

Publishable = (
    env.Text | env.GroupOpBody | env.GroupPin | env.GroupRead | ActionBody | env.Attachments
    | TransferCard | PayRequest
)  # fmt: skip
"""What goes out on a group topic."""

_MENTION_ALL = re.compile(r"(?<![\w@])@all\b", re.IGNORECASE)


class GroupSender:
    """What this device sends to its groups; see the module docstring."""

    def __init__(
        self, core: GroupCore, actions: GroupActions, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.core = core
        self.actions = actions
        self.db = core.db
        self.me: bytes = core.me
        self.clock = clock

    async def send_text(
        self,
        group_id: bytes,
        text: str,
        *,
        mentions: Sequence[bytes] | None = None,
        mention_all: bool | None = None,
        reply_to: str | None = None,
    ) -> gs.GroupMessageRow:
        """Send a text to the group: one Megolm encryption, one Waku message.

        ``mentions`` default to the members the text names as ``@name``, and
        ``mention_all`` to whether it says ``@all``; ``reply_to`` is the id of a
        message of this group it answers.
        """
        with self.db.transaction() as cur:
            state = self.core.member_log(cur, group_id).state
            if state.announcements_only and not state.is_admin(self.me):
                raise UsageError("only admins can post in this group (announcements only)")
            if reply_to is not None:
                found = gs.get_message(cur, reply_to)
                if found is None or found[1].group_id != group_id:
                    raise UsageError("reply_to: no such message in this group")
            if mentions is None:
                mentions = self._mentioned(cur, state, text)
            keys = tuple(dict.fromkeys(k for k in mentions if state.is_member(k)))
        if mention_all is None:
            mention_all = _MENTION_ALL.search(text) is not None
        body = env.Text(text, None, keys, mention_all, reply_to)
        row = await self.publish(group_id, body)
        await self.read_through(group_id, row.message_id)
        return row

    async def edit(self, group_id: bytes, message_id: str, text: str) -> None:
        """New text for one of our texts, for every member."""
        await self._act(group_id, env.GroupEdit(message_id, text))

    async def delete(self, group_id: bytes, message_id: str) -> None:
        """Delete a message for everyone: one of ours, or anyone's if we are an admin."""
        await self._act(group_id, env.GroupDelete(message_id))

    async def react(
        self, group_id: bytes, message_id: str, emoji: str, remove: bool = False
    ) -> None:
        """Add (or take back) our reaction ``emoji`` on a message, for every member."""
        await self._act(group_id, env.GroupReaction(message_id, emoji, remove))

    async def _act(self, group_id: bytes, body: ActionBody) -> None:
        """Judge our own action by the members' rules, apply it here, publish it."""
        with self.db.transaction() as cur:
            state = self.core.member_log(cur, group_id).state
            self.actions.check_local(cur, group_id, state, body)
        await self.publish(group_id, body)

    def _mentioned(self, cur: Cursor, state: GroupState, text: str) -> tuple[bytes, ...]:
        if "@" not in text:
            return ()
        lowered = text.casefold()
        found = []
        for key in state.members:
            name = self.core.name(cur, state.group_id, key).casefold()
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
            state = self.core.member_log(cur, group_id).state
            found = gs.get_message(cur, message_id)
            if found is None or found[1].group_id != group_id:
                raise UsageError("no such message in this group")
            if state.announcements_only and not state.is_admin(self.me):
                raise UsageError("only admins can pin in this group (announcements only)")
            gs.set_pinned(cur, group_id, message_id, pinned)
        self.core.message_changed(group_id, message_id)
        await self.publish(group_id, env.GroupPin(message_id, pinned))

    async def mark_read(self, group_id: bytes, seq: int) -> None:
        """We read up to ``seq``; members learn our read position (one message, any size)."""
        with self.db.transaction() as cur:
            if not gs.has_group(cur, group_id):
                raise NotAMember("no such group")
            if not gs.set_read_seq(cur, group_id, seq):
                return
            lamport = gs.newest_read_lamport(cur, group_id, seq)
            member = self.core.log(cur, group_id).state.is_member(self.me)
        self.core.changed(group_id)
        if lamport is not None and member:
            await self.publish(group_id, env.GroupRead(int(lamport)), ephemeral=True)

    async def publish(
        self,
        group_id: bytes,
        body: Publishable,
        *,
        as_member: bool = True,
        ephemeral: bool = False,
        text: str | None = None,
    ) -> gs.GroupMessageRow:
        """SDS-wrap, Megolm-encrypt once, publish once. Texts (and content sent with a
        ``text`` to show) are stored as ours."""
        shown = body if isinstance(body, env.Text) else None if text is None else env.Text(text)
        now = self.clock()
        msg = env.new_message(body, lamport=0, sent_at_ms=ms(now))
        with self.db.transaction() as cur, self.core.forget_sds_on_error(group_id):
            if as_member:
                self.core.member_log(cur, group_id)
            sds = self.core.sds(cur, group_id)
            content = env.encode(msg)
            wrapped = sds.wrap_ephemeral(content) if ephemeral else sds.wrap(content, now)
            ct = self.core.encrypt(cur, group_id, wrapped.data, now)
            row = gs.GroupMessageRow(
                wrapped.message_id,
                group_id,
                self.me,
                True,
                sds.lamport_timestamp,
                msg.sent_at_ms,
                None,
                shown.text if shown is not None else "",
                "queued",
            )
            if shown is not None:
                gs.add_message(cur, row)
                self.actions.text_added(cur, group_id, row.message_id, shown)
            self.core.save_sds(cur, group_id, sds)
        sent = await self.core.send_group(group_id, ct)
        if sent is None:
            return row
        with self.db.transaction() as cur:
            db.mark_seen(cur, sent.message_hash, ms(self.clock()))
            if not ephemeral:
                sds = self.core.sds(cur, group_id)
                if sent.accepted:  # a hint says "a store has it": only if the network took it
                    sds.set_retrieval_hint(wrapped.message_id, sent.message_hash)
                if sent.accepted and shown is not None:
                    gs.set_message_state(cur, wrapped.message_id, "sent", only_from="queued")
                self.core.settle_acks(cur, group_id, sds)
                self.core.save_sds(cur, group_id, sds)
        if shown is not None:
            self.core.message_changed(group_id, wrapped.message_id)
        return row

    async def send_content(
        self, group_id: bytes, body: env.Attachments | TransferCard | PayRequest, text: str
    ) -> gs.GroupMessageRow:
        """Send another feature's content to the group; stored and shown with ``text``."""
        with self.db.transaction() as cur:
            state = self.core.member_log(cur, group_id).state
            if state.announcements_only and not state.is_admin(self.me):
                raise UsageError("only admins can post in this group (announcements only)")
        row = await self.publish(group_id, body, text=text)
        await self.read_through(group_id, row.message_id)
        return row

    async def read_through(self, group_id: bytes, message_id: str) -> None:
        """Sending reads the group up to our text: it never shows as unread, nor
        anything before it. Texts we had not marked read are marked now, and the
        members learn it (one read marker, as :meth:`mark_read`)."""
        with self.db.transaction() as cur:
            found = gs.get_message(cur, message_id)
            if found is None:
                return
            if not gs.meta(cur, group_id).unread:
                gs.set_read_seq(cur, group_id, found[0])
                return
        await self.mark_read(group_id, found[0])
