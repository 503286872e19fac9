"""Bandwidth of an idle light client versus a relay node on a busy shard.

One process, real hosts on loopback: a service node S (relay + filter + light
push), a publisher P (relay) sending RATE msg/s of SIZE-byte payloads on
content topics nobody below subscribes to, a relay node R on the same shard,
and a light client L subscribed by filter to 10 content topics of the same
shard (autosharding puts /boxbench/1/* on one shard) that get no traffic. L
and R each count the bytes on their libp2p connections (Noise and muxer
framing included, TCP/IP headers not); figures are scaled to one hour.

    python bench/bench_light_bandwidth.py [--seconds 90] [--rate 100] [--size 512]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import trio

from boxless.node.config import NodeConfig
from boxless.node.light import LightNode
from boxless.node.service import WakuNode
from boxless.waku.message import WakuMessage
from boxless.waku.sharding import pubsub_topic_for, shard_for_content_topic

APP = "/boxbench/1"
QUIET = [f"{APP}/quiet-{i}/proto" for i in range(10)]
BUSY = [f"{APP}/busy-{i}/proto" for i in range(10)]
LOOP = ("/ip4/127.0.0.1/tcp/0",)


async def _wait(cond, what: str, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(timeout):
        while not cond():  # noqa: ASYNC110  (no events for these conditions)
            await trio.sleep(0.05)


async def run(base: Path, seconds: float, rate: float, size: int) -> dict[str, float]:
    shard = shard_for_content_topic(QUIET[0])
    topic = pubsub_topic_for(QUIET[0], 42)
    assert all(shard_for_content_topic(t) == shard for t in QUIET + BUSY)
    async with trio.open_nursery() as nursery:
        s = await nursery.start(
            WakuNode(
                NodeConfig(base / "s", LOOP, filter=True, lightpush=True, store_resume=False)
            ).run
        )
        peer = (s.addrs()[0],)
        p = await nursery.start(
            WakuNode(NodeConfig(base / "p", LOOP, peers=peer, shards=(shard,))).run
        )
        r = await nursery.start(
            WakuNode(NodeConfig(base / "r", LOOP, peers=peer, shards=(shard,))).run
        )
        light = LightNode(base / "l", [s.addrs()[0]])
        await nursery.start(light.run)
        await light.subscribe(QUIET)
        await _wait(lambda: light.current is not None, "light subscription")
        await _wait(lambda: p.relay.mesh_peers(topic) and r.relay.mesh_peers(topic), "meshes")
        await trio.sleep(2)  # let identify/metadata/subscription chatter settle
        l0 = (light.metrics.traffic.bytes_in, light.metrics.traffic.bytes_out)
        r0 = (r.metrics.traffic.bytes_in, r.metrics.traffic.bytes_out)
        sent = 0
        start = time.monotonic()
        interval = 1.0 / rate
        while time.monotonic() - start < seconds:
            msg = WakuMessage(bytes(size), BUSY[sent % 10], timestamp=time.time_ns())
            await p.publish(topic, msg)
            sent += 1
            await trio.sleep(max(0.0, start + sent * interval - time.monotonic()))
        elapsed = time.monotonic() - start
        out = {
            "sent": sent,
            "elapsed": elapsed,
            "light_in": light.metrics.traffic.bytes_in - l0[0],
            "light_out": light.metrics.traffic.bytes_out - l0[1],
            "relay_in": r.metrics.traffic.bytes_in - r0[0],
            "relay_out": r.metrics.traffic.bytes_out - r0[1],
            "relay_received": r.metrics.relay_received._value.get(),
        }
        nursery.cancel_scope.cancel()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=90)
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--size", type=int, default=512)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        res = trio.run(run, Path(tmp), a.seconds, a.rate, a.size)
    hour = 3600 / res["elapsed"]
    light = (res["light_in"] + res["light_out"]) * hour
    relay = (res["relay_in"] + res["relay_out"]) * hour
    print(
        f"{res['sent']} msgs of {a.size} B in {res['elapsed']:.0f}s "
        f"({res['sent'] / res['elapsed']:.0f} msg/s); relay node received {res['relay_received']:.0f}"
    )
    print("| node | in MB/h | out MB/h | total MB/h |")
    print("|---|---|---|---|")
    for name, i, o in (
        ("light client (10 quiet topics)", res["light_in"], res["light_out"]),
        ("relay node (same shard)", res["relay_in"], res["relay_out"]),
    ):
        print(
            f"| {name} | {i * hour / 1e6:.3f} | {o * hour / 1e6:.3f} | {(i + o) * hour / 1e6:.3f} |"
        )
    print(f"ratio light/relay: {light / relay:.5f} (1 : {relay / max(light, 1):,.0f})")


if __name__ == "__main__":
    main()
