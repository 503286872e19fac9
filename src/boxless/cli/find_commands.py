"""``boxless search``, ``boxless forward`` and ``boxless favourites``, through the
local API of a running ``boxless up``.

A chat is named by a contact's or group's name (any case), or as the API names
it (``contact:<key hex>``, ``group:<id hex>``). Message ids are the ones
``boxless search`` prints (full ids: a 1:1 id is 32 hex characters, a group's
longer).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import typer
from rich.table import Table

from boxless.cli.api_client import Api, api_for
from boxless.cli.app import app, fail, out
from boxless.cli.common import USER_HOME, HomeOption
from boxless.cli.safe import markup
from boxless.errors import BoxlessError, UsageError

favourites_app = typer.Typer(
    help="Favourites: saved copies of messages (needs `boxless up`).", no_args_is_help=True
)
app.add_typer(favourites_app, name="favourites")

_CHAT = re.compile(r"^(contact|group):[0-9a-f]{64}$")
ChatOption = Annotated[
    str | None, typer.Option("--chat", help="Only this chat: a contact's or group's name")
]


def _run(action: Callable[[], None]) -> None:
    try:
        action()
    except BoxlessError as exc:
        fail(exc)


def _chat(api: Api, who: str) -> str:
    """``contact:<hex>`` / ``group:<hex>`` for a name (contact or group) or such a name."""
    if _CHAT.match(who):
        return who
    low = who.lower()
    found = [
        f"contact:{c['identity_key']}"
        for c in api.call("GET", "/contacts")
        if c["name"].lower() == low
    ]
    found += [f"group:{g['id']}" for g in api.call("GET", "/groups") if g["name"].lower() == low]
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(
            f"no contact or group called {who!r}: see `boxless contacts`, `boxless group list`"
        )
    raise UsageError(f"{who!r} names {len(found)} chats: use contact:<key> or group:<id>")


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


@app.command("search")
def search(
    query: Annotated[
        str, typer.Argument(help="Words to find (all of them; the last may be a prefix)")
    ],
    chat: ChatOption = None,
    limit: Annotated[int, typer.Option(help="At most this many messages (1-200)")] = 50,
    home: HomeOption = USER_HOME,
) -> None:
    """Search messages of every chat (or one), and contacts and groups by name."""

    def run() -> None:
        api = api_for(home)
        params = {"q": query, "limit": str(limit)}
        if chat is not None:
            params["chat"] = _chat(api, chat)
        found = api.call("GET", "/search?" + urlencode(params))
        for kind in ("contacts", "groups"):
            for x in found[kind]:
                out.print(f"{kind[:-1]}: {markup(x['name'])}  [dim]{x['chat']}[/dim]")
        if not found["messages"]:
            out.print("no messages found")
            return
        table = Table()
        for col in ("when", "chat", "from", "text", "chat / id"):
            table.add_column(col)
        for m in found["messages"]:
            table.add_row(
                _when(m["sent_at_ms"]),
                markup(m["chat_name"]),
                markup(m["sender_name"]),
                markup(m["snippet"]),
                f"{m['chat']}\n{m['id']}",
            )
        out.print(table)

    _run(run)


@app.command("forward")
def forward(
    ids: Annotated[list[str], typer.Argument(help="Message ids, in the order to send them")],
    source: Annotated[str, typer.Option("--from", help="The chat they are in (name)")],
    to: Annotated[list[str], typer.Option("--to", help="A chat to forward to (repeat for more)")],
    home: HomeOption = USER_HOME,
) -> None:
    """Forward messages of one chat to one or several chats (as new texts, in order)."""

    def run() -> None:
        api = api_for(home)
        chat = _chat(api, source)
        body = {
            "messages": [{"chat": chat, "id": i} for i in ids],
            "to": [_chat(api, t) for t in to],
        }
        done = api.call("POST", "/forward", body)
        out.print(f"sent {done['sent']} message(s)")
        for target, why in done["refused"].items():
            out.print(f"[red]not sent to {target}:[/red] {markup(why)}")

    _run(run)


def _show(favs: list[dict[str, Any]]) -> None:
    if not favs:
        out.print("no favourites")
        return
    table = Table()
    for col in ("id", "saved", "from", "text"):
        table.add_column(col)
    for f in favs:
        table.add_row(
            str(f["id"]), _when(f["saved_at_ms"]), markup(f["sender_name"]), markup(f["text"])
        )
    out.print(table)


@favourites_app.command("list")
def favourites_list(
    query: Annotated[str, typer.Argument(help="Only those with these words")] = "",
    home: HomeOption = USER_HOME,
) -> None:
    """My favourites, newest saved first."""
    _run(lambda: _show(api_for(home).call("GET", "/favourites?" + urlencode({"q": query}))))


@favourites_app.command("add")
def favourites_add(
    message_id: Annotated[str, typer.Argument(help="The message's id (`boxless search`)")],
    source: Annotated[str, typer.Option("--from", help="The chat it is in (name)")],
    home: HomeOption = USER_HOME,
) -> None:
    """Save a copy of a message (kept even if the message is deleted)."""

    def run() -> None:
        api = api_for(home)
        fav = api.call("POST", "/favourites", {"chat": _chat(api, source), "id": message_id})
        out.print(f"saved as favourite {fav['id']}")

    _run(run)


@favourites_app.command("rm")
def favourites_rm(
    fav_id: Annotated[int, typer.Argument(help="The favourite's id (`boxless favourites list`)")],
    home: HomeOption = USER_HOME,
) -> None:
    """Remove a favourite."""

    def run() -> None:
        api_for(home).call("DELETE", f"/favourites/{fav_id}")
        out.print("removed")

    _run(run)
