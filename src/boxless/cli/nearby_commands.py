"""``boxless nearby …``: People Nearby from the command line (docs/nearby.md).
The position given is turned into a ~5 km cell by the node at once; only
that (and a ~1 km area) is ever published, under a fresh pseudonym."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from boxless.cli.api_client import api_for
from boxless.cli.app import app, fail, out
from boxless.cli.common import USER_HOME, HomeOption
from boxless.cli.safe import markup
from boxless.errors import BoxlessError, UsageError

nearby_app = typer.Typer(
    help="People Nearby: opt in with a coarse location, say hello (needs `boxless up`).",
    no_args_is_help=True,
)
app.add_typer(nearby_app, name="nearby")

IdArg = Annotated[str, typer.Argument(help="A card id, or the start of one (see `nearby list`)")]


def _print(state: dict[str, Any]) -> None:
    if not state["sharing"]:
        out.print("Not sharing. Start with: boxless nearby start --lat 38.72 --lon -9.14")
        return
    out.print(f"Sharing cell {state['cell']} as {markup(state.get('name') or 'someone nearby')}")
    for p in state["people"]:
        sent = "  (hello sent)" if p["greeted"] else ""
        status = f" — {markup(p['status'])}" if p["status"] else ""
        out.print(f"  {p['id'][:12]}  {p['distance']:>8}  {markup(p['name'] or '?')}{status}{sent}")
    if not state["people"]:
        out.print("  nobody else nearby right now")
    for x in state["hellos"]:
        out.print(f"  hello from {markup(x['name'] or '?')} ({x['id'][:12]}): {markup(x['text'])}")


def _full_id(ids: list[str], prefix: str) -> str:
    found = [i for i in ids if i.startswith(prefix.lower())]
    if len(found) != 1:
        raise UsageError(f"{prefix!r} matches {len(found)} cards: see `boxless nearby list`")
    return found[0]


@nearby_app.command("start")
def start(
    lat: Annotated[float, typer.Option(help="Latitude, -90..90")],
    lon: Annotated[float, typer.Option(help="Longitude, -180..180")],
    home: HomeOption = USER_HOME,
    name: Annotated[str, typer.Option(help="Name on your card (optional)")] = "",
    status: Annotated[str, typer.Option(help="Status on your card (optional)")] = "",
) -> None:
    """Share a coarse location and see who else shares nearby."""
    try:
        body = {"lat": lat, "lon": lon, "name": name, "status": status}
        _print(api_for(home).call("POST", "/nearby/start", body))
    except BoxlessError as exc:
        fail(exc)


@nearby_app.command("list")
def list_(home: HomeOption = USER_HOME) -> None:
    """Who is nearby (distance buckets), and hellos received."""
    try:
        _print(api_for(home).call("GET", "/nearby"))
    except BoxlessError as exc:
        fail(exc)


@nearby_app.command("hello")
def hello(
    card: IdArg,
    home: HomeOption = USER_HOME,
    text: Annotated[str, typer.Option(help="A greeting")] = "",
) -> None:
    """Say hello: they get your contact link and decide."""
    try:
        api = api_for(home)
        ids = [p["id"] for p in api.call("GET", "/nearby")["people"]]
        _print(api.call("POST", f"/nearby/people/{_full_id(ids, card)}/hello", {"text": text}))
    except BoxlessError as exc:
        fail(exc)


@nearby_app.command("accept")
def accept(card: IdArg, home: HomeOption = USER_HOME) -> None:
    """Accept a hello: the two of you become contacts."""
    try:
        api = api_for(home)
        ids = [x["id"] for x in api.call("GET", "/nearby")["hellos"]]
        _print(api.call("POST", f"/nearby/hellos/{_full_id(ids, card)}/accept"))
    except BoxlessError as exc:
        fail(exc)


@nearby_app.command("stop")
def stop(home: HomeOption = USER_HOME) -> None:
    """Stop sharing: your card is withdrawn."""
    try:
        _print(api_for(home).call("POST", "/nearby/stop"))
    except BoxlessError as exc:
        fail(exc)
