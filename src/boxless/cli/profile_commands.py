"""``boxless profile …`` (my status, region, cover; a contact's card) and the
local-only notes commands on ``boxless contact …`` (alias, tags, star, note).
All go through the running node's API (``boxless up``); see docs/profiles.md."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated, Any

import typer

from boxless.cli.api_client import api_for
from boxless.cli.app import app, fail, out
from boxless.cli.common import USER_HOME, HomeOption
from boxless.cli.safe import markup
from boxless.cli.user_commands import contact_app
from boxless.errors import BoxlessError, UsageError

profile_app = typer.Typer(
    help="My profile (status, region, Moments cover) and contacts' cards (needs `boxless up`).",
    no_args_is_help=True,
)
app.add_typer(profile_app, name="profile")

WhoArg = Annotated[str, typer.Argument(help="A contact's name, alias or key prefix")]


def _show(p: dict[str, Any]) -> None:
    out.print(f"[bold]{markup(p['name'])}[/bold]")
    if p.get("alias"):
        out.print(f"  their name: {markup(p['profile_name'])}")
    for field in ("status", "region", "tags", "note", "phone", "email", "company", "birthday"):
        value = p.get(field)
        if value:
            text = ", ".join(value) if isinstance(value, list) else value
            out.print(f"  {field}: {markup(text)}")
    if p.get("starred"):
        out.print("  ★ starred")
    out.print(f"  cover: {'yes' if p.get('cover') else 'none'}")


@profile_app.command("show")
def show(home: HomeOption = USER_HOME) -> None:
    """Show my profile as my contacts see it."""
    try:
        _show(api_for(home).call("GET", "/me/profile"))
    except BoxlessError as exc:
        fail(exc)


@profile_app.command("set")
def set_profile(
    home: HomeOption = USER_HOME,
    status: Annotated[str | None, typer.Option(help="One line ('' clears it)")] = None,
    region: Annotated[str | None, typer.Option(help="e.g. 'Lisbon, Portugal'")] = None,
    cover: Annotated[
        Path | None, typer.Option(help="A JPEG/PNG of at most 12 KiB for Moments ('-' removes it)")
    ] = None,
) -> None:
    """Change my status, region or Moments cover; my contacts are told."""
    try:
        api = api_for(home)
        if status is not None or region is not None:
            api.call("PUT", "/me/profile", {"status": status, "region": region})
        if cover is not None:
            image = b"" if str(cover) == "-" else cover.read_bytes()
            api.call("PUT", "/me/cover", {"image": base64.b64encode(image).decode()})
        _show(api.call("GET", "/me/profile"))
    except OSError as exc:
        fail(UsageError(f"cannot read the cover: {exc}"))
    except BoxlessError as exc:
        fail(exc)


@profile_app.command("card")
def card(who: WhoArg, home: HomeOption = USER_HOME) -> None:
    """Show a contact's card: their profile and my notes about them."""
    try:
        api = api_for(home)
        _show(api.call("GET", f"/contacts/{api.contact_key(who)}/profile"))
    except BoxlessError as exc:
        fail(exc)


def _notes(home: Path, who: str, **change: Any) -> None:
    try:
        api = api_for(home)
        _show(api.call("PUT", f"/contacts/{api.contact_key(who)}/notes", change))
    except BoxlessError as exc:
        fail(exc)


@contact_app.command("alias")
def alias(
    who: WhoArg,
    name: Annotated[str, typer.Argument(help="What to call them ('' removes the alias)")],
    home: HomeOption = USER_HOME,
) -> None:
    """Give a contact an alias, shown instead of their name everywhere (only here)."""
    _notes(home, who, alias=name)


@contact_app.command("tag")
def tag(
    who: WhoArg,
    tags: Annotated[list[str] | None, typer.Argument(help="Their tags (none: clear)")] = None,
    home: HomeOption = USER_HOME,
) -> None:
    """Set a contact's tags (lists), e.g. `boxless contact tag Bob work climbing`."""
    _notes(home, who, tags=tags or [])


@contact_app.command("star")
def star(
    who: WhoArg,
    off: Annotated[bool, typer.Option("--off", help="Unstar")] = False,
    home: HomeOption = USER_HOME,
) -> None:
    """Star a contact (listed first)."""
    _notes(home, who, starred=not off)


@contact_app.command("note")
def note(
    who: WhoArg,
    text: Annotated[str, typer.Argument(help="The note ('' clears it)")],
    phone: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
    home: HomeOption = USER_HOME,
) -> None:
    """Keep a note (and phone/email) about a contact; never sent anywhere."""
    _notes(home, who, note=text, phone=phone, email=email)


@contact_app.command("tags")
def tags_in_use(home: HomeOption = USER_HOME) -> None:
    """List the tags in use and how many contacts carry each."""
    try:
        for t in api_for(home).call("GET", "/contacts/tags"):
            out.print(f"{markup(t['tag'])}  {t['count']}")
    except BoxlessError as exc:
        fail(exc)
