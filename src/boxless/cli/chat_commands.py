"""``boxless chats ...``: the chat list's settings, through the local API of a running
``boxless up`` -- list, pin/unpin, mute/unmute, unread/read, delete (for me).

A chat is named by a contact's or group's name (any case), or as the API names
it (``contact:<key hex>``, ``group:<id hex>``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table

from boxless.cli.api_client import Api, api_for
from boxless.cli.app import app, fail, out
from boxless.cli.common import USER_HOME, HomeOption
from boxless.cli.safe import markup
from boxless.errors import BoxlessError, UsageError

chat_app = typer.Typer(
    help="The chat list: pin, mute, mark unread, delete a chat (needs `boxless up`).",
    no_args_is_help=True,
)
app.add_typer(chat_app, name="chats")

_NAME = re.compile(r"(contact|group):[0-9a-f]{64}")
ChatArg = Annotated[
    str, typer.Argument(help="A contact's or group's name, or contact:/group:<hex>")
]


def _run(action: Callable[[], None]) -> None:
    try:
        action()
    except BoxlessError as exc:
        fail(exc)


def _chats(api: Api) -> dict[str, str]:
    """Every chat's API name -> what to call it."""
    named = {f"contact:{c['identity_key']}": c["name"] for c in api.call("GET", "/contacts")}
    named.update({f"group:{g['id']}": g["name"] for g in api.call("GET", "/groups")})
    return named


def _resolve(api: Api, who: str) -> tuple[str, str]:
    """``(API name, display name)`` of the chat ``who`` names."""
    chats = _chats(api)
    if _NAME.fullmatch(who):
        return who, chats.get(who, who)
    found = [(k, n) for k, n in chats.items() if n.lower() == who.lower()]
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(f"no chat called {who!r}: see `boxless chats list`")
    raise UsageError(f"{who!r} names {len(found)} chats: use contact:<key> or group:<id>")


def _set(who: str, home: Any, change: dict[str, bool], said: str) -> None:
    def run() -> None:
        api = api_for(home)
        chat, name = _resolve(api, who)
        api.call("PUT", f"/chats/{chat}/settings", change)
        out.print(f"{markup(name)} {said}")

    _run(run)


@chat_app.command("list")
def chat_list(home: HomeOption = USER_HOME) -> None:
    """Chats with a setting: pinned, muted, marked unread, a draft, deleted for me."""

    def run() -> None:
        api = api_for(home)
        chats = _chats(api)
        settings = api.call("GET", "/chats/settings")
        if not settings:
            out.print("No chat has a setting yet: see `boxless chats --help`.")
            return
        table = Table("chat", "pinned", "muted", "unread mark", "draft", "deleted for me")
        rows = sorted(settings.items(), key=lambda kv: (not kv[1]["pinned"], chats.get(kv[0], "")))
        for chat, s in rows:
            draft = s["draft"]
            table.add_row(
                markup(chats.get(chat, chat)),
                "yes" if s["pinned"] else "",
                "yes" if s["muted"] else "",
                "yes" if s["marked_unread"] else "",
                markup(draft if len(draft) <= 40 else draft[:39] + "…"),
                "yes" if s["cleared_at_ms"] else "",
            )
        out.print(table)

    _run(run)


@chat_app.command("pin")
def chat_pin(chat: ChatArg, home: HomeOption = USER_HOME) -> None:
    """Pin a chat to the top of the list."""
    _set(chat, home, {"pinned": True}, "is pinned to the top")


@chat_app.command("unpin")
def chat_unpin(chat: ChatArg, home: HomeOption = USER_HOME) -> None:
    """Unpin a chat."""
    _set(chat, home, {"pinned": False}, "is no longer pinned")


@chat_app.command("mute")
def chat_mute(chat: ChatArg, home: HomeOption = USER_HOME) -> None:
    """Mute a chat: no notifications (a group still notifies when you are mentioned)."""
    _set(chat, home, {"muted": True}, "is muted")


@chat_app.command("unmute")
def chat_unmute(chat: ChatArg, home: HomeOption = USER_HOME) -> None:
    """Unmute a chat."""
    _set(chat, home, {"muted": False}, "is unmuted")


@chat_app.command("unread")
def chat_unread(chat: ChatArg, home: HomeOption = USER_HOME) -> None:
    """Mark a chat unread (until it is opened)."""
    _set(chat, home, {"marked_unread": True}, "is marked unread")


@chat_app.command("read")
def chat_read(chat: ChatArg, home: HomeOption = USER_HOME) -> None:
    """Take the unread mark off a chat."""
    _set(chat, home, {"marked_unread": False}, "is no longer marked unread")


@chat_app.command("delete")
def chat_delete(
    chat: ChatArg,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask first")] = False,
    home: HomeOption = USER_HOME,
) -> None:
    """Delete a chat for me: its messages leave this device; the contact or group stays."""

    def run() -> None:
        api = api_for(home)
        name, shown = _resolve(api, chat)
        if not yes and not typer.confirm(
            f"Delete the chat with {shown}? Its messages are removed from this device",
            default=False,
        ):
            raise typer.Exit(1)
        removed = api.call("DELETE", f"/chats/{name}")["removed"]
        out.print(
            f"Chat with {markup(shown)} deleted ({removed} messages removed from this device)"
        )

    _run(run)
