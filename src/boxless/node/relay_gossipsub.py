"""Waku relay (11/WAKU2-RELAY) on py-libp2p 0.8.1's GossipSub: the adaptation layer.

Theory of operation
-------------------
Waku relay is gossipsub v1.1 spoken under its own protocol id, with the
StrictNoSign signature policy and content-addressed message ids. py-libp2p's
``Pubsub`` (message plumbing) and ``GossipSub`` (mesh router) do almost all of
it; this module subclasses both and overrides only what must change. Every
deviation from py-libp2p 0.8.1, and why:

1. Protocol id. ``GossipSub.add_peer`` refuses any id but ``/meshsub/*`` and
   ``/floodsub/*``, and the router compares ``peer_protocol`` against those ids
   everywhere (mesh selection, scoring). We register only
   ``/vac/waku/relay/2.0.0`` on the wire and record its peers internally as
   ``/meshsub/1.1.0``: the relay spec defines exactly v1.1 semantics.
2. StrictNoSign publish. ``Pubsub.publish`` always sets ``from``/``seqno`` (and
   signs when ``strict_signing``). ``RelayPubsub.publish_data`` builds a message
   with only ``data`` and ``topicIDs``.
3. StrictNoSign receive. A remote message carrying ``from``, ``seqno``,
   ``signature`` or ``key`` is rejected (as go/js/nwaku do) and counted as an
   invalid message against the forwarding peer's score (P4).
4. Message id = sha256(data). Given to ``Pubsub`` as its id function; but
   ``MessageCache.put`` hard-codes ``from+seqno`` as the key, so with empty
   from/seqno every message collided on ``b""`` and IWANT served the wrong one.
   ``ContentAddressedMessageCache`` keys on the configured id function.
5. Equivocation check. ``GossipSub._check_equivocation`` keys on ``from+seqno``;
   with both empty only the first message ever passed. Equivocation is
   meaningless for unsigned content-addressed messages: disabled.
6. Rate limit. ``spam_protection_enabled`` drops above 10 msg/s per peer and
   topic. Waku's spam protection is RLN at the validator layer, so it is off by
   default (configurable). Likewise eclipse protection (wants >= 3 distinct IPs
   in a mesh, which grafts extra peers on a LAN/loopback) and adaptive gossip
   (changes D behind the caller's back) are off by default.
7. Bursts. py-libp2p dropped bursts in three places: the per-peer outbound
   ``RpcQueue`` holds 32 RPCs and *rejects* when full (``send_rpc``), the
   per-topic subscription channel holds 32 and ``notify_subscriptions`` uses
   ``send_nowait`` (drop on full), and (6). Also every inbound message was
   spawned as its own task, so nothing pushed back on the sender. Here:
   the reader handles a peer's messages in order, inline (``push_msg`` is
   awaited), so a slow pipeline stops reading and TCP/muxer flow control pushes
   back on the sender; before routing, ``push_msg`` awaits room in the target
   peers' outbound queues (high-water mark) and local delivery awaits room in
   the subscriber's channel. Waits are bounded by ``backpressure_timeout`` (a
   cycle of full queues could otherwise deadlock); only after that is a
   message dropped, and every drop is counted in ``RelayMetrics``. A subscriber
   that timed out once is marked stalled and gets no further waits (its
   messages are dropped, counted) until it reads again, so an unread local
   channel cannot slow forwarding for the network by a timeout per message.
8. Validation. ``Pubsub.validate_msg`` goes through a ``ValidationCache`` whose
   LRU bookkeeping is O(n) list surgery per message; the seen-cache already
   guarantees one validation per message id, so our ``push_msg`` runs the
   validators directly. Validators are Boxless callables ``(topic, data,
   from_peer) -> bool`` (sync or async), several per topic, plus catch-all ones.
9. Sending. ``handle_sending_messages`` wrote one RPC per stream write (one
   Noise frame + muxer frame + syscall each); ours coalesces what is queued into
   one write. ``senderRecord`` (a py-libp2p-only field, already sent in the
   hello RPC) is stripped from routed RPCs: it cost a signature verification per
   RPC at the receiver and bytes on the wire that other clients ignore.
10. ``recent_message_deliveries`` grows by one float per message and is only
    trimmed by adaptive gossip; we clear it each heartbeat when that is off.
11. Routing. ``GossipSub.publish`` did per-message work that relay never needs
    (see ``RelayGossipSub.publish``): rebuilding the signed peer record, peer
    sets for floodsub and IDONTWANT (relay peers are v1.1), three score
    computations per target, and queueing for every connected peer not yet
    subscribed. Ours pushes to mesh/fanout/direct peers after one score check
    each; late subscribers get the message-cache replay instead. The id is
    hashed once per message (upstream: three times), and a routed message is
    queued without ``send_rpc``'s copy-split-resize when nothing is to be
    piggybacked on it.
12. Reading. ``read_varint_prefixed_bytes_limited`` read each varint byte and
    the body separately from the muxer; ``continuously_read_stream`` reads up
    to 64 KiB at a time and splits frames with ``FrameDecoder``.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import trio
from google.protobuf.message import DecodeError
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.io.exceptions import IOException, MessageTooLarge
from libp2p.network.connection.exceptions import RawConnError
from libp2p.network.stream.exceptions import StreamClosed, StreamEOF, StreamError, StreamReset
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.mcache import CacheEntry, MessageCache
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.rpc_queue import RpcQueue
from libp2p.pubsub.score import ScoreParams, TopicScoreParams
from libp2p.pubsub.utils import maybe_consume_signed_record
from libp2p.utils.varint import encode_uvarint

logger = logging.getLogger(__name__)

WAKU_RELAY_PROTOCOL = TProtocol("/vac/waku/relay/2.0.0")

# A validator sees (pubsub_topic, data, forwarding peer) and says accept/reject.
Validator = Callable[[str, bytes, ID], bool | Awaitable[bool]]


def waku_message_id(msg: rpc_pb2.Message) -> bytes:
    """Content-addressed message id, as nwaku and js-waku compute it."""
    return hashlib.sha256(msg.data).digest()


def relay_score_params() -> ScoreParams:
    """Scoring where invalid messages (P4) actually cost something.

    py-libp2p's defaults weigh every counter at 0 and every threshold at -inf,
    so a peer sending garbage is never penalised. Five invalid messages (decaying
    10% a heartbeat) stop us accepting from a peer; eight graylist it.
    """
    return ScoreParams(
        p4_invalid_messages=TopicScoreParams(weight=10.0, cap=1_000.0, decay=0.9),
        publish_threshold=-50.0,
        gossip_threshold=-50.0,
        graylist_threshold=-80.0,
    )


class RelayMessage(NamedTuple):
    """One message delivered to a local subscriber."""

    pubsub_topic: str
    data: bytes
    msg_id: bytes
    from_peer: ID


@dataclass
class RelayMetrics:
    """Counters for the last-resort paths; all should stay 0 in a healthy node."""

    rejected_signed: int = 0
    rejected_invalid: int = 0
    dropped_outbound: int = 0
    dropped_delivery: int = 0
    dropped_malformed_rpc: int = 0


class ContentAddressedMessageCache(MessageCache):
    """Fixes deviation 4: ``MessageCache.put`` keys on from+seqno regardless of
    the pubsub's id function."""

    def __init__(
        self, window_size: int, history_size: int, msg_id_fn: Callable[[rpc_pb2.Message], bytes]
    ) -> None:
        super().__init__(window_size, history_size)
        self._msg_id_fn = msg_id_fn

    def put(self, msg: rpc_pb2.Message) -> None:
        self.put_with_id(msg, self._msg_id_fn(msg))

    def put_with_id(self, msg: rpc_pb2.Message, mid: bytes) -> None:
        """``put`` for a caller that already computed the id (saves a hash)."""
        if mid in self.msgs:
            return
        self.msgs[mid] = msg
        self.history[0].append(CacheEntry(mid, msg.topicIDs))


class RelayGossipSub(GossipSub):
    """GossipSub router speaking ``/vac/waku/relay/2.0.0`` (deviations 1, 4-7, 9-11)."""

    mcache: ContentAddressedMessageCache

    def __init__(
        self,
        *,
        degree: int = 6,
        degree_low: int = 4,
        degree_high: int = 12,
        heartbeat_interval: float = 1.0,
        gossip_window: int = 3,
        gossip_history: int = 5,
        score_params: ScoreParams | None = None,
        spam_protection: bool = False,
        eclipse_protection: bool = False,
        outbound_queue_size: int = 1024,
    ) -> None:
        super().__init__(
            protocols=[WAKU_RELAY_PROTOCOL],
            degree=degree,
            degree_low=degree_low,
            degree_high=degree_high,
            gossip_window=gossip_window,
            gossip_history=gossip_history,
            heartbeat_interval=heartbeat_interval,  # type: ignore[arg-type]  # float works
            score_params=score_params or relay_score_params(),
            adaptive_gossip_enabled=False,
            spam_protection_enabled=spam_protection,
            eclipse_protection_enabled=eclipse_protection,
        )
        self.mcache = ContentAddressedMessageCache(gossip_window, gossip_history, waku_message_id)
        self.outbound_queue_size = outbound_queue_size
        self.metrics = RelayMetrics()
        self.publish_sends = 0  # RPCs carrying messages accepted into a peer queue

    def add_peer(self, peer_id: ID, protocol_id: TProtocol | None) -> None:
        # Deviation 1: the router only knows meshsub ids; relay is meshsub v1.1.
        if protocol_id == WAKU_RELAY_PROTOCOL:
            protocol_id = PROTOCOL_ID_V11
        super().add_peer(peer_id, protocol_id)

    def _check_equivocation(self, msg: rpc_pb2.Message) -> bool:
        # Deviation 5: keyed on from+seqno, which StrictNoSign leaves empty.
        return True

    def _periodic_security_cleanup(self) -> None:
        # Deviation 10: without adaptive gossip nothing trims this per-message list.
        super()._periodic_security_cleanup()
        if not self.adaptive_gossip_enabled:
            self.recent_message_deliveries.clear()

    async def publish(self, msg_forwarder: ID, pubsub_msg: rpc_pb2.Message) -> None:
        # Deviation 11: replaces GossipSub.publish, which per message fetched and
        # re-marshalled our signed peer record (host.get_addrs() rebuilds every
        # listen multiaddr from its socket), computed floodsub/IDONTWANT peer sets
        # for protocols relay peers never speak, scored each target three times,
        # and walked every connected peer to queue the message for those not (yet)
        # subscribed. Those pending queues are redundant here: Pubsub replays the
        # message cache to a peer when its subscription arrives.
        await self.route(msg_forwarder, pubsub_msg, waku_message_id(pubsub_msg))

    async def route(self, msg_forwarder: ID, pubsub_msg: rpc_pb2.Message, msg_id: bytes) -> None:
        """``publish`` for a caller that already computed the message id."""
        if not self._check_spam_protection(msg_forwarder, pubsub_msg):
            return
        self.mcache.put_with_id(pubsub_msg, msg_id)
        rpc = rpc_pb2.RPC(publish=[pubsub_msg])
        for peer_id in self._push_targets(pubsub_msg.topicIDs, msg_forwarder, msg_id):
            self.send_rpc(peer_id, rpc)
        for topic in pubsub_msg.topicIDs:
            self.time_since_last_publish[topic] = int(time.time())
            if self.topic_observation.get_observers(topic):  # gossipsub v1.3 observers
                await self._notify_observers([topic], msg_id)
            if self.adaptive_gossip_enabled:
                self.recent_message_deliveries[topic].append(time.time())

    def _push_targets(self, topics: Sequence[str], forwarder: ID, msg_id: bytes) -> set[ID]:
        """Peers a new message is pushed to: mesh (or fanout) and direct, minus the
        forwarder, peers without a stream, peers scored below the publish/gossip/
        graylist thresholds, and peers that sent IDONTWANT for it."""
        assert self.pubsub is not None
        candidates: set[ID] = set()
        for topic in topics:
            mesh = self.mesh.get(topic)
            if mesh is None:  # not joined: upstream's fanout selection
                candidates.update(self._get_peers_to_send([topic], forwarder, forwarder))
            else:
                candidates.update(mesh)
                candidates.update(self.direct_peers)
        candidates.discard(forwarder)
        scorer, streams, dont_send = self.scorer, self.pubsub.peers, self.dont_send_message_ids
        floor = -math.inf
        if scorer is not None:
            params = scorer.params
            floor = max(params.publish_threshold, params.gossip_threshold)
        targets = set()
        for peer_id in candidates:
            if peer_id not in streams:
                continue
            if scorer is not None and peer_id not in self.direct_peers:
                score = scorer.score(peer_id, list(topics))
                if score < floor or score < scorer.params.graylist_threshold:
                    continue
            unwanted = dont_send.get(peer_id)
            if unwanted and msg_id in unwanted:
                continue
            targets.add(peer_id)
        return targets

    def send_rpc(self, peer_id: ID, rpc: rpc_pb2.RPC, priority: bool = False) -> None:
        # Deviations 7 and 9: RpcQueue() is built with a hard-coded capacity of 32
        # and rejects when full; widen it (the publisher's high-water wait keeps it
        # from filling), count what is still dropped, strip per-RPC senderRecord.
        queue = self.pubsub.peer_queues.get(peer_id) if self.pubsub is not None else None
        if queue is None:
            super().send_rpc(peer_id, rpc, priority)
            return
        widen_queue(queue, self.outbound_queue_size)
        if rpc.publish:
            rpc.ClearField("senderRecord")
            if len(queue) >= self.outbound_queue_size:
                self.metrics.dropped_outbound += len(rpc.publish)
                logger.warning("outbound queue to %s full: dropped %d", peer_id, len(rpc.publish))
                return
            if peer_id not in self._pending_control and not rpc.HasField("control"):
                # GossipSub.send_rpc copies the RPC, splits it and sizes every
                # part; a routed message with no control to piggyback is queued
                # as is (shared by all peers, never mutated after this point).
                # An oversized one (or a closing queue) is a counted drop, as
                # upstream drops it too.
                if rpc.ByteSize() > queue.max_message_size or not queue.push(rpc):
                    self.metrics.dropped_outbound += len(rpc.publish)
                    return
                self.publish_sends += 1
                return
            self.publish_sends += 1
        super().send_rpc(peer_id, rpc, priority)

    def topic_peers(self, topic: str) -> set[ID]:
        """Peers a message on ``topic`` is pushed to (mesh or fanout, and direct)."""
        peers = self.mesh.get(topic)
        if peers is None:
            peers = self.fanout.get(topic, set())
        return peers | set(self.direct_peers)


def widen_queue(queue: RpcQueue, size: int) -> None:
    """Raise an ``RpcQueue``'s capacity (py-libp2p offers no parameter for it)."""
    if queue._queue.max_size < size:
        queue._queue.max_size = size


READ_CHUNK = 64 * 1024


class FrameDecoder:
    """Splits a byte stream into unsigned-varint length-prefixed frames; no I/O.

    ``feed`` bytes as they arrive, then call ``next_frame`` until it returns
    None. A declared length above ``max_size`` (or a varint longer than 10
    bytes) raises ``MessageTooLarge``: the peer sent something we won't buffer.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buf = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> None:
        if self._pos:  # compact once per feed, not once per frame
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_frame(self) -> bytes | None:
        buf, pos = self._buf, self._pos
        length = shift = 0
        i = pos
        while True:
            if i >= len(buf):
                return None  # varint incomplete
            byte = buf[i]
            length |= (byte & 0x7F) << shift
            i += 1
            if not byte & 0x80:
                break
            shift += 7
            if shift >= 70:
                raise MessageTooLarge("varint length prefix longer than 10 bytes")
        if length > self.max_size:
            raise MessageTooLarge(f"frame of {length} bytes exceeds {self.max_size}")
        end = i + length
        if end > len(buf):
            return None
        self._pos = end
        return bytes(buf[i:end])


class RelayPubsub(Pubsub):
    """Pubsub with StrictNoSign, sha256 ids and back-pressure (deviations 2, 3, 7, 8, 9)."""

    router: RelayGossipSub

    def __init__(
        self,
        host: IHost,
        router: RelayGossipSub,
        *,
        seen_ttl: int = 120,
        backpressure_timeout: float = 5.0,
        high_water: int = 256,
        max_write_batch: int = 256 * 1024,
    ) -> None:
        super().__init__(
            host,
            router,
            seen_ttl=seen_ttl,
            strict_signing=False,
            msg_id_constructor=waku_message_id,
        )
        self.metrics = router.metrics
        self.backpressure_timeout = backpressure_timeout
        self.high_water = min(high_water, router.outbound_queue_size)
        self.max_write_batch = max_write_batch
        self.validators: dict[str | None, list[Validator]] = {}
        self.sinks: dict[str, list[trio.MemorySendChannel[RelayMessage]]] = {}
        self._drained = trio.Event()
        # Subscribers that timed out: later messages skip the wait until one fits.
        self._stalled: set[trio.MemorySendChannel[RelayMessage]] = set()

    # -- publishing ---------------------------------------------------------

    async def publish_data(self, topic: str, data: bytes) -> int:
        """Publish ``data`` unsigned (deviation 2); return how many peers it was queued to.

        Awaits (back-pressure) while the topic's peers' outbound queues are
        above the high-water mark. Cancellation before routing publishes nothing.
        """
        msg = rpc_pb2.Message(data=data, topicIDs=[topic])
        before = self.router.publish_sends
        # router.publish has no checkpoint while it enqueues (send_rpc is sync), so
        # the counter delta is exactly this message's fan-out.
        await self.push_msg(self.my_id, msg)
        return self.router.publish_sends - before

    async def publish(self, topic_id: str | list[str], data: bytes) -> None:
        # Deviation 2: the base class would add from/seqno (and a signature).
        for topic in [topic_id] if isinstance(topic_id, str) else topic_id:
            await self.publish_data(topic, data)

    # -- the message pipeline -------------------------------------------------

    async def push_msg(self, msg_forwarder: ID, msg: rpc_pb2.Message) -> None:
        # Replaces Pubsub.push_msg (deviations 3, 7, 8): same order of checks,
        # minus the from-based ones (no from), plus StrictNoSign and awaits.
        if self.is_peer_blacklisted(msg_forwarder):
            return
        local = msg_forwarder == self.my_id
        if not local and (msg.from_id or msg.seqno or msg.signature or msg.key):
            self.metrics.rejected_signed += 1
            self._penalise(msg_forwarder, msg)
            return
        msg_id = waku_message_id(msg)
        if self.seen_messages.has(msg_id):
            return
        topics = list(msg.topicIDs)
        scorer = self.router.scorer
        if scorer is not None and not local and not scorer.allow_publish(msg_forwarder, topics):
            return
        if not await self._validate(msg_forwarder, msg):
            self.metrics.rejected_invalid += 1
            self._penalise(msg_forwarder, msg)
            return
        if self.seen_messages.has(msg_id):  # validators may await; a twin may have won
            return
        self.seen_messages.add(msg_id)
        if scorer is not None and not local:
            for topic in topics:
                scorer.on_first_delivery(msg_forwarder, topic)
        for topic in topics:
            await self._deliver(RelayMessage(topic, msg.data, msg_id, msg_forwarder))
        await self._await_outbound_room(topics)
        await self.router.route(msg_forwarder, msg, msg_id)

    def _penalise(self, peer: ID, msg: rpc_pb2.Message) -> None:
        """Count an invalid message against ``peer`` (P4 in the score)."""
        logger.debug("rejected message from %s on %s", peer, list(msg.topicIDs))
        if self.router.scorer is not None:
            for topic in msg.topicIDs:
                self.router.scorer.on_invalid_message(peer, topic)

    async def _validate(self, forwarder: ID, msg: rpc_pb2.Message) -> bool:
        for topic in msg.topicIDs:
            for validator in (*self.validators.get(None, ()), *self.validators.get(topic, ())):
                verdict = validator(topic, msg.data, forwarder)
                if inspect.isawaitable(verdict):
                    pending, verdict = verdict, False  # a timeout rejects
                    with trio.move_on_after(self.validation_timeout):
                        verdict = await pending
                if not verdict:
                    return False
        return True

    async def _deliver(self, item: RelayMessage) -> None:
        """Hand a message to local subscribers, waiting (bounded) for room."""
        for sink in list(self.sinks.get(item.pubsub_topic, ())):
            try:
                sink.send_nowait(item)
                self._stalled.discard(sink)
                continue
            except trio.WouldBlock:
                pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._drop_sink(item.pubsub_topic, sink)
                continue
            if sink in self._stalled:  # already timed out once: don't stall the pipeline again
                self.metrics.dropped_delivery += 1
                continue
            with trio.move_on_after(self.backpressure_timeout):
                try:
                    await sink.send(item)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self._drop_sink(item.pubsub_topic, sink)
                continue
            self._stalled.add(sink)
            self.metrics.dropped_delivery += 1
            logger.warning("subscriber on %s stalled: dropping until it reads", item.pubsub_topic)

    def _drop_sink(self, topic: str, sink: trio.MemorySendChannel[RelayMessage]) -> None:
        self._stalled.discard(sink)
        sinks = self.sinks.get(topic, [])
        if sink in sinks:
            sinks.remove(sink)

    async def _await_outbound_room(self, topics: Sequence[str]) -> None:
        """Wait until every target peer's queue is under the high-water mark.

        Bounded by ``backpressure_timeout``: after it we route anyway and the
        router counts whatever a full queue refuses.
        """
        if self._has_outbound_room(topics):  # the usual case: no cancel scope to set up
            return
        with trio.move_on_after(self.backpressure_timeout):
            while not self._has_outbound_room(topics):
                await self._drained.wait()

    def _has_outbound_room(self, topics: Sequence[str]) -> bool:
        queues, high_water = self.peer_queues, self.high_water
        for topic in topics:
            for peer in self.router.topic_peers(topic):
                queue = queues.get(peer)
                if queue is not None and len(queue) >= high_water:
                    return False
        return True

    # -- stream I/O ---------------------------------------------------------

    async def continuously_read_stream(self, stream: INetStream) -> None:
        # Replaces Pubsub.continuously_read_stream (deviation 7): messages are
        # processed inline, in order, instead of one spawned task each, so a
        # busy pipeline stops reading and flow control reaches the sender.
        # Deviation 12: reads whole chunks and splits frames itself; py-libp2p's
        # read_varint_prefixed_bytes_limited makes one muxer read per varint byte
        # plus one for the body (3 for a 1 KiB RPC), each with its own locking
        # and, on yamux, its own WINDOW_UPDATE frame.
        peer_id = stream.muxed_conn.peer_id
        frames = FrameDecoder(self.max_inbound_rpc_size)
        try:
            while self.manager.is_running:
                chunk = await stream.read(READ_CHUNK)
                if not chunk:
                    raise StreamEOF("pubsub stream closed")
                frames.feed(chunk)
                while (frame := frames.next_frame()) is not None:
                    await self._handle_rpc_frame(peer_id, frame)
        except (MessageTooLarge, DecodeError) as error:
            self.metrics.dropped_malformed_rpc += 1
            logger.warning("malformed pubsub RPC from %s: %s", peer_id, error)
            await stream.reset()
            self._handle_dead_peer(peer_id)
        except (StreamEOF, StreamError, IOException, RawConnError) as error:
            logger.debug("pubsub stream from %s ended: %s", peer_id, error)

    async def _handle_rpc_frame(self, peer_id: ID, frame: bytes) -> None:
        rpc = rpc_pb2.RPC()
        rpc.ParseFromString(frame)
        if not maybe_consume_signed_record(rpc, self.host, peer_id):
            return
        for msg in rpc.publish:
            if self._is_subscribed_to_msg(msg):
                await self.push_msg(peer_id, msg)
        if len(rpc.subscriptions) <= self.max_subscriptions_per_rpc:
            for sub in rpc.subscriptions:
                self.handle_subscription(peer_id, sub)
        if rpc.HasField("control"):
            await self.router.handle_rpc(rpc, peer_id)

    async def handle_sending_messages(
        self, peer_id: ID, stream: INetStream, queue: RpcQueue
    ) -> None:
        # Replaces Pubsub.handle_sending_messages (deviations 7, 9): coalesce all
        # queued RPCs into one write, and signal publishers waiting for room.
        widen_queue(queue, self.router.outbound_queue_size)
        try:
            while (rpc := await queue.pop()) is not None:
                batch = bytearray()
                while rpc is not None:
                    body = rpc.SerializeToString()
                    batch += encode_uvarint(len(body))
                    batch += body
                    more = len(queue) > 0 and len(batch) < self.max_write_batch
                    rpc = await queue.pop() if more else None  # non-empty: no wait
                self._drained.set()
                self._drained = trio.Event()
                await stream.write(bytes(batch))
        except (StreamClosed, StreamReset, StreamError, IOException) as error:
            logger.debug("pubsub sending loop for %s ended: %s", peer_id, error)
            self._handle_dead_peer(peer_id)
