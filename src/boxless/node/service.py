"""A Waku node: the libp2p host plus the protocols its config enables.

Theory of operation: :meth:`WakuNode.run` owns one nursery. It opens the
archive (in a thread), starts the host listening, then starts each enabled
part: peering (static peers, metadata handshake), relay on the node's shards
with a validator that decodes and checks every message, the archiver fed from
relay, the store service, retention, store resume, and the admin HTTP port;
last, the inbound streams of every service protocol are put behind one
:class:`~boxless.node.limits.StreamGate` (per-peer and total caps).
``task_status.started(node)`` is called once all of that listens. Cancelling
the nursery (SIGINT/SIGTERM in the CLI) stops the host first, then the
archiver flushes what relay had accepted, then the archive closes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio
from libp2p.abc import IHost
from libp2p.peer.id import ID

from boxless._trio_compat import TaskStatus
from boxless.archive import Archive, ArchiveRow, open_archive
from boxless.blobs import PIN_PROTOCOL, BlobService, PinPolicy
from boxless.errors import DecodeError, ValidationError
from boxless.fanout import Fanout
from boxless.node.archiver import Archiver
from boxless.node.config import NodeConfig
from boxless.node.filter import FilterService
from boxless.node.host import build_host, parse_multiaddrs
from boxless.node.keys import load_or_create_node_key
from boxless.node.lightpush import LightPushService
from boxless.node.limits import StreamGate
from boxless.node.metrics import NodeMetrics
from boxless.node.peer_exchange import PeerExchangeService
from boxless.node.peering import Peering, parse_peer
from boxless.node.relay import WakuRelay
from boxless.node.relay_gossipsub import RelayMessage
from boxless.node.service_streams import gate_services
from boxless.node.store_service import StoreService, resume_from_store
from boxless.waku import filter as fc
from boxless.waku import lightpush as lp
from boxless.waku import metadata as md
from boxless.waku import peer_exchange as px
from boxless.waku import store
from boxless.waku.enr import Enr, RelayShards, Waku2
from boxless.waku.message import WakuMessage, message_hash, validate
from boxless.waku.sharding import pubsub_topic

logger = logging.getLogger(__name__)

# Request/response protocols whose inbound streams the stream gate caps
# (relay's long-lived gossipsub streams and identify/ping are not among them).
SERVICE_PROTOCOLS = (
    store.STORE_PROTOCOL_ID,
    lp.LIGHTPUSH_V3,
    lp.LIGHTPUSH_V2,
    fc.FILTER_SUBSCRIBE_PROTOCOL,
    px.PEER_EXCHANGE_PROTOCOL_ID,
    md.METADATA_PROTOCOL_ID,
    PIN_PROTOCOL,
)


def now_ns() -> int:
    """The wall clock in Unix nanoseconds (the one place the node reads it)."""
    return time.time_ns()


@dataclass(frozen=True, slots=True)
class PublishResult:
    """A message this node relayed: its hash and how many peers it went to."""

    message_hash: bytes
    peers: int


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A message relay accepted, with where it came from."""

    pubsub_topic: str
    message: WakuMessage
    message_hash: bytes
    from_peer: ID | None


class WakuNode:
    """One node. Build with a config, run with ``await nursery.start(node.run)``."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.metrics = NodeMetrics()
        self.key_pair = load_or_create_node_key(config.key_path)
        self.listen_addrs = parse_multiaddrs(config.listen)
        self.static_peers = [parse_peer(p) for p in config.peers]
        self.host: IHost = build_host(
            self.key_pair, self.listen_addrs, traffic=self.metrics.traffic
        )
        self.pubsub_topics = [pubsub_topic(config.cluster_id, s) for s in config.shards]
        self.cluster_info = md.ClusterInfo(config.cluster_id, tuple(sorted(config.shards)))
        self.peering = Peering(
            self.host,
            self.cluster_info,
            self.metrics,
            self.static_peers,
            on_admitted=self._on_admitted,
        )
        self.px_cache = px.PeerCache()
        self.enr: Enr | None = None
        self.peer_exchange: PeerExchangeService | None = None
        self.relay: WakuRelay | None = None
        self.archive: Archive | None = None
        self.archiver: Archiver | None = None
        self.filter: FilterService | None = None
        self.store: StoreService | None = None
        self.blobs: BlobService | None = None
        limits = config.limits
        self.stream_gate: StreamGate[trio.CancelScope] = StreamGate(
            per_peer=limits.streams_per_peer, total=limits.streams_total
        )
        self._listeners: Fanout[ReceivedMessage] = Fanout(logger, "message")
        self.started_at = 0.0

    @property
    def peer_id(self) -> ID:
        return self.host.get_id()

    def addrs(self) -> list[str]:
        """Our dialable multiaddrs, each ending in /p2p/<peer id>."""
        return [str(a) for a in self.host.get_addrs()]

    async def run(self, *, task_status: TaskStatus[WakuNode] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled. Cancellation flushes queued archive writes first."""
        if self.config.store:
            self.archive = await trio.to_thread.run_sync(open_archive, self.config.archive_url)
        try:
            await self._run_host(task_status)
        finally:
            if self.archive is not None:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(self.archive.close)

    async def _run_host(self, task_status: TaskStatus[WakuNode]) -> None:
        async with trio.open_nursery() as outer:
            if self.archive is not None:
                self.archiver = Archiver(self.archive, self.metrics)
                outer.start_soon(self.archiver.run)
            async with self.host.run(self.listen_addrs), trio.open_nursery() as nursery:
                self.enr = self._build_enr()
                if self.config.peer_exchange:
                    self.peer_exchange = PeerExchangeService(
                        self.host,
                        self.px_cache,
                        lambda: self.enr,
                        on_violation=self.peering.violation,
                    )
                    self.peer_exchange.register()
                await nursery.start(self.peering.run)
                if self.config.filter:
                    self.filter = FilterService(
                        self.host, self.metrics, on_violation=self.peering.violation
                    )
                    await nursery.start(self.filter.run)
                if self.config.relay:
                    await self._start_relay(nursery)
                if self.config.lightpush:
                    self._serve_lightpush()
                if self.archive is not None:
                    self.store = StoreService(
                        self.host,
                        self.archive,
                        self.metrics,
                        self.peering.violation,
                        self.config.limits,
                    )
                    self.store.register()
                    nursery.start_soon(self._retention_loop)
                    if self.config.store_resume and self.static_peers:
                        nursery.start_soon(self._resume)
                if self.config.blobs:
                    await nursery.start(self._blob_service().run)
                if self.config.admin_listen:
                    from boxless.node.admin import serve_admin

                    await nursery.start(serve_admin, self, self.config.admin_listen)
                gate_services(self.host, SERVICE_PROTOCOLS, self.stream_gate, self.metrics)
                self.started_at = time.monotonic()
                task_status.started(self)
            outer.cancel_scope.cancel()

    async def _start_relay(self, nursery: trio.Nursery) -> None:
        relay = self.relay = WakuRelay(self.host)
        relay.add_validator(None, self._validate)
        await nursery.start(relay.run)
        for topic in self.pubsub_topics:
            channel = await relay.subscribe(topic)
            nursery.start_soon(self._consume, topic, channel)

    def _blob_service(self) -> BlobService:
        """Bitswap, the block store and the pin protocol (``--blobs``): pins for
        configured peers and for this node's clients, within quotas. A client is
        a peer connected to us: a light client keeps *every* service peer
        connected but holds a filter subscription at only one of them, and it
        must be able to pin on all (redundancy), so filter membership cannot
        be the test. Strangers are bounded by the per-peer quota, the pins in
        flight and the store quota (docs/blobs.md)."""
        cfg = self.config

        def is_client(peer: ID) -> bool:
            return bool(self.host.get_network().get_connections(peer))

        policy = PinPolicy(
            trusted=frozenset(p.peer_id for p in self.static_peers),
            is_client=is_client,
            peer_quota=cfg.blob_peer_quota,
            max_retention_s=int(cfg.blob_retention_days * 86_400),
        )
        self.blobs = BlobService(
            self.host,
            cfg.data_dir / "blobs",
            quota=cfg.blob_quota,
            pin_policy=policy,
            on_violation=self.peering.violation,
        )
        return self.blobs

    def _build_enr(self) -> Enr:
        """Our signed record: where to reach us and what we serve.

        ``seq`` is the start time in seconds, so it grows across restarts
        without being stored.
        """
        addrs = [str(a) for a in parse_multiaddrs(self.config.announce)] or [
            a.split("/p2p/")[0] for a in self.addrs()
        ]
        tcp = next((a for a in addrs if "/ws" not in a and a.startswith("/ip4/")), None)
        ip = port = None
        if tcp is not None:
            parts = tcp.split("/")
            ip, port = parts[2], int(parts[4])
        cfg = self.config
        return Enr.build(
            self.key_pair.private_key.to_bytes(),
            int(time.time()),
            ip=ip,
            tcp=port,
            multiaddrs=[a for a in addrs if "/ws" in a],
            waku2=Waku2(
                relay=cfg.relay,
                store=cfg.store,
                filter=cfg.filter,
                lightpush=cfg.lightpush,
                sync=False,
            ),
            shards=RelayShards.of(cfg.cluster_id, cfg.shards),
        )

    async def _on_admitted(self, peer_id: ID) -> None:
        """A peer of our cluster: learn the peers it knows (best effort)."""
        if self.peer_exchange is not None:
            await self.peer_exchange.learn_from(peer_id)

    def _serve_lightpush(self) -> None:
        relay = self.relay
        assert relay is not None

        async def publish(topic: str, msg: WakuMessage) -> int:
            # LightPushService has validated msg already (status 420 otherwise)
            peers = await relay.publish(topic, msg.encode())
            self.metrics.relay_published.inc()
            return peers

        LightPushService(
            self.host,
            publish,
            self.metrics,
            cluster_id=self.config.cluster_id,
            pubsub_topics=self.pubsub_topics,
            num_shards=self.config.num_shards,
            topic_peer_count=lambda t: len(relay.topic_peers(t)),
            max_message_size=self.config.max_message_size,
            now_ns=now_ns,
            on_violation=self.peering.violation,
            keeps_locally=self.config.store or self.config.filter,
        ).register()

    def _validate(self, topic: str, data: bytes, from_peer: ID) -> bool:
        """Relay validator: only well-formed, valid messages on our topics pass."""
        if topic not in self.pubsub_topics:
            self.metrics.relay_invalid.labels("topic").inc()
            return False
        try:
            validate(
                WakuMessage.decode(data, max_size=self.config.max_message_size),
                now_ns(),
                max_size=self.config.max_message_size,
            )
        except DecodeError:
            self.metrics.relay_invalid.labels("decode").inc()
            return False
        except ValidationError as exc:
            self.metrics.relay_invalid.labels(str(exc).split(":", 1)[0]).inc()
            return False
        return True

    async def _consume(self, topic: str, channel: trio.MemoryReceiveChannel[RelayMessage]) -> None:
        async for item in channel:
            msg = WakuMessage.decode(item.data, max_size=self.config.max_message_size)
            await self._accept(topic, msg, item.from_peer)

    async def _accept(self, topic: str, msg: WakuMessage, from_peer: ID | None) -> None:
        self.metrics.relay_received.inc()
        digest = message_hash(topic, msg)
        if self.archiver is not None and not msg.ephemeral:
            received = now_ns()
            await self.archiver.put(
                ArchiveRow(
                    message_hash=digest,
                    pubsub_topic=topic,
                    content_topic=msg.content_topic,
                    timestamp=msg.timestamp or received,
                    message=msg.encode(),
                    received_at=received,
                )
            )
        if self.filter is not None:
            await self.filter.on_message(topic, msg)
        event = ReceivedMessage(topic, msg, digest, from_peer)
        self._listeners.publish(event)

    @asynccontextmanager
    async def messages(
        self, buffer: int = 1024
    ) -> AsyncIterator[trio.MemoryReceiveChannel[ReceivedMessage]]:
        """Receive every message relay accepts while the context is open."""
        async with self._listeners.listen(buffer) as recv:
            yield recv

    async def publish(self, topic: str, msg: WakuMessage) -> PublishResult:
        """Validate and relay ``msg`` on ``topic``; return its hash and how many
        relay peers it went to (0: no peer yet, or a duplicate).

        Raises :class:`ValidationError` if the message breaks a rule. Relay hands
        our own message to our subscription too, so a storing node archives it.
        """
        if self.relay is None:
            raise ValidationError("this node does not relay: start it with --relay")
        if topic not in self.pubsub_topics:
            raise ValidationError(f"not subscribed to {topic}; add its shard with --shard")
        validate(msg, now_ns(), max_size=self.config.max_message_size)
        peers = await self.relay.publish(topic, msg.encode())
        self.metrics.relay_published.inc()
        # relay delivers our own message to our subscription too: _consume archives it
        return PublishResult(message_hash(topic, msg), peers)

    async def _retention_loop(self) -> None:
        archive = self.archive
        assert archive is not None
        policy = self.config.retention
        while True:
            pruned = await trio.to_thread.run_sync(
                lambda: archive.apply_retention(
                    now_ns(),
                    max_age_ns=policy.max_age_ns,
                    max_count=policy.max_count,
                    max_bytes=policy.max_bytes,
                )
            )
            if pruned:
                logger.info("retention removed %d messages", pruned)
                self.metrics.archive_pruned.inc(pruned)
            self.metrics.archive_size.set(await trio.to_thread.run_sync(archive.count))
            await trio.sleep(policy.interval_s)

    async def _resume(self) -> None:
        assert self.archive is not None and self.archiver is not None
        await self.peering.connected_event.wait()
        for peer in self.static_peers:
            if self.host.get_network().get_connections(peer.peer_id):
                await resume_from_store(
                    self.host,
                    self.archive,
                    self.pubsub_topics,
                    peer.peer_id,
                    metrics=self.metrics,
                    now_ns=now_ns,
                )
