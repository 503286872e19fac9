"""A service node under a flood, with an honest light client beside it (issue 10).

One run, three scenarios, each on a fresh node (relay + store + filter + light
push, SQLite, 20,000 archived 1 KiB messages):

- ``no flood``: the honest client alone (the baseline);
- ``flood, limits off``: every limit of ``ServiceLimits`` set out of reach
  (as before issue 10: no 429, no stream caps, the 40 shared threads);
- ``flood, limits on``: the defaults.

The flood comes from a separate process (``--attack``, so it does not share
the node's interpreter): ``--fresh`` fresh peer ids, each holding idle
service streams (store, light push, filter: 3 x ``--idle`` per id, never
sending a request) and running ``--loops`` back-to-back store queries for a
full page (100 x 1 KiB) each; plus one peer running ``--one-peer-loops`` loops.

Meanwhile the honest client does ``--rounds`` rounds of one store query
(its topic, page of 20) and one light push, and we report latency (p50/p95/
max) and success, whether every pushed message reached the archive, and the
node's counters.

    python bench/bench_flood.py [--fresh 40] [--idle 50] [--loops 2] [--one-peer-loops 16]
                                [--rounds 40] [--only 0 1 2 3 4]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import multiaddr
import trio
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trio.lowlevel

from boxless.archive import ArchiveRow  # noqa: E402
from boxless.errors import BoxlessError  # noqa: E402
from boxless.node.config import NodeConfig, ServiceLimits  # noqa: E402
from boxless.node.host import build_host  # noqa: E402
from boxless.node.libp2p_shims import DIAL_ERRORS  # noqa: E402
from boxless.node.lightpush import lightpush  # noqa: E402
from boxless.node.peering import parse_peer  # noqa: E402
from boxless.node.service import WakuNode  # noqa: E402
from boxless.node.store_client import StoreQuerySpec, query_page  # noqa: E402
from boxless.waku import filter as fc  # noqa: E402
from boxless.waku import lightpush as lp  # noqa: E402
from boxless.waku import store  # noqa: E402
from boxless.waku.message import WakuMessage, message_hash  # noqa: E402
from boxless.waku.sharding import pubsub_topic_for  # noqa: E402

HONEST_CT = "/bench/1/honest/proto"
BULK_CT = "/bench/1/bulk/proto"
BIG_CT = "/bench/1/big/proto"
BIG_PAYLOAD = 145 * 1024  # a page of 100 of these is a ~15 MB answer when nothing caps it
PUBSUB = pubsub_topic_for(HONEST_CT, 42)
BULK_PUBSUB = pubsub_topic_for(BULK_CT, 42)
BIG_PUBSUB = pubsub_topic_for(BIG_CT, 42)
LOOPBACK = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
NO_LIMITS = ServiceLimits(
    store_rate=1e9,
    store_burst=10**9,
    store_in_flight=10**9,
    store_threads=40,
    store_queue=10**9,
    max_peers=10**9,
    peer_admit_rate=1e9,
    streams_per_peer=10**6,
    streams_total=10**9,
)


# -- the attacker (a separate process) -----------------------------------------------


async def _query_loop(host: IHost, peer: object, stop: float, big: bool) -> None:
    ct, topic = (BIG_CT, BIG_PUBSUB) if big else (BULK_CT, BULK_PUBSUB)
    spec = StoreQuerySpec(pubsub_topic=topic, content_topics=(ct,), page_size=100)
    while time.monotonic() < stop:
        try:
            await query_page(host, peer, spec, None)  # type: ignore[arg-type]
        except BoxlessError:
            await trio.lowlevel.checkpoint()  # refused: ask again at once, as a flood does


async def _hold_idle(host: IHost, peer: object, count: int) -> None:
    protocols = [store.STORE_PROTOCOL_ID, lp.LIGHTPUSH_V3, fc.FILTER_SUBSCRIBE_PROTOCOL]
    for protocol in protocols:
        for _ in range(count):
            try:
                await host.new_stream(peer, [TProtocol(protocol)])  # type: ignore[arg-type]
            except DIAL_ERRORS:
                return


async def _attacker(
    host: IHost, target: str, args: argparse.Namespace, loops: int, idle: int, big: bool
) -> None:
    info = parse_peer(target)
    async with host.run(LOOPBACK):
        try:
            await host.connect(info)
        except DIAL_ERRORS:
            return
        stop = time.monotonic() + args.duration
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_hold_idle, host, info.peer_id, idle)
            for _ in range(loops):
                nursery.start_soon(_query_loop, host, info.peer_id, stop, big)
            await trio.sleep(args.duration)
            nursery.cancel_scope.cancel()


async def attack(target: str, args: argparse.Namespace) -> None:
    async with trio.open_nursery() as nursery:
        if args.attack_shape == "one":
            host = build_host(create_new_key_pair(), LOOPBACK)
            nursery.start_soon(_attacker, host, target, args, args.one_peer, 0, True)
            return
        for _ in range(args.fresh):
            host = build_host(create_new_key_pair(), LOOPBACK)
            nursery.start_soon(_attacker, host, target, args, args.loops, args.idle, False)
            await trio.sleep(0.02)


# -- the node and the honest client ---------------------------------------------------


def _bulk_rows(n: int, now: int) -> list[ArchiveRow]:
    rng = random.Random(7)
    out = []
    for i in range(n):
        ts = now - (n - i) * 10**6
        msg = WakuMessage(rng.randbytes(1024), BULK_CT, timestamp=ts)
        row = ArchiveRow(message_hash(BULK_PUBSUB, msg), BULK_PUBSUB, BULK_CT, ts, msg.encode(), ts)
        out.append(row)
    for i in range(200):
        ts = now - (200 - i) * 10**6
        msg = WakuMessage(rng.randbytes(BIG_PAYLOAD), BIG_CT, timestamp=ts)
        out.append(
            ArchiveRow(message_hash(BIG_PUBSUB, msg), BIG_PUBSUB, BIG_CT, ts, msg.encode(), ts)
        )
    return out


@dataclass
class Outcome:
    name: str
    query_ms: list[float]
    query_ok: int
    push_ms: list[float]
    push_ok: int
    archived: int
    rounds: int
    counters: dict[str, float]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@asynccontextmanager
async def _flood(node: WakuNode, args: argparse.Namespace, shape: str) -> AsyncIterator[None]:
    if not shape:
        yield
        return
    cmd = [sys.executable, __file__, "--attack", node.addrs()[0], "--attack-shape", shape]
    cmd += ["--fresh", str(args.fresh), "--idle", str(args.idle), "--loops", str(args.loops)]
    cmd += ["--one-peer-loops", str(args.one_peer)]
    proc = await trio.lowlevel.open_process(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await trio.sleep(args.ramp)
        yield
    finally:
        proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()


async def _honest_round(host: IHost, peer: object, i: int, out: Outcome) -> bytes | None:
    spec = StoreQuerySpec(pubsub_topic=PUBSUB, content_topics=(HONEST_CT,), page_size=20)
    started = time.perf_counter()
    try:
        with trio.fail_after(10):
            await query_page(host, peer, spec, None)  # type: ignore[arg-type]
        out.query_ok += 1
    except (BoxlessError, trio.TooSlowError):
        pass
    out.query_ms.append((time.perf_counter() - started) * 1000)
    msg = WakuMessage(f"honest {i}".encode(), HONEST_CT, timestamp=time.time_ns())
    started = time.perf_counter()
    digest = None
    try:
        with trio.fail_after(10):
            res = await lightpush(host, peer, msg)  # type: ignore[arg-type]
        if res.ok:
            out.push_ok += 1
            digest = message_hash(PUBSUB, msg)
    except (BoxlessError, trio.TooSlowError):
        pass
    out.push_ms.append((time.perf_counter() - started) * 1000)
    return digest


async def honest(target: str, args: argparse.Namespace) -> None:
    """The honest light client, in a process of its own: prints one JSON line."""
    info = parse_peer(target)
    host = build_host(create_new_key_pair(), LOOPBACK)
    out = Outcome("", [], 0, [], 0, 0, args.rounds, {})
    pushed = []
    async with host.run(LOOPBACK):
        with trio.fail_after(30):
            await host.connect(info)
        for i in range(args.rounds):
            digest = await _honest_round(host, info.peer_id, i, out)
            if digest is not None:
                pushed.append(digest.hex())
            await trio.sleep(args.pause)
    report = {
        "query_ms": out.query_ms,
        "query_ok": out.query_ok,
        "push_ms": out.push_ms,
        "push_ok": out.push_ok,
        "pushed": pushed,
    }
    print(json.dumps(report), flush=True)


def _counters(node: WakuNode) -> dict[str, float]:
    reg = node.metrics.registry

    def get(name: str, labels: dict[str, str] | None = None) -> float:
        return reg.get_sample_value(name, labels or {}) or 0.0

    return {
        "store 429": get("boxless_store_queries_total", {"status": "429"}),
        "store 503": get("boxless_store_queries_total", {"status": "503"}),
        "store 200": get("boxless_store_queries_total", {"status": "200"}),
        "streams refused": get("boxless_service_streams_refused_total", {"reason": "peer"})
        + get("boxless_service_streams_refused_total", {"reason": "total"}),
        "streams evicted": get("boxless_service_streams_evicted_total"),
        "streams open (end)": float(node.stream_gate.open_total),
        "RSS MiB (end)": _rss_mib(),
    }


def _rss_mib() -> float:
    """This process's resident memory now: the node's, as each scenario runs in
    a process of its own and flood and honest client in others."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def scenario(
    name: str, args: argparse.Namespace, flood: str, limits: ServiceLimits
) -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        config = NodeConfig(
            data_dir=Path(tmp),
            listen=("/ip4/127.0.0.1/tcp/0",),
            store=True,
            filter=True,
            lightpush=True,
            store_resume=False,
            peer_exchange=False,
            limits=limits,
        )
        out = Outcome(name, [], 0, [], 0, 0, args.rounds, {})
        async with trio.open_nursery() as nursery:
            node: WakuNode = await nursery.start(WakuNode(config).run)
            assert node.archive is not None
            rows = _bulk_rows(args.messages, time.time_ns())
            for i in range(0, len(rows), 2000):
                await trio.to_thread.run_sync(node.archive.insert, rows[i : i + 2000])
            async with _flood(node, args, flood):
                cmd = [sys.executable, __file__, "--honest", node.addrs()[0]]
                cmd += ["--rounds", str(args.rounds), "--pause", str(args.pause)]
                done = await trio.run_process(cmd, capture_stdout=True, stderr=subprocess.DEVNULL)
                report = json.loads(done.stdout.decode().strip().splitlines()[-1])
                out.query_ms, out.query_ok = report["query_ms"], report["query_ok"]
                out.push_ms, out.push_ok = report["push_ms"], report["push_ok"]
                pushed = [bytes.fromhex(h) for h in report["pushed"]]
                await trio.sleep(2.0)  # the archiver's batch
                out.counters = _counters(node)
            archive = node.archive
            stored = await trio.to_thread.run_sync(
                lambda: archive.query(_by_hash(pushed)).rows if pushed else ()
            )
            out.archived = len(stored)
            nursery.cancel_scope.cancel()
        return out


def _by_hash(hashes: list[bytes]):  # type: ignore[no-untyped-def]
    from boxless.archive import ArchiveQuery

    return ArchiveQuery(message_hashes=tuple(hashes), limit=len(hashes))


def _row_text(o: Outcome) -> str:
    return (
        f"| {o.name} | {o.query_ok}/{o.rounds} | {_pct(o.query_ms, 0.5):.0f} | "
        f"{_pct(o.query_ms, 0.95):.0f} | {max(o.query_ms):.0f} | {o.push_ok}/{o.rounds} | "
        f"{_pct(o.push_ms, 0.5):.0f} | {_pct(o.push_ms, 0.95):.0f} | {o.archived}/{o.push_ok} |"
    )


PLAN = [
    ("no flood", "", ServiceLimits()),
    ("one peer, limits off", "one", NO_LIMITS),
    ("one peer, limits on", "one", ServiceLimits()),
    ("fresh ids, limits off", "many", NO_LIMITS),
    ("fresh ids, limits on", "many", ServiceLimits()),
]


async def one_scenario(index: int, args: argparse.Namespace) -> None:
    """Run scenario ``index`` (a process of its own, so memory figures are its own)."""
    name, flood, limits = PLAN[index]
    print(json.dumps(dataclasses.asdict(await scenario(name, args, flood, limits))), flush=True)


async def main(args: argparse.Namespace) -> None:
    outcomes = []
    for i in range(len(PLAN)):
        if args.only is not None and i not in args.only:
            continue
        cmd = [sys.executable, __file__, "--scenario", str(i), *sys.argv[1:]]
        done = await trio.run_process(cmd, capture_stdout=True, stderr=subprocess.DEVNULL)
        outcomes.append(Outcome(**json.loads(done.stdout.decode().strip().splitlines()[-1])))
    print(
        f"\none peer: {args.one_peer} back-to-back query loops for 100 x 145 KiB pages; "
        f"fresh ids: {args.fresh} peer ids x ({3 * args.idle} idle streams + {args.loops} "
        f"query loops for 100 x 1 KiB pages); {args.rounds} honest rounds; "
        f"{os.cpu_count()} CPUs\n"
    )
    print(
        "| scenario | honest queries ok | query p50 ms | p95 ms | max ms | "
        "honest pushes ok | push p50 ms | p95 ms | pushed and archived |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for o in outcomes:
        print(_row_text(o))
    print()
    for o in outcomes:
        print(o.name + ": " + ", ".join(f"{k} {v:.0f}" for k, v in o.counters.items()))


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--fresh", type=int, default=40, help="fresh peer ids in the flood")
    p.add_argument("--idle", type=int, default=50, help="idle streams per protocol per fresh id")
    p.add_argument("--loops", type=int, default=2, help="query loops per fresh id")
    p.add_argument("--one-peer-loops", dest="one_peer", type=int, default=16)
    p.add_argument("--rounds", type=int, default=40, help="honest query + push rounds")
    p.add_argument("--pause", type=float, default=0.1, help="seconds between honest rounds")
    p.add_argument("--ramp", type=float, default=5.0, help="seconds of flood before measuring")
    p.add_argument("--messages", type=int, default=20_000, help="archived bulk messages")
    p.add_argument("--only", type=int, nargs="*", help="run these scenarios only (0, 1, 2)")
    p.add_argument("--attack", metavar="MULTIADDR", help=argparse.SUPPRESS)
    p.add_argument("--honest", metavar="MULTIADDR", help=argparse.SUPPRESS)
    p.add_argument("--scenario", type=int, help=argparse.SUPPRESS)
    p.add_argument("--duration", type=float, default=600.0, help=argparse.SUPPRESS)
    p.add_argument("--attack-shape", dest="attack_shape", default="many", help=argparse.SUPPRESS)
    return p.parse_args()


if __name__ == "__main__":
    ARGS = _args()
    if ARGS.attack:
        trio.run(attack, ARGS.attack, ARGS)
    elif ARGS.honest:
        trio.run(honest, ARGS.honest, ARGS)
    elif ARGS.scenario is not None:
        trio.run(one_scenario, ARGS.scenario, ARGS)
    else:
        trio.run(main, ARGS)
