"""Light push (v3, v2) and filter over real py-libp2p hosts on loopback TCP.

The service side is composed here as WakuNode will compose it: a host, a
WakuRelay on two pubsub topics, a LightPushService publishing through relay and
a FilterService fed with every message relay delivers. A second relay host
subscribes to the first topic only, so the second one has no relay peers.
Every wait is bounded with ``trio.fail_after``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import multiaddr
import trio
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.stream.exceptions import StreamError
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo

from boxless._trio_compat import TaskStatus
from boxless.node.filter import FilterClient, FilterService
from boxless.node.host import build_host
from boxless.node.lightpush import LightPushService, lightpush
from boxless.node.metrics import NodeMetrics
from boxless.node.relay import RelayMessage, WakuRelay
from boxless.waku import filter as fc
from boxless.waku import lightpush as lp
from boxless.waku.lightpush import LightPushStatus as S
from boxless.waku.lightpush import TokenBucketLimiter
from boxless.waku.message import WakuMessage
from boxless.waku.sharding import pubsub_topic, pubsub_topic_for
from boxless.wire.framing import decode_uvarint, encode_frame, encode_uvarint

LOOPBACK = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
CLUSTER = 42
CT = "/boxless/1/light/proto"
CT2 = "/boxless/1/other/proto"
TOPIC = pubsub_topic_for(CT, CLUSTER)
LONELY = pubsub_topic(CLUSTER, 7 if TOPIC != pubsub_topic(CLUSTER, 7) else 6)
assert pubsub_topic_for(CT2, CLUSTER) == TOPIC  # same application and version: same shard


def msg(text: str, content_topic: str = CT, ts: int | None = None) -> WakuMessage:
    return WakuMessage(text.encode(), content_topic, timestamp=ts or time.time_ns())


async def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    """Bounded polling, for state that offers no event."""
    with trio.fail_after(timeout):
        while not cond():  # noqa: ASYNC110 - no event to wait on; deadline-bounded
            await trio.sleep(0.02)


async def connect(a: IHost, b: IHost) -> None:
    await a.connect(PeerInfo(b.get_id(), b.get_addrs()))


@dataclass
class Net:
    """The service node's parts, a relay neighbour, and helpers for clients."""

    host: IHost
    relay: WakuRelay
    neighbour: WakuRelay
    neighbour_sub: trio.MemoryReceiveChannel[RelayMessage]
    lightpush: LightPushService
    filter: FilterService
    metrics: NodeMetrics
    stack: AsyncExitStack
    nursery: trio.Nursery
    filter_scope: trio.CancelScope = field(default_factory=trio.CancelScope)

    async def client(self) -> IHost:
        host = build_host(create_new_key_pair(), LOOPBACK)
        await self.stack.enter_async_context(host.run(LOOPBACK))
        await connect(host, self.host)
        return host

    async def start_filter(self, service: FilterService) -> None:
        """(Re)start the filter service: a restart loses every subscription."""
        self.filter_scope.cancel()
        self.filter = service
        scope = self.filter_scope = trio.CancelScope()

        async def run(*, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                await service.run(task_status=task_status)

        await self.nursery.start(run)


@asynccontextmanager
async def network(limiter: TokenBucketLimiter | None = None) -> AsyncIterator[Net]:
    async with AsyncExitStack() as stack:
        nursery = await stack.enter_async_context(trio.open_nursery())
        stack.callback(nursery.cancel_scope.cancel)
        hosts = []
        for _ in range(2):
            h = build_host(create_new_key_pair(), LOOPBACK)
            await stack.enter_async_context(h.run(LOOPBACK))
            hosts.append(h)
        relay, neighbour = (WakuRelay(h, heartbeat_interval=0.2) for h in hosts)
        await nursery.start(relay.run)
        await nursery.start(neighbour.run)
        subs = {t: await relay.subscribe(t) for t in (TOPIC, LONELY)}
        neighbour_sub = await neighbour.subscribe(TOPIC)
        await connect(hosts[0], hosts[1])
        await wait_until(lambda: bool(relay.mesh_peers(TOPIC)))
        metrics = NodeMetrics()

        async def publish(topic: str, m: WakuMessage) -> int:
            return await relay.publish(topic, m.encode())

        service = LightPushService(
            hosts[0],
            publish,
            metrics,
            cluster_id=CLUSTER,
            pubsub_topics=[TOPIC, LONELY],
            topic_peer_count=lambda t: len(relay.topic_peers(t)),
            limiter=limiter if limiter is not None else TokenBucketLimiter(rate=10, burst=50),
        )
        service.register()
        net = Net(
            hosts[0],
            relay,
            neighbour,
            neighbour_sub,
            service,
            FilterService(hosts[0], metrics, push_timeout=2.0),
            metrics,
            stack,
            nursery,
        )
        await net.start_filter(net.filter)

        async def feed(channel: trio.MemoryReceiveChannel[RelayMessage]) -> None:
            async for item in channel:  # as WakuNode._accept will call it
                await net.filter.on_message(item.pubsub_topic, WakuMessage.decode(item.data))

        for channel in subs.values():
            nursery.start_soon(feed, channel)
        yield net


async def next_message(
    channel: trio.MemoryReceiveChannel[tuple[str, WakuMessage]]
    | trio.MemoryReceiveChannel[RelayMessage],
    timeout: float = 5.0,
) -> object:
    with trio.fail_after(timeout):
        return await channel.receive()


# --- light push ----------------------------------------------------------------------------


async def test_lightpush_v3_and_v2_reach_relay_with_the_right_status_codes() -> None:
    async with network() as net:
        client = await net.client()
        svc = net.host.get_id()
        first = msg("pushed over v3")
        res = await lightpush(client, svc, first, TOPIC)
        assert res.ok and res.status == 200 and res.relay_peer_count == 1
        got = await next_message(net.neighbour_sub)
        assert isinstance(got, RelayMessage) and WakuMessage.decode(got.data) == first
        # v2 (legacy) with the same service
        second = msg("pushed over v2")
        res2 = await lightpush(client, svc, second, TOPIC, version=2)
        assert res2.ok and res2.status == 200
        got = await next_message(net.neighbour_sub)
        assert isinstance(got, RelayMessage) and WakuMessage.decode(got.data) == second
        # v3 may leave the pubsub topic to the service's autosharding
        assert (await lightpush(client, svc, msg("autosharded"))).status == S.SUCCESS
        # the same message again: relay has seen it (nwaku answers 420 too)
        dup = await lightpush(client, svc, first, TOPIC)
        assert dup.status == S.INVALID_MESSAGE and "already-seen" in dup.desc
        stale = msg("old", ts=time.time_ns() - 3600 * 10**9)
        bad = await lightpush(client, svc, stale, TOPIC)
        assert bad.status == S.INVALID_MESSAGE and bad.desc.startswith("timestamp")
        v2_bad = await lightpush(client, svc, stale, TOPIC, version=2)
        assert not v2_bad.ok and v2_bad.status == S.INVALID_MESSAGE
        foreign = await lightpush(client, svc, msg("x"), "/waku/2/rs/1/0")
        assert foreign.status == S.UNSUPPORTED_PUBSUB_TOPIC
        lonely = await lightpush(client, svc, msg("nobody listens"), LONELY)
        assert lonely.status == S.NO_PEERS_TO_RELAY
        big = WakuMessage(b"x" * (150 * 1024 + 1), CT)
        assert (await lightpush(client, svc, big, TOPIC)).status == S.PAYLOAD_TOO_LARGE


async def test_lightpush_rate_limit_is_per_peer() -> None:
    async with network(limiter=TokenBucketLimiter(rate=1, burst=5)) as net:
        greedy, polite = await net.client(), await net.client()
        svc = net.host.get_id()
        statuses = [
            (await lightpush(greedy, svc, msg(f"n{i}"), "/waku/2/rs/1/0")).status for i in range(12)
        ]
        assert statuses[:5] == [S.UNSUPPORTED_PUBSUB_TOPIC] * 5
        assert statuses.count(S.TOO_MANY_REQUESTS) >= 5
        assert (await lightpush(polite, svc, msg("my turn"), TOPIC)).ok


# --- filter -----------------------------------------------------------------------------------


async def test_filter_push_then_unsubscribe() -> None:
    async with network() as net:
        client_host = await net.client()
        client = FilterClient(client_host, net.host.get_id())
        client.register()
        assert not await client.ping()  # 404: nothing yet
        await client.subscribe(TOPIC, [CT, CT2])
        assert await client.ping()
        pushed = msg("via filter")
        await net.neighbour.publish(TOPIC, pushed.encode())  # arrives over relay
        assert await next_message(client.messages) == (TOPIC, pushed)
        await client.unsubscribe(TOPIC, [CT])
        await net.neighbour.publish(TOPIC, msg("not for you").encode())
        marker = msg("still subscribed", CT2)
        await net.neighbour.publish(TOPIC, marker.encode())
        assert await next_message(client.messages) == (TOPIC, marker)  # FIFO: CT was skipped
        await client.unsubscribe_all()
        assert not await client.ping()
        assert not net.filter.subscriptions.is_subscribed(client_host.get_id())


async def test_vanished_client_is_dropped_and_does_not_block_others() -> None:
    async with network() as net:
        hosts = []
        for _ in range(2):
            h = build_host(create_new_key_pair(), LOOPBACK)
            hosts.append(h)
        async with hosts[0].run(LOOPBACK):
            await connect(hosts[0], net.host)
            doomed = FilterClient(hosts[0], net.host.get_id())
            doomed.register()
            await doomed.subscribe(TOPIC, [CT])
        # hosts[0] has stopped listening; its connection is gone
        async with hosts[1].run(LOOPBACK):
            await connect(hosts[1], net.host)
            alive = FilterClient(hosts[1], net.host.get_id())
            alive.register()
            await alive.subscribe(TOPIC, [CT])
            sent = [msg(f"m{i}") for i in range(6)]
            with trio.fail_after(10):
                for m in sent:
                    await net.neighbour.publish(TOPIC, m.encode())
                for m in sent:
                    assert await alive.messages.receive() == (TOPIC, m)
            doomed_id = hosts[0].get_id()
            await wait_until(lambda: not net.filter.subscriptions.is_subscribed(doomed_id), 15)
            assert net.filter.subscriptions.is_subscribed(hosts[1].get_id())
            text = net.metrics.registry.get_sample_value("boxless_filter_peers_dropped_total")
            assert text == 1.0


async def test_client_resubscribes_after_service_restart() -> None:
    async with network() as net:
        client_host = await net.client()
        async with trio.open_nursery() as nursery:
            client = FilterClient(client_host, net.host.get_id(), ping_interval=0.2)
            await nursery.start(client.run)
            await client.subscribe(TOPIC, [CT])
            await net.start_filter(FilterService(net.host, net.metrics))  # state lost
            await wait_until(lambda: client.resubscribed >= 1)
            assert net.filter.subscriptions.is_subscribed(client_host.get_id())
            after = msg("after restart")
            await net.neighbour.publish(TOPIC, after.encode())
            assert await next_message(client.messages) == (TOPIC, after)
            nursery.cancel_scope.cancel()


async def test_push_from_a_stranger_or_unasked_topic_is_ignored() -> None:
    async with network() as net:
        client_host = await net.client()
        client = FilterClient(client_host, net.host.get_id())
        client.register()
        stranger = await net.client()
        await connect(stranger, client_host)
        stream = await stranger.new_stream(
            client_host.get_id(), [TProtocol(fc.FILTER_PUSH_PROTOCOL)]
        )
        try:  # the client may reset before or after our write: either is fine
            await stream.write(encode_frame(fc.encode_push(TOPIC, msg("spoof"))))
            await stream.close()
        except StreamError:
            pass
        await wait_until(lambda: client.rejected == 1)
        await client.subscribe(TOPIC, [CT2])
        await net.filter.on_message(TOPIC, msg("unasked", CT))  # not matched service-side
        await net.filter.on_message(TOPIC, m := msg("asked", CT2))
        assert await next_message(client.messages) == (TOPIC, m)


# --- bad input on every service protocol ---------------------------------------------------


async def raw_exchange(client: IHost, peer: IHost, protocol: str, data: bytes) -> bytes:
    """Send raw bytes, close our side, read whatever comes back ("" if reset)."""
    stream = await client.new_stream(peer.get_id(), [TProtocol(protocol)])
    out = b""
    with trio.fail_after(15):
        try:
            await stream.write(data)
            await stream.close()
            while chunk := await stream.read(65536):
                out += chunk
        except StreamError:
            pass
    return out


def body(frame: bytes) -> bytes:
    """Strip the length prefix of a single-frame reply."""
    length, start = decode_uvarint(frame)
    assert len(frame) == start + length
    return frame[start:]


async def test_bad_input_gets_an_error_or_a_closed_stream_and_service_keeps_serving() -> None:
    async with network() as net:
        client = await net.client()
        protocols = [lp.LIGHTPUSH_V3, lp.LIGHTPUSH_V2, fc.FILTER_SUBSCRIBE_PROTOCOL]
        truncated = encode_uvarint(100) + b"x" * 10
        oversized = encode_uvarint(50 * 1024 * 1024) + b"x" * 100
        for proto in protocols:
            for data in (truncated, oversized, b"\xff" * 12):
                assert await raw_exchange(client, net.host, proto, data) == b""
        # undecodable protobuf and wrong field types: an error status
        for garbage in (b"\xff\xff\xff", b"\x0a\xff\x01", b"\x08\x05\x10\x01"):
            v3 = lp.parse_response(
                3,
                body(await raw_exchange(client, net.host, lp.LIGHTPUSH_V3, encode_frame(garbage))),
            )
            assert v3.status == S.BAD_REQUEST
            v2 = lp.parse_response(
                2,
                body(await raw_exchange(client, net.host, lp.LIGHTPUSH_V2, encode_frame(garbage))),
            )
            assert v2.status == S.BAD_REQUEST
            f = fc.parse_response(
                body(
                    await raw_exchange(
                        client, net.host, fc.FILTER_SUBSCRIBE_PROTOCOL, encode_frame(garbage)
                    )
                )
            )
            assert 400 <= f.status_code < 500
        violations = net.metrics.registry.get_sample_value(
            "boxless_protocol_violations_total", {"protocol": "lightpush"}
        )
        assert violations is not None and violations >= 12
        # still serving
        assert (await lightpush(client, net.host.get_id(), msg("still here"), TOPIC)).ok
        fclient = FilterClient(client, net.host.get_id())
        fclient.register()
        await fclient.subscribe(TOPIC, [CT])
        assert await fclient.ping()


class _HandlerOnlyHost:
    """Just enough of a host for FilterService.run (no network)."""

    def __init__(self) -> None:
        self.handlers: dict[str, object] = {}

    def set_stream_handler(self, protocol: str, handler: object) -> None:
        self.handlers[protocol] = handler

    def get_network(self) -> _HandlerOnlyHost:
        return self  # the service opens push streams eagerly: to no one here

    def get_connections(self, peer: object) -> list[object]:
        return []


async def test_filter_service_expires_unrefreshed_subscriptions(autojump_clock: object) -> None:
    host = _HandlerOnlyHost()
    service = FilterService(host, NodeMetrics())  # type: ignore[arg-type]
    sub = fc.build_request(fc.FilterRequest("r", fc.RequestType.SUBSCRIBE, TOPIC, (CT,)))
    ping = fc.build_request(fc.FilterRequest("p", fc.RequestType.SUBSCRIBER_PING))
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        assert fc.FILTER_SUBSCRIBE_PROTOCOL in host.handlers
        a, b = create_new_key_pair(), create_new_key_pair()
        pa, pb = ID.from_pubkey(a.public_key), ID.from_pubkey(b.public_key)
        assert fc.parse_response(service.answer(pa, sub)).ok
        assert fc.parse_response(service.answer(pb, sub)).ok
        await trio.sleep(200)
        assert fc.parse_response(service.answer(pa, ping)).ok  # a refreshes, b does not
        await trio.sleep(150)  # t = 350: b's 300 s are up
        assert service.subscriptions.peers == frozenset({pa})
        await trio.sleep(200)  # t = 550: a's too
        assert len(service.subscriptions) == 0
        assert fc.parse_response(service.answer(pa, ping)).status_code == 404
        nursery.cancel_scope.cancel()
