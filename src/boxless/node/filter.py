"""The filter service adapter and the filter client (12/WAKU2-FILTER v2).

Theory of operation
-------------------
:class:`FilterService` serves ``/vac/waku/filter-subscribe/2.0.0-beta1``: one
request frame in, the sans-IO state machine
(:class:`~boxless.waku.filter.FilterSubscriptions`) decides, one response out.
The node calls :meth:`FilterService.on_message` for every message relay
accepts. It never waits on a client: for each matching peer it puts the encoded
push into that peer's bounded queue (``send_nowait``; a full queue drops the
push and counts it). One sender task per subscribed peer drains its queue onto
**one** ``/vac/waku/filter-push/2.0.0-beta1`` stream that it keeps open for as
long as the subscription lives, writing each push as one frame with a deadline.
A write that fails (the client reset the stream, or the connection changed) is
retried once on a fresh stream; ``max_push_failures`` failed pushes in a row drop
the subscription. A slow or vanished client therefore only ever delays its own
queue. Sender tasks live in the nursery of :meth:`FilterService.run`, which also
expires stale subscriptions on the state machine's timer.

Why one stream per subscriber and not one per push (issue 10): js-waku reads
every push stream to its end but never closes its own side, so each one stays
half-open on its connection, and its handler takes at most 100 inbound push
streams: the 101st push was reset, three of those dropped the subscription, and
a js light node heard nothing more (measured: exactly 100 of 114 arrived). Every
push also paid a stream negotiation. nwaku's service likewise writes pushes to
a stream it keeps.

Ordering: a push never overtakes the answer to the subscribe that asked for
it. The subscription is applied before the answer is written (so no message is
missed), but the peer's sender holds its first push until that answer has been
written and the request stream closed; a client that registers its handler
only when the answer arrives (js-waku does, for a pubsub topic's first
subscription) then finds it registered.

Fairness (issue 10, finding 6): the state machine is told which peers are still
connected, so a flood of fresh peer ids that subscribe and hang up only evicts
itself; see :mod:`boxless.waku.filter`. Evictions are counted by reason.

:class:`FilterClient` subscribes at one service peer, serves the push protocol
on its host, checks each push came from that peer and matches what it asked
for, and hands ``(pubsub_topic, message)`` to a bounded channel (full: the push
is dropped and counted, so a slow reader never holds the service's stream).
What it subscribes to counts as asked for from the moment the request is sent,
since the service may push before its answer arrives. It keeps at most
:data:`MAX_PUSH_STREAMS` push streams (the newest), with no idle timeout: the
service keeps one open for as long as we are subscribed. Its
:meth:`FilterClient.run` pings every ``ping_interval`` (js-waku: 60 s) and
re-subscribes everything when the service answers 404 (it restarted and lost
our subscription).
"""

from __future__ import annotations

import logging
import secrets
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field

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
from boxless.wire.framing import FrameDecoder, encode_frame

__all__ = ["FilterClient", "FilterRequestError", "FilterService"]

logger = logging.getLogger(__name__)

MAX_REQUEST_SIZE = 64 * 1024
"""100 content topics of a few hundred bytes each fit easily."""
MAX_RESPONSE_SIZE = 4096
MAX_PUSH_SIZE = MAX_MESSAGE_SIZE + 4096
MAX_PUSH_STREAMS = 4
"""Push streams a client keeps from its service; a newer one resets the oldest."""
MAX_BATCH_BYTES = 256 * 1024
"""Queued pushes written to a subscriber in one go, at most this many bytes (one is always sent)."""


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
        self.evicted = Counter(
            "boxless_filter_evicted",
            "Filter subscriptions evicted to make room for a newcomer, by reason "
            "(detached = peer no longer connected, unproven = never renewed nor reached)",
            ["reason"],
            registry=r,
        )
        self.criteria = Gauge(
            "boxless_filter_criteria", "Filter criteria held over all peers", registry=r
        )


_METRICS: weakref.WeakKeyDictionary[NodeMetrics, _Metrics] = weakref.WeakKeyDictionary()


def _metrics_for(metrics: NodeMetrics) -> _Metrics:
    if metrics not in _METRICS:
        _METRICS[metrics] = _Metrics(metrics)
    return _METRICS[metrics]


class FilterService:
    """Serves filter subscriptions and pushes matching messages to subscribers.

    :param subscriptions: the state machine; by default one told which peers
        are connected to ``host``.
    :param queue_size: pushes buffered per subscriber before new ones are dropped
        (a burst shares one encoded copy of each message between all its subscribers).
    :param push_timeout: longest one push (opening the stream if needed, writing) may take.
    :param limiter: per-peer request rate limit (default 10/s, bursts of 20; 429).
    """

    def __init__(
        self,
        host: IHost,
        metrics: NodeMetrics,
        *,
        subscriptions: fc.FilterSubscriptions | None = None,
        queue_size: int = 256,
        push_timeout: float = 5.0,
        limiter: TokenBucketLimiter | None = None,
        on_violation: Callable[[ID, str], Awaitable[None]] | None = None,
    ) -> None:
        if queue_size < 1:
            raise UsageError("queue_size must be at least 1")
        self.host = host
        self.metrics = metrics
        self.subscriptions = (
            subscriptions
            if subscriptions is not None
            else fc.FilterSubscriptions(is_connected=self._is_connected)
        )
        self.queue_size = queue_size
        self.push_timeout = push_timeout
        self.limiter = limiter if limiter is not None else TokenBucketLimiter()
        self._counters = _metrics_for(metrics)
        self.on_violation = on_violation
        self._senders: dict[ID, trio.MemorySendChannel[bytes]] = {}
        self._answering: dict[ID, _Answering] = {}
        self._nursery: trio.Nursery | None = None
        self._wakeup = trio.Event()

    def _is_connected(self, peer: Hashable) -> bool:
        assert isinstance(peer, ID)
        return bool(self.host.get_network().get_connections(peer))

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
            self._update_gauges()

    async def handle(self, stream: INetStream) -> None:
        """Serve one subscribe request on ``stream``; never raises for a peer's mistake.

        The peer's pushes wait until the answer is written and the stream closed.
        """
        peer = stream.muxed_conn.peer_id
        data = await read_request(stream, MAX_REQUEST_SIZE, "filter", self._async_violation)
        if data is None:
            return
        answering = self._answering.get(peer)
        if answering is None:
            answering = self._answering[peer] = _Answering()
        answering.count += 1
        try:
            reply = self.answer(peer, data)
            try:
                await write_frame(stream, reply)
            except NetworkError:
                # js-waku reads no answer to UNSUBSCRIBE and may be gone already
                logger.debug("filter requester %s left before the answer", peer)
            await close_quietly(stream)
        finally:
            answering.count -= 1
            if answering.count == 0:
                del self._answering[peer]
                answering.done.set()

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
        for eviction in outcome.evicted:
            logger.info(
                "filter subscription of %s evicted (%s) for %s",
                eviction.peer,
                eviction.reason.value,
                peer,
            )
            self._counters.evicted.labels(eviction.reason.value).inc()
            self._forget(eviction.peer)
        if not self.subscriptions.is_subscribed(peer):
            self._forget(peer)
        elif parsed.type is fc.RequestType.SUBSCRIBE and self._nursery is not None:
            self._sender(peer)  # opens the push stream once this answer is out
        self._update_gauges()
        self._wakeup.set()  # the earliest expiry may have moved
        return fc.build_response(parsed.request_id, outcome.status, outcome.desc)

    def _update_gauges(self) -> None:
        self._counters.subscribers.set(len(self.subscriptions))
        self._counters.criteria.set(self.subscriptions.criteria_total)

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
        """Stop pushing to ``peer`` (it left, expired, failed or was evicted)."""
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
        """Write ``peer``'s queued pushes in order on one stream until its queue
        is closed or it is no longer subscribed; then close that stream.

        The stream is opened as soon as the subscribe answer is out, so the
        first messages do not wait for a negotiation; whatever queued up
        meanwhile goes out in one write. Cancellation (the service stopping)
        resets the stream.
        """
        pusher = _Pusher(self.host, peer, self.push_timeout)
        try:
            async with receive:
                await self._answered(peer)
                with trio.move_on_after(self.push_timeout):
                    await pusher.open()
                while self.subscriptions.is_subscribed(peer):
                    try:
                        batch = await _next_batch(receive)
                    except trio.EndOfChannel:
                        break
                    await self._answered(peer)
                    if not self.subscriptions.is_subscribed(peer):
                        break
                    if not await self._deliver(peer, pusher, batch):
                        break
        finally:
            if self._senders.get(peer) is send:  # a later subscription gets a fresh queue
                del self._senders[peer]
            send.close()
            with trio.CancelScope(shield=True):
                await pusher.close()

    async def _answered(self, peer: ID) -> None:
        """Wait (bounded) until no request of ``peer``'s is being answered."""
        answering = self._answering.get(peer)
        if answering is not None:
            with trio.move_on_after(self.push_timeout):
                await answering.done.wait()

    async def _deliver(self, peer: ID, pusher: _Pusher, batch: list[bytes]) -> bool:
        """Push ``batch``; False once the failures dropped the subscription."""
        if await pusher.push(batch):
            self._counters.pushes.labels("sent").inc(len(batch))
            self.subscriptions.push_succeeded(peer)
            return True
        self._counters.pushes.labels("failed").inc(len(batch))
        if not self.subscriptions.mark_failed(peer, len(batch)):
            return True
        logger.info("dropping filter subscriber %s after failed pushes", peer)
        self._counters.dropped_peers.inc()
        self._update_gauges()
        return False


async def _next_batch(receive: trio.MemoryReceiveChannel[bytes]) -> list[bytes]:
    """The next queued push (waiting for it) and whatever else is queued, up to
    :data:`MAX_BATCH_BYTES`. Raises ``trio.EndOfChannel`` when the queue is closed."""
    batch = [await receive.receive()]
    size = len(batch[0])
    while size < MAX_BATCH_BYTES:
        try:
            frame = receive.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            break
        batch.append(frame)
        size += len(frame)
    return batch


@dataclass
class _Answering:
    """Requests of one peer being answered now; its pushes wait for ``done``."""

    count: int = 0
    done: trio.Event = field(default_factory=trio.Event)


class _Pusher:
    """The one push stream to one subscriber: opened on first use, reopened
    once per push after a failed write, closed when the subscription ends."""

    def __init__(self, host: IHost, peer: ID, timeout: float) -> None:
        self.host = host
        self.peer = peer
        self.timeout = timeout
        self.stream: INetStream | None = None

    async def push(self, frames: list[bytes]) -> bool:
        """Write ``frames`` (one push each); False if that failed on a fresh
        stream too, or took longer than the timeout."""
        data = b"".join(encode_frame(f) for f in frames)
        with trio.move_on_after(self.timeout):
            if self.stream is not None and await self._write(data):
                return True
            if await self.open() and await self._write(data):
                return True
        await self.reset()
        return False

    async def open(self) -> bool:
        """Open the push stream (a no-op if it is open); False if that failed.

        Only on a connection the subscriber holds: the service never dials one
        (light clients are not dialable, and a subscription must not turn the
        node into a dialer of whatever addresses a stranger left behind).
        """
        if self.stream is not None:
            return True
        if not self.host.get_network().get_connections(self.peer):
            logger.debug("filter subscriber %s is not connected; not pushing", self.peer)
            return False
        try:
            self.stream = await self.host.new_stream(
                self.peer, [TProtocol(fc.FILTER_PUSH_PROTOCOL)]
            )
        except DIAL_ERRORS as exc:
            logger.debug("filter push stream to %s failed: %s", self.peer, exc or type(exc).__name__)
            return False
        return True

    async def _write(self, data: bytes) -> bool:
        assert self.stream is not None
        try:
            await self.stream.write(data)
        except StreamError as exc:
            logger.debug("filter push to %s failed: %s", self.peer, exc)
            await self.reset()
            return False
        return True

    async def reset(self) -> None:
        if self.stream is not None:
            stream, self.stream = self.stream, None
            await reset_quietly(stream)

    async def close(self) -> None:
        """Close our side: the client's reader sees the end of its stream."""
        if self.stream is not None:
            stream, self.stream = self.stream, None
            with trio.move_on_after(self.timeout) as scope:
                await close_quietly(stream)
            if scope.cancelled_caught:
                await reset_quietly(stream)


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
        self._push_streams: deque[INetStream] = deque()
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
        :class:`NetworkError` / :class:`DecodeError` on a network or peer failure.

        The topics count as asked for while the request is under way (the
        service may push before its answer arrives); on failure or
        cancellation the ones that were new are taken back.
        """
        new = [c for c in content_topics if not self.subscribed.matches(pubsub_topic, c)]
        self.subscribed.add(pubsub_topic, new)
        try:
            await self._checked(fc.RequestType.SUBSCRIBE, pubsub_topic, tuple(content_topics))
        except BaseException:
            self.subscribed.remove(pubsub_topic, new)
            raise

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

        Services keep one push stream open while we are subscribed (ours do;
        others may open one per push), so there is no idle timeout; instead at
        most :data:`MAX_PUSH_STREAMS` are kept, and a newer one resets the
        oldest. A push from a peer we did not subscribe at, or bytes that do
        not decode, reset the stream.
        """
        peer = stream.muxed_conn.peer_id
        if peer != self.service_peer:
            logger.info("filter push from %s, which we did not subscribe at", peer)
            self.rejected += 1
            await reset_quietly(stream)
            return
        self._push_streams.append(stream)
        while len(self._push_streams) > MAX_PUSH_STREAMS:
            await reset_quietly(self._push_streams.popleft())
        try:
            await self._read_pushes(peer, stream)
        finally:
            if stream in self._push_streams:
                self._push_streams.remove(stream)

    async def _read_pushes(self, peer: ID, stream: INetStream) -> None:
        decoder = FrameDecoder(MAX_PUSH_SIZE)
        try:
            while True:
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
        except NetworkError:
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
