"""``boxless init`` (create or ``--restore`` an account) and ``boxless whoami``.

Secrets come from hidden prompts, or for scripts and tests from the
environment: ``BOXLESS_PASSPHRASE`` (the database passphrase) and
``BOXLESS_RECOVERY_PHRASE`` (for ``init --restore``). The recovery phrase of a
new account is printed once, on standard output, and never stored.
"""

from __future__ import annotations

import os
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from boxless.cli.app import app, console, fail
from boxless.cli.common import USER_HOME, HomeOption, ask_passphrase, private_dir
from boxless.cli.safe import markup, plain
from boxless.errors import BoxlessError, UsageError
from boxless.identity.account import account_exists, create_account, open_account
from boxless.identity.contact_code import qr_terminal, save_qr_png
from boxless.identity.keys import Identity
from boxless.identity.profile import Profile, read_avatar_file, validate_display_name
from boxless.identity.seed import generate_phrase, validate_phrase
from boxless.storage.userdb import UserDBExists, check_new_passphrase

RECOVERY_PHRASE_ENV = "BOXLESS_RECOVERY_PHRASE"
CONFIRM_WORDS = 3


class PhraseNotConfirmed(UsageError):
    """The user did not type back the recovery phrase words correctly."""


def _recovery_phrase() -> str:
    from_env = os.environ.get(RECOVERY_PHRASE_ENV)
    if from_env is not None:
        return from_env
    value: str = typer.prompt("Recovery phrase (24 words)", hide_input=True)
    return value


def _show_phrase(phrase: str) -> None:
    words = phrase.split()
    typer.echo("\nYour recovery phrase. Write it down on paper and keep it safe: it is the")
    typer.echo("only way to restore this account, and anyone who has it can become you.\n")
    rows = len(words) // 4
    for row in range(rows):
        cells = [f"{i + 1:>2}. {words[i]:<10}" for i in range(row, len(words), rows)]
        typer.echo("  " + "  ".join(cells).rstrip())
    typer.echo("")


def _confirm_phrase(phrase: str) -> None:
    words = phrase.split()
    positions = sorted(secrets.SystemRandom().sample(range(len(words)), CONFIRM_WORDS))
    typer.echo("To check you wrote it down, type these words of the phrase.")
    for index in positions:
        answer: str = typer.prompt(f"Word #{index + 1}")
        if answer.strip().lower() != words[index]:
            raise PhraseNotConfirmed(
                f"word #{index + 1} does not match; nothing was created. Run `boxless init` "
                "again (you will get a new phrase) and copy it carefully"
            )


def _profile(name: str | None, avatar: Path | None, now: float) -> Profile:
    if name is None:
        name = typer.prompt("Display name (what your contacts see)")
    validate_display_name(name)
    data = read_avatar_file(avatar) if avatar is not None else None
    return Profile(display_name=name, avatar=data, updated_at=int(now))


@app.command()
def init(
    home: HomeOption = USER_HOME,
    restore: Annotated[
        bool,
        typer.Option(
            "--restore",
            help=f"Restore an account from its recovery phrase (or ${RECOVERY_PHRASE_ENV})",
        ),
    ] = False,
    name: Annotated[str | None, typer.Option(help="Display name (asked if omitted)")] = None,
    avatar: Annotated[
        Path | None, typer.Option(help="Avatar image, PNG or JPEG, at most 256 KiB", dir_okay=False)
    ] = None,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            "-y",
            help="Do not ask to type back words of the new phrase (for scripts; "
            "make sure the printed phrase is kept)",
        ),
    ] = False,
    backup: Annotated[
        Path | None,
        typer.Option(help="With --restore: restore this backup file (everything, history too)"),
    ] = None,
    service_peer: Annotated[
        list[str] | None,
        typer.Option(
            help="With --restore and no --backup: read the account's published state "
            "(contacts, groups, settings) through this service node (repeatable)"
        ),
    ] = None,
) -> None:
    """Create your account (a new identity), or restore one with --restore.

    The database passphrase is asked twice (or read from $BOXLESS_PASSPHRASE).
    """
    if restore and (backup is not None or service_peer):
        from boxless.cli.backup_commands import init_restore

        init_restore(home, backup, service_peer or [])
        return
    try:
        if account_exists(home):
            raise UserDBExists(
                f"{home} already has a Boxless account: `boxless whoami --home {home}` shows it. "
                "Use another --home for a second account"
            )
        now = time.time()
        profile = _profile(name, avatar, now)
        passphrase = ask_passphrase(new=True)
        check_new_passphrase(passphrase)
        if restore:
            identity = Identity.from_phrase(validate_phrase(_recovery_phrase()))
        else:
            phrase = generate_phrase()
            _show_phrase(phrase)
            if not yes:
                _confirm_phrase(phrase)
            identity = Identity.from_phrase(phrase)
        if private_dir(home):
            console.print(
                f"warning: {markup(str(home))} was readable by others; it is now yours only"
            )
        console.print("deriving the database key (a second or so)...")
        with create_account(home, passphrase, identity, profile, now) as account:
            typer.echo(f"{'restored' if restore else 'created'} account in {home}")
            typer.echo(f"name:        {plain(account.profile.display_name)}")
            typer.echo(f"fingerprint: {account.identity.fingerprint}")
            typer.echo(f"device:      {account.device.certificate.device_id_hex}")
        typer.echo("Run `boxless whoami` for your contact link and QR code.")
    except BoxlessError as exc:
        fail(exc)


@app.command()
def whoami(
    home: HomeOption = USER_HOME,
    png: Annotated[
        Path | None, typer.Option(help="Also save the contact QR code as a PNG here")
    ] = None,
    qr: Annotated[bool, typer.Option("--qr/--no-qr", help="Print the QR code")] = True,
) -> None:
    """Show your name, identity fingerprint, device, contact link and QR code.

    The passphrase is asked (or read from $BOXLESS_PASSPHRASE).
    """
    try:
        passphrase = ask_passphrase(new=False)
        now = time.time()
        with open_account(home, passphrase) as account:
            code = account.contact_code(now)
        expires = datetime.fromtimestamp(code.bundle.expires_at, UTC).strftime("%Y-%m-%d")
        typer.echo(f"name:        {plain(code.display_name)}")
        typer.echo(f"fingerprint: {code.fingerprint}")
        typer.echo(f"device:      {code.device_id.hex()}")
        typer.echo(f"link:        {code.link}")
        typer.echo(f"(the link and QR code are valid until {expires})")
        if qr:
            typer.echo(qr_terminal(code.link), nl=False)
        if png is not None:
            save_qr_png(code.link, png)
            typer.echo(f"QR code saved to {png}")
    except BoxlessError as exc:
        fail(exc)
