"""Moments' likes and comments: acts sent to the poster, relays to the audience.

Theory of operation
-------------------
An act (like, unlike, comment, comment delete) goes to the poster with the
blinded tags of the actor's contacts (:meth:`MomentActs.act`). The poster
applies each (:func:`moments_core.authorise_act` decides) and relays it
(:class:`~boxless.chat.moment.MomentRelay`) only to audience members whose tag
is in that set, in the same transaction. A viewer applies a relay only from the
post's poster and only if the act's author is its contact. Everything refused
is counted in the plug-in's drops by reason. Likes and comments on our posts
and replies to our comments become notices.

:class:`~boxless.client.moments.Moments` holds one :class:`MomentActs` and
keeps the public ``like``/``comment``/``delete_comment``/``own_act``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from boxless.chat.moment import MAX_TAGS, ActKind, MomentAct, MomentRelay, contact_tag
from boxless.chat.requests import ContactState
from boxless.client import events as ev
from boxless.client import moment_store as ms
from boxless.client import moments_core as core
from boxless.client import store as db
from boxless.client.channel import DirectChannel, FollowUp, Received
from boxless.client.conversations import Conversations
from boxless.errors import UsageError

__all__ = ["MomentActs", "NoSuchPost", "accepted_contacts", "post_facts", "send_all"]


class NoSuchPost(UsageError):
    """No readable post with that id."""


def accepted_contacts(cur: db.Cursor) -> list[db.ContactRow]:
    return [c for c in db.list_contacts(cur) if c.state == ContactState.ACCEPTED.value]


def send_all(
    cur: db.Cursor, conversations: Conversations, members: Sequence[bytes], body: Any
) -> None:
    """Queue ``body`` to each of ``members`` still an accepted contact."""
    for member in members:
        contact = db.get_contact(cur, member)
        if contact is not None and contact.state == ContactState.ACCEPTED.value:
            conversations.queue_in(cur, contact, body)


def post_facts(
    cur: db.Cursor, post: ms.PostRow | None, sender: bytes, act: MomentAct | None
) -> core.PostFacts | None:
    """What :mod:`moments_core`'s rules need to know of ``post`` for ``sender``."""
    if post is None:
        return None
    acts, by_sender = ms.count_acts(cur, post.post_id, sender)
    target = None
    if act is not None and act.target is not None:
        target = ms.comment_author(cur, post.post_id, act.target)
    return core.PostFacts(
        poster=post.poster,
        mine=post.mine,
        deleted=post.state == "deleted",
        in_audience=post.mine and ms.in_audience(cur, post.post_id, sender),
        acts=acts,
        acts_by_sender=by_sender,
        target_author=target,
    )


class MomentActs:
    """Likes and comments on posts, ours and our contacts'; see the module docstring."""

    def __init__(
        self,
        channel: DirectChannel,
        conversations: Conversations,
        drops: core.Drops,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.channel = channel
        self.db = channel.db
        self.conversations = conversations
        self.drops = drops
        self.clock = clock
        self.me = channel.me
        channel.handlers.on_body((MomentAct, MomentRelay), self._on_body)

    async def act(
        self,
        post_id: bytes,
        kind: ActKind,
        *,
        text: str = "",
        reply_to: bytes | None = None,
        target: bytes | None = None,
    ) -> bytes:
        """Like, unlike, comment or delete a comment; the act's id."""
        act_id = os.urandom(16)
        now_ms = int(self.clock() * 1000)
        with self.db.transaction() as cur:
            post = ms.get_post(cur, post_id)
            if post is None or post.state != "ready":
                raise NoSuchPost("no readable post with that id")
            if target is not None and ms.comment_author(cur, post_id, target) is None:
                raise UsageError("no such comment on that post")
            contacts = accepted_contacts(cur)
            tags = (
                () if post.mine else tuple(contact_tag(post.key, c.identity_key) for c in contacts)
            )
            act = MomentAct(post_id, act_id, kind, text, reply_to, target, tags[:MAX_TAGS])
            facts = post_facts(cur, post, self.me, act)
            reason = core.authorise_act(self.me, self.me, act, facts) if post.mine else None
            if reason is None and not post.mine and kind is ActKind.UNCOMMENT:
                if facts is None or facts.target_author != self.me:
                    reason = "not_author"
            if reason is not None:
                raise UsageError(f"not allowed: {reason.replace('_', ' ')}")
            self._apply(cur, post, self.me, act, now_ms)
            if post.mine:  # we are everyone's contact: the whole audience sees it
                relay = MomentRelay(self.me, act, now_ms)
                send_all(cur, self.conversations, ms.audience(cur, post_id), relay)
            else:
                poster = db.get_contact(cur, post.poster)
                if poster is None or poster.state != ContactState.ACCEPTED.value:
                    raise UsageError("the poster is no longer your contact")
                self.conversations.queue_in(cur, poster, act)
        return act_id

    def own_act(self, cur: db.Cursor, act: MomentAct, at_ms: int) -> None:
        """Our like or comment on a contact's post, made on another of our devices
        (client/devices.py copies it to us): shown as ours if this device holds the
        post; not sent again (that device sent it to the poster)."""
        post = ms.get_post(cur, act.post_id)
        if post is None or post.state != "ready" or post.mine:
            return
        if act.kind is ActKind.UNCOMMENT:
            facts = post_facts(cur, post, self.me, act)
            if facts is None or facts.target_author != self.me:
                return
        self._apply(cur, post, self.me, act, at_ms)

    # -- receiving (inside the receive transaction) ---------------------------------------------

    def _on_body(self, cur: db.Cursor, r: Received) -> FollowUp | None:
        body = r.message.body
        if isinstance(body, MomentAct):
            self._on_act(cur, r.sender, body)
        elif isinstance(body, MomentRelay):
            self._on_relay(cur, r.sender, body)
        return None

    def _on_act(self, cur: db.Cursor, sender: bytes, act: MomentAct) -> None:
        post = ms.get_post(cur, act.post_id)
        reason = core.authorise_act(sender, self.me, act, post_facts(cur, post, sender, act))
        if reason is not None:
            self.drops.add(reason)
            return
        assert post is not None
        now_ms = int(self.clock() * 1000)
        if not self._apply(cur, post, sender, act, now_ms):
            return
        members = core.relay_targets(
            post.key, ms.audience(cur, post.post_id), act.contact_tags, sender
        )
        relay = MomentRelay(sender, replace(act, contact_tags=()), now_ms)
        send_all(cur, self.conversations, members, relay)

    def _on_relay(self, cur: db.Cursor, sender: bytes, relay: MomentRelay) -> None:
        post = ms.get_post(cur, relay.act.post_id)
        facts = post_facts(cur, post, relay.author, relay.act)
        reason = core.authorise_relay(sender, facts, relay.act.kind)
        author = db.get_contact(cur, relay.author)
        if reason is None and relay.author not in (sender, self.me):
            if author is None or author.state != ContactState.ACCEPTED.value:
                reason = "not_contact"  # the poster should not have sent it: not shown
        if reason is None and relay.act.kind is ActKind.UNCOMMENT and facts is not None:
            # its author deletes a comment, or the poster (the relay's sender) does
            if facts.target_author != relay.author and relay.author != sender:
                reason = "not_author"
        if reason is not None:
            self.drops.add(reason)
            return
        assert post is not None
        self._apply(cur, post, relay.author, relay.act, relay.at_ms)

    def _apply(
        self, cur: db.Cursor, post: ms.PostRow, author: bytes, act: MomentAct, at_ms: int
    ) -> bool:
        reply_author = None
        match act.kind:
            case ActKind.LIKE | ActKind.UNLIKE:
                changed = ms.set_like(cur, post.post_id, author, act.kind is ActKind.LIKE, at_ms)
                what = "like"
                if changed and act.kind is ActKind.UNLIKE:
                    ms.forget_notices(cur, post.post_id, author, "like")
            case ActKind.COMMENT:
                if act.reply_to is not None:
                    reply_author = ms.comment_author(cur, post.post_id, act.reply_to)
                row = ms.CommentRow(act.act_id, post.post_id, author, act.text, act.reply_to, at_ms)
                changed = ms.add_comment(cur, row)
                what = "comment"
            case ActKind.UNCOMMENT:
                assert act.target is not None
                changed = ms.delete_comment(cur, post.post_id, act.target)
                what = "comment_deleted"
        if changed:
            notice = core.notice_for(self.me, post.mine, author, act.kind, reply_author)
            if notice is not None:
                ms.add_notice(cur, post.post_id, notice, author, act.text, at_ms, core.MAX_NOTICES)
            self.channel.emit(ev.MomentChanged(post.post_id.hex(), post.poster.hex(), what))
            if notice is not None:
                self.channel.emit(ev.MomentChanged(post.post_id.hex(), post.poster.hex(), "notice"))
        return changed
