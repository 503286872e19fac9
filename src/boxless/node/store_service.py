"""The store service adapter and store resume.

:class:`StoreService` serves ``/vac/waku/store-query/3.0.0``: it reads one
request frame, lets the sans-IO core (``boxless.waku.store``) validate it, runs
the query on the archive in a worker thread, and writes one response. Bad
input gets the spec's 400 (or a reset for an unreadable frame) and is counted
against the peer; an archive failure is a 503, never a crash.

:func:`resume_from_store` is what a storing node does after a restart: ask a
peer's store for everything on a topic since our newest archived message (less
a margin for clock skew and in-flight messages) and archive what we missed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from boxless.archive import Archive, ArchiveQuery, ArchiveRow, CursorNotFoundError
from boxless.errors import BoxlessError, StorageError
from boxless.node.metrics import NodeMetrics
from boxless.node.store_client import StoreQuerySpec, iter_pages
from boxless.node.streams import (
    read_request,
    reply_and_close,
)
from boxless.waku import store
from boxless.waku.message import message_hash

logger = logging.getLogger(__name__)

MAX_REQUEST_SIZE = 256 * 1024  # 1,000 hashes of 32 bytes plus topics fit easily
RESUME_MARGIN_NS = 60 * 10**9
RESUME_EMPTY_WINDOW_NS = 24 * 3600 * 10**9


class StoreService:
    """Answers store queries from the archive."""

    def __init__(
        self,
        host: IHost,
        archive: Archive,
        metrics: NodeMetrics,
        on_violation: Callable[[ID, str], Awaitable[None]],
    ) -> None:
        self.host = host
        self.archive = archive
        self.metrics = metrics
        self.on_violation = on_violation

    def register(self) -> None:
        self.host.set_stream_handler(TProtocol(store.STORE_PROTOCOL_ID), self.handle)

    async def handle(self, stream: INetStream) -> None:
        """Serve one request on ``stream``; never raises for a peer's mistake."""
        peer = stream.muxed_conn.peer_id
        data = await read_request(stream, MAX_REQUEST_SIZE, "store", self.on_violation)
        if data is None:
            return
        started = time.perf_counter()
        reply, status = await self.answer(data)
        if status == store.StoreStatus.BAD_REQUEST:
            await self.on_violation(peer, "store")
        self.metrics.store_queries.labels(str(status)).inc()
        self.metrics.store_query_seconds.observe(time.perf_counter() - started)
        await reply_and_close(stream, reply, "store")

    async def answer(self, data: bytes) -> tuple[bytes, int]:
        """The encoded response to request bytes ``data``, and its status code."""
        parsed = store.parse_request(data)
        if isinstance(parsed, store.StoreRejection):
            return parsed.encode(), parsed.status_code
        rid, query = parsed.request_id, parsed.query
        try:
            page = await trio.to_thread.run_sync(self.archive.query, query)
        except CursorNotFoundError:
            status = store.StoreStatus.BAD_REQUEST
            return store.build_error(rid, status, store.CURSOR_NOT_FOUND), status
        except StorageError as exc:
            logger.error("archive query failed: %s", exc)
            status = store.StoreStatus.SERVICE_UNAVAILABLE
            return store.build_error(rid, status, "SERVICE_UNAVAILABLE: archive error"), status
        return store.build_response(rid, page, query.include_data), store.StoreStatus.OK


async def newest_timestamp(archive: Archive, pubsub_topic: str) -> int | None:
    """The sender timestamp of the newest archived message on ``pubsub_topic``."""
    q = ArchiveQuery(pubsub_topic=pubsub_topic, forward=False, limit=1)
    page = await trio.to_thread.run_sync(archive.query, q)
    return page.rows[-1].timestamp if page.rows else None


async def resume_from_store(node: object, peer_id: ID) -> int:
    """Fetch from ``peer_id``'s store what ``node`` missed on its pubsub topics.

    Spec 13 allows no pubsub-topic-only filter, so we ask for the time range
    and keep the entries on our topics. Returns how many messages were new to
    our archive. A peer without a store, or one that fails, is logged and
    skipped: resume is best effort (relay keeps delivering meanwhile).
    """
    from boxless.node.service import WakuNode, now_ns

    assert isinstance(node, WakuNode) and node.archive is not None
    topics = set(node.pubsub_topics)
    now = now_ns()
    newest = [await newest_timestamp(node.archive, t) for t in topics]
    known = [t for t in newest if t is not None]
    since = (
        min(known) - RESUME_MARGIN_NS if len(known) == len(topics) else now - RESUME_EMPTY_WINDOW_NS
    )
    spec = StoreQuerySpec(
        time_start=since, time_end=now + RESUME_MARGIN_NS, page_size=store.MAX_PAGE_SIZE
    )
    new = 0
    try:
        async for page in iter_pages(node.host, peer_id, spec):
            rows = [
                ArchiveRow(
                    message_hash=message_hash(m.pubsub_topic, m.message),
                    pubsub_topic=m.pubsub_topic,
                    content_topic=m.message.content_topic,
                    timestamp=m.message.timestamp or now,
                    message=m.message.encode(),
                    received_at=now_ns(),
                )
                for m in page
                if m.message is not None and m.pubsub_topic in topics and not m.message.ephemeral
            ]
            if rows:
                new += await trio.to_thread.run_sync(node.archive.insert, rows)
    except BoxlessError as exc:
        logger.info("store resume from %s stopped: %s", peer_id, exc)
    if new:
        node.metrics.archive_inserted.inc(new)
    logger.info("store resume from %s: %d new messages", peer_id, new)
    return new
