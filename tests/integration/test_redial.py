"""A restarted service node is reached again within seconds, not after py-libp2p's
60 s negative dial cache (``libp2p_shims.redial``).

Real nodes in this process on 127.0.0.1: a service node is stopped (its port closed),
its clients' dials fail, and it starts again on the same port with the same key. The
light node (``LightNode._reach``) and a service node peering it statically
(``Peering._keep_connected``) must be connected again within a few seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import multiaddr
import pytest
import trio
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.network.exceptions import SwarmException
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo

from boxless._trio_compat import TaskStatus
from boxless.node.config import NodeConfig
from boxless.node.host import build_host
from boxless.node.libp2p_shims import redial
from boxless.node.light import LightNode
from boxless.node.service import WakuNode

LOOPBACK = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
CLUSTER = 42
BACK_WITHIN_S = 10.0  # our retries here come within ~1-4 s; the cache would hold us 60 s


async def wait_until(what: str, cond: Callable[[], bool], timeout: float) -> None:
    """Bounded polling (connection state offers no event); fails saying what."""
    with trio.move_on_after(timeout):
        while not cond():  # noqa: ASYNC110 - no event to wait on; deadline-bounded
            await trio.sleep(0.02)
        return
    raise AssertionError(f"not within {timeout} s: {what}")


def swarm_of(host: IHost) -> Swarm:
    swarm = host.get_network()
    assert isinstance(swarm, Swarm)
    return swarm


def refusing(host: IHost, peer_id: ID) -> Callable[[], bool]:
    """Whether ``host``'s swarm now refuses to dial ``peer_id`` (its negative cache
    holds it and no dial is in flight: a dial that waited for another goes ahead)."""
    swarm = swarm_of(host)
    return lambda: (
        swarm._negative_peer_cache.is_blocked(str(peer_id)) and peer_id not in swarm._ongoing_dials
    )


@dataclass
class Service:
    """A service node running in the test's nursery until :meth:`stop`."""

    node: WakuNode
    scope: trio.CancelScope
    stopped: trio.Event

    async def stop(self) -> None:
        """Stop it and wait for that; its port is closed, as when a process exits.
        (Leaving ``host.run`` keeps py-libp2p 0.8.1's TCP listener open -- it is a
        system task -- until ``host.close``.)"""
        self.scope.cancel()
        await self.stopped.wait()
        await self.node.host.close()


async def start_service(
    nursery: trio.Nursery, data_dir: Path, port: int = 0, peers: tuple[str, ...] = ()
) -> Service:
    """A service node (filter, light push, relay) on 127.0.0.1:``port``; its key is
    kept in ``data_dir``, so a restart there is the same peer."""
    config = NodeConfig(
        data_dir=data_dir,
        listen=(f"/ip4/127.0.0.1/tcp/{port}",),
        peers=peers,
        filter=True,
        lightpush=True,
        store_resume=False,
        cluster_id=CLUSTER,
    )
    node = WakuNode(config)
    scope, stopped = trio.CancelScope(), trio.Event()

    async def run(*, task_status: TaskStatus[WakuNode] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with scope:
                await node.run(task_status=task_status)
        finally:
            stopped.set()

    await nursery.start(run)
    return Service(node, scope, stopped)


def port_of(node: WakuNode) -> int:
    return int(node.addrs()[0].split("/tcp/")[1].split("/")[0])


async def test_upstream_negative_cache_refuses_a_restarted_peer_and_redial_reaches_it() -> None:
    """The upstream behaviour the shim works around, and the shim itself."""
    dialer = build_host(create_new_key_pair(), LOOPBACK)
    target = build_host(create_new_key_pair(), LOOPBACK)
    with trio.socket.socket() as probe:  # a port nobody listens on yet
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    addr = multiaddr.Multiaddr(f"/ip4/127.0.0.1/tcp/{port}")
    peer = PeerInfo(target.get_id(), [addr])
    async with dialer.run(LOOPBACK):
        with pytest.raises(SwarmException):
            await dialer.connect(peer)  # refused: nobody listens
        async with target.run([addr]):
            with pytest.raises(SwarmException, match="negative cache"):
                await dialer.connect(peer)  # upstream: refused without a dial for 60 s
            with trio.fail_after(10):
                await redial(dialer, peer)
            assert swarm_of(dialer).get_connections(target.get_id())


async def test_light_node_and_static_peer_reconnect_soon_after_the_service_node_restarts(
    tmp_path: Path,
) -> None:
    async with trio.open_nursery() as nursery:
        s = await start_service(nursery, tmp_path / "s")
        addr, port, sid = s.node.addrs()[0], port_of(s.node), s.node.peer_id
        light = LightNode(tmp_path / "light", [addr], cluster_id=CLUSTER)
        await nursery.start(light.run)
        other = (await start_service(nursery, tmp_path / "peer", peers=(addr,))).node
        await wait_until("the light node serves from S", lambda: light.current == sid, 20)
        await wait_until("the peer connects to S", lambda: other.peering.is_connected(sid), 20)

        await s.stop()
        # Both clients' dials fail: py-libp2p then refuses to dial S for 60 s.
        for who, host in (("the light node", light.host), ("the peer", other.host)):
            await wait_until(f"{who}'s dials to fail", refusing(host, sid), 20)
        s = await start_service(nursery, tmp_path / "s", port)  # same port, same key
        assert s.node.peer_id == sid

        await wait_until("the light node back", lambda: light.current == sid, BACK_WITHIN_S)
        await wait_until("the peer back", lambda: other.peering.is_connected(sid), BACK_WITHIN_S)
        nursery.cancel_scope.cancel()
