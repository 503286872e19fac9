"""Blob attackers on real hosts: wrong bytes for a CID, raw bytes that look
like dag-pb, DAGs that never end, fan out absurdly or lie about sizes, pins of
such DAGs, unrequested blocks and want floods. Each ends in a bounded, clear
error for that fetch only; honest traffic carries on."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import trio
from libp2p.peer.id import ID

from boxless.blobs import BadDag, BlobService, BlobUnavailable, PinPolicy
from boxless.blobs.bitswap import Bitswap, DagLimits, want_message
from boxless.blobs.cid import DAG_PB, RAW, Cid
from boxless.blobs.unixfs import DagBuilder, encode_file_node
from boxless.node.bitswap_shim import Message
from tests.blob_fixtures import addr_of, aiter_chunks, blob_node, connect

pytestmark = pytest.mark.trio


def node_block(children: list[tuple[Cid, int, int]]) -> tuple[Cid, bytes]:
    block = encode_file_node(children)
    return Cid.of(DAG_PB, block), block


def plant(svc: BlobService, cid: Cid, block: bytes) -> None:
    svc.store.put(cid, block, time.time())


async def fetch(
    svc: BlobService, root: Cid, peers: list[ID], timeout: float = 2, **kw: object
) -> bytes:
    gen = svc.client.get(root, peers, block_timeout=timeout, **kw)  # type: ignore[arg-type]
    chunks = [c async for c in gen]
    return b"".join(chunks)


class LyingBitswap(Bitswap):
    """Answers every want-block with random bytes under the wanted CID's prefix."""

    async def _answer(self, peer: ID, msg: Message) -> None:
        reply = Message()
        for entry in msg.wantlist.entries:
            if not entry.cancel:
                reply.payload.add(prefix=Cid.decode(entry.block).prefix(), data=os.urandom(64))
        await self.send(peer, reply)


async def test_wrong_bytes_are_dropped_and_an_honest_peer_serves(tmp_path: Path) -> None:
    data = os.urandom(600_000)
    async with (
        blob_node(tmp_path / "liar") as liar,
        blob_node(tmp_path / "honest") as honest,
        blob_node(tmp_path / "me") as me,
    ):
        put = await honest.client.put(aiter_chunks(data))
        evil = LyingBitswap(liar.bitswap.host, liar.store)
        evil.register()  # replaces the liar's handlers
        li = await connect(me, addr_of(liar))
        hi = await connect(me, addr_of(honest))
        with pytest.raises(BlobUnavailable):
            await fetch(me, put.root, [li.peer_id], timeout=0.5)
        assert me.bitswap.stats.unrequested_blocks >= 1 and me.store.used == 0
        assert await fetch(me, put.root, [li.peer_id, hi.peer_id]) == data


class SilentBitswap(Bitswap):
    """Serves what it holds but never says DONT_HAVE (as a stock py host)."""

    async def _answer(self, peer: ID, msg: Message) -> None:
        for entry in msg.wantlist.entries:
            entry.sendDontHave = False
        await super()._answer(peer, msg)


async def test_a_peer_that_goes_silent_costs_one_timeout(tmp_path: Path) -> None:
    data = os.urandom(40 * 16 * 1024)
    b = DagBuilder(16 * 1024, 174)
    blocks = b.feed(data) + b.finish()
    assert b.root is not None
    async with (
        blob_node(tmp_path / "partial") as partial,
        blob_node(tmp_path / "honest") as honest,
        blob_node(tmp_path / "me") as me,
    ):
        plant(partial, b.root, blocks[-1][1])  # the root only: it says HAVE for it
        for cid, block in blocks:
            plant(honest, cid, block)
        SilentBitswap(partial.bitswap.host, partial.store).register()
        pi = await connect(me, addr_of(partial))
        hi = await connect(me, addr_of(honest))
        start = trio.current_time()
        got = await fetch(me, b.root, [pi.peer_id, hi.peer_id], timeout=1.0)
        assert got == data
        assert trio.current_time() - start < 8  # 40 leaves: not one timeout each


async def test_raw_bytes_that_parse_as_dag_pb_stay_file_bytes(tmp_path: Path) -> None:
    crafted = encode_file_node([(Cid.of(RAW, b"a link to follow"), 16, 16)])
    async with blob_node(tmp_path / "a") as a, blob_node(tmp_path / "b") as b:
        put = await a.client.put(aiter_chunks(crafted))
        assert put.root.codec == RAW
        info = await connect(b, addr_of(a))
        assert await fetch(b, put.root, [info.peer_id]) == crafted


async def test_hostile_dags_end_in_bad_dag(tmp_path: Path) -> None:
    leaf = os.urandom(50)
    leaf_cid = Cid.of(RAW, leaf)
    # a chain of 20 single-link nodes: deeper than the limit
    deep, deep_block = leaf_cid, b""
    chain = []
    for _ in range(20):
        deep, deep_block = node_block([(deep, 1, 50)])
        chain.append((deep, deep_block))
    wide = node_block([(leaf_cid, 50, 50)] * 1100)  # more links than a node may have
    lie = node_block([(leaf_cid, 50, 80)])  # says the leaf holds 80 bytes
    huge = node_block([(leaf_cid, 50, 2**40)])  # a 1 TiB file
    async with blob_node(tmp_path / "evil") as evil, blob_node(tmp_path / "me") as me:
        for cid, block in [(leaf_cid, leaf), *chain, wide, lie, huge]:
            plant(evil, cid, block)
        info = await connect(me, addr_of(evil))
        for root, needle in [
            (deep, "deeper"),
            (wide[0], "not a UnixFS file node"),
            (lie[0], "parent said 80"),
            (huge[0], "over the"),
        ]:
            with pytest.raises(BadDag, match=needle):
                await fetch(me, root, [info.peer_id], limits=DagLimits(max_bytes=10**9))
        # and the same DAGs cannot be pinned on a service node
        async with blob_node(tmp_path / "svc", pin_policy=PinPolicy()) as svc:
            si = await connect(evil, addr_of(svc))
            res = await evil.client.pin(deep, [si.peer_id])
            assert "422" in res.errors[si.peer_id] and not svc.store.pins()
            assert svc.store.used == 0  # what the failed pin fetched is gone
            res = await evil.client.pin(huge[0], [si.peer_id])
            assert "413" in res.errors[si.peer_id] and not svc.store.pins()


async def test_unrequested_blocks_and_want_floods(tmp_path: Path) -> None:
    data = os.urandom(400_000)
    async with (
        blob_node(tmp_path / "svc") as svc,
        blob_node(tmp_path / "evil") as evil,
        blob_node(tmp_path / "bob") as bob,
    ):
        put = await svc.client.put(aiter_chunks(data))
        ei = await connect(evil, addr_of(svc))
        bi = await connect(bob, addr_of(svc))
        violated = trio.Event()
        violations: list[tuple[ID, str]] = []

        async def record(peer: ID, protocol: str) -> None:
            violations.append((peer, protocol))
            violated.set()

        svc.bitswap.on_violation = record
        # pushed blocks nobody wanted are not stored
        junk = Message()
        for _ in range(20):
            block = os.urandom(1000)
            junk.payload.add(prefix=Cid.of(RAW, block).prefix(), data=block)
        used = svc.store.used
        await evil.bitswap.send(ei.peer_id, junk)
        # a want-have gets a HAVE, not the block
        await evil.bitswap.send(ei.peer_id, want_message([put.root], have=True))
        # a flood: a message of too many wants resets the stream, counted
        too_many = want_message([Cid.of(RAW, os.urandom(8)) for _ in range(1100)])
        await evil.bitswap.send(ei.peer_id, too_many)
        with trio.fail_after(5):
            await violated.wait()
        assert violations == [(evil.bitswap.host.get_id(), "/ipfs/bitswap/1.2.0")]
        assert svc.bitswap.stats.unrequested_blocks == 20 and svc.store.used == used
        assert svc.bitswap.stats.served_blocks == 0
        # a peer opening stream after stream gets MAX_INBOUND_PER_PEER, then resets
        from libp2p.custom_types import TProtocol

        from boxless.blobs.bitswap import MAX_INBOUND_PER_PEER

        held = [
            await evil.bitswap.host.new_stream(ei.peer_id, [TProtocol("/ipfs/bitswap/1.2.0")])
            for _ in range(MAX_INBOUND_PER_PEER + 3)
        ]
        with trio.fail_after(5):
            while svc.bitswap.stats.refused_streams < 3:  # noqa: ASYNC110 (counter, no event)
                await trio.sleep(0.02)
        # honest traffic is unaffected
        assert await fetch(bob, put.root, [bi.peer_id]) == data
        for stream in held:
            await stream.reset()


async def test_builder_output_is_what_a_fetch_verifies(tmp_path: Path) -> None:
    """A DAG made by the builder with tiny chunks passes every check (no false alarm)."""
    data = os.urandom(5000)
    b = DagBuilder(64, 4)
    blocks = b.feed(data) + b.finish()
    async with blob_node(tmp_path / "a") as a, blob_node(tmp_path / "b") as b2:
        for cid, block in blocks:
            plant(a, cid, block)
        info = await connect(b2, addr_of(a))
        assert b.root is not None
        assert await fetch(b2, b.root, [info.peer_id]) == data


async def test_a_have_wakes_the_fetch_at_once(tmp_path: Path) -> None:
    """With a silent peer named first, the other peer's HAVE decides the order
    immediately; the fetch does not wait out the silent one's timeout."""
    data = os.urandom(300_000)
    async with (
        blob_node(tmp_path / "silent") as silent,
        blob_node(tmp_path / "honest") as honest,
        blob_node(tmp_path / "me") as me,
    ):
        put = await honest.client.put(aiter_chunks(data))
        SilentBitswap(silent.bitswap.host, silent.store).register()
        si = await connect(me, addr_of(silent))
        hi = await connect(me, addr_of(honest))
        start = trio.current_time()
        assert await fetch(me, put.root, [si.peer_id, hi.peer_id], timeout=10) == data
        assert trio.current_time() - start < 5
