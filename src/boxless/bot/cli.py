"""``boxless bot run module:app``: run a bot (a :class:`~boxless.bot.BotApp`) headless
on the account in --home, over its own node (light with --service-peer, or relay)."""

from __future__ import annotations

import importlib
import signal
import sys
from pathlib import Path
from typing import Annotated

import trio
import typer

from boxless.bot.app import BotApp
from boxless.cli.app import app, fail, run_trio, setup_logging
from boxless.cli.common import USER_HOME, HomeOption, ask_passphrase
from boxless.errors import BoxlessError, UsageError
from boxless.waku.sharding import DEFAULT_CLUSTER_ID

bot_app = typer.Typer(
    help="Bots: Boxless accounts run headless (docs/bots.md).", no_args_is_help=True
)
app.add_typer(bot_app, name="bot")


def load_app(spec: str, path: Path | None = None) -> BotApp:
    """``package.module:name`` (or ``file.py:name``) → the BotApp it names."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UsageError("name the bot as module:app, e.g. examples.coffee.bot:app")
    if module_name.endswith(".py"):
        file = Path(module_name).resolve()
        sys.path.insert(0, str(file.parent))
        module_name = file.stem
    elif path is not None:
        sys.path.insert(0, str(path))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name}: {exc}") from None
    found = getattr(module, attr, None)
    if not isinstance(found, BotApp):
        raise UsageError(f"{spec} is not a boxless.bot.BotApp")
    return found


async def _run(
    home: Path,
    passphrase: str,
    bot: BotApp,
    service_peers: list[str],
    relay: bool,
    peers: list[str],
    listen: list[str],
    cluster: int,
    escrow: str | None,
) -> None:
    from boxless.bot.chain import escrow_for
    from boxless.bot.runtime import Bot
    from boxless.cli.nodes import start_node
    from boxless.client.core import Client
    from boxless.identity.account import open_account

    with open_account(home, passphrase) as account:
        async with trio.open_nursery() as nursery:
            transport = await start_node(
                nursery, home, service_peers, relay, peers, listen, cluster
            )
            client = Client(account, transport)
            await nursery.start(client.run)
            contract = escrow_for(account, escrow) if escrow else None
            await nursery.start(Bot(bot, client, escrow=contract).run)
            print(f"bot {bot.name} is up as {client.me.hex()}", flush=True)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    break
            nursery.cancel_scope.cancel()
    print("stopped", flush=True)


@bot_app.command("run")
def run(
    spec: Annotated[str, typer.Argument(help="module:app, the BotApp to run")],
    home: HomeOption = USER_HOME,
    path: Annotated[Path | None, typer.Option(help="A folder to import the module from")] = None,
    service_peer: Annotated[
        list[str] | None, typer.Option(help="Service node (light mode)")
    ] = None,
    relay: Annotated[bool, typer.Option(help="Run a relay node")] = False,
    peer: Annotated[list[str] | None, typer.Option(help="With --relay: static peer")] = None,
    listen: Annotated[list[str] | None, typer.Option(help="Multiaddr to listen on")] = None,
    cluster: Annotated[int, typer.Option()] = DEFAULT_CLUSTER_ID,
    escrow: Annotated[
        str | None, typer.Option(help="Escrow contract 0x… (the wallet's chain): on_payment")
    ] = None,
    log_level: Annotated[str, typer.Option()] = "WARNING",
) -> None:
    """Run the bot MODULE:APP on the account in --home until Ctrl-C (the passphrase
    is asked, or read from $BOXLESS_PASSPHRASE)."""
    setup_logging(log_level, False)
    try:
        bot = load_app(spec, path)
        run_trio(
            _run,
            home,
            ask_passphrase(new=False),
            bot,
            service_peer or [],
            relay,
            peer or [],
            listen or ["/ip4/127.0.0.1/tcp/0"],
            cluster,
            escrow,
        )
    except BoxlessError as exc:
        fail(exc)
