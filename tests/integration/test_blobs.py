"""Blob service between real py-libp2p hosts: put, get, pin, and attackers."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import trio

from boxless.blobs import BlobUnavailable, PinPolicy, PinRefused
from tests.blob_fixtures import addr_of, aiter_chunks, blob_node, connect

pytestmark = pytest.mark.trio


async def test_get_and_pin_between_two_nodes(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 12345)
    async with (
        blob_node(tmp_path / "alice") as alice,
        blob_node(tmp_path / "svc", pin_policy=PinPolicy()) as svc,
        blob_node(tmp_path / "bob") as bob,
    ):
        put = await alice.client.put(aiter_chunks(data))
        info = await connect(alice, addr_of(svc))
        pinned = await alice.client.pin(put.root, [info.peer_id])
        assert pinned.pinned_by == [info.peer_id], pinned.errors
        assert svc.store.pins(put.root)[0][3] == put.stored
        again = await alice.client.pin(put.root, [info.peer_id], retention_s=60)
        assert again.pinned_by == [info.peer_id] and len(svc.store.pins(put.root)) == 1
        assert svc.store.owner_bytes(alice.bitswap.host.get_id().to_base58()) == put.stored
        # Bob fetches from the service node only
        binfo = await connect(bob, addr_of(svc))
        assert await bob.client.size(put.root, [binfo.peer_id]) == len(data)
        seen: list[tuple[int, int | None]] = []
        got = b"".join(
            [
                c
                async for c in bob.client.get(
                    put.root, [binfo.peer_id], progress=lambda d, t: seen.append((d, t))
                )
            ]
        )
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        assert seen[-1] == (len(data), len(data))
        assert bob.client.has(put.root)
        assert bob.bitswap.stats.unrequested_blocks == 0
        # a second get is served from Bob's own store, no network
        before = bob.bitswap.stats.received_blocks
        again = b"".join([c async for c in bob.client.get(put.root, [])])
        assert again == data and bob.bitswap.stats.received_blocks == before


async def test_missing_blob_is_a_clear_error(tmp_path: Path) -> None:
    async with blob_node(tmp_path / "a") as a, blob_node(tmp_path / "b") as b:
        put = await a.client.put(aiter_chunks(b"x" * 1000))
        info = await connect(b, addr_of(a))
        a.store.unpin(put.pin_id)
        a.store.gc(now=1e12, grace_s=0)
        with pytest.raises(BlobUnavailable):
            async for _ in b.client.get(put.root, [info.peer_id], block_timeout=2):
                pass


async def test_pin_refused_for_strangers_and_over_quota(tmp_path: Path) -> None:
    closed = PinPolicy(open_to_clients=False)
    small = PinPolicy(peer_quota=100_000)
    async with (
        blob_node(tmp_path / "a") as a,
        blob_node(tmp_path / "closed", pin_policy=closed) as c,
        blob_node(tmp_path / "small", pin_policy=small) as s,
    ):
        put = await a.client.put(aiter_chunks(os.urandom(300_000)))
        ci = await connect(a, addr_of(c))
        si = await connect(a, addr_of(s))
        res = await a.client.pin(put.root, [ci.peer_id, si.peer_id])
        assert res.pinned_by == []
        assert "403" in res.errors[ci.peer_id]
        assert "413" in res.errors[si.peer_id]
        assert c.store.used == 0 and s.store.used == 0
        with trio.fail_after(5):
            from boxless.blobs.pin import request_pin

            with pytest.raises(PinRefused):
                await request_pin(a.bitswap.host, ci.peer_id, put.root)


async def test_a_service_node_pins_for_a_connected_client(tmp_path: Path) -> None:
    """A Waku service node with --filter --blobs pins for a peer connected to it
    (a light client holds its filter subscription at one service node only, yet
    pins on all of them), within its per-peer quota."""
    from boxless.node.config import NodeConfig
    from boxless.node.service import WakuNode

    config = NodeConfig(
        tmp_path / "node",
        ("/ip4/127.0.0.1/tcp/0",),
        filter=True,
        blobs=True,
        store_resume=False,
        blob_peer_quota=50_000,
    )
    async with trio.open_nursery() as nursery, blob_node(tmp_path / "client") as client:
        node: WakuNode = await nursery.start(WakuNode(config).run)
        small = await client.client.put(aiter_chunks(b"a caption" * 100))
        big = await client.client.put(aiter_chunks(os.urandom(60_000)))
        info = await connect(client, node.addrs()[0])
        assert (await client.client.pin(small.root, [info.peer_id])).pinned_by == [info.peer_id]
        res = await client.client.pin(big.root, [info.peer_id])
        assert res.pinned_by == [] and "413" in res.errors[info.peer_id]
        assert node.blobs is not None and node.blobs.store.used == small.stored
        nursery.cancel_scope.cancel()
