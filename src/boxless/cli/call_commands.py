"""``boxless calls``: the call history (calls themselves run in the web UI, docs/calls.md)."""

from __future__ import annotations

import datetime
from typing import Annotated

import typer

from boxless.cli.api_client import api_for
from boxless.cli.app import app, fail, out
from boxless.cli.common import USER_HOME, HomeOption
from boxless.cli.safe import markup
from boxless.errors import BoxlessError


@app.command()
def calls(
    home: HomeOption = USER_HOME,
    limit: Annotated[int, typer.Option(help="How many, newest first (1-500)")] = 20,
) -> None:
    """List recent calls: who, which way, voice or video, how it ended, how long."""
    from rich.table import Table

    try:
        api = api_for(home)
        rows = api.call("GET", f"/calls?limit={max(1, min(limit, 500))}")["calls"]
        names = {c["identity_key"]: c["name"] for c in api.call("GET", "/contacts")}
        if any(c["chat"].startswith("group:") for c in rows):  # group calls: the group's name
            names |= {g["id"]: g["name"] for g in api.call("GET", "/groups")}
    except BoxlessError as exc:
        fail(exc)
    table = Table()
    for col in ("when", "with", "way", "kind", "ended", "duration"):
        table.add_column(col)
    for c in rows:
        key = c["chat"].split(":", 1)[1]
        when = datetime.datetime.fromtimestamp(c["started_at_ms"] / 1000).strftime("%Y-%m-%d %H:%M")
        d = int(c["duration_s"])
        who = names.get(key, key[:12])
        if c.get("group"):
            who = f"{who} (group, {len(c['participants']) + 1} people)"
        table.add_row(
            when,
            markup(who),
            "out" if c["outgoing"] else "in",
            "video" if c["video"] else "voice",
            c["reason"].replace("_", " "),
            f"{d // 60}:{d % 60:02d}" if c["connected_at_ms"] else "",
        )
    out.print(table)
