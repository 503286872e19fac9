"""``boxless backup create|restore|schedule``: encrypted backups of the whole account.

See docs/devices.md, "Backup and restore". The recovery phrase for ``restore``
is read from ``$BOXLESS_RECOVERY_PHRASE`` or asked (hidden); the database
passphrase from ``$BOXLESS_PASSPHRASE`` or asked.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import trio
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from boxless.cli.app import app, console, fail, out, run_trio
from boxless.cli.common import USER_HOME, HomeOption, ask_passphrase, private_dir
from boxless.cli.safe import markup
from boxless.errors import BoxlessError, UsageError

if TYPE_CHECKING:
    from boxless.client.backup import BackupStats
    from boxless.client.transport import Transport
    from boxless.identity.keys import Identity

RECOVERY_PHRASE_ENV = "BOXLESS_RECOVERY_PHRASE"

backup_app = typer.Typer(
    help="Encrypted backups of the whole account: create, restore, schedule.",
    no_args_is_help=True,
)
app.add_typer(backup_app, name="backup")


def _bar(what: str) -> Progress:
    return Progress(
        TextColumn(what),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def _phrase() -> str:
    from_env = os.environ.get(RECOVERY_PHRASE_ENV)
    if from_env is not None:
        return from_env
    value: str = typer.prompt("Recovery phrase (24 words)", hide_input=True)
    return value


@backup_app.command("create")
def create(
    home: HomeOption = USER_HOME,
    to: Annotated[
        Path | None, typer.Option("--out", help="The backup file (default: in the current folder)")
    ] = None,
    attachments: Annotated[
        bool, typer.Option(help="Also back up the files downloaded so far (the attachment cache)")
    ] = False,
) -> None:
    """Write an encrypted backup of this account (contacts, groups, history, settings,
    favourites, moments, wallet metadata) to a file. Only the recovery phrase opens it."""
    from boxless.client.backup import create_backup
    from boxless.client.backup_schedule import file_name
    from boxless.identity.account import open_account

    try:
        with open_account(home, ask_passphrase(new=False)) as account:
            target = to or Path.cwd() / file_name(time.time(), account.identity.public_key.hex())
            with _bar("backing up") as bar:
                task = bar.add_task("backup", total=None)
                stats = create_backup(
                    account.db,
                    target,
                    files_root=home / "blobs" if attachments else None,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
    except BoxlessError as exc:
        fail(exc)
    out.print(
        f"backup written: {markup(str(stats.path))} ({stats.rows} rows, {stats.files} files,"
        f" {stats.bytes / 1e6:.1f} MB, {stats.seconds:.1f} s). Keep it with your phrase apart:"
        " the phrase opens it."
    )


@backup_app.command("restore")
def restore(
    backup: Annotated[Path, typer.Argument(help="The backup file", dir_okay=False)],
    home: HomeOption = USER_HOME,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Restore over the account in --home (it is moved aside to replaced-*/, kept)",
        ),
    ] = False,
) -> None:
    """Restore a backup into --home as a new device of the account (asks for the
    recovery phrase and a new database passphrase)."""
    from boxless.client.backup import restore_backup
    from boxless.identity.account import account_exists
    from boxless.identity.keys import Identity
    from boxless.identity.seed import validate_phrase
    from boxless.storage.userdb import check_new_passphrase

    try:
        if account_exists(home) and not replace:
            raise UsageError(
                f"{home} already has an account; restore into a new --home, or pass --replace"
            )
        if not backup.is_file():
            raise UsageError(f"there is no backup file at {backup}; check the path")
        identity = Identity.from_phrase(validate_phrase(_phrase()))
        passphrase = ask_passphrase(new=True)
        check_new_passphrase(passphrase)
        private_dir(home)
        with _bar("restoring") as bar:
            task = bar.add_task("restore", total=backup.stat().st_size)
            stats = restore_backup(
                backup,
                home,
                identity,
                passphrase,
                replace=replace,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except BoxlessError as exc:
        fail(exc)
    out.print(
        f"restored into {markup(str(home))}: {stats.rows} rows, {stats.files} files"
        f" ({stats.seconds:.1f} s). This is a new device of your account; your contacts"
        " start new sessions with it when it comes online (`boxless up`)."
    )


@backup_app.command("schedule")
def schedule(
    home: HomeOption = USER_HOME,
    folder: Annotated[
        Path | None, typer.Option("--to", help="Folder for the backups", file_okay=False)
    ] = None,
    every_hours: Annotated[float, typer.Option("--every", help="Hours between backups")] = 24.0,
    keep: Annotated[int, typer.Option(help="How many backups to keep (oldest deleted)")] = 7,
    attachments: Annotated[bool, typer.Option(help="Include the attachment cache")] = False,
    off: Annotated[bool, typer.Option("--off", help="Stop scheduled backups")] = False,
) -> None:
    """Back up automatically to a folder while `boxless up` runs (default: daily, keep 7);
    without --to or --off, show the schedule and how the last backup went."""
    from boxless.client.backup_schedule import Schedule, get_schedule, set_schedule
    from boxless.identity.account import open_account

    try:
        with open_account(home, ask_passphrase(new=False)) as account:
            if off:
                set_schedule(account.db, None)
                out.print("scheduled backups are off")
                return
            if folder is not None:
                set_schedule(
                    account.db,
                    Schedule(folder.resolve(), int(every_hours * 3600), keep, attachments),
                )
            current = get_schedule(account.db)
    except BoxlessError as exc:
        fail(exc)
    if current is None:
        out.print("no scheduled backups (set one with --to FOLDER)")
        return
    last = (
        "never yet"
        if current.last_at_ms is None
        else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(current.last_at_ms / 1000))
    )
    out.print(
        f"every {current.every_s / 3600:g} h to {markup(str(current.folder))}, keeping"
        f" {current.keep}; last: {last}"
        + (f" [red]failed: {markup(current.last_error)}[/red]" if current.last_error else "")
    )


@backup_app.command("recover")
def recover(
    home: HomeOption = USER_HOME,
    service_peer: Annotated[
        list[str] | None, typer.Option(help="Service node multiaddr (repeatable)")
    ] = None,
    relay: Annotated[bool, typer.Option(help="Run a full relay node instead")] = False,
    peer: Annotated[
        list[str] | None, typer.Option(help="With --relay: static peer (repeatable)")
    ] = None,
    listen: Annotated[list[str] | None, typer.Option(help="Listen multiaddr")] = None,
) -> None:
    """Recover an account from its recovery phrase alone (no backup file): contacts,
    groups and settings from the encrypted state your devices publish; not history."""
    from boxless.identity.account import account_exists
    from boxless.identity.keys import Identity
    from boxless.identity.seed import validate_phrase
    from boxless.storage.userdb import check_new_passphrase

    try:
        if account_exists(home):
            raise UsageError(f"{home} already has an account; recover into a new --home")
        identity = Identity.from_phrase(validate_phrase(_phrase()))
        passphrase = ask_passphrase(new=True)
        check_new_passphrase(passphrase)
        private_dir(home)
        stats = run_trio(
            _recover,
            home,
            identity,
            passphrase,
            service_peer or [],
            relay,
            peer or [],
            listen or ["/ip4/127.0.0.1/tcp/0"],
        )
    except BoxlessError as exc:
        fail(exc)
    out.print(
        f"recovered into {markup(str(home))}: {stats.rows} rows (contacts, groups, settings)."
        " Messages are not in the published state: restore a backup file for history."
    )


async def _recover(
    home: Path,
    identity: Identity,
    passphrase: str,
    service_peers: list[str],
    relay: bool,
    peers: list[str],
    listen: list[str],
) -> BackupStats:
    import time as _time

    from boxless.client.account_state import recover as recover_state

    async with trio.open_nursery() as nursery:
        transport = await _node(nursery, home, service_peers, relay, peers, listen)
        with console.status("looking for your account's state on the network…"):
            stats = await recover_state(transport, identity, home, passphrase, now=_time.time())
        nursery.cancel_scope.cancel()
    return stats


async def _node(
    nursery: trio.Nursery,
    home: Path,
    service_peers: list[str],
    relay: bool,
    peers: list[str],
    listen: list[str],
) -> Transport:
    """The node `boxless up` would start (light by default), to read the store."""
    from boxless.client.transport import LightTransport, RelayTransport
    from boxless.errors import ConfigError
    from boxless.node.config import NodeConfig
    from boxless.node.light import LightNode
    from boxless.node.service import WakuNode

    if relay:
        config = NodeConfig(home / "node", tuple(listen), peers=tuple(peers), store_resume=False)
        return RelayTransport(await nursery.start(WakuNode(config).run))
    if not service_peers:
        raise ConfigError("a light node needs --service-peer (or use --relay --peer)")
    light = LightNode(home / "node", service_peers, listen=listen)
    await nursery.start(light.run)
    return LightTransport(light)


def init_restore(home: Path, backup: Path | None, service_peers: list[str]) -> None:
    """``boxless init --restore`` with a backup file (restore it) or, with none, a
    service node to read the published account state from (contacts and groups)."""
    if backup is not None:
        restore(backup, home, replace=False)
    else:
        recover(home, service_peers, False, None, None)
