"""Store queries over the wire: a real node with N archived messages, a real
client on loopback, ~1,000 random paginated queries through libp2p
(/vac/waku/store-query/3.0.0), p50/p99 end to end.

This adds what bench_store.py leaves out: framing, protobuf, Noise, the muxer
and the worker-thread hop. SQLite by default; --pg uses a throwaway PostgreSQL.

    python bench/bench_store_net.py [--n 100000] [--queries 1000] [--pg]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import multiaddr
import trio
from libp2p.crypto.ed25519 import create_new_key_pair

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from boxless.archive import ArchiveRow  # noqa: E402
from boxless.node.config import NodeConfig  # noqa: E402
from boxless.node.host import build_host  # noqa: E402
from boxless.node.peering import parse_peer  # noqa: E402
from boxless.node.service import WakuNode  # noqa: E402
from boxless.node.store_client import StoreQuerySpec, query_page  # noqa: E402
from boxless.waku.message import WakuMessage, message_hash  # noqa: E402
from boxless.waku.sharding import pubsub_topic_for  # noqa: E402

TOPICS = tuple(f"/bench/1/topic-{i}/proto" for i in range(10))
PUBSUB = pubsub_topic_for(TOPICS[0], 42)
HOUR = 3600 * 10**9
LOOPBACK = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]


def _rows(n: int, now: int) -> list[ArchiveRow]:
    rng = random.Random(7)
    out = []
    for i in range(n):
        ts = now - rng.randrange(24 * HOUR)
        msg = WakuMessage(rng.randbytes(1024), TOPICS[i % 10], timestamp=ts)
        out.append(
            ArchiveRow(message_hash(PUBSUB, msg), PUBSUB, msg.content_topic, ts, msg.encode(), now)
        )
    return out


async def run(n: int, queries: int, db_url: str | None, base: Path) -> dict[str, float]:
    now = time.time_ns()
    config = NodeConfig(
        data_dir=base,
        listen=("/ip4/127.0.0.1/tcp/0",),
        store=True,
        db_url=db_url,
        store_resume=False,
    )
    async with trio.open_nursery() as nursery:
        node: WakuNode = await nursery.start(WakuNode(config).run)
        assert node.archive is not None
        rows = _rows(n, now)
        for i in range(0, n, 1000):
            await trio.to_thread.run_sync(node.archive.insert, rows[i : i + 1000])
        client = build_host(create_new_key_pair(), LOOPBACK)
        rng = random.Random(11)
        lat = []
        async with client.run(LOOPBACK):
            await client.connect(parse_peer(node.addrs()[0]))
            for _ in range(queries):
                start = now - rng.randrange(24 * HOUR)
                spec = StoreQuerySpec(
                    pubsub_topic=PUBSUB,
                    content_topics=(rng.choice(TOPICS),),
                    time_start=start,
                    time_end=start + rng.randrange(1, 6) * HOUR,
                    forward=rng.random() < 0.5,
                    page_size=20,
                )
                t0 = time.perf_counter()
                page, _ = await query_page(client, node.peer_id, spec, None)
                lat.append((time.perf_counter() - t0) * 1000)
                assert page
        nursery.cancel_scope.cancel()
    lat.sort()
    return {
        "p50": statistics.median(lat),
        "p99": lat[int(len(lat) * 0.99) - 1],
        "mean": statistics.fmean(lat),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.pg:
            from tests.pgserver import PgServer

            server = PgServer.start(durable=True)
            try:
                res = trio.run(run, args.n, args.queries, server.url, Path(tmp))
            finally:
                server.stop()
        else:
            res = trio.run(run, args.n, args.queries, None, Path(tmp))
    backend = "postgresql" if args.pg else "sqlite"
    print(
        f"| {backend} | {args.n:,} | {args.queries} | {res['p50']:.2f} | {res['p99']:.2f} | {res['mean']:.2f} |"
    )


if __name__ == "__main__":
    main()
