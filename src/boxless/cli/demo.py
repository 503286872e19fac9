"""``boxless demo``: a small local Waku network, live, in one command.

Three service nodes (relay + store, SQLite archives) in a line A–B–C on
loopback. Two of them publish a message a second on a demo content topic;
every node shows what it received, and the end-of-run summary queries C's
store over the network. The web UI issue turns this into two people chatting.
"""

from __future__ import annotations

import io
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import trio
from rich.console import Console
from rich.live import Live
from rich.table import Table

from boxless.cli.safe import markup
from boxless.node.config import NodeConfig
from boxless.node.peering import parse_peer
from boxless.node.service import WakuNode
from boxless.node.store_client import StoreQuerySpec, iter_pages
from boxless.waku.message import WakuMessage
from boxless.waku.sharding import DEFAULT_CLUSTER_ID, pubsub_topic_for

CONTENT_TOPIC = "/boxless/1/demo/proto"
NAMES = ("A", "B", "C")


@dataclass
class NodeView:
    name: str
    node: WakuNode
    received: int = 0
    last: str = "-"
    latencies_ms: list[float] = field(default_factory=list)


def _table(views: list[NodeView], topic: str, started: float) -> Table:
    table = Table(
        title=f"Boxless demo — {topic} — {time.monotonic() - started:.0f}s (Ctrl-C to stop)"
    )
    for col in ("node", "peer id", "peers", "mesh", "received", "last message", "latency p50"):
        table.add_column(col)
    for v in views:
        relay = v.node.relay
        lat = sorted(v.latencies_ms)
        p50 = f"{lat[len(lat) // 2]:.1f} ms" if lat else "-"
        table.add_row(
            v.name,
            str(v.node.peer_id)[-8:],
            str(len(v.node.host.get_connected_peers())),
            str(len(relay.mesh_peers(topic))) if relay else "-",
            str(v.received),
            markup(v.last),
            p50,
        )
    return table


async def _watch(view: NodeView) -> None:
    async with view.node.messages() as messages:
        async for item in messages:
            view.received += 1
            text = item.message.payload.decode("utf-8", "replace")
            view.last = text
            if item.message.timestamp:
                view.latencies_ms.append((time.time_ns() - item.message.timestamp) / 1e6)


async def _chatter(view: NodeView, topic: str, interval: float) -> None:
    n = 0
    while True:
        n += 1
        msg = WakuMessage(
            payload=f"hello #{n} from {view.name}".encode(),
            content_topic=CONTENT_TOPIC,
            timestamp=time.time_ns(),
        )
        await view.node.publish(topic, msg)
        await trio.sleep(interval)


async def run_demo(
    base: Path, duration: float | None, interval: float, svg: Path | None = None
) -> None:
    """Run the demo network until ``duration`` seconds pass or Ctrl-C."""
    topic = pubsub_topic_for(CONTENT_TOPIC, DEFAULT_CLUSTER_ID)
    views: list[NodeView] = []
    started = time.monotonic()
    async with trio.open_nursery() as nursery:
        for name in NAMES:
            peers = (views[-1].node.addrs()[0],) if views else ()
            config = NodeConfig(
                data_dir=base / name,
                listen=("/ip4/127.0.0.1/tcp/0",),
                peers=peers,
                store=True,
                store_resume=False,
            )
            node = await nursery.start(WakuNode(config).run)
            views.append(NodeView(name, node))
            nursery.start_soon(_watch, views[-1])
        with trio.move_on_after(15):
            while not all(v.node.relay and v.node.relay.mesh_peers(topic) for v in views):  # noqa: ASYNC110
                await trio.sleep(0.1)
        nursery.start_soon(_chatter, views[0], topic, interval)
        nursery.start_soon(_chatter, views[-1], topic, interval)
        try:
            with Live(_table(views, topic, started), refresh_per_second=4) as live:
                with trio.move_on_after(duration if duration is not None else float("inf")) as run:
                    nursery.start_soon(_cancel_on_sigint, run)
                    while True:
                        live.update(_table(views, topic, started))
                        await trio.sleep(0.25)
            if svg is not None:
                _save_svg(_table(views, topic, started), svg)
            await _summary(views, topic)
        finally:
            nursery.cancel_scope.cancel()


async def _cancel_on_sigint(scope: trio.CancelScope) -> None:
    """Ctrl-C ends the live view (then the summary runs and everything stops)."""
    with trio.open_signal_receiver(signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()
            return


def _save_svg(table: Table, path: Path) -> None:
    """Render ``table`` as an SVG terminal picture (for docs)."""
    console = Console(record=True, width=100, file=io.StringIO())
    console.print(table)
    console.save_svg(str(path), title="boxless demo")


async def _summary(views: list[NodeView], topic: str) -> None:
    first, last = views[0], views[-1]
    spec = StoreQuerySpec(pubsub_topic=topic, content_topics=(CONTENT_TOPIC,), page_size=100)
    await first.node.host.connect(parse_peer(last.node.addrs()[0]))
    total = 0
    async for page in iter_pages(first.node.host, last.node.peer_id, spec):
        total += len(page)
    print(
        f"\nStore query from {first.name} to {last.name}: {total} messages archived on {last.name}."
    )
    for v in views:
        print(f"  {v.name}: received {v.received}")


def main(
    duration: float | None, interval: float, data_dir: Path | None, svg: Path | None = None
) -> None:
    if data_dir is not None:
        trio.run(run_demo, data_dir, duration, interval, svg)
        return
    with tempfile.TemporaryDirectory(prefix="boxless-demo-") as tmp:
        trio.run(run_demo, Path(tmp), duration, interval, svg)
