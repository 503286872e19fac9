"""Light mode: a node that does not relay.

Phones are mostly offline, on metered data, and can't accept connections.
A :class:`LightNode` sends by light push (19/WAKU2-LIGHTPUSH v3), receives by
filter (12/WAKU2-FILTER v2) and catches up by store (13/WAKU2-STORE), all at
service peers it dials.

Theory of operation: the node keeps every service peer connected (static
peers of :class:`~boxless.node.peering.Peering`, with backoff). One filter
subscription is active at a time, at the *current* service peer; a
supervisor task watches that peer, and when it disconnects (or refuses us)
moves to the next one: subscribes there, then asks its store for everything
on our content topics since the last message we received (less a margin),
so nothing published meanwhile is lost. Received messages are deduplicated by
message hash (filter and store may both deliver one). :meth:`send` tries the
service peers in turn and reports whether the network accepted the message
(status 200 and how many relay peers the service pushed it to).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo

from boxless._trio_compat import TaskStatus
from boxless.errors import BoxlessError, NetworkError, UsageError
from boxless.fanout import Fanout
from boxless.node.filter import FilterClient
from boxless.node.host import build_host, parse_multiaddrs
from boxless.node.keys import load_or_create_node_key
from boxless.node.libp2p_shims import DIAL_ERRORS, redial
from boxless.node.lightpush import lightpush
from boxless.node.metrics import NodeMetrics
from boxless.node.peer_exchange import request_peers
from boxless.node.peering import Peering, parse_peer
from boxless.node.store_client import StoreQuerySpec, iter_pages
from boxless.waku import metadata as md
from boxless.waku.message import MAX_TIMESTAMP_DRIFT_NS, WakuMessage, message_hash, validate
from boxless.waku.sharding import DEFAULT_CLUSTER_ID, DEFAULT_NUM_SHARDS, pubsub_topic_for

logger = logging.getLogger(__name__)

CATCH_UP_MARGIN_NS = 60 * 10**9
CONNECT_WAIT = 10.0
SEEN_CAPACITY = 20_000
MAX_SERVICE_PEERS = 8
REDISCOVER_FIRST = 1.0  # seconds; doubles up to REDISCOVER_MAX while nothing new
REDISCOVER_MAX = 300.0


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the network said about one message."""

    accepted: bool
    status: int
    description: str | None
    relay_peers: int
    service_peer: ID
    message_hash: bytes


@dataclass(frozen=True, slots=True)
class LightMessage:
    """A message received by filter or store, once."""

    pubsub_topic: str
    message: WakuMessage
    message_hash: bytes
    via: str  # "filter" or "store"


class LightNode:
    """A light client. Run with ``await nursery.start(node.run)``."""

    def __init__(
        self,
        data_dir: Path,
        service_peers: Sequence[str],
        *,
        cluster_id: int = DEFAULT_CLUSTER_ID,
        num_shards: int = DEFAULT_NUM_SHARDS,
        listen: Sequence[str] = ("/ip4/127.0.0.1/tcp/0",),
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        if not service_peers:
            raise UsageError("a light node needs at least one --service-peer")
        self.cluster_id = cluster_id
        self.num_shards = num_shards
        self._now_ns = now_ns
        self.metrics = NodeMetrics()
        self.service_peers = [parse_peer(p) for p in service_peers]
        self.listen_addrs = parse_multiaddrs(listen)
        self.host = build_host(
            load_or_create_node_key(data_dir / "node.key"),
            self.listen_addrs,
            traffic=self.metrics.traffic,
        )
        self.peering = Peering(
            self.host,
            md.ClusterInfo(cluster_id, ()),
            self.metrics,
            self.service_peers,
            on_admitted=self._discover,
        )
        self.topics: dict[str, set[str]] = {}
        self.current: ID | None = None
        self.failovers = 0
        self.last_received_ns: int | None = None
        self._started_ns = now_ns()
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._listeners: Fanout[LightMessage] = Fanout(logger, "message")
        self._filter: FilterClient | None = None
        self._topics_changed = trio.Event()

    @property
    def peer_id(self) -> ID:
        return self.host.get_id()

    async def run(self, *, task_status: TaskStatus[LightNode] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled."""
        async with self.host.run(self.listen_addrs), trio.open_nursery() as nursery:
            await nursery.start(self.peering.run)
            nursery.start_soon(self._supervise)
            nursery.start_soon(self._rediscover)
            task_status.started(self)

    async def _rediscover(self) -> None:
        """Ask the current service peer again now and then: the peer we asked on
        admission may not have known its neighbours yet (it had just started, or
        they connected after us), and neighbours come and go. Backs off while
        nothing new turns up."""
        delay = REDISCOVER_FIRST
        while True:
            await trio.sleep(delay)
            before = len(self.service_peers)
            if self.current is not None and before < MAX_SERVICE_PEERS:
                await self._discover(self.current)
            grew = len(self.service_peers) > before
            delay = REDISCOVER_FIRST if grew else min(delay * 2, REDISCOVER_MAX)

    async def _discover(self, peer_id: ID) -> None:
        """Learn more service peers (filter + light push) from one we reached, so
        there is somewhere to fail over to. Best effort; bounded."""
        if len(self.service_peers) >= MAX_SERVICE_PEERS:
            return
        try:
            enrs = await request_peers(self.host, peer_id, MAX_SERVICE_PEERS)
        except BoxlessError as exc:
            logger.debug("no peer exchange with %s: %s", peer_id, exc)
            return
        known = {p.peer_id for p in self.service_peers} | {self.peer_id}
        for enr in enrs:
            flags, addrs = enr.waku2, enr.multiaddrs()
            if enr.peer_id() in known or flags is None or not (flags.filter and flags.lightpush):
                continue
            if not addrs or len(self.service_peers) >= MAX_SERVICE_PEERS:
                continue
            info = parse_peer(addrs[0])
            self.service_peers.append(info)
            known.add(info.peer_id)
            self.host.get_peerstore().add_addrs(info.peer_id, info.addrs, 3600)
            logger.info("learned service peer %s by peer exchange", info.peer_id)

    # -- receiving --------------------------------------------------------------------

    async def subscribe(self, content_topics: Sequence[str]) -> None:
        """Receive these content topics (autosharded) from now on, and what the
        current service peer's store holds for them since we started."""
        for ct in content_topics:
            self.topics.setdefault(
                pubsub_topic_for(ct, self.cluster_id, self.num_shards), set()
            ).add(ct)
        if self._filter is not None:
            for topic, cts in self.topics.items():
                await self._filter.subscribe(topic, sorted(cts))
        self._topics_changed.set()

    @asynccontextmanager
    async def messages(
        self, buffer: int = 1024
    ) -> AsyncIterator[trio.MemoryReceiveChannel[LightMessage]]:
        """Every message received (deduplicated) while the context is open."""
        async with self._listeners.listen(buffer) as recv:
            yield recv

    def _deliver(self, topic: str, msg: WakuMessage, via: str) -> None:
        digest = message_hash(topic, msg)
        if digest in self._seen:
            return
        self._seen[digest] = None
        if len(self._seen) > SEEN_CAPACITY:
            self._seen.popitem(last=False)
        self._advance(msg.timestamp)
        item = LightMessage(topic, msg, digest, via)
        self._listeners.publish(item)

    def _advance(self, timestamp: int | None) -> None:
        """Move the catch-up mark to ``timestamp``, a sender's claim: never past
        now plus the relay's allowed clock drift. A message dated +10 years (junk,
        or a lying store) would otherwise make every later catch-up ask for
        nothing, on every service peer; it is delivered but moves nothing."""
        if not timestamp:
            return
        if timestamp > self._now_ns() + MAX_TIMESTAMP_DRIFT_NS:
            logger.debug("a message dated in the future does not move the catch-up mark")
            return
        self.last_received_ns = max(self.last_received_ns or 0, timestamp)

    async def _supervise(self) -> None:
        """Hold a filter subscription at one service peer at a time; fail over."""
        index = 0
        while True:
            info = self.service_peers[index % len(self.service_peers)]
            index += 1
            if not await self._reach(info):
                logger.info("service peer %s unreachable; trying the next", info.peer_id)
                if index % len(self.service_peers) == 0:
                    await trio.sleep(1.0)  # a full round failed: don't spin
                continue
            try:
                await self._serve_from(info.peer_id)
            except* BoxlessError as group:  # raised inside _serve_from's nursery
                logger.info("service peer %s failed: %s", info.peer_id, group.exceptions[0])
            self.failovers += 1
            self.current = None
            self._filter = None

    async def _reach(self, info: PeerInfo) -> bool:
        """Connected to ``info`` within CONNECT_WAIT? (Static peers are redialled by
        peering; peers learned by peer exchange are dialled here. Our rounds pace
        these dials, so they skip py-libp2p's 60 s negative cache: ``redial``.)"""
        if self.peering.is_connected(info.peer_id):
            return True
        with trio.move_on_after(CONNECT_WAIT):
            try:
                await redial(self.host, info)
            except DIAL_ERRORS as exc:
                logger.debug("dial %s failed: %s", info.peer_id, exc)
        return self.peering.is_connected(info.peer_id)

    async def _serve_from(self, peer: ID) -> None:
        """Subscribe at ``peer``, catch up from its store, pump until it goes away."""
        client = FilterClient(self.host, peer)
        self._filter = client
        self.current = peer
        async with trio.open_nursery() as nursery:
            await nursery.start(client.run)
            for topic, cts in self.topics.items():
                await client.subscribe(topic, sorted(cts))
            logger.info("receiving through service peer %s", peer)
            nursery.start_soon(self._pump, client)
            try:
                await self._catch_up(peer)
            except BoxlessError as exc:  # e.g. a service peer without store
                logger.info("no catch-up from %s: %s", peer, exc)
            await self.peering.wait_disconnected(peer)
            logger.info("service peer %s went away", peer)
            nursery.cancel_scope.cancel()

    async def _pump(self, client: FilterClient) -> None:
        async for topic, msg in client.messages:
            self._deliver(topic, msg, "filter")

    async def _catch_up(self, peer: ID) -> None:
        since = (self.last_received_ns or self._started_ns) - CATCH_UP_MARGIN_NS
        for topic, cts in list(self.topics.items()):
            spec = StoreQuerySpec(
                pubsub_topic=topic,
                content_topics=tuple(sorted(cts)),
                time_start=since,
                page_size=100,
            )
            async for page in iter_pages(self.host, peer, spec):
                for m in page:
                    if m.message is not None:
                        self._deliver(topic, m.message, "store")

    async def history(
        self, content_topics: Sequence[str], since_ns: int | None
    ) -> AsyncIterator[LightMessage]:
        """What the service peers' stores hold on ``content_topics`` since
        ``since_ns``, oldest first, deduplicated against what we already saw.

        Tries the current service peer first, then the others; raises
        :class:`NetworkError` if none answered.
        """
        by_topic: dict[str, set[str]] = {}
        for ct in content_topics:
            topic = pubsub_topic_for(ct, self.cluster_id, self.num_shards)
            by_topic.setdefault(topic, set()).add(ct)
        specs = [
            StoreQuerySpec(
                pubsub_topic=topic,
                content_topics=tuple(sorted(cts)),
                time_start=since_ns,
                page_size=100,
            )
            for topic, cts in by_topic.items()
        ]
        async for item in self._query(specs):
            yield item

    async def fetch(
        self, content_topic: str, hashes: Sequence[bytes]
    ) -> AsyncIterator[LightMessage]:
        """The messages with these hashes that a service peer's store holds (repair
        by retrieval hint), deduplicated like :meth:`history`."""
        topic = pubsub_topic_for(content_topic, self.cluster_id, self.num_shards)
        for i in range(0, len(hashes), 100):
            spec = StoreQuerySpec(
                pubsub_topic=topic, message_hashes=tuple(hashes[i : i + 100]), page_size=100
            )
            async for item in self._query([spec]):
                yield item

    async def _query(self, specs: list[StoreQuerySpec]) -> AsyncIterator[LightMessage]:
        """Run ``specs`` at the current service peer, else the next that answers."""
        order = sorted(self.service_peers, key=lambda p: p.peer_id != self.current)
        errors = []
        for peer in order:
            try:
                async for item in self._query_at(peer.peer_id, specs):
                    yield item
                return
            except BoxlessError as exc:
                errors.append(f"{peer.peer_id}: {exc}")
        raise NetworkError("no service peer's store answered: " + "; ".join(errors))

    async def _query_at(self, peer: ID, specs: list[StoreQuerySpec]) -> AsyncIterator[LightMessage]:
        for spec in specs:
            topic = spec.pubsub_topic or ""
            async for page in iter_pages(self.host, peer, spec):
                for m in page:
                    if m.message is None:
                        continue
                    digest = message_hash(topic, m.message)
                    if digest not in self._seen:
                        self._seen[digest] = None
                        yield LightMessage(topic, m.message, digest, "store")

    # -- sending ----------------------------------------------------------------------

    async def send(self, msg: WakuMessage) -> SendResult:
        """Light-push ``msg``; try each service peer until one answers.

        Raises :class:`ValidationError` if the message is invalid before it
        leaves, :class:`NetworkError` if no service peer could be reached.
        The result says whether the network accepted it.
        """
        validate(msg, self._now_ns())
        topic = pubsub_topic_for(msg.content_topic, self.cluster_id, self.num_shards)
        order = sorted(self.service_peers, key=lambda p: p.peer_id != self.current)
        errors = []
        for peer in order:
            try:
                res = await lightpush(self.host, peer.peer_id, msg, topic)
            except (NetworkError, BoxlessError) as exc:
                errors.append(f"{peer.peer_id}: {exc}")
                continue
            return SendResult(
                res.ok,
                int(res.status),
                res.desc,
                res.relay_peer_count or 0,
                peer.peer_id,
                message_hash(topic, msg),
            )
        raise NetworkError("no service peer took the message: " + "; ".join(errors))
