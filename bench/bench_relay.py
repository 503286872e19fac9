"""Relay throughput: a line A-B-C of real hosts over loopback TCP, one process.

A publishes N messages of SIZE bytes, back-to-back (burst: latency there is
mostly queueing) or paced at ``--rate`` msg/s (latency of a sustained load); C
counts deliveries. Each payload starts with the send time (perf_counter, 8
bytes) for latency. ``cpu us/msg`` is the process CPU time per delivered
message: steadier than msg/s on a shared machine.

    python bench/bench_relay.py [-n 3000] [--size 1024] [--mplex] [--rate 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import struct
import time

import multiaddr
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.peerinfo import PeerInfo

from boxless.node.host import build_host
from boxless.node.relay import WakuRelay

TOPIC = "/waku/2/rs/1/0"
LOOPBACK = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]


async def run(n: int, size: int, mplex: bool, rate: float | None) -> dict[str, float]:
    hosts = [build_host(create_new_key_pair(), LOOPBACK, prefer_mplex=mplex) for _ in range(3)]
    async with (
        hosts[0].run(LOOPBACK),
        hosts[1].run(LOOPBACK),
        hosts[2].run(LOOPBACK),
        trio.open_nursery() as nursery,
    ):
        relays = [WakuRelay(h) for h in hosts]
        for r in relays:
            await nursery.start(r.run)
        subs = [await r.subscribe(TOPIC) for r in relays]
        for a, b in ((hosts[0], hosts[1]), (hosts[1], hosts[2])):
            await a.connect(PeerInfo(b.get_id(), b.get_addrs()))
        with trio.fail_after(10):
            while not (relays[0].mesh_peers(TOPIC) and relays[2].mesh_peers(TOPIC)):  # noqa: ASYNC110 - no event for it
                await trio.sleep(0.05)

        latencies: list[float] = []
        done = trio.Event()

        async def sink(i: int) -> None:
            async for m in subs[i]:
                if i == 2:
                    latencies.append(time.perf_counter() - struct.unpack(">d", m.data[:8])[0])
                    if len(latencies) == n:
                        done.set()

        for i in range(3):
            nursery.start_soon(sink, i)
        filler = bytes(size - 16)
        start, cpu_start, t0 = time.perf_counter(), time.process_time(), trio.current_time()
        for i in range(n):
            if rate is not None:
                await trio.sleep_until(t0 + i / rate)
            await relays[0].publish(TOPIC, struct.pack(">dQ", time.perf_counter(), i) + filler)
        published = time.perf_counter() - start
        with trio.move_on_after(30):
            await done.wait()
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        nursery.cancel_scope.cancel()
    lat = sorted(latencies) or [float("nan")]
    drops = sum(r.metrics.dropped_outbound + r.metrics.dropped_delivery for r in relays)
    return {
        "delivered": len(latencies),
        "publish_s": published,
        "msg_per_s": len(latencies) / elapsed,
        "cpu_us_per_msg": 1e6 * cpu / max(len(latencies), 1),
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "counted_drops": drops,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=3000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--mplex", action="store_true", help="prefer mplex over yamux")
    parser.add_argument("--rate", type=float, help="publish at this many msg/s (default: burst)")
    parser.add_argument("--repeat", type=int, default=1, help="runs, one row each")
    args = parser.parse_args()
    muxer = "mplex" if args.mplex else "yamux"
    mode = f"paced {args.rate:g}/s" if args.rate else "burst"
    print("| setup | N | delivered at C | msg/s | p50 ms | p99 ms | cpu us/msg | counted drops |")
    print("|---|---|---|---|---|---|---|---|")
    for _ in range(args.repeat):
        r = trio.run(run, args.n, args.size, args.mplex, args.rate)
        print(
            f"| A-B-C one process, {muxer}, {args.size} B, {mode} | {args.n} "
            f"| {r['delivered']:.0f} | {r['msg_per_s']:.0f} | {r['p50_ms']:.1f} "
            f"| {r['p99_ms']:.1f} | {r['cpu_us_per_msg']:.0f} | {r['counted_drops']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
