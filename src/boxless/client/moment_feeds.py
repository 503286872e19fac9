"""Moments' feeds: the posters' shares messages we read, and posts pinned as blobs.

Theory of operation
-------------------
A poster's :class:`~boxless.chat.moment.MomentReader` (over Olm, inside a key
share) gives us a reader key and the feed secret naming its feed topic
(:mod:`boxless.chat.moment_shares`). :meth:`MomentFeeds.take_reader` keeps the
newest two epochs per poster, subscribes to a new topic and reads its store
history; :meth:`MomentFeeds.on_feed` takes each shares message on those topics,
finds our record by its tag and hands the opened key share to the plug-in's
key handler (the same rules as a key share over Olm, from an accepted contact
only). Refused input is counted in the plug-in's drops.

Durability: :meth:`MomentFeeds.pin` pins a post's sealed content as a blob on
our service nodes (the attachments' transfer) and returns its descriptor, which
rides in the key share; :meth:`MomentFeeds.from_blob` fetches it back by
content address when the store no longer holds the message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable

from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.chat import moment_shares as shares
from boxless.chat.attachment import AttachmentRef
from boxless.chat.moment import MomentContent, MomentKey, MomentReader, open_content
from boxless.chat.moment_shares import feed_topic
from boxless.chat.requests import ContactState
from boxless.client import moment_store as ms
from boxless.client import moments_core as core
from boxless.client import store as db
from boxless.client.attachment_transfer import AttachmentTransfer, FileInfo
from boxless.client.channel import DirectChannel, FollowUp
from boxless.client.transport import Incoming
from boxless.errors import BoxlessError, DecodeError, UsageError
from boxless.wire import attachment_pb2

__all__ = ["FEED_HISTORY_S", "MAX_SEALED_BYTES", "MomentFeeds"]

logger = logging.getLogger(__name__)

MAX_SEALED_BYTES = 64 * 1024  # a post's sealed content (60 KiB of content + nonce + tag)
FEED_HISTORY_S = 7 * 86_400  # a new feed's history read from store (its retention)

KeyHandler = Callable[[db.Cursor, bytes, MomentKey], FollowUp | None]


class MomentFeeds:
    """The feeds we read and the blobs we pin, for :class:`~boxless.client.moments.Moments`."""

    def __init__(
        self,
        channel: DirectChannel,
        drops: core.Drops,
        on_key: KeyHandler,
        *,
        clock: Callable[[], float] = time.time,
        blobs: Callable[[], AttachmentTransfer | None] = lambda: None,
    ) -> None:
        self.channel = channel
        self.db = channel.db
        self.drops = drops
        self.on_key = on_key  # the plug-in's key-share rules, inside a transaction
        self.clock = clock
        self.blobs = blobs
        with self.db.transaction() as cur:
            self._feed_topics = {f.topic for f in ms.feeds(cur)}

    def owns(self, topic: str) -> bool:
        return topic in self._feed_topics

    def topics(self) -> list[str]:
        """The feed topics of the posters whose reader keys we hold."""
        return sorted(self._feed_topics)

    def take_reader(self, cur: db.Cursor, poster: bytes, reader: MomentReader) -> list[FollowUp]:
        topic = feed_topic(reader.feed_secret)
        row = ms.FeedRow(poster, reader.epoch, reader.reader_key, reader.feed_secret, topic)
        if not ms.put_feed(cur, row, core.MAX_FEEDS_PER_POSTER):
            self.drops.add("stale")
            return []
        if topic in self._feed_topics:
            return []
        self._feed_topics = {f.topic for f in ms.feeds(cur)}

        async def listen() -> None:
            """Subscribe to the feed and read what it holds (posts sent before the key)."""
            await self.channel.transport.subscribe([topic])
            since = int((self.clock() - FEED_HISTORY_S) * 1e9)
            try:
                async for item in self.channel.transport.history([topic], since):
                    await self.on_feed(item)
            except BoxlessError as exc:
                logger.info("moments feed catch-up failed: %s", exc)

        return [listen]

    async def on_feed(self, item: Incoming) -> None:
        """A shares message on a feed topic: find our record by its tag, open it."""
        with self.db.transaction() as cur:
            rows = ms.feeds(cur, item.message.content_topic)
        try:
            parsed = shares.parse(item.message.payload)
        except DecodeError:
            self.drops.add("bad_shares")
            return
        for feed in rows:
            try:
                share = shares.open_share(parsed, feed.reader_key)
            except DecodeError:
                self.drops.add("forged_share")
                continue
            if share is None:
                continue  # not for us (an audience we are not in): nothing to count
            with self.db.transaction() as cur:
                contact = db.get_contact(cur, feed.poster)
                if contact is None or contact.state != ContactState.ACCEPTED.value:
                    self.drops.add("not_contact")
                    continue
                follow_up = self.on_key(cur, feed.poster, share)
            if follow_up is not None:
                await follow_up()

    async def pin(self, sealed: bytes) -> bytes:
        """Pin the sealed content as a blob on our service nodes (it outlives the
        store's retention); its encoded descriptor, or b"" with no blob service."""
        transfer = self.blobs()
        if transfer is None:
            return b""

        async def once() -> AsyncIterator[bytes]:
            yield sealed

        try:
            ref = await transfer.upload(once(), FileInfo("moment.bin"))
        except BoxlessError as exc:  # the store still holds it for its retention
            logger.info("moment content not pinned: %s", exc)
            return b""
        return ref.to_proto().SerializeToString()

    async def from_blob(self, post: ms.PostRow, blob: bytes) -> MomentContent | None:
        """The content fetched by its content address (the store no longer has it)."""
        transfer = self.blobs()
        if transfer is None or not blob:
            return None
        pb = attachment_pb2.Attachment()
        try:
            pb.ParseFromString(blob)
            ref = AttachmentRef.from_proto(pb)
            if ref.size > MAX_SEALED_BYTES:
                raise UsageError("a post's content blob is too big")
            data = b"".join([piece async for piece in transfer.open(ref)])
            content = open_content(post.key, post.post_id, data)
        except (ProtobufDecodeError, UsageError, DecodeError, BoxlessError) as exc:
            logger.info("moment %s not in its blob: %s", post.post_id.hex()[:8], exc)
            return None
        if content.poster != post.poster:
            self.drops.add("not_poster")
            return None
        return content
