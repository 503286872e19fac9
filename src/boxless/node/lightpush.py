"""The light push service adapter (v3 and legacy v2) and the light push client.

:class:`LightPushService` serves ``/vac/waku/lightpush/3.0.0`` and
``/vac/waku/lightpush/2.0.0-beta1``: it reads one request frame, checks the
peer's rate limit, lets the sans-IO core (``boxless.waku.lightpush``) decode and
validate the request, publishes the message through the ``publish`` callable it
was given (relay), and writes one response. An unreadable frame (bad prefix,
oversized, cut off, too slow) resets the stream; everything else gets a status.

Relay's publish returns how many peers the message was queued to, and 0 both
when the topic has no peers and when the message is a duplicate it has already
seen. With ``topic_peer_count`` given we can tell the two apart, as nwaku does:
no peers -> 505 NO_PEERS_TO_RELAY (checked before publishing, so nothing is
published), a duplicate -> 420 INVALID_MESSAGE. Without it, 0 means 505.
"""

from __future__ import annotations

import logging
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Protocol

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from prometheus_client import Counter

from boxless.errors import BoxlessError, NetworkError
from boxless.node.limits import PeerRateLimiter
from boxless.node.metrics import NodeMetrics
from boxless.node.streams import (
    close_quietly,
    read_request,
    request,
    reset_quietly,
    write_frame,
)
from boxless.waku import lightpush as lp
from boxless.waku.message import MAX_MESSAGE_SIZE, WakuMessage
from boxless.waku.sharding import DEFAULT_NUM_SHARDS

__all__ = ["LightPushResult", "LightPushService", "lightpush"]

logger = logging.getLogger(__name__)

LightPushResult = lp.LightPushResult
Publish = Callable[[str, WakuMessage], Awaitable[int]]


class RateLimiter(Protocol):
    """What the service needs of a rate limiter (``PeerRateLimiter``, or
    ``waku.lightpush.TokenBucketLimiter``)."""

    def allow(self, peer: Hashable, now: float) -> bool: ...


FRAME_OVERHEAD = 4096
"""Room in a request frame for the request id, pubsub topic and protobuf tags."""
MAX_RESPONSE_SIZE = 64 * 1024


class _Metrics:
    """Light push counters, on the node's registry (one set per NodeMetrics)."""

    def __init__(self, metrics: NodeMetrics) -> None:
        self.requests = Counter(
            "boxless_lightpush_requests",
            "Light push requests answered",
            ["version", "status"],
            registry=metrics.registry,
        )


_METRICS: weakref.WeakKeyDictionary[NodeMetrics, _Metrics] = weakref.WeakKeyDictionary()


def _metrics_for(metrics: NodeMetrics) -> _Metrics:
    if metrics not in _METRICS:
        _METRICS[metrics] = _Metrics(metrics)
    return _METRICS[metrics]


class LightPushService:
    """Relays messages light clients push to us.

    :param publish: ``(pubsub_topic, message) -> peers reached``; relay's publish.
        It is given only messages that passed validation.
    :param pubsub_topics: the topics this node relays on; others get 421.
    :param topic_peer_count: ``pubsub_topic -> relay peers``; see the module doc.
    :param limiter: per-peer rate limit (default 30 requests/s, bursts of 300,
        in a bounded table that fresh peer ids cannot wash out; see
        :class:`~boxless.node.limits.PeerRateLimiter`).
    :param now_ns: wall clock in Unix ns, for the timestamp rule.
    """

    def __init__(
        self,
        host: IHost,
        publish: Publish,
        metrics: NodeMetrics,
        *,
        cluster_id: int,
        pubsub_topics: Iterable[str],
        num_shards: int = DEFAULT_NUM_SHARDS,
        topic_peer_count: Callable[[str], int] | None = None,
        limiter: RateLimiter | None = None,
        max_message_size: int = MAX_MESSAGE_SIZE,
        now_ns: Callable[[], int] = time.time_ns,
        on_violation: Callable[[ID, str], Awaitable[None]] | None = None,
        keeps_locally: bool = False,
    ) -> None:
        self.host = host
        self.publish = publish
        self.metrics = metrics
        self.policy = lp.ShardPolicy(cluster_id, frozenset(pubsub_topics), num_shards)
        self.topic_peer_count = topic_peer_count
        # 30/s sustained, bursts of 300: a broadcast to a 200-contact list, a
        # pasted chat or a catch-up's receipts go out at once; a flood does not.
        # The table of buckets is bounded and turns over at a paced rate once full,
        # so fresh peer ids can neither grow it nor reset a known peer's bucket.
        self.limiter = limiter if limiter is not None else PeerRateLimiter(rate=30, burst=300)
        self.max_message_size = max_message_size
        self.now_ns = now_ns
        self.on_violation = on_violation
        # A node that archives or filter-pushes what it relays is a destination in
        # itself: with no relay peer it still takes the message (status 200, peer
        # count 0) instead of nwaku's 505, so a network shrunk to one service node
        # keeps delivering (store catch-up, filter).
        self.keeps_locally = keeps_locally
        self._counters = _metrics_for(metrics)

    def register(self) -> None:
        """Serve both versions on the host."""
        self.host.set_stream_handler(TProtocol(lp.LIGHTPUSH_V3), self.handle_v3)
        self.host.set_stream_handler(TProtocol(lp.LIGHTPUSH_V2), self.handle_v2)

    async def handle_v3(self, stream: INetStream) -> None:
        await self._handle(3, stream)

    async def handle_v2(self, stream: INetStream) -> None:
        await self._handle(2, stream)

    async def _handle(self, version: int, stream: INetStream) -> None:
        """Serve one request on ``stream``; never raises for a peer's mistake.

        Cancellation (the node stopping) resets the stream.
        """
        peer = stream.muxed_conn.peer_id
        data = await read_request(
            stream, self.max_message_size + FRAME_OVERHEAD, "lightpush", self._hook_violation
        )
        if data is None:
            return
        try:
            reply, status = await self.answer(version, peer, data)
        except BaseException:
            await reset_quietly(stream)
            raise
        self._counters.requests.labels(str(version), str(int(status))).inc()
        try:
            await write_frame(stream, reply)
        except NetworkError:
            logger.debug("light push requester %s left before the answer", peer)
        await close_quietly(stream)

    async def answer(self, version: int, peer: ID, data: bytes) -> tuple[bytes, lp.LightPushStatus]:
        """The encoded response to request ``data`` from ``peer``, and its status."""
        if not self.limiter.allow(peer, trio.current_time()):
            status = lp.LightPushStatus.TOO_MANY_REQUESTS
            reason = "Request rejected due to too many requests"
            return lp.build_response(version, "N/A", status, reason), status
        parsed = lp.parse_request(
            version, data, self.policy, self.now_ns(), max_message_size=self.max_message_size
        )
        if isinstance(parsed, lp.PushRejection):
            if parsed.status == lp.LightPushStatus.BAD_REQUEST:
                await self._violation(peer)
            logger.debug("light push from %s refused: %s", peer, parsed.desc)
            return parsed.encode(), parsed.status
        status, desc, count = await self._relay(parsed)
        return lp.build_response(version, parsed.request_id, status, desc, count), status

    async def _hook_violation(self, peer: ID, protocol: str) -> None:
        await self._violation(peer)

    async def _violation(self, peer: ID) -> None:
        """Count malformed input; the node's hook may also penalise the peer."""
        if self.on_violation is not None:
            await self.on_violation(peer, "lightpush")
        else:
            self.metrics.protocol_violations.labels("lightpush").inc()

    async def _relay(self, req: lp.PushRequest) -> tuple[lp.LightPushStatus, str | None, int]:
        topic = req.pubsub_topic
        has_peers = self.topic_peer_count is None or self.topic_peer_count(topic) > 0
        if not has_peers and not self.keeps_locally:
            return lp.LightPushStatus.NO_PEERS_TO_RELAY, "No peers for topic, skipping publish", 0
        try:
            count = await self.publish(topic, req.message)
        except BoxlessError as exc:  # e.g. relay not running (yet, or any more)
            logger.error("light push: relay publish on %s failed: %s", topic, exc)
            return lp.LightPushStatus.INTERNAL_SERVER_ERROR, "relay publish failed", 0
        if count > 0 or not has_peers:  # not has_peers here: kept locally (store/filter)
            return lp.LightPushStatus.SUCCESS, None, count
        if self.topic_peer_count is not None:
            return lp.LightPushStatus.INVALID_MESSAGE, "Dropping already-seen message", 0
        return lp.LightPushStatus.NO_PEERS_TO_RELAY, "No peers for topic, skipping publish", 0


async def lightpush(
    host: IHost,
    peer_id: ID,
    message: WakuMessage,
    pubsub_topic: str | None = None,
    version: int = 3,
    *,
    timeout: float = 10.0,
) -> LightPushResult:
    """Ask ``peer_id`` to relay ``message``; return its answer (check ``.ok``).

    v3 may leave ``pubsub_topic`` to the service's autosharding; v2 needs it.
    Raises :class:`NetworkError` if the peer can't be reached or doesn't answer
    in time, :class:`DecodeError` if its answer is malformed. Cancellation
    resets the stream (the service may still relay the message).
    """
    payload = lp.build_request(version, secrets.token_hex(8), message, pubsub_topic)
    reply = await request(
        host,
        peer_id,
        [lp.protocol_id(version)],
        payload,
        max_response=MAX_RESPONSE_SIZE,
        timeout=timeout,
    )
    return lp.parse_response(version, reply)
