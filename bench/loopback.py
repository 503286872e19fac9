"""Shared by the loopback latency benches (bench_chat.py, bench_bots.py).

:func:`two_light_clients` starts service nodes S1–S2 (relay, store, filter, light
push; S2 peered to S1) and two light clients with their own encrypted databases,
the first on S1 and the second on S2. :func:`latency_main` runs a bench's
``run(base, n)`` in a temporary folder and prints its latencies as a Markdown row.

Imported as a sibling module (``from loopback import ...``): a bench is run as
``python bench/<name>.py``, which puts ``bench/`` on ``sys.path``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from boxless.client.core import Client  # noqa: E402
from tests.chat_fixtures import make_account, running_client, start_service  # noqa: E402


@asynccontextmanager
async def two_light_clients(
    nursery: trio.Nursery, base: Path, first: str, second: str
) -> AsyncIterator[tuple[Client, Client]]:
    """Accounts ``first`` and ``second`` (display names title-cased) running as light
    clients of S1 and S2; the nodes run in ``nursery`` (cancel it when done)."""
    for name in (first, second):
        make_account(base / name, name.title()).close()
    s1 = await start_service(nursery, base, "s1")
    s2 = await start_service(nursery, base, "s2", peers=(s1.addrs()[0],))
    async with (
        running_client(base / first, [s1.addrs()[0]]) as a,
        running_client(base / second, [s2.addrs()[0]]) as b,
    ):
        yield a, b


def latency_main(
    run: Callable[[Path, int], Awaitable[list[float]]], what: str, percentiles: tuple[int, ...]
) -> None:
    """Parse ``-n``, run the bench, print ``| n | p50 | p… | mean | max |`` in ms.

    p50 is the median; every other percentile p is the sorted list's element
    ``int(len * (p / 100)) - 1``."""
    logging.getLogger("libp2p").setLevel(logging.CRITICAL)
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200)
    n = ap.parse_args().n
    with tempfile.TemporaryDirectory() as tmp:
        lat = trio.run(run, Path(tmp), n)
    lat.sort()
    heads = [f"p{p} ms" for p in percentiles] + ["mean ms", "max ms"]
    cells = [
        statistics.median(lat) if p == 50 else lat[int(len(lat) * (p / 100)) - 1]
        for p in percentiles
    ] + [statistics.fmean(lat), lat[-1]]
    print(f"| {what} | " + " | ".join(heads) + " |")
    print("|---" * (len(heads) + 1) + "|")
    print(f"| {n} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")
