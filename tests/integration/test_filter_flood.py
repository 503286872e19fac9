"""A filter service flooded by fresh peer ids (issue 10, finding 6, filter part).

Real py-libp2p hosts on 127.0.0.1: one service host running :class:`FilterService`,
two honest light clients (:class:`FilterClient`), and 2,000 attacker hosts, each
a fresh peer id (free to make) that connects, subscribes and hangs up. Messages
are handed to the service the way the node's relay does (``on_message``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import multiaddr
import pytest
import trio
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.peerinfo import PeerInfo

from boxless.errors import NetworkError
from boxless.node.filter import FilterClient, FilterService
from boxless.node.host import build_host
from boxless.node.libp2p_shims import DIAL_ERRORS
from boxless.node.metrics import NodeMetrics
from boxless.node.streams import request
from boxless.waku import filter as fc
from boxless.waku.message import WakuMessage
from boxless.waku.sharding import pubsub_topic_for

pytestmark = pytest.mark.slow
logger = logging.getLogger(__name__)

LOOPBACK = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
CT = "/boxless/1/flood-honest/proto"
JUNK = "/boxless/1/flood-junk/proto"
TOPIC = pubsub_topic_for(CT, 42)
SLOTS = int(os.environ.get("BOXLESS_FLOOD_SLOTS", "150"))
"""Filter slots of the service under test (a node has 1,000; the full-size run:
BOXLESS_FLOOD_SLOTS=1000 BOXLESS_FLOOD_PEERS=2000, ~200 s on 2 busy cores)."""
FLOOD = int(os.environ.get("BOXLESS_FLOOD_PEERS", str(2 * SLOTS)))
AT_ONCE = 16
"""Attackers connecting at the same time (py-libp2p's connect mostly waits on the wire)."""


@asynccontextmanager
async def _service(**kw: object) -> AsyncIterator[FilterService]:
    host = build_host(create_new_key_pair(), LOOPBACK)
    # Two flaws of the py-libp2p 0.8.1 host itself (reported; not the filter's),
    # given room here so this test measures the filter alone:
    # - an inbound-connection slot is held until the *swarm* stops, not the
    #   connection (Swarm._do_handle_inbound_connection waits on
    #   manager.wait_finished()): after 250 inbound connections ever, a host
    #   refuses every new one;
    # - the peerstore keeps 1,000 peers and evicts entries without addresses
    #   first, the host's own among them: identify then raises "peer ID not
    #   found" for our own key and takes the host down.
    swarm = host.get_network()
    swarm._inbound_limiter = trio.CapacityLimiter(FLOOD + 100)  # type: ignore[attr-defined]
    host.get_peerstore().max_peers = 2 * FLOOD  # type: ignore[attr-defined]
    async with host.run(LOOPBACK), trio.open_nursery() as nursery:
        service = FilterService(host, NodeMetrics(), **kw)  # type: ignore[arg-type]
        service.subscriptions = fc.FilterSubscriptions(
            max_peers=SLOTS,
            is_connected=service._is_connected,  # the service's own rule
        )
        await nursery.start(service.run)
        yield service
        nursery.cancel_scope.cancel()


def _info(host: IHost) -> PeerInfo:
    return PeerInfo(host.get_id(), host.get_addrs())


async def _sybil(service_info: PeerInfo, statuses: list[int]) -> None:
    """One fresh peer id: connect, subscribe to junk, hang up. An attempt that
    fails on the attacker's side (a busy machine) is recorded as 0."""
    host = build_host(create_new_key_pair(), LOOPBACK)
    status = 0
    async with host.run([]):
        try:
            await host.connect(service_info)
            req = fc.FilterRequest("s", fc.RequestType.SUBSCRIBE, TOPIC, (JUNK,))
            reply = await request(
                host, service_info.peer_id, [fc.FILTER_SUBSCRIBE_PROTOCOL],
                fc.build_request(req), max_response=4096, timeout=30,
            )
            status = fc.parse_response(reply).status_code
        except (NetworkError, *DIAL_ERRORS) as exc:
            logger.info("a sybil did not get through: %s", exc)
    statuses.append(status)


async def _flood(service_info: PeerInfo, count: int, statuses: list[int]) -> None:
    limiter = trio.CapacityLimiter(AT_ONCE)

    async def one() -> None:
        async with limiter:
            await _sybil(service_info, statuses)

    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one)


async def _honest(host: IHost, service: FilterService) -> FilterClient:
    await host.connect(_info(service.host))
    client = FilterClient(host, service.host.get_id())
    client.register()
    await client.subscribe(TOPIC, [CT])
    return client


async def _received(client: FilterClient, text: str) -> None:
    with trio.fail_after(10):
        topic, msg = await client.messages.receive()
    assert (topic, msg.payload) == (TOPIC, text.encode())


def _msg(text: str) -> WakuMessage:
    return WakuMessage(text.encode(), CT, timestamp=time.time_ns())


async def test_fresh_peer_id_flood_does_not_lock_out_honest_subscribers() -> None:
    """Attack: fresh peer ids (twice the filter slots) each subscribe once (to
    junk) and hang up. Before, the first 1,000 held every slot
    for 5 minutes (for ever, had they pinged) and every later subscriber, the
    honest light client that arrives mid-flood included, got 503. Now a
    newcomer evicts a subscriber that is no longer connected, so the junk only
    displaces junk: the subscriber from before the flood keeps its slot and
    is served, the one from the middle of it gets in and is served too."""
    async with _service() as service:
        info = _info(service.host)
        early_host = build_host(create_new_key_pair(), LOOPBACK)
        late_host = build_host(create_new_key_pair(), LOOPBACK)
        async with early_host.run([]), late_host.run([]):
            early = await _honest(early_host, service)
            await service.on_message(TOPIC, _msg("before the flood"))
            await _received(early, "before the flood")

            statuses: list[int] = []
            await _flood(info, SLOTS + SLOTS // 10, statuses)  # the slots are full by now
            assert len(service.subscriptions) == SLOTS
            late = await _honest(late_host, service)  # 503 before: no slot left
            await _flood(info, FLOOD - len(statuses), statuses)

            assert len(statuses) == FLOOD and set(statuses) <= {0, 200}  # never a 503
            assert statuses.count(200) >= 0.95 * FLOOD
            await service.on_message(TOPIC, _msg("after the flood"))
            await _received(early, "after the flood")
            await _received(late, "after the flood")
            subs = service.subscriptions
            assert {early_host.get_id(), late_host.get_id()} <= subs.peers
            assert len(subs) <= SLOTS
            evicted = service.metrics.registry.get_sample_value(
                "boxless_filter_evicted_total", {"reason": "detached"}
            )
            admitted = statuses.count(200) + 2
            assert evicted is not None and evicted >= admitted - SLOTS


async def test_connected_sybils_cannot_evict_a_proven_subscriber() -> None:
    """Attack: fresh peer ids that stay connected and never renew fill a small
    table. A subscriber that was reached by a push is never evicted for them;
    they only displace each other, oldest first."""
    async with _service() as service:
        service.subscriptions.max_peers = 8
        info = _info(service.host)
        honest_host = build_host(create_new_key_pair(), LOOPBACK)
        async with honest_host.run([]):
            honest = await _honest(honest_host, service)
            await service.on_message(TOPIC, _msg("proof"))
            await _received(honest, "proof")
            sybils = [build_host(create_new_key_pair(), LOOPBACK) for _ in range(20)]
            async with _all_running(sybils):
                for host in sybils:  # each stays connected
                    await host.connect(info)
                    req = fc.FilterRequest("s", fc.RequestType.SUBSCRIBE, TOPIC, (JUNK,))
                    reply = await request(
                        host, info.peer_id, [fc.FILTER_SUBSCRIBE_PROTOCOL],
                        fc.build_request(req), max_response=4096,
                    )
                    assert fc.parse_response(reply).ok
                subs = service.subscriptions
                assert honest_host.get_id() in subs.peers and len(subs) == 8
                assert subs.peers - {honest_host.get_id()} == {h.get_id() for h in sybils[-7:]}
                unproven = service.metrics.registry.get_sample_value(
                    "boxless_filter_evicted_total", {"reason": "unproven"}
                )
                assert unproven == 13
                await service.on_message(TOPIC, _msg("still here"))
                await _received(honest, "still here")


@asynccontextmanager
async def _all_running(hosts: list[IHost]) -> AsyncIterator[None]:
    if not hosts:
        yield
        return
    async with hosts[0].run([]), _all_running(hosts[1:]):
        yield
