"""The store service adapter and store resume.

:class:`StoreService` serves ``/vac/waku/store-query/3.0.0``: it reads one
request frame, lets the sans-IO core (``boxless.waku.store``) validate it, runs
the query on the archive in a worker thread, and writes one response. Bad
input gets the spec's 400 (or a reset for an unreadable frame) and is counted
against the peer; a peer over its rate gets 429 TOO_MANY_REQUESTS, a node
whose query threads are all taken with a queue behind them 503; an archive
failure is a 503, never a crash.

:func:`resume_from_store` is what a storing node does after a restart: ask a
peer's store for everything on a topic since our newest archived message (less
a margin for clock skew and in-flight messages) and archive what we missed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Hashable
from contextlib import asynccontextmanager

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from boxless.archive import Archive, ArchiveQuery, ArchiveRow, CursorNotFoundError
from boxless.errors import BoxlessError, StorageError
from boxless.node.config import ServiceLimits
from boxless.node.limits import FairSlots, PeerRateLimiter, Verdict
from boxless.node.metrics import NodeMetrics
from boxless.node.store_client import StoreQuerySpec, iter_pages
from boxless.node.streams import read_request, reply_and_close, reset_quietly
from boxless.waku import store
from boxless.waku.message import MAX_TIMESTAMP_DRIFT_NS, message_hash

logger = logging.getLogger(__name__)

MAX_REQUEST_SIZE = 256 * 1024  # 1,000 hashes of 32 bytes plus topics fit easily
RESUME_MARGIN_NS = 60 * 10**9
RESUME_EMPTY_WINDOW_NS = 24 * 3600 * 10**9
ANSWER_WRITE_TIMEOUT = 5.0  # seconds a requester gets to take its answer
_LOCAL = "local"  # the slot holder for queries with no peer (local callers)


class StoreService:
    """Answers store queries from the archive, within per-peer and global bounds.

    Order of checks for one request: decode (400 and a strike for garbage),
    the peer's rate (429), the peer's queries in flight (429), the global
    queue of queries waiting for a thread (503), then the query on one of
    ``limits.store_threads`` threads of the store's own, handed out fairly
    (:class:`~boxless.node.limits.FairSlots`: the peer with the fewest
    queries running goes next, so a flooder's backlog is not in an honest
    peer's way); the page is trimmed to
    ``limits.store_answer_bytes``. Archive writes run on a separate limiter
    (:class:`~boxless.node.archiver.Archiver`), so a query flood can't take
    the threads they need.
    """

    def __init__(
        self,
        host: IHost,
        archive: Archive,
        metrics: NodeMetrics,
        on_violation: Callable[[ID, str], Awaitable[None]],
        limits: ServiceLimits | None = None,
    ) -> None:
        self.host = host
        self.archive = archive
        self.metrics = metrics
        self.on_violation = on_violation
        self.limits = limits = limits if limits is not None else ServiceLimits()
        self.rate = PeerRateLimiter(
            limits.store_rate,
            limits.store_burst,
            max_peers=limits.max_peers,
            admit_rate=limits.peer_admit_rate,
            admit_burst=max(1, int(limits.peer_admit_rate * 2)),
        )
        self.threads = trio.CapacityLimiter(limits.store_threads)
        self.slots: FairSlots[trio.Event] = FairSlots(limits.store_threads)
        self._in_flight: dict[ID, int] = {}  # bounded: entries exist only while queries run

    def register(self) -> None:
        self.host.set_stream_handler(TProtocol(store.STORE_PROTOCOL_ID), self.handle)

    async def handle(self, stream: INetStream) -> None:
        """Serve one request on ``stream``; never raises for a peer's mistake.

        Cancellation (node stopping, or the stream gate evicting this stream)
        leaves the stream to the caller, which resets it.
        """
        peer = stream.muxed_conn.peer_id
        data = await read_request(stream, MAX_REQUEST_SIZE, "store", self.on_violation)
        if data is None:
            return

        async def send(reply: bytes) -> None:
            with trio.move_on_after(ANSWER_WRITE_TIMEOUT) as scope:
                await reply_and_close(stream, reply, "store")
            if scope.cancelled_caught:
                logger.debug("store requester %s too slow to read its answer", peer)
                await reset_quietly(stream)

        started = time.perf_counter()
        status = await self.serve(data, peer, send)
        self.metrics.store_queries.labels(str(int(status))).inc()
        self.metrics.store_query_seconds.observe(time.perf_counter() - started)

    async def answer(self, data: bytes, peer: ID | None = None) -> tuple[bytes, int]:
        """The encoded response to request bytes ``data`` from ``peer``, and its status.

        ``peer`` None (a local caller) skips the per-peer limits.
        """
        out: list[bytes] = []

        async def keep(reply: bytes) -> None:
            out.append(reply)

        status = await self.serve(data, peer, keep)
        return out[0], status

    async def serve(
        self, data: bytes, peer: ID | None, send: Callable[[bytes], Awaitable[None]]
    ) -> int:
        """Answer request bytes ``data`` from ``peer`` through ``send``; return the status.

        The query slot covers reading the archive and encoding, not the write:
        a requester that reads slowly (or an overloaded one) would otherwise
        hold a slot for the whole write timeout and stall everyone. The write
        is bounded by :data:`ANSWER_WRITE_TIMEOUT` and the per-peer in-flight
        cap still counts it.
        """
        parsed = store.parse_request(data)
        if isinstance(parsed, store.StoreRejection):
            await self._strike(peer)
            await send(parsed.encode())
            return parsed.status_code
        refusal = self._admit(parsed.request_id, peer)
        if refusal is not None:
            await send(refusal[0])
            return refusal[1]
        if peer is not None:
            self._in_flight[peer] = self._in_flight.get(peer, 0) + 1
        try:
            async with self._slot(peer):
                reply, status = await self._run(parsed)
            if peer is not None:  # a big answer costs more of the peer's rate
                cost = len(reply) / self.limits.store_bytes_per_token
                self.rate.charge(peer, trio.current_time(), cost)
            if status == store.StoreStatus.BAD_REQUEST:
                await self._strike(peer)
            await send(reply)
            return status
        finally:
            if peer is not None:
                left = self._in_flight.pop(peer) - 1
                if left:
                    self._in_flight[peer] = left

    async def _strike(self, peer: ID | None) -> None:
        """Count a bad request against ``peer`` (before it hears the 400)."""
        if peer is not None:
            await self.on_violation(peer, "store")

    def _admit(self, rid: str, peer: ID | None) -> tuple[bytes, int] | None:
        """The error answer if this request must wait for another day, else None."""
        many = store.StoreStatus.TOO_MANY_REQUESTS
        if peer is not None:
            verdict = self.rate.check(peer, trio.current_time())
            if verdict is Verdict.PEER_LIMIT:
                return store.build_error(rid, many, "TOO_MANY_REQUESTS: slow down"), many
            if verdict is Verdict.BUSY:
                desc = "TOO_MANY_REQUESTS: too many new peers, retry later"
                return store.build_error(rid, many, desc), many
            if self._in_flight.get(peer, 0) >= self.limits.store_in_flight:
                desc = "TOO_MANY_REQUESTS: wait for your earlier queries"
                return store.build_error(rid, many, desc), many
        if self.slots.waiting >= self.limits.store_queue:
            busy = store.StoreStatus.SERVICE_UNAVAILABLE
            return store.build_error(rid, busy, "SERVICE_UNAVAILABLE: busy, retry later"), busy
        return None

    @asynccontextmanager
    async def _slot(self, peer: ID | None) -> AsyncIterator[None]:
        """Hold one of the query threads, granted fairly among peers.

        Cancellation while waiting withdraws the request (or passes a slot
        granted at that instant on to the next waiter).
        """
        who: Hashable = peer if peer is not None else _LOCAL
        granted = trio.Event()
        if not self.slots.acquire(who, granted):
            try:
                await granted.wait()
            except BaseException:
                if granted.is_set():
                    self._release(who)
                else:
                    self.slots.cancel(granted)
                raise
        try:
            yield
        finally:
            self._release(who)

    def _release(self, who: Hashable) -> None:
        following = self.slots.release(who)
        if following is not None:
            following.set()

    async def _run(self, parsed: store.StoreRequest) -> tuple[bytes, int]:
        rid, query = parsed.request_id, parsed.query
        try:
            page = await trio.to_thread.run_sync(self.archive.query, query, limiter=self.threads)
        except CursorNotFoundError:
            status = store.StoreStatus.BAD_REQUEST
            return store.build_error(rid, status, store.CURSOR_NOT_FOUND), status
        except StorageError as exc:
            logger.error("archive query failed: %s", exc)
            status = store.StoreStatus.SERVICE_UNAVAILABLE
            return store.build_error(rid, status, "SERVICE_UNAVAILABLE: archive error"), status
        page = store.trim_page(page, query.forward, self.limits.store_answer_bytes)
        return store.build_response(rid, page, query.include_data), store.StoreStatus.OK


async def newest_timestamp(archive: Archive, pubsub_topic: str) -> int | None:
    """The sender timestamp of the newest archived message on ``pubsub_topic``."""
    q = ArchiveQuery(pubsub_topic=pubsub_topic, forward=False, limit=1)
    page = await trio.to_thread.run_sync(archive.query, q)
    return page.rows[-1].timestamp if page.rows else None


async def resume_from_store(
    host: IHost,
    archive: Archive,
    pubsub_topics: Collection[str],
    peer_id: ID,
    *,
    metrics: NodeMetrics,
    now_ns: Callable[[], int] = time.time_ns,
) -> int:
    """Fetch from ``peer_id``'s store what we missed on ``pubsub_topics``.

    Spec 13 allows no pubsub-topic-only filter, so we ask for the time range
    and keep the entries on our topics. A message dated further in the future
    than relay would accept is not archived (a lying store must not plant one).
    Returns how many messages were new to our archive. A peer without a store,
    or one that fails, is logged and skipped: resume is best effort (relay
    keeps delivering meanwhile).
    """
    topics = set(pubsub_topics)
    now = now_ns()
    newest = [await newest_timestamp(archive, t) for t in topics]
    known = [t for t in newest if t is not None]
    since = (
        min(known) - RESUME_MARGIN_NS if len(known) == len(topics) else now - RESUME_EMPTY_WINDOW_NS
    )
    spec = StoreQuerySpec(
        time_start=since, time_end=now + RESUME_MARGIN_NS, page_size=store.MAX_PAGE_SIZE
    )
    latest = now + MAX_TIMESTAMP_DRIFT_NS
    new = 0
    try:
        async for page in iter_pages(host, peer_id, spec):
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
                if m.message is not None
                and m.pubsub_topic in topics
                and not m.message.ephemeral
                and (m.message.timestamp or now) <= latest
            ]
            if rows:
                new += await trio.to_thread.run_sync(archive.insert, rows)
    except BoxlessError as exc:
        logger.info("store resume from %s stopped: %s", peer_id, exc)
    if new:
        metrics.archive_inserted.inc(new)
    logger.info("store resume from %s: %d new messages", peer_id, new)
    return new
