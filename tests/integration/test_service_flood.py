"""A real service node in this process, flooded by real libp2p peers (issue 10,
finding 6, and finding 5's node part). Each test plays the attacker and fails
on the code before the limits: no 429 was ever sent, streams had no cap, the
retention default had no count or size cap, a +10-year message blinded catch-up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import multiaddr
import trio
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.stream.exceptions import StreamError

from boxless.archive import ArchiveRow, open_archive
from boxless.node.archiver import Archiver
from boxless.node.config import NodeConfig, RetentionPolicy, ServiceLimits
from boxless.node.host import build_host
from boxless.node.light import LightMessage, LightNode
from boxless.node.metrics import NodeMetrics
from boxless.node.peering import parse_peer
from boxless.node.service import WakuNode
from boxless.node.store_client import StoreQueryError, StoreQuerySpec, iter_pages, query_page
from boxless.node.store_service import StoreService
from boxless.node.streams import read_frame, write_frame
from boxless.waku import store
from boxless.waku.message import WakuMessage, message_hash
from boxless.waku.sharding import pubsub_topic_for

CT = "/boxless/1/flood/proto"
TOPIC = pubsub_topic_for(CT, 42)
LOOPBACK = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
SPEC = StoreQuerySpec(pubsub_topic=TOPIC, content_topics=(CT,))
YEAR_NS = 365 * 86_400 * 10**9


def _config(tmp_path: Path, **kw: object) -> NodeConfig:
    return NodeConfig(
        data_dir=tmp_path / "svc",
        listen=("/ip4/127.0.0.1/tcp/0",),
        store=True,
        store_resume=False,
        **kw,  # type: ignore[arg-type]
    )


@asynccontextmanager
async def _service(tmp_path: Path, **kw: object) -> AsyncIterator[WakuNode]:
    async with trio.open_nursery() as nursery:
        node: WakuNode = await nursery.start(WakuNode(_config(tmp_path, **kw)).run)
        yield node
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def _peers(node: WakuNode, n: int) -> AsyncIterator[list[IHost]]:
    """``n`` fresh peer ids, each connected to ``node``."""
    hosts = [build_host(create_new_key_pair(), LOOPBACK) for _ in range(n)]
    async with _run_all(hosts):
        for host in hosts:
            await host.connect(parse_peer(node.addrs()[0]))
        yield hosts


@asynccontextmanager
async def _run_all(hosts: list[IHost]) -> AsyncIterator[None]:
    if not hosts:
        yield
        return
    async with hosts[0].run(LOOPBACK), _run_all(hosts[1:]):
        yield


def _row(text: str, timestamp: int) -> ArchiveRow:
    msg = WakuMessage(text.encode(), CT, timestamp=timestamp)
    return ArchiveRow(message_hash(TOPIC, msg), TOPIC, CT, timestamp, msg.encode(), time.time_ns())


async def _status(host: IHost, node: WakuNode) -> int:
    try:
        await query_page(host, node.peer_id, SPEC, None)
    except StoreQueryError as exc:
        return exc.status_code
    return 200


async def test_store_flood_gets_429_while_another_peer_is_served(tmp_path: Path) -> None:
    """Attack: one peer sends store queries back to back. Before, every one was
    served (429 was defined, never sent) on the threads archive writes need."""
    limits = ServiceLimits(store_rate=0.5, store_burst=5)
    async with _service(tmp_path, limits=limits) as node, _peers(node, 2) as (mallory, alice):
        statuses = [await _status(mallory, node) for _ in range(8)]
        assert statuses[:5] == [200] * 5 and set(statuses[5:]) == {429}
        assert await _status(alice, node) == 200
        served = node.metrics.store_queries.labels("429")._value.get()
        assert served == 3


async def test_an_honest_catch_up_rides_out_429s(tmp_path: Path) -> None:
    """A node rate-limits an honest client's catch-up too (here 2 pages at once,
    then 4 a second): the store client waits and asks again on 429 instead of
    ending the catch-up with a NetworkError after the second page."""
    limits = ServiceLimits(store_rate=4.0, store_burst=2)
    async with _service(tmp_path, limits=limits) as node, _peers(node, 1) as (alice,):
        assert node.archive is not None
        now = time.time_ns()
        node.archive.insert([_row(f"{i:04d}", now - 10_000 + i) for i in range(500)])
        spec = StoreQuerySpec(pubsub_topic=TOPIC, content_topics=(CT,), page_size=50)
        got = []
        with trio.fail_after(30):
            async for page in iter_pages(alice, node.peer_id, spec):
                got += [m.message.payload for m in page if m.message]
        assert got == [f"{i:04d}".encode() for i in range(500)]
        assert node.metrics.store_queries.labels("429")._value.get() > 0


async def test_fresh_peer_ids_get_busy_while_known_peers_keep_their_state(tmp_path: Path) -> None:
    """Attack: fresh peer ids (free to make) flood the per-peer rate table to
    grow it or to evict a throttled peer's drained bucket. The table stays
    bounded, the newcomers get 429, the known peers keep being served."""
    limits = ServiceLimits(store_rate=0.01, store_burst=3, max_peers=4, peer_admit_rate=0.001)
    async with _service(tmp_path, limits=limits) as node, _peers(node, 8) as hosts:
        known, fresh = hosts[:3], hosts[3:]
        for host in known:  # seen twice: known
            assert [await _status(host, node) for _ in range(2)] == [200, 200]
        statuses = [await _status(host, node) for host in fresh]
        assert statuses[0] == 200 and set(statuses[2:]) == {429}  # the budget: one turn-over
        assert node.store is not None and node.store.rate.tracked_peers <= 4
        assert [await _status(host, node) for host in known] == [200, 200, 200]
        assert await _status(known[0], node) == 429  # its drained bucket was not forgotten


async def test_answers_are_capped_in_bytes_and_page_on(tmp_path: Path) -> None:
    """Attack: ask for a full page of the largest messages (100 x 150 KiB, a
    15 MB answer) over and over. Answers now stop at the byte cap with a cursor
    (nothing lost: the client pages on), and their size is charged to the
    peer's rate."""
    limits = ServiceLimits(
        store_answer_bytes=64 * 1024,
        store_rate=0.5,
        store_burst=20,
        store_bytes_per_token=16 * 1024,
    )
    async with _service(tmp_path, limits=limits) as node, _peers(node, 1) as (mallory,):
        assert node.archive is not None
        now = time.time_ns()
        node.archive.insert([_row(f"{i:03d}" + "x" * 30_000, now - 100 + i) for i in range(10)])
        spec = StoreQuerySpec(pubsub_topic=TOPIC, content_topics=(CT,), page_size=100)
        sizes, seen, cursor = [], [], None
        while True:
            page, cursor = await query_page(mallory, node.peer_id, spec, cursor)
            sizes.append(sum(len(m.message.encode()) for m in page if m.message))
            seen += [m.message.payload[:3] for m in page if m.message]
            if cursor is None:
                break
        assert seen == [f"{i:03d}".encode() for i in range(10)]  # all, in order, once
        assert len(sizes) >= 5 and max(sizes) <= 64 * 1024
        # each ~60 KiB answer cost ~4 more tokens: the burst of 20 is gone
        assert await _status(mallory, node) == 429


async def _open_idle(host: IHost, node: WakuNode) -> object:
    return await host.new_stream(node.peer_id, [TProtocol(store.STORE_PROTOCOL_ID)])


async def _is_reset(stream: object) -> bool:
    with trio.fail_after(10):
        try:
            await stream.read(1)  # type: ignore[attr-defined]
        except StreamError:
            return True
    return False


async def _ask_on(stream: object) -> int:
    """A store query on an already open (pre-opened, idle) stream: its status."""
    payload = store.build_request("r1", pubsub_topic=TOPIC, content_topics=[CT])
    await write_frame(stream, payload)  # type: ignore[arg-type]
    await stream.close()  # type: ignore[attr-defined]
    reply = await read_frame(stream, 1 << 20)  # type: ignore[arg-type]
    return store.parse_response(reply).status_code


async def test_idle_streams_are_capped_per_peer_and_in_total(tmp_path: Path) -> None:
    """Attack: open idle service streams and never send a request (they used to
    live 120 s each, with no cap). js-waku's one idle pre-opened stream per
    protocol must keep working, also for an honest peer arriving at a full node."""
    limits = ServiceLimits(streams_per_peer=4, streams_total=8)
    async with _service(tmp_path, limits=limits) as node, _peers(node, 3) as (m1, m2, alice):
        held = [await _open_idle(m1, node) for _ in range(4)]
        extra = await _open_idle(m1, node)
        assert await _is_reset(extra)  # the per-peer cap
        held += [await _open_idle(m2, node) for _ in range(4)]
        with trio.fail_after(10):
            while node.stream_gate.open_total < 8:  # noqa: ASYNC110
                await trio.sleep(0.01)
        # the node is full; alice pre-opens one idle stream, as js-waku does
        pre_opened = await _open_idle(alice, node)
        await trio.sleep(0.2)
        assert await _ask_on(pre_opened) == 200  # used later: still served
        assert await _ask_on(held[1]) == 200  # m1's other idle streams too
        refused = node.metrics.registry.get_sample_value(
            "boxless_service_streams_refused_total", {"reason": "peer"}
        )
        evicted = node.metrics.registry.get_sample_value("boxless_service_streams_evicted_total")
        assert refused == 1 and evicted == 1
        assert await _is_reset(held[0])  # the heaviest holder's oldest made room


async def test_default_retention_has_count_and_byte_caps(tmp_path: Path) -> None:
    """Attack: publish junk for a month. Before, the default kept 30 days with
    no count or size cap: whatever fits in 30 days fills the disk."""
    default = RetentionPolicy()
    assert default.max_count is not None and default.max_bytes is not None
    policy = RetentionPolicy(max_count=5, max_bytes=10**9, interval_s=0.05)
    async with _service(tmp_path, retention=policy) as node:
        assert node.archive is not None
        now = time.time_ns()
        node.archive.insert([_row(f"junk {i}", now + i) for i in range(20)])
        with trio.fail_after(10):
            while node.archive.count() > 5:  # noqa: ASYNC110
                await trio.sleep(0.05)
        assert node.archive.count() == 5


async def test_a_future_dated_message_does_not_blind_catch_up(tmp_path: Path) -> None:
    """Attack: get a message dated +10 years to a light client (a lying store
    serves it). Its catch-up mark jumped there, and every later catch-up asked
    for messages after 2035: it fetched nothing, on every service peer."""
    async with _service(tmp_path, filter=True, lightpush=True) as node:
        assert node.archive is not None
        now = time.time_ns()
        node.archive.insert([_row("from the future", now + 10 * YEAR_NS)])
        light = LightNode(tmp_path / "light", [node.addrs()[0]], cluster_id=42)
        got: list[LightMessage] = []
        async with trio.open_nursery() as nursery:
            await nursery.start(light.run)
            async with light.messages() as recv:
                await light.subscribe([CT])
                with trio.fail_after(20):
                    got.append(await recv.receive())
                assert got[0].message.payload == b"from the future"
                assert light.last_received_ns is None or light.last_received_ns <= time.time_ns()
                # a message the light client missed (archived, never pushed by filter)
                node.archive.insert([_row("missed while away", time.time_ns())])
                assert light.current is not None
                await light._catch_up(light.current)
                with trio.fail_after(10):
                    got.append(await recv.receive())
                assert got[1].message.payload == b"missed while away"
            nursery.cancel_scope.cancel()


async def test_archive_writes_and_queries_never_wait_for_the_shared_threads(tmp_path: Path) -> None:
    """Attack: keep trio's 40 shared worker threads busy (before, store queries
    ran there, so 40 slow ones did this). Archive writes, which ran there too,
    then waited behind them and relay's queue backed up. Writes and queries
    now have threads of their own."""
    archive = open_archive(f"sqlite:///{tmp_path / 'a.db'}")
    archiver = Archiver(archive, NodeMetrics())
    host = build_host(create_new_key_pair(), LOOPBACK)
    service = StoreService(host, archive, NodeMetrics(), _no_violation)
    request = store.build_request("q", pubsub_topic=TOPIC, content_topics=[CT])
    release = threading.Event()
    try:
        async with trio.open_nursery() as nursery:
            try:
                default = trio.to_thread.current_default_thread_limiter()
                for _ in range(int(default.total_tokens)):
                    nursery.start_soon(trio.to_thread.run_sync, release.wait)
                await trio.sleep(0.1)
                assert default.borrowed_tokens == default.total_tokens
                nursery.start_soon(archiver.run)
                await archiver.put(_row("written", time.time_ns()))
                with trio.fail_after(10):
                    while archiver.flushed < 1:  # noqa: ASYNC110
                        await trio.sleep(0.01)
                    reply, status = await service.answer(request)
                assert status == 200 and len(store.parse_response(reply).messages) == 1
            finally:
                release.set()  # whatever happened: the blocked threads may end
                nursery.cancel_scope.cancel()
    finally:
        archive.close()


async def _no_violation(peer: object, protocol: str) -> None:
    raise AssertionError("no violation expected")
