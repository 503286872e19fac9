"""Archive throughput and page latency: SQLite vs PostgreSQL, same data, same queries.

Inserts N messages (1 KiB payloads, 10 content topics on one pubsub topic,
timestamps spread over the last 24 h with ns jitter and some ties) in batches,
then times ~1,000 random page queries: page size 20, one random content topic,
a random 1-6 h window, random direction, include_data on (as js-waku asks),
starting from a random stored message in the window (or the window's edge
one time in five). PostgreSQL is a throwaway server from tests/pgserver.py
started with fsync on and synchronous_commit off, the same durability as
SQLite's WAL + synchronous=NORMAL.

    python bench/bench_store.py [--n 100000] [--queries 1000] [--batch 100]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

# The PostgreSQL helper lives with the tests; run from anywhere.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from boxless.archive import Archive, ArchiveQuery, ArchiveRow, open_archive  # noqa: E402
from boxless.wire import message_pb2  # noqa: E402
from tests.pgserver import PgServer  # noqa: E402

PUBSUB = "/waku/2/rs/1/0"
TOPICS = tuple(f"/bench/1/topic-{i}/proto" for i in range(10))
DAY_NS = 24 * 3600 * 10**9
HOUR_NS = 3600 * 10**9


@dataclass(frozen=True)
class Result:
    backend: str
    rows: int
    insert_rate: float
    p50_ms: float
    p99_ms: float
    mean_rows: float


def make_rows(n: int, seed: int = 1) -> list[ArchiveRow]:
    """N realistic rows, ascending receive time, shuffled topics."""
    rng = random.Random(seed)
    now = time.time_ns()
    ts = now - DAY_NS
    step = DAY_NS // max(n, 1)
    rows: list[ArchiveRow] = []
    for i in range(n):
        ts += rng.randrange(0, 2 * step) if rng.random() > 0.05 else 0  # 5 % ties
        topic = rng.choice(TOPICS)
        payload = rng.randbytes(1024)
        encoded = message_pb2.WakuMessage(
            payload=payload, content_topic=topic, timestamp=ts
        ).SerializeToString()
        rows.append(
            ArchiveRow(
                message_hash=hashlib.sha256(b"%d" % i + encoded).digest(),
                pubsub_topic=PUBSUB,
                content_topic=topic,
                timestamp=ts,
                message=encoded,
                received_at=ts + rng.randrange(10**6, 10**8),
            )
        )
    return rows


def batches(rows: list[ArchiveRow], size: int) -> Iterator[list[ArchiveRow]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def make_queries(rows: list[ArchiveRow], count: int, seed: int = 2) -> list[ArchiveQuery]:
    rng = random.Random(seed)
    by_topic: dict[str, list[ArchiveRow]] = {t: [] for t in TOPICS}
    for r in rows:
        by_topic[r.content_topic].append(r)
    lo, hi = rows[0].timestamp, rows[-1].timestamp
    queries = []
    for _ in range(count):
        topic = rng.choice(TOPICS)
        width = rng.randrange(HOUR_NS, 6 * HOUR_NS)
        start = rng.randrange(lo, max(lo + 1, hi - width))
        end = start + width
        inside = [r for r in by_topic[topic] if start <= r.timestamp <= end]
        cursor = rng.choice(inside).message_hash if inside and rng.random() > 0.2 else None
        queries.append(
            ArchiveQuery(
                pubsub_topic=PUBSUB,
                content_topics=(topic,),
                time_start=start,
                time_end=end,
                cursor=cursor,
                forward=rng.random() < 0.5,
                limit=20,
                include_data=True,
            )
        )
    return queries


def run(
    name: str, archive: Archive, rows: list[ArchiveRow], qs: list[ArchiveQuery], batch: int
) -> Result:
    began = time.perf_counter()
    for chunk in batches(rows, batch):
        archive.insert(chunk)
    insert_s = time.perf_counter() - began
    assert archive.count() == len(rows)
    for q in qs[:50]:  # warm caches the same way for both engines
        archive.query(q)
    latencies: list[float] = []
    returned = 0
    for q in qs:
        t = time.perf_counter()
        page = archive.query(q)
        latencies.append((time.perf_counter() - t) * 1000)
        returned += len(page.rows)
    cuts = statistics.quantiles(latencies, n=100)
    return Result(name, len(rows), len(rows) / insert_s, cuts[49], cuts[98], returned / len(qs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="messages to insert")
    parser.add_argument("--queries", type=int, default=1000, help="page queries to time")
    parser.add_argument("--batch", type=int, default=100, help="rows per insert call")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()

    print(f"generating {args.n} messages and {args.queries} queries ...", flush=True)
    rows = make_rows(args.n)
    qs = make_queries(rows, args.queries)
    results = []
    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="boxless-bench-"))
        print("sqlite ...", flush=True)
        with open_archive(f"sqlite:///{os.path.join(tmp, 'archive.db')}") as sqlite_archive:
            results.append(run("sqlite", sqlite_archive, rows, qs, args.batch))
        if not args.skip_postgres:
            print("postgresql ...", flush=True)
            server = PgServer.start(durable=True)
            stack.callback(server.stop)
            with open_archive(server.url) as pg_archive:
                results.append(run("postgresql", pg_archive, rows, qs, args.batch))

    print()
    print(f"{args.n} msgs x 1 KiB, insert batches of {args.batch}; {args.queries} pages of 20")
    print(
        f"{'backend':<11} {'insert msg/s':>13} {'page p50 ms':>12} {'page p99 ms':>12} {'rows/page':>10}"
    )
    for r in results:
        print(
            f"{r.backend:<11} {r.insert_rate:>13,.0f} {r.p50_ms:>12.2f} "
            f"{r.p99_ms:>12.2f} {r.mean_rows:>10.1f}"
        )


if __name__ == "__main__":
    main()
