"""The ``boxless`` command: the app of :mod:`boxless.cli.app` with every command
module imported (importing one registers its commands), and ``boxless node``."""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path
from typing import Annotated, Any

import trio
import typer

from boxless.cli.app import app, fail, run_trio, setup_logging
from boxless.cli.common import DEFAULT_HOME
from boxless.errors import BoxlessError, ConfigError
from boxless.node.config import DEFAULT_RETENTION_COUNT, NodeConfig, RetentionPolicy
from boxless.node.turn import TurnConfig
from boxless.waku.sharding import DEFAULT_CLUSTER_ID, DEFAULT_NUM_SHARDS


async def _run_until_signal(
    config: NodeConfig, info_file: Path | None, turn: TurnConfig | None = None
) -> None:
    from boxless.node.service import WakuNode
    from boxless.node.turn import run_turnserver

    node = WakuNode(config)
    async with trio.open_nursery() as nursery:
        turn_url = None if turn is None else await nursery.start(run_turnserver, turn)
        await nursery.start(node.run)
        info: dict[str, Any] = {
            "peer_id": str(node.peer_id),
            "addrs": node.addrs(),
            "admin": config.admin_listen,
            "enr": node.enr.to_text() if node.enr else None,
            "pid": os.getpid(),
        }
        if turn is not None:  # TURN for light clients' calls (docs/calls.md)
            info["turn"] = {"url": turn_url, "secret_file": str(turn.data_dir / "turn_secret")}
            print(f"turn: {turn_url}", flush=True)
            _advertise_turn(node, turn, str(turn_url))
        print(f"peer id: {info['peer_id']}", flush=True)
        for addr in info["addrs"]:
            print(f"listening: {addr}", flush=True)
        if info_file is not None:
            _write_info(info_file, info)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                logging.getLogger("boxless").info(
                    "received %s; shutting down", signal.Signals(signum).name
                )
                break
        nursery.cancel_scope.cancel()
    print("stopped", flush=True)


def _advertise_turn(node: Any, turn: TurnConfig, url: str) -> None:
    """Hand short-lived TURN credentials to this node's light clients (node/turn_service.py)."""
    import time

    from boxless.node.turn import load_secret
    from boxless.node.turn_service import TurnIssuer, serve_turn

    def is_client(peer: Any) -> bool:  # a peer with a filter subscription here
        return node.filter is not None and bool(node.filter.subscriptions.is_subscribed(peer))

    issuer = TurnIssuer(load_secret(turn.data_dir / "turn_secret"), [url], is_client)
    serve_turn(node.host, issuer, time.time)


async def _run_light(
    data_dir: Path,
    service_peers: list[str],
    content_topics: list[str],
    cluster: int,
    num_shards: int,
    listen: list[str],
    info_file: Path | None,
) -> None:
    from boxless.node.light import LightNode

    node = LightNode(
        data_dir, service_peers, cluster_id=cluster, num_shards=num_shards, listen=listen
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        print(f"peer id: {node.peer_id} (light)", flush=True)
        if info_file is not None:
            _write_info(
                info_file, {"peer_id": str(node.peer_id), "pid": os.getpid(), "light": True}
            )
        if content_topics:
            await node.subscribe(content_topics)

        async def show() -> None:
            async with node.messages() as messages:
                async for item in messages:
                    text = item.message.payload.decode("utf-8", "replace")
                    print(
                        json.dumps(
                            {
                                "via": item.via,
                                "content_topic": item.message.content_topic,
                                "timestamp": item.message.timestamp,
                                "payload": text,
                                "hash": item.message_hash.hex(),
                            }
                        ),
                        flush=True,
                    )

        nursery.start_soon(show)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
        nursery.cancel_scope.cancel()
    print("stopped", flush=True)


def _write_info(info_file: Path, info: dict[str, Any]) -> None:
    tmp = info_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(info_file)


@app.command()
def node(
    light: Annotated[
        bool,
        typer.Option(help="Light client: no relay; light push, filter and store at --service-peer"),
    ] = False,
    service_peer: Annotated[
        list[str] | None, typer.Option(help="With --light: a service node's multiaddr (repeatable)")
    ] = None,
    content_topic: Annotated[
        list[str] | None, typer.Option(help="With --light: content topic to receive (repeatable)")
    ] = None,
    relay: Annotated[
        bool, typer.Option("--relay/--no-relay", help="Relay messages (gossipsub)")
    ] = True,
    store: Annotated[
        bool, typer.Option(help="Archive relayed messages and serve store queries")
    ] = False,
    filter: Annotated[
        bool, typer.Option(help="Push matching messages to light clients (12/WAKU2-FILTER)")
    ] = False,
    lightpush: Annotated[
        bool, typer.Option(help="Relay light clients' messages (19/WAKU2-LIGHTPUSH v3 and v2)")
    ] = False,
    peer_exchange: Annotated[
        bool, typer.Option(help="Serve and use 34/WAKU2-PEER-EXCHANGE")
    ] = True,
    blobs: Annotated[
        bool, typer.Option(help="Serve Bitswap blobs and pin them for clients (docs/blobs.md)")
    ] = False,
    announce: Annotated[
        list[str] | None,
        typer.Option(help="Multiaddr to advertise in our ENR (repeatable; default: listen addrs)"),
    ] = None,
    db: Annotated[
        str | None, typer.Option(help="Archive URL: sqlite:///path or postgresql://...")
    ] = None,
    listen: Annotated[
        list[str] | None, typer.Option(help="Multiaddr to listen on (repeatable)")
    ] = None,
    peer: Annotated[
        list[str] | None, typer.Option(help="Static peer multiaddr with /p2p/ID (repeatable)")
    ] = None,
    cluster: Annotated[
        int, typer.Option(help="Cluster id (1 is the public RLN network)")
    ] = DEFAULT_CLUSTER_ID,
    shard: Annotated[
        list[int] | None, typer.Option(help="Shard to serve (repeatable; default: all)")
    ] = None,
    num_shards: Annotated[
        int, typer.Option(help="Shards in the cluster (autosharding)")
    ] = DEFAULT_NUM_SHARDS,
    data_dir: Annotated[
        Path, typer.Option(help="Where the node key and SQLite archive live")
    ] = DEFAULT_HOME / "node",
    admin: Annotated[str | None, typer.Option(help="HOST:PORT for /health and /metrics")] = None,
    retention_days: Annotated[
        float, typer.Option(help="Keep archived messages this many days")
    ] = 30.0,
    retention_count: Annotated[
        int | None, typer.Option(help="Keep at most this many messages")
    ] = DEFAULT_RETENTION_COUNT,
    info_file: Annotated[
        Path | None, typer.Option(help="Write peer id and addresses here as JSON")
    ] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR")] = "INFO",
    json_logs: Annotated[bool, typer.Option(help="Log one JSON object per line")] = False,
    turn: Annotated[
        bool, typer.Option(help="Run coturn (TURN for calls) with this node (docs/calls.md)")
    ] = False,
    turn_listen: Annotated[
        str, typer.Option(help="With --turn: HOST:PORT coturn listens on")
    ] = "0.0.0.0:3478",
    turn_public_host: Annotated[
        str | None, typer.Option(help="With --turn: the host clients reach it at")
    ] = None,
    turn_relay_ports: Annotated[
        str, typer.Option(help="With --turn: MIN-MAX UDP ports for relayed media")
    ] = "49152-49407",
    turn_allow_loopback: Annotated[
        bool, typer.Option(help="With --turn: relay to loopback peers (tests on one machine)")
    ] = False,
) -> None:
    """Run a Waku node (service node, or --light client) until SIGINT/SIGTERM."""
    setup_logging(log_level, json_logs)
    if light:
        try:
            run_trio(
                _run_light,
                data_dir,
                service_peer or [],
                content_topic or [],
                cluster,
                num_shards,
                listen or ["/ip4/127.0.0.1/tcp/0"],
                info_file,
            )
        except BoxlessError as exc:
            fail(exc)
        return
    try:
        config = NodeConfig(
            data_dir=data_dir,
            listen=tuple(listen or ["/ip4/0.0.0.0/tcp/60000"]),
            peers=tuple(peer or ()),
            relay=relay,
            store=store,
            filter=filter,
            lightpush=lightpush,
            peer_exchange=peer_exchange,
            blobs=blobs,
            announce=tuple(announce or ()),
            db_url=db,
            cluster_id=cluster,
            num_shards=num_shards,
            shards=tuple(shard or ()),
            admin_listen=admin,
            retention=RetentionPolicy(
                max_age_ns=int(retention_days * 86_400 * 10**9), max_count=retention_count
            ),
        )
        turn_config = None
        if turn:
            t_host, _, t_port = turn_listen.rpartition(":")
            lo, _, hi = turn_relay_ports.partition("-")
            if not (t_host and t_port.isdigit() and lo.isdigit() and hi.isdigit()):
                raise ConfigError("--turn-listen is HOST:PORT and --turn-relay-ports MIN-MAX")
            turn_config = TurnConfig(
                data_dir,
                host=t_host.strip("[]"),
                port=int(t_port),
                public_host=turn_public_host,
                min_port=int(lo),
                max_port=int(hi),
                allow_loopback=turn_allow_loopback,
            )
        run_trio(_run_until_signal, config, info_file, turn_config)
    except BoxlessError as exc:
        fail(exc)


from boxless.bot import cli as _bot_cli  # noqa: E402,F401  (boxless bot run)
from boxless.cli import backup_commands as _backup_commands  # noqa: E402,F401
from boxless.cli import blob_commands as _blob_commands  # noqa: E402,F401
from boxless.cli import call_commands as _call_commands  # noqa: E402,F401
from boxless.cli import chat_commands as _chat_commands  # noqa: E402,F401  (registers commands)
from boxless.cli import client_commands as _client_commands  # noqa: E402,F401
from boxless.cli import device_commands as _device_commands  # noqa: E402,F401
from boxless.cli import find_commands as _find_commands  # noqa: E402,F401
from boxless.cli import group_commands as _group_commands  # noqa: E402,F401
from boxless.cli import identity_commands as _identity_commands  # noqa: E402,F401
from boxless.cli import miniapp_commands as _miniapp_commands  # noqa: E402,F401
from boxless.cli import moment_commands as _moment_commands  # noqa: E402,F401
from boxless.cli import nearby_commands as _nearby_commands  # noqa: E402,F401
from boxless.cli import profile_commands as _profile_commands  # noqa: E402,F401
from boxless.cli import stealth_commands as _stealth_commands  # noqa: E402,F401
from boxless.cli import user_commands as _user_commands  # noqa: E402,F401
from boxless.cli import wallet_commands as _wallet_commands  # noqa: E402,F401

__all__ = ["app", "main", "node", "run_trio"]


def main() -> None:
    app()
