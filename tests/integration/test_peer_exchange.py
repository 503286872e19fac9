"""Peer exchange over real py-libp2p hosts on loopback, all with secp256k1 identities.

This also shows that py-libp2p's Noise handshake works with secp256k1 node
keys (secp256k1 to secp256k1, and with an Ed25519 peer), and that an ENR's
peer id is the id Noise authenticates when we dial its addresses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import multiaddr
import trio
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair as create_ed25519_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.custom_types import TProtocol
from libp2p.network.stream.exceptions import StreamEOF, StreamError
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr

from boxless.node.host import build_host
from boxless.node.keys import load_or_create_node_key
from boxless.node.peer_exchange import PeerExchangeService, request_peers
from boxless.waku import peer_exchange as px
from boxless.waku.enr import Enr, Waku2

LOOPBACK = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
WAIT = 10.0


def tcp_port(host: IHost) -> int:
    return int(host.get_addrs()[0].value_for_protocol("tcp"))


def own_enr(host: IHost, key_pair: KeyPair, seq: int = 1) -> Enr:
    """The record a node would publish: its secp256k1 node key signs its listen address."""
    return Enr.build(
        key_pair.private_key.to_bytes(),
        seq,
        ip="127.0.0.1",
        tcp=tcp_port(host),
        waku2=Waku2(relay=True),
    )


@asynccontextmanager
async def running(key_pair: KeyPair) -> AsyncIterator[IHost]:
    host = build_host(key_pair, LOOPBACK)
    async with host.run(LOOPBACK):
        yield host


@asynccontextmanager
async def network(
    tmp_path: Path,
) -> AsyncIterator[tuple[IHost, IHost, list[IHost], trio.MemoryReceiveChannel[tuple[ID, str]]]]:
    """A service knowing 3 peers' ENRs, and a connected client; all keys secp256k1."""
    async with AsyncExitStack() as stack:
        keys = [load_or_create_node_key(tmp_path / f"node{i}.key") for i in range(5)]
        hosts = [await stack.enter_async_context(running(k)) for k in keys]
        service_host, client_host, peers = hosts[0], hosts[1], hosts[2:]
        send_violation, violations = trio.open_memory_channel[tuple[ID, str]](10)

        async def on_violation(peer: ID, protocol: str) -> None:
            send_violation.send_nowait((peer, protocol))

        service = PeerExchangeService(
            service_host,
            px.PeerCache(),
            lambda: own_enr(service_host, keys[0]),
            on_violation=on_violation,
        )
        service.register()
        service.add_known(own_enr(h, k) for h, k in zip(peers, keys[2:], strict=True))
        # The client's own record is in the cache too: it must never be handed back to it.
        service.add_known([own_enr(client_host, keys[1])])
        with trio.fail_after(WAIT):
            await client_host.connect(PeerInfo(service_host.get_id(), service_host.get_addrs()))
        yield service_host, client_host, peers, violations


async def test_client_gets_two_dialable_records(tmp_path: Path) -> None:
    async with network(tmp_path) as (service_host, client, peers, _):
        with trio.fail_after(WAIT):
            enrs = await request_peers(client, service_host.get_id(), 2)
        assert len(enrs) == 2
        known = {h.get_id() for h in [service_host, *peers]}
        for enr in enrs:
            assert enr.peer_id() in known
            (addr,) = enr.multiaddrs()
            info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
            assert info.peer_id == enr.peer_id()
            with trio.fail_after(WAIT):
                await client.connect(info)  # Noise checks the peer's key against the ENR's id
            assert enr.peer_id() in client.get_network().connections


async def test_answer_holds_every_known_record_but_the_requesters(tmp_path: Path) -> None:
    async with network(tmp_path) as (service_host, client, peers, _):
        with trio.fail_after(WAIT):
            enrs = await request_peers(client, service_host.get_id(), 60)
        got = {e.peer_id() for e in enrs}
        assert got == {h.get_id() for h in [service_host, *peers]}  # 3 known + its own
        assert client.get_id() not in got


async def test_garbage_request_resets_the_stream_and_service_keeps_serving(tmp_path: Path) -> None:
    async with network(tmp_path) as (service_host, client, _, violations):
        with trio.fail_after(WAIT):
            stream = await client.new_stream(
                service_host.get_id(), [TProtocol(px.PEER_EXCHANGE_PROTOCOL_ID)]
            )
            await stream.write(b"\x05garba")  # a complete frame that isn't a query
            try:
                answer = await stream.read(1024)
            except (StreamError, StreamEOF):
                answer = b""
        assert answer == b""
        with trio.fail_after(WAIT):  # reported just after the reset the client saw
            assert await violations.receive() == (client.get_id(), "peer_exchange")
        with trio.fail_after(WAIT):
            assert len(await request_peers(client, service_host.get_id(), 2)) == 2


async def test_learn_from_fills_the_clients_cache_with_the_service_record(tmp_path: Path) -> None:
    async with network(tmp_path) as (service_host, client, peers, _):
        learner = PeerExchangeService(client, px.PeerCache(), lambda: None)
        with trio.fail_after(WAIT):
            assert await learner.learn_from(service_host.get_id()) == 4
        assert service_host.get_id().to_bytes() in learner.cache  # (iii) the service's own ENR
        assert all(h.get_id().to_bytes() in learner.cache for h in peers)


async def test_ed25519_client_can_use_a_secp256k1_service(tmp_path: Path) -> None:
    async with network(tmp_path) as (service_host, _, _, _), AsyncExitStack() as stack:
        client = await stack.enter_async_context(running(create_ed25519_key_pair()))
        with trio.fail_after(WAIT):
            await client.connect(PeerInfo(service_host.get_id(), service_host.get_addrs()))
            assert len(await request_peers(client, service_host.get_id(), 3)) == 3
