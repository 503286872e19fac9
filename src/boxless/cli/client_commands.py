"""Debug clients of a running node: ``boxless publish`` and ``boxless query``.

``publish`` joins the node's relay mesh as a short-lived relay peer, publishes,
and leaves (light push, for clients that must not relay, comes with the light
client issue). ``query`` speaks the store protocol to the node.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import trio
import typer
from rich.table import Table

from boxless.cli.app import app, console, fail, out, run_trio, setup_logging
from boxless.cli.safe import markup, plain
from boxless.errors import BoxlessError, NetworkError
from boxless.node.config import NodeConfig
from boxless.waku.message import WakuMessage
from boxless.waku.sharding import (
    DEFAULT_CLUSTER_ID,
    DEFAULT_NUM_SHARDS,
    parse_pubsub_topic,
    shard_for_content_topic,
)

if TYPE_CHECKING:
    from boxless.node.service import WakuNode

JOIN_TIMEOUT = 15.0


def _topic_shard(
    content_topic: str, pubsub_topic: str | None, cluster: int, num_shards: int
) -> int:
    if pubsub_topic is not None:
        topic_cluster, shard = parse_pubsub_topic(pubsub_topic)
        if topic_cluster != cluster:
            raise NetworkError(
                f"{pubsub_topic} is in cluster {topic_cluster}; pass --cluster {topic_cluster}"
            )
        return shard
    return shard_for_content_topic(content_topic, num_shards)


async def _publish(config: NodeConfig, payloads: list[bytes], content_topic: str) -> list[bytes]:
    from boxless.node.service import WakuNode  # py-libp2p: loaded by the commands that use it

    node = WakuNode(config)
    topic = node.pubsub_topics[0]
    target = node.static_peers[0].peer_id
    hashes = []
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        assert node.relay is not None
        relay = node.relay
        with trio.move_on_after(JOIN_TIMEOUT) as scope:
            # py-libp2p has no "peer joined topic" event, so poll (bounded by the scope).
            # In the *mesh*, not just subscribed: gossipsub publishes to mesh peers, and
            # the mesh is grafted at a heartbeat after the peer subscribed -- publishing
            # in between reached nobody (and exited 0: 1 run in 4 lost everything).
            while target not in relay.mesh_peers(topic):  # noqa: ASYNC110
                await trio.sleep(0.05)
        if scope.cancelled_caught:
            raise NetworkError(
                f"the node at {config.peers[0]} did not join {topic} within {JOIN_TIMEOUT:.0f}s: "
                "is it running with --relay and this --cluster/--shard?"
            )
        for payload in payloads:
            msg = WakuMessage(
                payload=payload, content_topic=content_topic, timestamp=time.time_ns()
            )
            result = await node.publish(topic, msg)
            if not result.peers:
                raise NetworkError(
                    "the message reached no relay peer (the node left the topic?): try again"
                )
            hashes.append(result.message_hash)
        await _drain(node)
        nursery.cancel_scope.cancel()
    return hashes


async def _drain(node: WakuNode, timeout: float = 60.0) -> None:
    """Wait until relay's outbound queues are empty, then a moment for the wire.

    Relay has no acknowledgement (light push, with the light-client issue, has);
    hanging up with messages still queued would lose them.
    """
    assert node.relay is not None
    queues = node.relay.pubsub.peer_queues
    with trio.move_on_after(timeout):
        while any(len(q) for q in queues.values()):  # noqa: ASYNC110  (no drain event)
            await trio.sleep(0.02)
    await trio.sleep(0.3)


async def _lightpush_all(
    peer: str, payloads: list[bytes], content_topic: str, cluster: int, num_shards: int, base: Path
) -> list[str]:
    from boxless.node.light import LightNode

    node = LightNode(base, [peer], cluster_id=cluster, num_shards=num_shards)
    lines = []
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        for payload in payloads:
            msg = WakuMessage(
                payload=payload, content_topic=content_topic, timestamp=time.time_ns()
            )
            res = await node.send(msg)
            verdict = (
                f"accepted, relayed to {res.relay_peers} peers"
                if res.accepted
                else f"REFUSED {res.status}: {plain(res.description or '')}"
            )
            lines.append(f"{res.message_hash.hex()} {verdict}")
        nursery.cancel_scope.cancel()
    return lines


@app.command()
def publish(
    peer: Annotated[str, typer.Option(help="Multiaddr of a relay node, with /p2p/ID")],
    content_topic: Annotated[str, typer.Option(help="e.g. /boxless/1/demo/proto")],
    message: Annotated[str, typer.Option(help="Payload text (UTF-8)")],
    count: Annotated[int, typer.Option(help="Publish this many (numbered when > 1)")] = 1,
    pubsub_topic: Annotated[
        str | None, typer.Option(help="Static shard topic; default: autosharding")
    ] = None,
    cluster: Annotated[int, typer.Option()] = DEFAULT_CLUSTER_ID,
    num_shards: Annotated[int, typer.Option()] = DEFAULT_NUM_SHARDS,
    lightpush: Annotated[
        bool, typer.Option("--lightpush", help="Send by light push (the node says if it took it)")
    ] = False,
) -> None:
    """Publish messages through a node and print their hashes.

    By default this joins the node's relay mesh briefly; with --lightpush it asks
    the node to relay them and prints whether the network accepted each one.
    """
    payloads = [
        (message if count == 1 else f"{message} #{i}").encode() for i in range(1, count + 1)
    ]
    if lightpush:
        try:
            with tempfile.TemporaryDirectory(prefix="boxless-publish-") as tmp:
                lines = run_trio(
                    _lightpush_all, peer, payloads, content_topic, cluster, num_shards, Path(tmp)
                )
        except BoxlessError as exc:
            fail(exc)
        print("\n".join(lines))
        if any("REFUSED" in line for line in lines):
            raise typer.Exit(1)
        return
    try:
        shard = _topic_shard(content_topic, pubsub_topic, cluster, num_shards)
        with tempfile.TemporaryDirectory(prefix="boxless-publish-") as tmp:
            config = NodeConfig(
                data_dir=Path(tmp),
                listen=("/ip4/127.0.0.1/tcp/0",),
                peers=(peer,),
                cluster_id=cluster,
                num_shards=num_shards,
                shards=(shard,),
                store_resume=False,
            )
            hashes = run_trio(_publish, config, payloads, content_topic)
    except BoxlessError as exc:
        fail(exc)
    for digest in hashes:
        print(digest.hex())


@app.command()
def query(
    peer: Annotated[str, typer.Option(help="Multiaddr of a store node, with /p2p/ID")],
    content_topic: Annotated[
        list[str] | None, typer.Option(help="Content topic (repeatable)")
    ] = None,
    pubsub_topic: Annotated[
        str | None, typer.Option(help="Default: autosharding of the content topic")
    ] = None,
    hash: Annotated[
        list[str] | None, typer.Option("--hash", help="Look up a message hash (hex; repeatable)")
    ] = None,
    start_ns: Annotated[
        int | None, typer.Option(help="Time range start, Unix ns (inclusive)")
    ] = None,
    end_ns: Annotated[int | None, typer.Option(help="Time range end, Unix ns (inclusive)")] = None,
    forward: Annotated[
        bool, typer.Option("--forward/--backward", help="Oldest first, or newest first")
    ] = True,
    page_size: Annotated[int, typer.Option(help="Messages per page (max 100)")] = 20,
    max_pages: Annotated[int, typer.Option(help="Stop after this many pages")] = 100,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per message")] = False,
    cluster: Annotated[int, typer.Option()] = DEFAULT_CLUSTER_ID,
    num_shards: Annotated[int, typer.Option()] = DEFAULT_NUM_SHARDS,
) -> None:
    """Query a node's store, following pages, and print what it holds."""
    from boxless.node.store_client import StoreQuerySpec, query_all

    try:
        topics = tuple(content_topic or ())
        hashes = tuple(bytes.fromhex(h) for h in (hash or ()))
        if pubsub_topic is None and topics:
            shard = _topic_shard(topics[0], None, cluster, num_shards)
            pubsub_topic = f"/waku/2/rs/{cluster}/{shard}"
        req = StoreQuerySpec(
            pubsub_topic=pubsub_topic,
            content_topics=topics,
            time_start=start_ns,
            time_end=end_ns,
            message_hashes=hashes,
            forward=forward,
            page_size=page_size,
            include_data=True,
        )
        rows = run_trio(query_all, peer, req, max_pages)
    except ValueError as exc:
        console.print(f"[red]error:[/red] --hash must be hex: {markup(str(exc))}")
        raise typer.Exit(2) from None
    except BoxlessError as exc:
        fail(exc)
    if json_out:
        for r in rows:
            print(json.dumps(r.to_json()))
        return
    table = Table(title=f"{len(rows)} messages")
    for col in ("time", "content topic", "payload", "hash"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r.time_text(),
            markup(r.content_topic),
            markup(r.payload_text(60)),
            r.message_hash.hex()[:16],
        )
    out.print(table)


@app.command()
def devnet(
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds")] = None,
    interval: Annotated[
        float, typer.Option(help="Seconds between each publisher's messages")
    ] = 1.0,
    data_dir: Annotated[Path | None, typer.Option(help="Keep the nodes' data here")] = None,
    svg: Annotated[Path | None, typer.Option(help="Save the final view as an SVG picture")] = None,
) -> None:
    """A 3-node relay + store network in one process, live (for node operators)."""
    from boxless.cli.demo import main as demo_main

    setup_logging("WARNING", False)
    try:
        demo_main(duration, interval, data_dir, svg)
    except KeyboardInterrupt:
        console.print("stopped")


@app.command()
def demo(
    alice_port: Annotated[int, typer.Option(help="Alice's UI port")] = 8701,
    bob_port: Annotated[int, typer.Option(help="Bob's UI port")] = 8702,
    data_dir: Annotated[
        Path | None, typer.Option(help="Keep everything here (default: temp)")
    ] = None,
    ready_file: Annotated[Path | None, typer.Option(help="Write both URLs here when ready")] = None,
) -> None:
    """Two people (Alice and Bob) chatting on a local network, each with a web UI."""
    from boxless.cli.people_demo import main as people_main

    setup_logging("WARNING", False)
    try:
        people_main((alice_port, bob_port), data_dir, ready_file)
    except KeyboardInterrupt:
        console.print("stopped")
