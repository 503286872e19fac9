"""The filter service adapter and the filter client (12/WAKU2-FILTER v2).

Theory of operation
-------------------
:class:`FilterService` serves ``/vac/waku/filter-subscribe/2.0.0-beta1``: one
request frame in, the sans-IO state machine
(:class:`~boxless.waku.filter.FilterSubscriptions`) decides, one response out.
The node calls :meth:`FilterService.on_message` for every message relay
accepts. It never waits on a client: for each matching peer it puts the encoded
push into that peer's bounded queue (``send_nowait``; a full queue drops the
push and counts it). One sender task per subscribed peer drains its queue,
opening a ``/vac/waku/filter-push/2.0.0-beta1`` stream per push (write one
frame, close) with a deadline. A slow or vanished client therefore only ever
delays its own queue; ``max_push_failures`` failures in a row drop its
subscription. Sender tasks live in the nursery of :meth:`FilterService.run`,
which also expires stale subscriptions on the state machine's timer.

:class:`FilterClient` subscribes at one service peer, serves the push protocol
on its host, checks each push came from that peer and matches what it asked
for, and hands ``(pubsub_topic, message)`` to a bounded channel (full: the push
is dropped and counted, so a slow reader never holds the service's stream).
Its :meth:`FilterClient.run` pings every ``ping_interval`` (js-waku: 60 s) and
re-subscribes everything when the service answers 404 (it restarted and lost
our subscription).
"""

from __future__ import annotations

import logging
import secrets
import weakref
from collections.abc import Awaitable, Callable, Hashable, Sequence

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.network.stream.exceptions import StreamEOF, StreamError
from libp2p.peer.id import ID
from prometheus_client import Counter, Gauge

from boxless._trio_compat import TaskStatus
from boxless.errors import BoxlessError, DecodeError, NetworkError, PeerError, UsageError
from boxless.node.libp2p_shims import DIAL_ERRORS
from boxless.node.metrics import NodeMetrics
from boxless.node.streams import (
    READ_CHUNK,
    close_quietly,
    read_request,
    request,
    reset_quietly,
    write_frame,
)
from boxless.waku import filter as fc
from boxless.waku.lightpush import TokenBucketLimiter
from boxless.waku.message import MAX_MESSAGE_SIZE, WakuMessage
from boxless.wire.framing import FrameDecoder

__all__ = ["FilterClient", "FilterRequestError", "FilterService"]

logger = logging.getLogger(__name__)

MAX_REQUEST_SIZE = 64 * 1024
"""100 content topics of a few hundred bytes each fit easily."""
MAX_RESPONSE_SIZE = 4096
MAX_PUSH_SIZE = MAX_MESSAGE_SIZE + 4096
PUSH_IDLE_TIMEOUT = 300.0
"""Longest a push stream may sit idle before the client resets it."""


class FilterRequestError(PeerError):
    """The filter service answered a request with an error status."""

    def __init__(self, status_code: int, status_desc: str) -> None:
        super().__init__(f"filter service answered {status_code}: {status_desc}")
        self.status_code = status_code
        self.status_desc = status_desc


class _Metrics:
    """Filter counters, on the node's registry (one set per NodeMetrics)."""

    def __init__(self, metrics: NodeMetrics) -> None:
        r = metrics.registry
        self.requests = Counter(
            "boxless_filter_requests", "Filter requests answered", ["type", "status"], registry=r
        )
        self.pushes = Counter(
            "boxless_filter_pushes",
            "Filter pushes by outcome (sent, failed, dropped = queue full)",
            ["outcome"],
            registry=r,
        )
        self.subscribers = Gauge(
            "boxless_filter_subscribers", "Subscribed filter peers", registry=r
        )
        self.dropped_peers = Counter(
            "boxless_filter_peers_dropped", "Filter peers dropped after failed pushes", registry=r
        )


_METRICS: weakref.WeakKeyDictionary[NodeMetrics, _Metrics] = weakref.WeakKeyDictionary()


def _metrics_for(metrics: NodeMetrics) -> _Metrics:
    if metrics not in _METRICS:
        _METRICS[metrics] = _Metrics(metrics)
    return _METRICS[metrics]


class FilterService:
    """Serves filter subscriptions and pushes matching messages to subscribers.

    :param queue_size: pushes buffered per subscriber before new ones are dropped.
    :param push_timeout: longest one push (dial, stream, write) may take.
    :param limiter: per-peer request rate limit (default 10/s, bursts of 20; 429).
    """

    def __init__(
        self,
        host: IHost,
        metrics: NodeMetrics,
        *,
        subscriptions: fc.FilterSubscriptions | None = None,
        queue_size: int = 64,
        push_timeout: float = 5.0,
        limiter: TokenBucketLimiter | None = None,
        on_violation: Callable[[ID, str], Awaitable[None]] | None = None,
    ) -> None:
        if queue_size < 1:
            raise UsageError("queue_size must be at least 1")
        self.host = host
        self.metrics = metrics
        self.subscriptions = (
            subscriptions if subscriptions is not None else fc.FilterSubscriptions()
        )
        self.queue_size = queue_size
        self.push_timeout = push_timeout
        self.limiter = limiter if limiter is not None else TokenBucketLimiter()
        self._counters = _metrics_for(metrics)
        self.on_violation = on_violation
        self._senders: dict[ID, trio.MemorySendChannel[bytes]] = {}
        self._nursery: trio.Nursery | None = None
        self._wakeup = trio.Event()

    def register(self) -> None:
        self.host.set_stream_handler(TProtocol(fc.FILTER_SUBSCRIBE_PROTOCOL), self.handle)

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the sender tasks and expire stale subscriptions, until cancelled.

        Registers the protocol handler; started means requests are served.
        Cancellation stops every sender (queued pushes are dropped).
        """
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.register()
            task_status.started()
            try:
                await self._expiry_loop()
            finally:
                self._nursery = None
                for send in self._senders.values():
                    send.close()
                self._senders.clear()

    async def _expiry_loop(self) -> None:
        while True:
            deadline = self.subscriptions.get_timer()
            with trio.move_on_at(deadline if deadline is not None else float("inf")):
                await self._wakeup.wait()
            self._wakeup = trio.Event()
            for peer in self.subscriptions.expire(trio.current_time()):
                logger.info("filter subscription of %s expired", peer)
                self._forget(peer)
            self._counters.subscribers.set(len(self.subscriptions))

    async def handle(self, stream: INetStream) -> None:
        """Serve one subscribe request on ``stream``; never raises for a peer's mistake."""
        peer = stream.muxed_conn.peer_id
        data = await read_request(stream, MAX_REQUEST_SIZE, "filter", self._async_violation)
        if data is None:
            return
        reply = self.answer(peer, data)
        try:
            await write_frame(stream, reply)
        except NetworkError:
            # js-waku reads no answer to UNSUBSCRIBE and may be gone already
            logger.debug("filter requester %s left before the answer", peer)
        await close_quietly(stream)

    def answer(self, peer: ID, data: bytes) -> bytes:
        """Apply request ``data`` from ``peer``; return the encoded response."""
        now = trio.current_time()
        if not self.limiter.allow(peer, now):
            self._counters.requests.labels("unknown", "429").inc()
            return fc.build_response(
                "N/A",
                fc.FilterStatus.TOO_MANY_REQUESTS,
                "TOO_MANY_REQUESTS: filter request rejected due rate limit exceeded",
            )
        parsed = fc.parse_request(data)
        if isinstance(parsed, fc.FilterRejection):
            self._violation(peer)
            self._counters.requests.labels("invalid", str(int(parsed.status))).inc()
            return parsed.encode()
        outcome = self.subscriptions.handle(peer, parsed, now)
        self._counters.requests.labels(parsed.type.name, str(int(outcome.status))).inc()
        if not self.subscriptions.is_subscribed(peer):
            self._forget(peer)
        self._counters.subscribers.set(len(self.subscriptions))
        self._wakeup.set()  # the earliest expiry may have moved
        return fc.build_response(parsed.request_id, outcome.status, outcome.desc)

    async def _async_violation(self, peer: ID, protocol: str) -> None:
        self._violation(peer)

    def _violation(self, peer: ID) -> None:
        """Count malformed input; the node's hook may also penalise the peer."""
        if self.on_violation is not None and self._nursery is not None:
            self._nursery.start_soon(self.on_violation, peer, "filter")
        else:
            self.metrics.protocol_violations.labels("filter").inc()

    async def on_message(self, pubsub_topic: str, msg: WakuMessage) -> None:
        """Queue ``msg`` for every subscriber whose criteria match. Never blocks.

        Messages arriving before :meth:`run` started (or after it ended) are not pushed.
        """
        peers = self.subscriptions.matching_peers(pubsub_topic, msg.content_topic)
        if not peers or self._nursery is None:
            return
        frame = fc.encode_push(pubsub_topic, msg)
        for peer in peers:
            assert isinstance(peer, ID)
            try:
                self._sender(peer).send_nowait(frame)
            except trio.WouldBlock:
                self._counters.pushes.labels("dropped").inc()
                logger.debug("filter queue of %s is full; dropping a push", peer)

    def _sender(self, peer: ID) -> trio.MemorySendChannel[bytes]:
        send = self._senders.get(peer)
        if send is None:
            assert self._nursery is not None
            send, receive = trio.open_memory_channel[bytes](self.queue_size)
            self._senders[peer] = send
            self._nursery.start_soon(self._push_loop, peer, send, receive)
        return send

    def _forget(self, peer: Hashable) -> None:
        """Stop pushing to ``peer`` (it left, expired or failed)."""
        assert isinstance(peer, ID)
        send = self._senders.pop(peer, None)
        if send is not None:
            send.close()

    async def _push_loop(
        self,
        peer: ID,
        send: trio.MemorySendChannel[bytes],
        receive: trio.MemoryReceiveChannel[bytes],
    ) -> None:
        """Send ``peer``'s queued pushes in order until its queue is closed or it
        is no longer subscribed."""
        async with receive:
            async for frame in receive:
                if not self.subscriptions.is_subscribed(peer):
                    break
                if await self._push(peer, frame):
                    self._counters.pushes.labels("sent").inc()
                    self.subscriptions.push_succeeded(peer)
                    continue
                self._counters.pushes.labels("failed").inc()
                if self.subscriptions.mark_failed(peer):
                    logger.info("dropping filter subscriber %s after failed pushes", peer)
                    self._counters.dropped_peers.inc()
                    self._counters.subscribers.set(len(self.subscriptions))
                    break
        if self._senders.get(peer) is send:  # a later subscription gets a fresh queue
            del self._senders[peer]
        send.close()

    async def _push(self, peer: ID, frame: bytes) -> bool:
        """One push on a fresh stream; False if it failed or took too long."""
        stream: INetStream | None = None
        with trio.move_on_after(self.push_timeout):
            try:
                stream = await self.host.new_stream(peer, [TProtocol(fc.FILTER_PUSH_PROTOCOL)])
                await write_frame(stream, frame)
                await close_quietly(stream)
                return True
            except NetworkError as exc:
                logger.debug("filter push to %s failed: %s", peer, exc)
            except DIAL_ERRORS as exc:
                logger.debug("filter push to %s failed: %s", peer, exc or type(exc).__name__)
        if stream is not None:
            await reset_quietly(stream)
        return False


class FilterClient:
    """A filter subscription at one service peer.

    Call :meth:`register` (or run :meth:`run`) before subscribing, and read
    :attr:`messages`. One client per host: the push protocol handler is per host.
    """

    def __init__(
        self,
        host: IHost,
        service_peer: ID,
        *,
        buffer: int = 256,
        ping_interval: float = 60.0,
        timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.service_peer = service_peer
        self.ping_interval = ping_interval
        self.timeout = timeout
        self.subscribed = fc.ClientSubscriptions()
        self.dropped = 0
        self.rejected = 0
        self.resubscribed = 0
        self._send, self.messages = trio.open_memory_channel[tuple[str, WakuMessage]](buffer)

    def register(self) -> None:
        """Serve the push protocol on our host."""
        self.host.set_stream_handler(TProtocol(fc.FILTER_PUSH_PROTOCOL), self._on_push)

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the subscription alive until cancelled: ping, re-subscribe on 404.

        A ping that fails on the network is logged and retried next interval.
        """
        self.register()
        task_status.started()
        while True:
            await trio.sleep(self.ping_interval)
            if not self.subscribed:
                continue
            try:
                if not await self.ping():
                    logger.info("filter service %s lost our subscription", self.service_peer)
                    await self.resubscribe()
            except BoxlessError as exc:
                logger.info("filter keep-alive with %s failed: %s", self.service_peer, exc)

    async def subscribe(self, pubsub_topic: str, content_topics: Sequence[str]) -> None:
        """Subscribe (or refresh). Raises :class:`FilterRequestError` on refusal,
        :class:`NetworkError` / :class:`DecodeError` on a network or peer failure."""
        await self._checked(fc.RequestType.SUBSCRIBE, pubsub_topic, tuple(content_topics))
        self.subscribed.add(pubsub_topic, content_topics)

    async def unsubscribe(self, pubsub_topic: str, content_topics: Sequence[str]) -> None:
        """Stop receiving these content topics. Our record is updated even if the
        service answers 404 (it had already forgotten them)."""
        self.subscribed.remove(pubsub_topic, content_topics)
        await self._checked(fc.RequestType.UNSUBSCRIBE, pubsub_topic, tuple(content_topics))

    async def unsubscribe_all(self) -> None:
        self.subscribed.clear()
        await self._checked(fc.RequestType.UNSUBSCRIBE_ALL)

    async def ping(self) -> bool:
        """True if the service holds a subscription for us, False on 404."""
        res = await self._request(fc.FilterRequest(_request_id(), fc.RequestType.SUBSCRIBER_PING))
        if res.status_code == fc.FilterStatus.NOT_FOUND:
            return False
        if not res.ok:
            raise FilterRequestError(res.status_code, res.status_desc)
        return True

    async def resubscribe(self) -> None:
        """Send SUBSCRIBE again for everything we hold (e.g. after the service restarted)."""
        for topic, contents in list(self.subscribed.requests()):
            await self._checked(fc.RequestType.SUBSCRIBE, topic, tuple(contents))
        self.resubscribed += 1

    async def _checked(
        self,
        kind: fc.RequestType,
        pubsub_topic: str | None = None,
        content_topics: tuple[str, ...] = (),
    ) -> fc.FilterResponse:
        res = await self._request(
            fc.FilterRequest(_request_id(), kind, pubsub_topic, content_topics)
        )
        if not res.ok:
            raise FilterRequestError(res.status_code, res.status_desc)
        return res

    async def _request(self, req: fc.FilterRequest) -> fc.FilterResponse:
        reply = await request(
            self.host,
            self.service_peer,
            [fc.FILTER_SUBSCRIBE_PROTOCOL],
            fc.build_request(req),
            max_response=MAX_RESPONSE_SIZE,
            timeout=self.timeout,
        )
        return fc.parse_response(reply)

    async def _on_push(self, stream: INetStream) -> None:
        """Take the pushes on one stream until it ends.

        We push one per stream; other services (js-waku reads this way too) may
        send several. A push from a peer we did not subscribe at, or bytes that
        do not decode, reset the stream.
        """
        peer = stream.muxed_conn.peer_id
        if peer != self.service_peer:
            logger.info("filter push from %s, which we did not subscribe at", peer)
            self.rejected += 1
            await reset_quietly(stream)
            return
        decoder = FrameDecoder(MAX_PUSH_SIZE)
        try:
            while True:
                with trio.fail_after(PUSH_IDLE_TIMEOUT):
                    chunk = await _read_chunk(stream)
                if not chunk:
                    decoder.eof()
                    break
                decoder.feed(chunk)
                while (frame := decoder.next_frame()) is not None:
                    self._deliver(*fc.decode_push(frame))
        except DecodeError as exc:
            logger.info("bad filter push from %s: %s", peer, exc)
            self.rejected += 1
            await reset_quietly(stream)
            return
        except (NetworkError, trio.TooSlowError):
            await reset_quietly(stream)
            return
        await close_quietly(stream)

    def _deliver(self, topic: str, msg: WakuMessage) -> None:
        if not self.subscribed.matches(topic, msg.content_topic):
            self.rejected += 1
            return
        try:
            self._send.send_nowait((topic, msg))
        except trio.WouldBlock:
            self.dropped += 1


async def _read_chunk(stream: INetStream) -> bytes:
    """Up to one chunk from ``stream``; ``b""`` at its end."""
    try:
        return await stream.read(READ_CHUNK)
    except StreamEOF:
        return b""
    except StreamError as exc:
        raise NetworkError(f"stream broke while reading: {exc}") from exc


def _request_id() -> str:
    return secrets.token_hex(8)
