"""``boxless link`` (a new device joins an account) and ``boxless devices ...``
(list, link, rename, revoke through the local API of a running ``boxless up``).

See docs/devices.md.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Annotated

import trio
import typer
from rich.table import Table

from boxless.cli.api_client import api_for
from boxless.cli.app import app, fail, out, run_trio
from boxless.cli.common import USER_HOME, HomeOption, ask_passphrase, private_dir
from boxless.cli.nodes import start_node
from boxless.cli.safe import markup
from boxless.errors import BoxlessError, UsageError
from boxless.waku.sharding import DEFAULT_CLUSTER_ID

devices_app = typer.Typer(
    help="This account's devices: list, link, rename, revoke (needs `boxless up`).",
    no_args_is_help=True,
)
app.add_typer(devices_app, name="devices")


@app.command()
def link(
    home: HomeOption = USER_HOME,
    name: Annotated[str, typer.Option(help="This device's name, as the others show it")] = "",
    service_peer: Annotated[
        list[str] | None, typer.Option(help="Service node multiaddr (repeatable)")
    ] = None,
    relay: Annotated[bool, typer.Option(help="Run a full relay node instead")] = False,
    peer: Annotated[
        list[str] | None, typer.Option(help="With --relay: static peer (repeatable)")
    ] = None,
    listen: Annotated[list[str] | None, typer.Option(help="Listen multiaddr")] = None,
    cluster: Annotated[int, typer.Option(help="Waku cluster id")] = DEFAULT_CLUSTER_ID,
    qr_png: Annotated[
        Path | None, typer.Option(help="Also write the QR code to this PNG file")
    ] = None,
) -> None:
    """Link this new device to an account you use elsewhere: shows a QR code / link
    for the other device (Devices → Link a device), then receives the account."""
    from boxless.identity.account import account_exists

    if account_exists(home):
        fail(UsageError(f"{home} already has an account; link into a new --home"))
    private_dir(home)
    passphrase = ask_passphrase(new=True)
    try:
        run_trio(
            _link,
            home,
            passphrase,
            name or f"{platform.node() or 'computer'}",
            service_peer or [],
            relay,
            peer or [],
            listen or [],
            cluster,
            qr_png,
        )
    except BoxlessError as exc:
        fail(exc)


async def _link(
    home: Path,
    passphrase: str,
    name: str,
    service_peers: list[str],
    relay: bool,
    peers: list[str],
    listen: list[str],
    cluster: int,
    qr_png: Path | None,
) -> None:
    import time

    from boxless.client.core import Client
    from boxless.client.devices import create_linked_account, receive_link
    from boxless.client.devices_core import PendingDevice
    from boxless.identity.contact_code import qr_terminal

    pending = PendingDevice.create(name, platform.system() or "unknown", time.time())
    async with trio.open_nursery() as nursery:
        transport = await start_node(nursery, home, service_peers, relay, peers, listen, cluster)
        typer.echo(qr_terminal(pending.offer.link), nl=False)
        if qr_png is not None:
            import segno

            segno.make_qr(pending.offer.link, error="m").save(str(qr_png), scale=6, border=4)
        out.print(f"Link: {pending.offer.link}")
        out.print(f"Code: {pending.offer.code}")
        out.print(
            f"On your other device: Devices → Link a device, then check it shows "
            f"[bold]{pending.offer.code}[/bold]. Waiting (10 minutes)…"
        )
        linked = await receive_link(
            transport,
            pending,
            time.time,
            lambda done, total: out.print(f"received {done}/{total}"),
        )
        account = create_linked_account(home, passphrase, linked, time.time())
        try:
            rows = Client(account, transport).devices.import_snapshot(linked.snapshot)
        finally:
            account.close()
        nursery.cancel_scope.cancel()
    out.print(f"Linked to {markup(linked.account_name)}'s account ({rows} records).")
    out.print(
        f"Account fingerprint: {linked.identity.fingerprint} — check it matches Me on your "
        "other device (if not, someone else linked this device: remove this --home)."
    )
    out.print(f"Start it with: boxless up --home {home}")


@devices_app.command("list")
def devices_list(home: HomeOption = USER_HOME) -> None:
    """This account's devices."""
    try:
        devices = api_for(home).call("GET", "/devices")["devices"]
    except BoxlessError as exc:
        fail(exc)
    table = Table("device", "name", "platform", "linked at", "")
    for d in devices:
        table.add_row(
            d["device"][:16],
            markup(d["name"]),
            markup(d["platform"]),
            str(d["linked_at"]),
            "this device" if d["this_device"] else "",
        )
    out.print(table)


@devices_app.command("link")
def devices_link(
    link_text: Annotated[str, typer.Argument(metavar="LINK", help="The new device's link")],
    home: HomeOption = USER_HOME,
    history_days: Annotated[int, typer.Option(help="Days of history to hand over")] = 30,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask to compare the code")] = False,
) -> None:
    """Link the new device showing LINK: compare its code, then hand the account over."""
    try:
        api = api_for(home)
        p = api.call("POST", "/devices/link/preview", {"link": link_text})
        out.print(f"{markup(p['name'])} ({markup(p['platform'])}) shows code {p['code']}")
        if not yes and not typer.confirm("Does the new device show the same code?"):
            raise typer.Exit(1)
        api.call("POST", "/devices/link", {"link": link_text, "history_days": history_days})
    except BoxlessError as exc:
        fail(exc)
    out.print("Linked: the account was handed over.")


def _find(home: Path, who: str) -> str:
    devices = api_for(home).call("GET", "/devices")["devices"]
    found = [d["device"] for d in devices if d["device"].startswith(who) or d["name"] == who]
    if len(found) != 1:
        raise UsageError(f"{who!r} names {len(found)} devices: see `boxless devices list`")
    return str(found[0])


@devices_app.command("rename")
def devices_rename(
    device: Annotated[str, typer.Argument(help="Device key (prefix) or name")],
    name: Annotated[str, typer.Argument(help="The new name")],
    home: HomeOption = USER_HOME,
) -> None:
    """Rename one of this account's devices."""
    try:
        api_for(home).call("PUT", f"/devices/{_find(home, device)}", {"name": name})
    except BoxlessError as exc:
        fail(exc)
    out.print("Renamed.")


@devices_app.command("revoke")
def devices_revoke(
    device: Annotated[str, typer.Argument(help="Device key (prefix) or name")],
    home: HomeOption = USER_HOME,
) -> None:
    """Revoke a device: contacts stop writing to it, it wipes its keys."""
    try:
        api_for(home).call("DELETE", f"/devices/{_find(home, device)}")
    except BoxlessError as exc:
        fail(exc)
    out.print("Revoked.")
