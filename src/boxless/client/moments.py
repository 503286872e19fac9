"""Moments: posts only the chosen audience reads; likes and comments for mutual contacts.

Theory of operation
-------------------
Posting (:meth:`Moments.post`): the content is sealed once under a fresh post
key, pushed as one Waku message on a topic derived from that key and pinned as
a blob when a blob service runs. :func:`moments_core.plan_readers` splits the
audience (resolved here, never sent): readers holding our current reader key
get the post key as one record each in ONE shares message on our feed topic
(:mod:`boxless.chat.moment_shares`); the others (new readers, or everyone after
a reader was removed and the feed secret rotated) get a
:class:`~boxless.chat.moment.MomentKey` carrying their reader key, queued
through the conversations' outbox (Olm, retries, receipts). The post, its
audience and those key shares commit together. :meth:`Moments.welcome` gives
contacts who joined later the keys of the live posts their audience admits.

Receiving a key (over Olm: gated, contacts only; or from a shares message on a
feed we read: :mod:`boxless.client.moment_feeds`; :mod:`moments_core` decides
the rest) stores a ``pending`` post; after commit its content is fetched from
store by its Waku hash (or from its blob by content address), opened under the
key and checked (same post id, same poster).

Acts (like, unlike, comment, comment delete) go to the poster, who relays
them to the audience: :mod:`boxless.client.moment_acts`, one
:class:`~boxless.client.moment_acts.MomentActs` held here. Everything refused
is counted in :attr:`Moments.drops` by reason. Likes and comments on our
posts, replies to our comments and mentions become notices.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from boxless.chat import moment_shares as shares
from boxless.chat.attachment import AttachmentRef
from boxless.chat.moment import (
    ActKind,
    MomentAct,
    MomentContent,
    MomentDelete,
    MomentKey,
    MomentReader,
    content_topic,
    open_content,
    seal_content,
)
from boxless.chat.moment_shares import feed_topic
from boxless.chat.requests import ContactState
from boxless.client import events as ev
from boxless.client import moment_store as ms
from boxless.client import moments_core as core
from boxless.client import store as db
from boxless.client.attachment_transfer import AttachmentTransfer
from boxless.client.channel import DirectChannel, FollowUp, Received
from boxless.client.conversations import Conversations
from boxless.client.moment_acts import (
    MomentActs,
    NoSuchPost,
    accepted_contacts,
    post_facts,
    send_all,
)
from boxless.client.moment_feeds import MomentFeeds
from boxless.client.moments_core import AudienceMode, Window
from boxless.errors import BoxlessError, DecodeError, UsageError
from boxless.waku.message import WakuMessage

__all__ = ["Moments", "NoSuchPost", "PostView"]

logger = logging.getLogger(__name__)

FEED_PAGE = 50
MAX_STAGED = 36  # uploaded photos waiting for their post (four albums); the oldest go


@dataclass(frozen=True, slots=True)
class _Audience:
    """What a post reads before it is planned, kept in memory between posts while
    the database is unchanged (:meth:`Moments._version`): posting to 500 contacts
    then reads no contact or reader row. Any write by anyone, on this connection
    or another, changes the version and the next post reads everything again."""

    version: tuple[int, int]
    contacts: frozenset[bytes]
    hidden: frozenset[bytes]
    window: Window
    readers: dict[bytes, tuple[bytes, int]]
    feed: core.FeedState


@dataclass(frozen=True, slots=True)
class PostView:
    """A post as the feed shows it (comments already limited to what we may see)."""

    post: ms.PostRow
    likes: list[bytes]
    comments: list[ms.CommentRow]


class Moments:
    """The Moments feature of a client; see the module docstring."""

    def __init__(
        self,
        channel: DirectChannel,
        conversations: Conversations,
        *,
        clock: Callable[[], float] = time.time,
        blobs: Callable[[], AttachmentTransfer | None] = lambda: None,
    ) -> None:
        self.channel = channel
        self.db = channel.db
        self.conversations = conversations
        self.clock = clock
        self.me = channel.me
        self.drops = core.Drops()
        self._last_refetch = float("-inf")
        self._staged: OrderedDict[bytes, AttachmentRef] = OrderedDict()
        self._audience: _Audience | None = None
        channel.handlers.on_body((MomentKey, MomentDelete), self._on_body)
        self.acts = MomentActs(channel, conversations, self.drops, clock=clock)
        self.feeds = MomentFeeds(channel, self.drops, self._on_key, clock=clock, blobs=blobs)
        channel.handlers.on_topic(self.feeds.owns, self.feeds.on_feed)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- settings -------------------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        with self.db.transaction() as cur:
            return {
                "window": ms.get_setting(cur, "window", Window.ALL.value),
                "hidden_from": ms.get_setting(cur, "hidden_from", []),
                "muted": ms.get_setting(cur, "muted", []),
            }

    def set_settings(
        self,
        *,
        window: str | None = None,
        hidden_from: Sequence[bytes] | None = None,
        muted: Sequence[bytes] | None = None,
    ) -> None:
        """Account-wide: my visibility window, hide my moments from, don't show me."""
        with self.db.transaction() as cur:
            if window is not None:
                ms.set_setting(cur, "window", Window(window).value)
            for name, keys in (("hidden_from", hidden_from), ("muted", muted)):
                if keys is not None:
                    if len(keys) > core.MAX_AUDIENCE_CHOICE:
                        raise UsageError(f"at most {core.MAX_AUDIENCE_CHOICE} contacts")
                    ms.set_setting(cur, name, sorted({k.hex() for k in keys}))

    def _keys_setting(self, cur: db.Cursor, name: str) -> set[bytes]:
        return {bytes.fromhex(h) for h in ms.get_setting(cur, name, [])}

    @staticmethod
    def _version(cur: db.Cursor) -> tuple[int, int]:
        """Changes on this connection (any table, rolled back or not) and commits
        by other connections: equal versions mean nothing was written between."""
        cur.execute("SELECT total_changes()")
        changes = int(cur.fetchone()[0])
        cur.execute("PRAGMA data_version")
        return changes, int(cur.fetchone()[0])

    def _read_audience(self, cur: db.Cursor) -> _Audience:
        version = self._version(cur)
        cached = self._audience
        if cached is not None and cached.version == version:
            return cached
        self._audience = None
        return _Audience(
            version,
            frozenset(ms.accepted_contact_keys(cur)),
            frozenset(self._keys_setting(cur, "hidden_from")),
            Window(ms.get_setting(cur, "window", Window.ALL.value)),
            ms.readers(cur),
            self._feed(cur),
        )

    # -- photos and videos (uploaded first, by the attachments' blob transfer) -----------------

    def stage_media(self, ref: AttachmentRef) -> bytes:
        """Keep an uploaded photo or video for a post to come; its token."""
        token = os.urandom(16)
        self._staged[token] = ref
        while len(self._staged) > MAX_STAGED:
            self._staged.popitem(last=False)
        return token

    def staged(self, tokens: Sequence[bytes]) -> list[AttachmentRef]:
        """The uploads ``tokens`` name (each used once: :meth:`post` forgets them)."""
        missing = [t for t in tokens if t not in self._staged]
        if missing:
            raise UsageError("an uploaded photo is no longer kept: upload it again")
        return [self._staged[t] for t in tokens]

    def unstage(self, tokens: Sequence[bytes]) -> None:
        for t in tokens:
            self._staged.pop(t, None)

    def media(self, post_id: bytes, idx: int) -> AttachmentRef:
        """Photo or video ``idx`` of a readable post."""
        with self.db.transaction() as cur:
            post = ms.get_post(cur, post_id)
        if post is None or post.content is None or not 0 <= idx < len(post.content.media):
            raise NoSuchPost("no such photo in a post you can read")
        return post.content.media[idx]

    # -- posting --------------------------------------------------------------------------------

    async def post(
        self,
        text: str,
        *,
        place: str = "",
        mentions: Sequence[bytes] = (),
        media: Sequence[AttachmentRef] = (),
        audience: AudienceMode = AudienceMode.ALL,
        chosen: Sequence[bytes] = (),
    ) -> bytes:
        """Publish a post to the audience; return its id. Raises before anything is sent.

        The content goes out once; readers who hold our current reader key get the
        post key in one shares message on our feed topic, the others (new readers,
        or all after a reader was removed) get it over Olm with their reader key.
        """
        now_ms = self._now_ms()
        post_id, key = os.urandom(16), os.urandom(32)
        content = MomentContent(
            post_id, self.me, text, place, tuple(mentions), tuple(media), now_ms
        )
        with self.db.transaction() as cur:
            known = self._read_audience(cur)
            contacts, hidden, window = known.contacts, known.hidden, known.window
            members = core.resolve_audience(audience, chosen, contacts, hidden)
            plan = core.plan_readers(
                known.readers, known.feed, known.contacts - known.hidden, members,
                new_key=lambda: os.urandom(32),
            )  # fmt: skip
        if not set(mentions) <= members:
            raise UsageError("mention only contacts who can see the post")
        sealed = seal_content(key, content)
        wire = WakuMessage(
            payload=sealed, content_topic=content_topic(key), timestamp=now_ms * 1_000_000
        )
        sent = await self.channel.push(wire)
        if not sent.accepted:
            raise BoxlessError(f"the network did not take the post ({sent.detail}): try again")
        blob = await self.feeds.pin(sealed)
        share = MomentKey(
            post_id, key, sent.message_hash, now_ms, window.until(now_ms), content_blob=blob
        )
        if plan.by_shares:
            topic = feed_topic(plan.feed.secret)
            for payload in shares.build(share, [plan.reader_keys[m] for m in plan.by_shares]):
                out = await self.channel.push(
                    WakuMessage(payload=payload, content_topic=topic, timestamp=now_ms * 1_000_000)
                )
                if not out.accepted:
                    raise BoxlessError(
                        f"the network did not take the post ({out.detail}): try again"
                    )
        row = ms.PostRow(
            post_id, self.me, True, key, sent.message_hash, now_ms, share.visible_until_ms,
            "ready", content, now_ms, False,
        )  # fmt: skip
        self._audience = None  # until this transaction has committed
        with self.db.transaction() as cur:
            unchanged = self._version(cur) == known.version  # nobody wrote since the plan
            ms.add_post(cur, row)
            ms.set_content_blob(cur, post_id, blob)
            mode, excluded = core.joinable_as(audience, chosen, hidden & contacts)
            ms.put_audience(cur, post_id, list(members), mode.value, sorted(excluded))  # it sorts
            ms.set_setting(cur, "feed", plan.feed.as_json())
            ms.delete_readers(cur, sorted(plan.stale))
            if plan.stale:
                shares.forget_readers()
            given: dict[bytes, tuple[bytes, int]] = {}
            for member in sorted(plan.by_olm):
                contact = db.get_contact(cur, member)
                if contact is None or contact.state != ContactState.ACCEPTED.value:
                    continue  # gone since the plan: no key
                rk = plan.reader_keys[member]
                ms.put_reader(cur, member, rk, plan.feed.epoch)
                given[member] = (rk, plan.feed.epoch)
                reader = MomentReader(rk, plan.feed.secret, plan.feed.epoch)
                self.conversations.queue_in(cur, contact, replace(share, reader=reader))
            if unchanged:  # what this transaction wrote to readers and feed, nothing else
                readers = known.readers  # the steady state: unchanged, not copied
                if plan.stale or given:
                    readers = {m: v for m, v in readers.items() if m not in plan.stale}
                    readers.update(given)
                after = replace(known, version=self._version(cur), readers=readers, feed=plan.feed)
        if unchanged:
            self._audience = after
        self.channel.emit(ev.MomentChanged(post_id.hex(), self.me.hex(), "posted"))
        return post_id

    def topics(self) -> list[str]:
        """The feed topics of the posters whose reader keys we hold (to subscribe)."""
        return self.feeds.topics()

    def _feed(self, cur: db.Cursor) -> core.FeedState:
        raw = ms.get_setting(cur, "feed", None)
        return core.FeedState.from_json(raw) if raw else core.FeedState(os.urandom(32), 1)

    async def welcome(self) -> int:
        """Give contacts who joined since (no reader key yet) our posts they may see:
        up to :data:`~moments_core.MAX_BACKFILL` live ones, newest first, each key
        over Olm, the first with their reader key. How many contacts got some."""
        now_ms = self._now_ms()
        with self.db.transaction() as cur:
            hidden = self._keys_setting(cur, "hidden_from")
            readers = ms.readers(cur)
            new = sorted(ms.accepted_contact_keys(cur) - hidden - set(readers))
            if not new:
                return 0
            posts = ms.my_live_posts(cur, now_ms, core.MAX_BACKFILL)
            feed = self._feed(cur)
            ms.set_setting(cur, "feed", feed.as_json())
            welcomed = 0
            for member in new:
                mine = [p for p in posts if core.may_join(member, p.mode, p.chosen)]
                contact = db.get_contact(cur, member)
                if not mine or contact is None:
                    continue  # nothing to give: the next post brings the reader key
                rk = os.urandom(32)
                ms.put_reader(cur, member, rk, feed.epoch)
                for i, p in enumerate(mine):
                    reader = MomentReader(rk, feed.secret, feed.epoch) if i == 0 else None
                    share = MomentKey(
                        p.post.post_id, p.post.key, p.post.message_hash, p.post.posted_at_ms,
                        p.post.visible_until_ms, p.blob, reader,
                    )  # fmt: skip
                    ms.add_to_audience(cur, p.post.post_id, member)
                    self.conversations.queue_in(cur, contact, share)
                welcomed += 1
        return welcomed

    async def delete(self, post_id: bytes) -> None:
        """Delete my post here and for its audience."""
        with self.db.transaction() as cur:
            post = ms.get_post(cur, post_id)
            if post is None or not post.mine or post.state == "deleted":
                raise NoSuchPost("no post of yours with that id")
            ms.set_post_state(cur, post_id, "deleted")
            send_all(cur, self.conversations, ms.audience(cur, post_id), MomentDelete(post_id))
        self.channel.emit(ev.MomentChanged(post_id.hex(), self.me.hex(), "deleted"))

    # -- likes and comments ---------------------------------------------------------------------

    async def like(self, post_id: bytes, liked: bool = True) -> None:
        await self.acts.act(post_id, ActKind.LIKE if liked else ActKind.UNLIKE)

    async def comment(self, post_id: bytes, text: str, reply_to: bytes | None = None) -> bytes:
        return await self.acts.act(post_id, ActKind.COMMENT, text=text, reply_to=reply_to)

    async def delete_comment(self, post_id: bytes, comment_id: bytes) -> None:
        await self.acts.act(post_id, ActKind.UNCOMMENT, target=comment_id)

    def own_act(self, cur: db.Cursor, act: MomentAct, at_ms: int) -> None:
        """Our act made on another of our devices (:meth:`MomentActs.own_act`)."""
        self.acts.own_act(cur, act, at_ms)

    # -- reading --------------------------------------------------------------------------------

    def feed(
        self, *, poster: bytes | None = None, before_ms: int | None = None, limit: int = FEED_PAGE
    ) -> list[PostView]:
        """Readable posts newest first, each with the likes and comments we may see."""
        limit = max(1, min(limit, 200))
        with self.db.transaction() as cur:
            muted = self._keys_setting(cur, "muted")
            rows = ms.feed(
                cur, poster=poster, before_ms=before_ms, limit=limit, now_ms=self._now_ms()
            )
            friends = {c.identity_key for c in accepted_contacts(cur)} | {self.me}
            views = []
            for row in rows:
                if row.poster in muted:
                    continue
                see = friends | {row.poster}
                likes = [a for a, _ in ms.likes_of(cur, row.post_id) if row.mine or a in see]
                comments = [
                    c for c in ms.comments_of(cur, row.post_id) if row.mine or c.author in see
                ]
                views.append(PostView(row, likes, comments))
        return views

    def unread(self) -> int:
        with self.db.transaction() as cur:
            return ms.unread_count(cur)

    def mark_read(self) -> None:
        with self.db.transaction() as cur:
            ms.mark_read(cur)

    async def refetch(self, *, every_s: float = 60.0) -> int:
        """Fetch the content of posts still ``pending`` or ``failed`` (at most once per
        ``every_s``: the feed calls it on each read); how many opened."""
        now = self.clock()
        if now - self._last_refetch < every_s:
            return 0
        self._last_refetch = now
        await self.welcome()
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT post_id FROM moment_posts WHERE state IN ('pending', 'failed') LIMIT 200"
            )
            ids = [bytes(r[0]) for r in cur.fetchall()]
        opened = 0
        for post_id in ids:
            opened += await self._fetch(post_id)
        return opened

    # -- receiving (inside the receive transaction) ---------------------------------------------

    def _on_body(self, cur: db.Cursor, r: Received) -> FollowUp | None:
        body = r.message.body
        match body:
            case MomentKey():
                return self._on_key(cur, r.sender, body)
            case MomentDelete():
                post = ms.get_post(cur, body.post_id)
                reason = core.authorise_delete(r.sender, post_facts(cur, post, r.sender, None))
                if reason is not None:
                    self.drops.add(reason)
                    return None
                ms.set_post_state(cur, body.post_id, "deleted")
                self.channel.emit(ev.MomentChanged(body.post_id.hex(), r.sender.hex(), "deleted"))
        return None

    def _on_key(self, cur: db.Cursor, sender: bytes, body: MomentKey) -> FollowUp | None:
        post = ms.get_post(cur, body.post_id)
        muted = self._keys_setting(cur, "muted")
        reason = core.authorise_key(
            sender, self.me, body, post_facts(cur, post, sender, None), muted
        )
        if reason is not None:
            self.drops.add(reason)
            return None
        follow_ups: list[FollowUp] = []
        if body.reader is not None:  # only over Olm: the shares path refuses one
            follow_ups += self.feeds.take_reader(cur, sender, body.reader)
        if post is None:
            row = ms.PostRow(
                body.post_id, sender, False, body.key, body.message_hash, body.posted_at_ms,
                body.visible_until_ms, "pending", None, self._now_ms(), True,
            )  # fmt: skip
            ms.add_post(cur, row)
            ms.set_content_blob(cur, body.post_id, body.content_blob)
            if ms.trim_poster(cur, sender, core.MAX_POSTS_PER_POSTER):
                self.drops.add("full")

            async def fetch() -> None:
                await self._fetch(body.post_id)

            follow_ups.append(fetch)
        if not follow_ups:
            return None  # a repeated key share

        async def run() -> None:
            for follow_up in follow_ups:
                await follow_up()

        return run

    async def _fetch(self, post_id: bytes) -> int:
        with self.db.transaction() as cur:
            post = ms.get_post(cur, post_id)
        if post is None or post.state not in ("pending", "failed"):
            return 0
        content: MomentContent | None = None
        async for item in self.channel.transport.fetch(
            content_topic(post.key), [post.message_hash]
        ):
            if item.message_hash != post.message_hash:
                continue
            try:
                found = open_content(post.key, post.post_id, item.message.payload)
            except DecodeError as exc:
                logger.info("moment %s does not open: %s", post_id.hex()[:8], exc)
                continue
            if found.poster == post.poster:
                content = found
                break
            self.drops.add("not_poster")
        if content is None:
            with self.db.transaction() as cur:
                blob = ms.content_blob(cur, post_id)
            content = await self.feeds.from_blob(post, blob)
        with self.db.transaction() as cur:
            now = ms.get_post(cur, post_id)
            if now is None or now.state not in ("pending", "failed"):
                return 0
            if content is None:
                ms.set_post_state(cur, post_id, "failed")
                return 0
            ms.set_content(cur, post_id, content)
            if self.me in content.mentions:
                ms.add_notice(
                    cur, post_id, "mention", post.poster, "", content.posted_at_ms,
                    core.MAX_NOTICES,
                )  # fmt: skip
        self.channel.emit(ev.MomentChanged(post_id.hex(), post.poster.hex(), "posted"))
        if self.me in content.mentions:
            self.channel.emit(ev.MomentChanged(post_id.hex(), post.poster.hex(), "mention"))
        return 1

    # -- notifications --------------------------------------------------------------------------

    def notices(self, limit: int = 100) -> list[ms.NoticeRow]:
        """Likes and comments on my posts, replies to my comments, mentions: newest first."""
        with self.db.transaction() as cur:
            return ms.notices(cur, max(1, min(limit, core.MAX_NOTICES)))

    def unread_notices(self) -> int:
        with self.db.transaction() as cur:
            return ms.unread_notices(cur)

    def mark_notices_read(self) -> None:
        with self.db.transaction() as cur:
            ms.mark_notices_read(cur)
