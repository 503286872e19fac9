"""`boxless group ...` and `boxless broadcast ...` against the local API of real
in-process clients (served on loopback as `boxless up` does, with the same
``api.json`` the commands read).

Most commands run the real typer app in this process (in a worker thread, as
the commands make blocking HTTP calls to the API this test's trio loop serves):
a new interpreter per command cost ~1.5 s of start-up each. A few run as real
``python -m boxless`` processes, so the entry point itself stays covered.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trio
from rich.console import Console
from typer.testing import CliRunner

from boxless.cli.main import app
from tests.api_fixtures import Api, people

COLUMNS = 200  # wide enough that no table wraps a cell


async def boxless(api: Api | Path, *args: str, process: bool = False) -> tuple[int, str, str]:
    """Run ``boxless ARGS --home <the client's home>``; (exit code, stdout, stderr).

    In this process unless ``process``: then as ``python -m boxless`` in a new one."""
    home = str(api.home if isinstance(api, Api) else api)
    argv = [*args, "--home", home]
    with trio.fail_after(60):
        if process:
            done = await trio.run_process(
                [sys.executable, "-m", "boxless", *argv],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env={**os.environ, "COLUMNS": str(COLUMNS)},
            )
            return done.returncode, done.stdout.decode(), done.stderr.decode()
        return await trio.to_thread.run_sync(_invoke, argv, abandon_on_cancel=True)


def _invoke(argv: list[str]) -> tuple[int, str, str]:
    with _wide_consoles():
        result = CliRunner().invoke(app, argv, prog_name="boxless", env={"COLUMNS": str(COLUMNS)})
    err = result.stderr
    if result.exc_info is not None and not isinstance(result.exception, SystemExit):
        err += "".join(traceback.format_exception(*result.exc_info))  # shown if a test fails
    # As through a pipe: no terminal styling even if pytest runs on a terminal (-s).
    return result.exit_code, _unstyled(result.stdout), _unstyled(err)


def _unstyled(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


@contextmanager
def _wide_consoles() -> Iterator[None]:
    """The CLI's rich consoles read $COLUMNS once, when imported; in a process of
    its own that is COLUMNS above, so give them that width while a command runs."""
    consoles = [
        v
        for name, module in list(sys.modules.items())
        if name.startswith("boxless.cli") and module is not None
        for v in vars(module).values()
        if isinstance(v, Console)
    ]
    saved = [c._width for c in consoles]
    for c in consoles:
        c._width = COLUMNS
    try:
        yield
    finally:
        for c, width in zip(consoles, saved, strict=True):
            c._width = width


async def ok(api: Api, *args: str, process: bool = False) -> str:
    code, out, err = await boxless(api, *args, process=process)
    assert code == 0, (args, out, err)
    return out


async def fails(api: Api | Path, *args: str, process: bool = False) -> str:
    """The error a failing command prints (one line, unwrapped)."""
    code, out, err = await boxless(api, *args, process=process)
    assert code == 2, (args, code, out, err)
    return " ".join(err.split())


async def test_group_and_broadcast_commands(tmp_path: Path) -> None:
    async with people(tmp_path, "Alice", "Bob", "Carol") as p:
        alice, bob, carol = p["Alice"], p["Bob"], p["Carol"]
        assert "created Trip" in await ok(
            alice, "group", "create", "Trip", "--description", "June", process=True
        )
        assert "invited Bob to Trip" in await ok(alice, "group", "invite", "Trip", "Bob")
        png = tmp_path / "trip.png"
        out = await ok(alice, "group", "link", "Trip", "--days", "1", "--png", str(png))
        link = out.splitlines()[0]
        assert link.startswith("boxless://g/") and png.read_bytes().startswith(b"\x89PNG")
        out = await ok(carol, "group", "join", link)
        assert "asked Alice to let you into Trip" in out
        for who in (bob, carol):
            await who.until("/groups", lambda gs: len(gs) == 1 and len(gs[0]["members"]) == 3)

        out = await ok(alice, "group", "list")
        assert "Trip" in out and " 3 " in out and "admin" in out
        out = await ok(alice, "group", "show", "trip")  # names match in any case
        assert all(name in out for name in ("Alice", "Bob", "Carol", "June"))

        out = await ok(alice, "group", "send", "Trip", "hi @bob, see the plan")
        assert "(mentioned Bob)" in out
        g = await bob.until("/groups", lambda gs: gs[0]["mentions"] == 1)
        gid = g[0]["id"]
        out = await ok(bob, "group", "history", "Trip")
        assert "Alice: hi @bob, see the plan" in out and "Alice added Bob" in out
        assert "all read" in await ok(bob, "group", "read", "Trip")
        assert (await bob.call("GET", f"/groups/{gid}"))["unread"] == 0
        history = await alice.until(
            f"/groups/{gid}/messages", lambda ms: any(m["read_count"] for m in ms)
        )
        [mine] = [m for m in history if m["outgoing"] and m["kind"] == "text"]
        assert "pinned: hi @bob" in await ok(alice, "group", "pin", "Trip", mine["id"][:10])
        assert "pinned: Alice: hi @bob" in await ok(alice, "group", "show", "Trip")
        assert "unpinned" in await ok(alice, "group", "unpin", "Trip", mine["id"][:10])
        assert "no recent messages match" in await fails(alice, "group", "pin", "Trip", "zzzz")

        assert "Bob is now an admin" in await ok(alice, "group", "promote", "Trip", "Bob")
        assert "Bob is now a member" in await ok(alice, "group", "demote", "Trip", "Bob")
        assert "renamed to Trip 2" in await ok(alice, "group", "rename", "Trip", "Trip 2")
        assert "description: July" in await ok(alice, "group", "describe", "Trip 2", "July")
        out = await ok(alice, "group", "settings", "Trip 2", "--announcements-only", "--no-history")
        assert "announcements only: yes; new members see history: no" in out
        await bob.until(f"/groups/{gid}", lambda g: g["announcements_only"])
        assert "only admins can post" in await fails(bob, "group", "send", "Trip 2", "me too?")
        assert "muted" in await ok(bob, "group", "mute", "Trip 2")
        assert (await bob.call("GET", f"/groups/{gid}"))["muted"] is True
        assert "unmuted" in await ok(bob, "group", "unmute", "Trip 2")
        assert "removed Carol" in await ok(alice, "group", "remove", "Trip 2", "Carol")
        assert "you left Trip 2" in await ok(bob, "group", "leave", "Trip 2")
        assert "left" in await ok(bob, "group", "list")

        err = await fails(alice, "group", "show", "Nope")
        assert "no group called 'Nope': see `boxless group list`" in err
        assert "no contact called 'Zed'" in await fails(alice, "group", "invite", "Trip 2", "Zed")
        assert "no member called 'Zed'" in await fails(alice, "group", "remove", "Trip 2", "Zed")

        # broadcast lists
        out = await ok(alice, "broadcast", "create", "Team", "Bob", "Carol")
        assert "created Team" in out and "with 2 contacts" in out
        assert "sent to 2 contacts of Team" in await ok(
            alice, "broadcast", "send", "Team", "hi all"
        )
        [lst] = await alice.call("GET", "/broadcasts")
        await alice.until(f"/broadcasts/{lst['id']}/messages", lambda bs: bs[0]["delivered"] == 2)
        out = await ok(alice, "broadcast", "show", "team")
        assert "Bob, Carol" in out and "hi all" in out and "2/2" in out
        assert "Team" in await ok(alice, "broadcast", "list")
        assert "deleted Team" in await ok(alice, "broadcast", "delete", "Team")
        err = await fails(alice, "broadcast", "show", "Team")
        assert "no broadcast list called 'Team': see `boxless broadcast list`" in err
        err = await fails(alice, "broadcast", "create", "X", "Nobody")
        assert "no contact called 'Nobody'" in err

    err = await fails(tmp_path / "nobody", "group", "list", process=True)
    assert "start it with `boxless up`" in err
