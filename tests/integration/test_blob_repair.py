"""Honest pins between real py-libp2p hosts: a service node that lost blocks behind
its back (files deleted, rows kept) no longer answers a re-pin "already pinned": it
fetches the lost blocks from the requester again and the file downloads again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from boxless.blobs import BlobService, BlobUnavailable, PinPolicy
from boxless.blobs.cid import Cid
from boxless.blobs.pin import request_pin
from tests.blob_fixtures import addr_of, aiter_chunks, blob_node, connect

pytestmark = pytest.mark.trio


def _delete(svc: BlobService, names: list[str]) -> None:
    """Lose these blocks behind the store's back (a disk error, an operator's rm)."""
    for name in names:
        (svc.store.root / "blocks" / name[-2:] / name).unlink()


def _lost(svc: BlobService, root: Cid) -> list[str]:
    return svc.store.lost_names(svc.store.pin_blocks_of(root, 10_000))


async def _fetch(node: BlobService, root: Cid, peer: object) -> bytes:
    return b"".join([c async for c in node.client.get(root, [peer], block_timeout=5)])  # type: ignore[list-item]


async def test_a_node_that_lost_blocks_repairs_them_on_a_repin(tmp_path: Path) -> None:
    data = os.urandom(2 * 1024 * 1024 + 777)  # 9 leaves and a root
    async with (
        blob_node(tmp_path / "alice") as alice,
        blob_node(tmp_path / "svc", pin_policy=PinPolicy()) as svc,
        blob_node(tmp_path / "bob") as bob,
        blob_node(tmp_path / "carol") as carol,
    ):
        put = await alice.client.put(aiter_chunks(data))
        info = await connect(alice, addr_of(svc))
        assert (await alice.client.pin(put.root, [info.peer_id])).pinned_by == [info.peer_id]
        owner = alice.bitswap.host.get_id().to_base58()
        charged = svc.store.owner_bytes(owner)
        names = [n for n, _ in svc.store.pin_blocks_of(put.root, 100)]
        assert len(names) == 10 and _lost(svc, put.root) == []

        # the node loses its root block and two leaves; its pin record stays
        gone = [str(Cid(1, put.root.codec, put.root.digest))] + [
            n for n in names if n != str(put.root)
        ][:2]
        _delete(svc, gone)
        assert len(svc.store.pins(put.root)) == 1 and svc.store.has(put.root)  # it still claims it
        binfo = await connect(bob, addr_of(svc))
        with pytest.raises(BlobUnavailable), trio.fail_after(30):
            await _fetch(bob, put.root, binfo.peer_id)

        # the sender pins again: not "already pinned" -- the three blocks travel again
        sent_before = alice.bitswap.stats.served_blocks
        with trio.fail_after(30):
            nbytes = await request_pin(alice.bitswap.host, info.peer_id, put.root)
        assert nbytes == put.stored
        assert alice.bitswap.stats.served_blocks - sent_before == 3  # only what was lost
        assert _lost(svc, put.root) == [] and len(svc.store.pins(put.root)) == 1
        assert svc.store.owner_bytes(owner) == charged  # a repair is not charged again
        with trio.fail_after(30):
            assert await _fetch(bob, put.root, binfo.peer_id) == data

        # a re-pin of a whole pin fetches nothing and says so
        sent_before = alice.bitswap.stats.served_blocks
        assert (await alice.client.pin(put.root, [info.peer_id])).pinned_by == [info.peer_id]
        assert alice.bitswap.stats.served_blocks == sent_before

        # the rolling check finds a lost leaf by itself: Bitswap stops claiming it
        leaf = next(n for n in names if n not in gone)
        _delete(svc, [leaf])
        assert await svc.check_some(limit=10_000) == 1
        assert not svc.store.has(Cid.parse(leaf))
        # another requester (Bob, who holds the file now) pins the same root: his pin
        # repairs the leaf for Alice's pin too, the reference counts stay right
        with trio.fail_after(30):
            await request_pin(bob.bitswap.host, binfo.peer_id, put.root)
        assert _lost(svc, put.root) == [] and len(svc.store.pins(put.root)) == 2
        for pin_id, _root, pin_owner, *_ in svc.store.pins(put.root):
            if pin_owner == owner:
                svc.store.unpin(pin_id)
        svc.store.gc(now=1e12, grace_s=0)  # Bob's pin still holds every block
        cinfo = await connect(carol, addr_of(svc))
        with trio.fail_after(30):
            assert await _fetch(carol, put.root, cinfo.peer_id) == data
