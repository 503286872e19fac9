"""A real WakuNode in this process, poked by real libp2p peers with bad input."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import multiaddr
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.network.exceptions import SwarmException
from libp2p.network.stream.exceptions import StreamError

from boxless.archive import ArchiveRow, open_archive
from boxless.errors import NetworkError
from boxless.node.archiver import Archiver
from boxless.node.config import NodeConfig
from boxless.node.host import build_host
from boxless.node.metrics import NodeMetrics
from boxless.node.peering import parse_peer
from boxless.node.relay import WakuRelay
from boxless.node.service import WakuNode
from boxless.node.store_client import StoreQuerySpec, query_page
from boxless.node.streams import request
from boxless.waku import metadata as md
from boxless.waku.message import WakuMessage
from boxless.waku.sharding import pubsub_topic_for
from boxless.waku.store import STORE_PROTOCOL_ID
from boxless.wire.framing import encode_uvarint

CT = "/boxless/1/inproc/proto"
TOPIC = pubsub_topic_for(CT, 42)
LOOPBACK = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]


def _config(tmp_path: Path, name: str, **kw: object) -> NodeConfig:
    return NodeConfig(
        data_dir=tmp_path / name, listen=("/ip4/127.0.0.1/tcp/0",), store_resume=False, **kw
    )  # type: ignore[arg-type]


async def _raw(host, node: WakuNode, protocol: str, data: bytes) -> bytes | None:  # type: ignore[no-untyped-def]
    """Send raw bytes on a fresh stream; return what came back (None if reset/closed)."""
    from libp2p.custom_types import TProtocol
    from libp2p.network.stream.exceptions import StreamError

    stream = await host.new_stream(node.peer_id, [TProtocol(protocol)])
    out = b""
    try:
        await stream.write(data)
        await stream.close()
        with trio.fail_after(10):
            while True:
                chunk = await stream.read(65536)
                if not chunk:
                    break
                out += chunk
    except StreamError:
        pass
    return out or None


async def test_garbage_on_every_service_protocol_never_breaks_the_node(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        node: WakuNode = await nursery.start(WakuNode(_config(tmp_path, "svc", store=True)).run)
        client = build_host(create_new_key_pair(), LOOPBACK)
        async with client.run(LOOPBACK):
            await client.connect(parse_peer(node.addrs()[0]))
            garbage = [
                b"\x80\x00",  # non-minimal varint
                b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # varint overflow
                encode_uvarint(10 * 1024 * 1024) + b"x",  # declares 10 MiB
                encode_uvarint(5) + b"\x08",  # truncated body
                encode_uvarint(3) + b"\x0a\xff\x01",  # wrong wire types / bad length
            ]
            for data in garbage:
                with contextlib.suppress(StreamError, NetworkError, SwarmException):
                    reply = await _raw(client, node, STORE_PROTOCOL_ID, data)
                    assert reply is None or len(reply) < 200
            # five strikes: the offender is disconnected and refused
            assert node.metrics.protocol_violations.labels("store")._value.get() == len(garbage)
            with trio.fail_after(10):
                while client.get_id() in node.host.get_connected_peers():  # noqa: ASYNC110
                    await trio.sleep(0.05)
            assert node.peering.penalties.is_banned(client.get_id(), trio.current_time())
        # an honest client is served as before: store query and metadata
        honest = build_host(create_new_key_pair(), LOOPBACK)
        async with honest.run(LOOPBACK):
            await honest.connect(parse_peer(node.addrs()[0]))
            await _raw(honest, node, md.METADATA_PROTOCOL_ID, b"")  # an unused stream is fine
            for data in garbage[:2]:  # a couple of mistakes don't get you banned
                await _raw(honest, node, md.METADATA_PROTOCOL_ID, data)
            page, cursor = await query_page(
                honest, node.peer_id, StoreQuerySpec(pubsub_topic=TOPIC, content_topics=(CT,)), None
            )
            assert page == [] and cursor is None
            info = md.decode_response(
                await request(
                    honest,
                    node.peer_id,
                    [md.METADATA_PROTOCOL_ID],
                    md.encode_request(md.ClusterInfo(42, (0,))),
                    max_response=md.MAX_METADATA_SIZE,
                )
            )
            assert info.cluster_id == 42 and info.shards == tuple(range(8))
        nursery.cancel_scope.cancel()


async def test_invalid_relay_messages_are_rejected_and_not_archived(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        node: WakuNode = await nursery.start(WakuNode(_config(tmp_path, "svc", store=True)).run)
        peer = build_host(create_new_key_pair(), LOOPBACK)
        async with peer.run(LOOPBACK), trio.open_nursery() as inner:
            relay = WakuRelay(peer)
            await inner.start(relay.run)
            await relay.subscribe(TOPIC)
            await peer.connect(parse_peer(node.addrs()[0]))
            with trio.fail_after(15):
                while node.peer_id not in relay.topic_peers(TOPIC):  # noqa: ASYNC110
                    await trio.sleep(0.05)
            stale = WakuMessage(b"old", CT, timestamp=time.time_ns() - 3600 * 10**9)
            for bad in (b"\xff\x00garbage", stale.encode(), WakuMessage(b"x", "no-slash").encode()):
                await relay.publish(TOPIC, bad)
            good = WakuMessage(b"good", CT, timestamp=time.time_ns())
            await relay.publish(TOPIC, good.encode())
            with trio.fail_after(15):
                while node.metrics.archive_inserted._value.get() < 1:  # noqa: ASYNC110
                    await trio.sleep(0.05)
            invalid = sum(
                s.value
                for m in node.metrics.relay_invalid.collect()
                for s in m.samples
                if s.name.endswith("_total")
            )
            assert invalid == 3
            assert node.archive is not None and node.archive.count() == 1
            inner.cancel_scope.cancel()
        nursery.cancel_scope.cancel()


async def test_archiver_flushes_everything_queued_when_cancelled(tmp_path: Path) -> None:
    archive = open_archive(f"sqlite:///{tmp_path / 'a.db'}")
    archiver = Archiver(archive, NodeMetrics(), queue=10_000, batch_size=50)
    rows = [
        ArchiveRow(i.to_bytes(32, "big"), TOPIC, CT, 1_700_000_000_000_000_000 + i, b"m", 1)
        for i in range(3000)
    ]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(archiver.run)
        for row in rows:
            await archiver.put(row)
        nursery.cancel_scope.cancel()  # the writer is behind: most rows are still queued
    assert archive.count() == 3000
    archive.close()


async def test_node_of_another_cluster_cannot_stay(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        ours: WakuNode = await nursery.start(WakuNode(_config(tmp_path, "ours")).run)
        theirs: WakuNode = await nursery.start(
            WakuNode(_config(tmp_path, "theirs", cluster_id=7, peers=(ours.addrs()[0],))).run
        )
        with trio.fail_after(20):
            mismatches = ours.metrics.cluster_mismatch, theirs.metrics.cluster_mismatch
            while sum(m._value.get() for m in mismatches) < 1:  # noqa: ASYNC110
                await trio.sleep(0.05)
            while ours.host.get_connected_peers():  # noqa: ASYNC110
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
