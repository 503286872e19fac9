"""The user's commands: ``up`` runs node + client + local API; the others talk to it.

``boxless up`` owns the account while it runs (one process per account: two
processes ratcheting the same Olm sessions would corrupt them). It writes
``<home>/api.json`` (URL and token, mode 0600); ``contact``, ``contacts``,
``send``, ``chat`` and ``verify`` read it and call the local API.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import trio
import typer

from boxless.cli.api_client import API_FILE, Api, api_for
from boxless.cli.app import app, console, fail, out, run_trio, setup_logging
from boxless.cli.common import (
    PASSPHRASE_ENV,
    USER_HOME,
    HomeOption,
    ask_passphrase,
    is_loopback,
    private_dir,
)
from boxless.cli.nodes import start_node
from boxless.cli.safe import markup, plain
from boxless.errors import BoxlessError, ConfigError
from boxless.groups.delivery import GroupTimings
from boxless.node.turn import load_secret
from boxless.waku.sharding import DEFAULT_CLUSTER_ID

if TYPE_CHECKING:
    from boxless.client.transport import Transport

contact_app = typer.Typer(
    help="Add and manage contacts (needs `boxless up`).", no_args_is_help=True
)
app.add_typer(contact_app, name="contact")


def _free_port(host: str = "127.0.0.1", port: int = 0) -> int:
    """``port`` on ``host`` if it can be bound now, else any free one (OSError if none)."""
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            if port == 0:
                raise
            s.bind((host, 0))
        return int(s.getsockname()[1])


API_PORT_FILE = "api-port"


def _ask_node_for_turn(client: Any, transport: Any) -> None:
    """A light client asks its current service node for TURN credentials
    (node/turn_service.py); a relay node has no service node to ask."""
    from boxless.errors import NetworkError
    from boxless.node.light import LightNode
    from boxless.node.turn_service import request_turn

    node = getattr(transport, "node", None)
    if not isinstance(node, LightNode):
        return

    async def ask() -> dict[str, Any]:
        if node.current is None:
            raise NetworkError("no service node connected")
        return await request_turn(node.host, node.current)

    client.calls.turn_source = ask


def _api_port(home: Path, host: str) -> int:
    """The API port when none was given: the one this home used last, while it is free.

    The web UI's session cookie (:mod:`boxless.api.session`) belongs to the origin,
    port included, so a bookmark or the installed app finds its session again after
    a restart only at the same port. The port number is not a secret.
    """
    saved = home / API_PORT_FILE
    try:
        last = int(saved.read_text().strip())
    except (OSError, ValueError):
        last = 0
    probe = host if host.replace(".", "").isdigit() and host != "0.0.0.0" else "127.0.0.1"
    port = _free_port(probe, last)
    if port != last:
        saved.write_text(f"{port}\n")
    return port


async def _run_up(
    home: Path,
    passphrase: str | None,
    service_peers: list[str],
    relay: bool,
    peers: list[str],
    listen: list[str],
    api_host: str,
    api_port: int,
    cluster: int,
    group_timings: GroupTimings | None = None,
    ice_servers: tuple[str, ...] = (),
    turn_secret_file: Path | None = None,
) -> None:
    """Node, then the API, then the client (at once when ``passphrase`` is given).

    The API is one :class:`AppSwitch`: with no account yet it serves the
    onboarding app, with an account but no ``passphrase`` the locked app; the
    account created (or unlocked) there starts the client and swaps in the full
    API, without a restart or a new token. In front of the switch, web sessions
    (:mod:`boxless.api.session`) let the browser stay logged in.
    """
    from hypercorn.config import Config
    from hypercorn.trio import serve
    from starlette.types import ASGIApp

    from boxless.api.app import build_app
    from boxless.api.locked import Unlocker, build_locked_app, web_front
    from boxless.api.onboarding import AppSwitch, Onboarding, build_onboarding_app
    from boxless.api.session import SESSION_FILE, SessionBook
    from boxless.client.core import Client
    from boxless.identity.account import LocalAccount, account_exists, open_account

    opened: list[LocalAccount] = []
    if passphrase is not None:
        opened.append(open_account(home, passphrase))
    api_file = home / API_FILE
    try:
        async with trio.open_nursery() as nursery:
            transport: Transport = await start_node(
                nursery, home, service_peers, relay, peers, listen, cluster
            )
            token = secrets.token_urlsafe(24)
            port = api_port or _api_port(home, api_host)
            origin = f"http://{api_host}:{port}"

            async def start_client(account: LocalAccount) -> ASGIApp:
                client = Client(account, transport, group_timings=group_timings)
                client.calls.ice_servers = list(ice_servers)  # STUN/TURN for the browser's calls
                if turn_secret_file is not None:  # mint TURN REST credentials (docs/calls.md)
                    client.calls.turn_secret = load_secret(turn_secret_file)
                _ask_node_for_turn(client, transport)  # the service node's TURN, if it has one
                await nursery.start(client.run)
                from boxless.cli.attachment_commands import start_blobs

                node = transport.node  # type: ignore[attr-defined]
                await start_blobs(nursery, client, node.host, home, service_peers or peers)
                from boxless.client.backup_schedule import run_scheduled_backups

                nursery.start_soon(run_scheduled_backups, client.db, home, client.me.hex())
                from boxless.client.account_state import StatePublisher

                nursery.start_soon(StatePublisher(client.db, transport).run)
                from boxless.api.guard import FRAME_SOURCES
                from boxless.api.miniapp_origin import start_app_origin

                FRAME_SOURCES.append(await start_app_origin(nursery, client.miniapps, origin))
                return build_app(client, token, origin, transport.status)

            async def on_new_account(account: LocalAccount) -> None:
                opened.append(account)
                unlocker.account = account
                switch.app = await start_client(account)

            unlocker = Unlocker(home, on_new_account, opened[0] if opened else None)
            locked = not opened and account_exists(home)
            if opened:
                switch = AppSwitch(await start_client(opened[0]))
            elif locked:
                switch = AppSwitch(build_locked_app(token, origin))
            else:
                onboarding = Onboarding(home, on_new_account)
                from boxless.api.device_link import DeviceLinker, link_routes

                linker = DeviceLinker(nursery, transport, onboarding)  # "Link to an account"
                switch = AppSwitch(
                    build_onboarding_app(onboarding, token, origin, link_routes(linker))
                )
            sessions = SessionBook(home / SESSION_FILE)
            hc = Config()
            hc.bind = [f"{api_host}:{port}"]
            hc.accesslog = None
            hc.errorlog = None
            front = web_front(switch, token, origin, sessions, unlocker)
            await nursery.start(serve, front, hc)
            # written whole, then renamed: a reader never finds it half-written
            partial = api_file.with_name(api_file.name + ".new")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"url": origin, "token": token, "pid": os.getpid()}, f)
            os.replace(partial, api_file)
            if opened:
                print(f"Boxless is up as {plain(opened[0].profile.display_name)}.", flush=True)
            elif locked:
                print("Boxless is up and locked: enter your passphrase in the browser.", flush=True)
            else:
                print("Boxless is up. Create your account in the browser:", flush=True)
            print(f"open: {origin}/?token={token}", flush=True)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    break
            nursery.cancel_scope.cancel()
    finally:
        api_file.unlink(missing_ok=True)
        for account in opened:
            account.close()
    print("stopped", flush=True)


@app.command()
def up(
    home: HomeOption = USER_HOME,
    service_peer: Annotated[
        list[str] | None, typer.Option(help="Service node multiaddr for light mode (repeatable)")
    ] = None,
    relay: Annotated[
        bool, typer.Option(help="Run a full relay node instead of a light client")
    ] = False,
    peer: Annotated[
        list[str] | None, typer.Option(help="With --relay: static peer (repeatable)")
    ] = None,
    listen: Annotated[list[str] | None, typer.Option(help="Multiaddr to listen on")] = None,
    api: Annotated[
        str,
        typer.Option(
            help="HOST:PORT of the local API (port 0: the port this home used last, if free)"
        ),
    ] = "127.0.0.1:0",
    api_unsafe_public: Annotated[
        bool,
        typer.Option(
            "--api-unsafe-public",
            help="Allow a non-loopback --api host: the token (and, the first time, your"
            " recovery phrase) then cross the network in plain HTTP",
        ),
    ] = False,
    cluster: Annotated[int, typer.Option()] = DEFAULT_CLUSTER_ID,
    locked: Annotated[
        bool,
        typer.Option(
            "--locked",
            help="Do not ask for the passphrase here: the web UI asks for it (a lock screen)",
        ),
    ] = False,
    log_level: Annotated[str, typer.Option()] = "WARNING",
    group_timings: Annotated[
        str,
        typer.Option(
            envvar="BOXLESS_GROUP_TIMINGS",
            help="Group timers, e.g. 'repair_after_s=1,sync_check_s=0.5' (for tests)",
        ),
    ] = "",
    ice_server: Annotated[
        list[str] | None,
        typer.Option(
            help="STUN/TURN server for calls, e.g. stun:stun.example.org:3478 (repeatable;"
            " none by default: calls on one machine or LAN connect directly)"
        ),
    ] = None,
    turn_secret_file: Annotated[
        Path | None,
        typer.Option(help="A TURN node's turn_secret: credentials for its turn: --ice-server"),
    ] = None,
) -> None:
    """Run your node, your client and the local API + web UI until Ctrl-C.

    Open the printed URL (it carries the API token) in a browser. The first time,
    with no account in --home, the web UI walks you through creating one (a
    passphrase for this device, your 24-word recovery phrase, shown once and
    checked, and your name) or restoring one from its phrase; the client starts
    as soon as the account exists. Otherwise the passphrase of the existing
    account is read from $BOXLESS_PASSPHRASE or asked here; with --locked, or
    with neither (no terminal), Boxless starts locked and the web UI asks for
    it. The browser keeps a login (a cookie) across tabs and restarts.
    """
    from boxless.identity.account import account_exists

    setup_logging(log_level, False)
    host, _, port = api.rpartition(":")
    if not host or not port.isdigit():
        console.print("[red]error:[/red] --api must be HOST:PORT, e.g. 127.0.0.1:8765")
        raise typer.Exit(2)
    _check_api_host(host, api_unsafe_public)
    if turn_secret_file is not None and not turn_secret_file.is_file():
        console.print(f"[red]error:[/red] --turn-secret-file {turn_secret_file}: no such file")
        raise typer.Exit(2)
    for url in ice_server or []:
        if not url.startswith(("stun:", "turn:", "turns:")):
            console.print(
                f"[red]error:[/red] --ice-server {markup(url)} must start with stun:, turn: or turns:"
            )
            raise typer.Exit(2)
    try:
        can_ask = PASSPHRASE_ENV in os.environ or sys.stdin.isatty()
        exists = account_exists(home)
        passphrase = ask_passphrase(new=False) if exists and can_ask and not locked else None
        if private_dir(home):
            console.print(
                f"[yellow]warning:[/yellow] {markup(str(home))} was readable by other users"
                " of this machine; it is now yours only (0700)"
            )
        run_trio(
            _run_up,
            home,
            passphrase,
            service_peer or [],
            relay,
            peer or [],
            listen or ["/ip4/127.0.0.1/tcp/0"],
            host,
            int(port),
            cluster,
            GroupTimings.parse(group_timings) if group_timings else None,
            tuple(ice_server or ()),
            turn_secret_file,
        )
    except BoxlessError as exc:
        fail(exc)


def _check_api_host(host: str, unsafe_public: bool) -> None:
    """Refuse a non-loopback API address unless asked for loudly: the API is plain
    HTTP, so the token and, during onboarding, the recovery phrase would cross the
    network readable by anyone on it."""
    if is_loopback(host):
        return
    if not unsafe_public:
        console.print(
            f"[red]error:[/red] --api {markup(host)} would serve the API beyond this machine,"
            " in plain HTTP: anyone on the network could read your API token (and, while you"
            " create your account, your recovery phrase). Use 127.0.0.1, or reach it through"
            " an SSH tunnel; pass --api-unsafe-public only if you accept that risk"
        )
        raise typer.Exit(2)
    console.print(
        f"[bold red]WARNING: the API listens on {markup(host)} in plain HTTP.[/bold red] Anyone"
        " who can see this network's traffic can read the API token and take over this"
        " account, and during onboarding read your recovery phrase. Only do this on a network"
        " you fully trust."
    )


# -- talking to a running `up` -------------------------------------------------------


@contact_app.command("add")
def contact_add(
    link: Annotated[str, typer.Argument(help="Their boxless://c/... link")],
    intro: Annotated[str, typer.Option(help="A few words so they know who you are")] = "",
    home: HomeOption = USER_HOME,
) -> None:
    """Add a contact from their link and send them a contact request."""
    try:
        c = api_for(home).call("POST", "/contacts", {"link": link, "intro": intro})
    except BoxlessError as exc:
        fail(exc)
    print(f"added {plain(c['name'])} ({c['fingerprint']}): {c['state'].replace('_', ' ')}")


def _contact_action(action: str, who: str, home: Path) -> None:
    try:
        api = api_for(home)
        c = api.call("POST", f"/contacts/{api.contact_key(who)}/{action}")
    except BoxlessError as exc:
        fail(exc)
    print(f"{plain(c['name'])}: {c['state'].replace('_', ' ')}")


@contact_app.command("accept")
def contact_accept(who: str, home: HomeOption = USER_HOME) -> None:
    """Accept a contact request."""
    _contact_action("accept", who, home)


@contact_app.command("decline")
def contact_decline(who: str, home: HomeOption = USER_HOME) -> None:
    """Decline a contact request."""
    _contact_action("decline", who, home)


@contact_app.command("block")
def contact_block(who: str, home: HomeOption = USER_HOME) -> None:
    """Block a contact: their messages are dropped silently."""
    _contact_action("block", who, home)


@app.command()
def contacts(home: HomeOption = USER_HOME) -> None:
    """List contacts and their state."""
    from rich.table import Table

    try:
        rows = api_for(home).call("GET", "/contacts")
    except BoxlessError as exc:
        fail(exc)
    table = Table()
    for col in ("name", "state", "fingerprint", "verified"):
        table.add_column(col)
    for c in rows:
        mark = (
            "[bold red]KEYS CHANGED: verify again[/bold red]"
            if c["verification_broken"]
            else "yes"
            if c["verified"]
            else ""
        )
        table.add_row(
            markup(c["name"]), markup(c["state"].replace("_", " ")), c["fingerprint"], mark
        )
    out.print(table)


@app.command()
def send(
    who: Annotated[str, typer.Argument(help="Contact name or key prefix")],
    text: Annotated[str, typer.Argument(help="The message (with --file: its caption)")] = "",
    files: Annotated[
        list[Path] | None,
        typer.Option("--file", help="Send this file, encrypted (up to 2 GiB); repeat: an album"),
    ] = None,
    original: Annotated[bool, typer.Option(help="With --file: a photo as is, not compressed")] = False,
    home: HomeOption = USER_HOME,
) -> None:
    """Send a message or a file (queued; delivered when they are reachable)."""
    try:
        api = api_for(home)
        if files:
            from boxless.cli.attachment_commands import send_files

            sent = send_files(api, api.contact_key(who), files, text, original=original)
            names = ", ".join(plain(a["name"]) for a in sent["attachments"])
            print(f"{sent['id']} sent {names}")
            return
        if not text:
            raise ConfigError("give the message text, or --file PATH")
        m = api.call("POST", f"/contacts/{api.contact_key(who)}/messages", {"text": text})
    except BoxlessError as exc:
        fail(exc)
    print(f"{m['id']} {m['state']}")


@app.command()
def verify(
    who: str,
    confirm: Annotated[
        bool, typer.Option(help="The numbers matched: mark the contact verified")
    ] = False,
    emoji: Annotated[
        bool, typer.Option("--emoji", help="Compare 7 emoji instead (both of you online)")
    ] = False,
    wait: Annotated[float, typer.Option(help="With --emoji: seconds to wait for them")] = 120.0,
    home: HomeOption = USER_HOME,
) -> None:
    """Show the safety number to compare with your contact (in person or on a call).

    With --emoji: start an emoji comparison (or accept theirs), show the 7 emoji,
    ask whether they match, and wait (at most --wait seconds) for the result.
    """
    try:
        api = api_for(home)
        key = api.contact_key(who)
        if emoji:
            from boxless.cli.sas_commands import emoji_verification

            name = next(c["name"] for c in api.call("GET", "/contacts") if c["identity_key"] == key)
            if not run_trio(emoji_verification, api, key, name, wait):
                raise typer.Exit(1)
            return
        if confirm:
            c = api.call("POST", f"/contacts/{key}/verification")
            print(f"{plain(c['name'])} is verified. You will be warned if their keys ever change.")
            return
        v = api.call("GET", f"/contacts/{key}/verification")
    except BoxlessError as exc:
        fail(exc)
    print("Compare this safety number with your contact's; if they match, no one is in the middle:")
    print(plain(v["safety_number"]))
    print(f"Then run: boxless verify {who} --confirm")


_TICKS = {"queued": "·", "sent": "✓", "delivered": "✓✓", "read": "✓✓ read", "failed": "✗"}


def _line(m: dict[str, Any], name: str) -> str:
    """One message as a line of plain text (everything the peer chose made safe)."""
    who = "me" if m["outgoing"] else plain(name)
    text = "(deleted)" if m["deleted"] else plain(m["text"]) + (" (edited)" if m["edited"] else "")
    ticks = f"  {_TICKS.get(m['state'], '')}" if m["outgoing"] else ""
    reactions = " ".join(f"{plain(e)}{len(v)}" for e, v in m["reactions"].items())
    return f"{who}: {text}{ticks}" + (f"  [{reactions}]" if reactions else "")


@app.command()
def chat(who: str, home: HomeOption = USER_HOME) -> None:
    """Chat live: type a line and Enter to send; Ctrl-D or /quit to leave."""
    try:
        api = api_for(home)
        key = api.contact_key(who)
        name = next(c["name"] for c in api.call("GET", "/contacts") if c["identity_key"] == key)
        for m in api.call("GET", f"/contacts/{key}/messages?limit=30"):
            print(_line(m, name))
        api.call("POST", f"/contacts/{key}/read")
        run_trio(_chat_live, api, key, name)
    except BoxlessError as exc:
        fail(exc)


@app.command()
def history(
    who: Annotated[str, typer.Argument(help="Contact name or key prefix")],
    limit: Annotated[int, typer.Option(help="How many of the newest", min=1, max=500)] = 50,
    before: Annotated[
        int | None, typer.Option(help="Only messages before this lamport (paging back)")
    ] = None,
    everything: Annotated[bool, typer.Option("--all", help="The whole history")] = False,
    home: HomeOption = USER_HOME,
) -> None:
    """A chat's messages, oldest first: the newest --limit, older with --before
    <lamport of the oldest shown> (printed first), or all of them with --all."""
    from boxless.cli.history import history as pages

    try:
        api = api_for(home)
        key = api.contact_key(who)
        name = next(c["name"] for c in api.call("GET", "/contacts") if c["identity_key"] == key)
        # A Lamport time may be shared by one message each way: page from it
        # inclusive (the pager drops what it has already).
        rows = pages(
            api,
            f"/contacts/{key}/messages",
            lambda m: int(m["lamport"]) + 1,
            limit=limit,
            before=before,
            everything=everything,
        )
    except BoxlessError as exc:
        fail(exc)
    if rows and not everything:
        print(f"(older: --before {rows[0]['lamport']})")
    for m in rows:
        print(_line(m, name))


def _find_message(api: Api, key: str, message_id: str) -> dict[str, Any] | None:
    for m in api.call("GET", f"/contacts/{key}/messages?limit=50"):
        if m["id"] == message_id:
            return dict(m)
    return None


async def _chat_live(api: Api, key: str, name: str) -> None:
    from trio_websocket import ConnectionClosed, open_websocket_url

    ws_url = api.url.replace("http://", "ws://") + f"/api/v1/events?token={api.token}"
    async with open_websocket_url(ws_url) as ws, trio.open_nursery() as nursery:

        async def show() -> None:
            try:
                while True:
                    event = json.loads(await ws.get_message())
                    if event["type"] == "message":
                        m = await trio.to_thread.run_sync(
                            _find_message, api, key, event["message_id"]
                        )
                        if m is not None:
                            print(_line(m, name), flush=True)
                            if not m["outgoing"]:
                                await trio.to_thread.run_sync(
                                    api.call, "POST", f"/contacts/{key}/read"
                                )
                    elif event["type"] == "typing" and event["contact"] == key and event["typing"]:
                        print(f"({plain(name)} is typing…)", flush=True)
            except ConnectionClosed:
                nursery.cancel_scope.cancel()

        nursery.start_soon(show)
        while True:
            line = await trio.to_thread.run_sync(sys.stdin.readline)
            if not line or line.strip() == "/quit":
                break
            if line.strip():
                await trio.to_thread.run_sync(
                    api.call, "POST", f"/contacts/{key}/messages", {"text": line.rstrip("\n")}
                )
        nursery.cancel_scope.cancel()
