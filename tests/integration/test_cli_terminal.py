"""A hostile contact's name and messages through the real CLI output path.

The attack (issue 10, finding 7): Mallory picks a display name and sends texts
that the CLI printed as they were. ``boxless contacts`` read the name as rich
markup (``[/]`` crashed it with a MarkupError, ``[bold red]`` restyled the
table) and ``boxless chat`` wrote escape sequences to the terminal
(``ESC ]0;...BEL`` retitled the window, ``ESC [2J`` cleared the screen, U+202E
reversed what followed). Here Mallory is a real client over a real service node;
Alice's `boxless contacts` and `boxless chat` run in this process against her
served API (as `boxless up` serves it), and their output must show the hostile
text as inert characters.
"""

from __future__ import annotations

import traceback
from dataclasses import replace
from pathlib import Path

import trio
from typer.testing import CliRunner

from boxless.cli.main import app
from boxless.client import store as db
from tests.api_fixtures import serve_api
from tests.chat_fixtures import befriend, make_account, running_client, start_service, wait_for

# A valid display name (no control characters), so it travels in Mallory's signed card.
MARKUP_NAME = "[/] [bold red]x"
# Control characters: what an unvalidated profile update stores (core.py:819 on main).
ESCAPE_NAME = MARKUP_NAME + " \x1b]0;pwned\x07\x1b[2J\u202eevil"
TEXT = "hi [/] \x1b]0;pwned\x07\x1b[2J\x1b[31mred\u202e\rAlice: ok \x9b2J"
ACTIVE = ("\x1b", "\x07", "\x9b", "\u202e", "\r")


def invoke(*argv: str, stdin: str = "") -> tuple[int, str]:
    result = CliRunner().invoke(app, list(argv), input=stdin, env={"COLUMNS": "200"})
    out = result.stdout + result.stderr
    if result.exc_info is not None and not isinstance(result.exception, SystemExit):
        out += "".join(traceback.format_exception(*result.exc_info))
    return result.exit_code, out


def assert_inert(out: str) -> None:
    assert not [ch for ch in ACTIVE if ch in out], repr(out)


async def test_hostile_name_and_text_print_as_inert_text(tmp_path: Path) -> None:
    make_account(tmp_path / "alice", "Alice").close()
    make_account(tmp_path / "mallory", MARKUP_NAME).close()
    async with trio.open_nursery() as nursery:
        service = await start_service(nursery, tmp_path, "s1")
        addrs = [service.addrs()[0]]
        async with (
            running_client(tmp_path / "alice", addrs) as alice,
            running_client(tmp_path / "mallory", addrs) as mallory,
        ):
            api = await serve_api(nursery, alice, tmp_path / "alice")
            await befriend(alice, mallory)
            await mallory.send_text(alice.me, TEXT)
            await wait_for(alice, lambda: len(alice.messages(mallory.me, 10, None)) == 1)
            home = str(api.home)
            key = mallory.me.hex()[:12]

            code, out = await trio.to_thread.run_sync(invoke, "contacts", "--home", home)
            assert code == 0, out
            assert MARKUP_NAME in out  # shown as typed, not read as markup
            assert_inert(out)

            with alice.db.transaction() as cur:
                contact = db.get_contact(cur, mallory.me)
                assert contact is not None
                db.put_contact(cur, replace(contact, display_name=ESCAPE_NAME))

            code, out = await trio.to_thread.run_sync(invoke, "contacts", "--home", home)
            assert code == 0, out
            assert MARKUP_NAME in out and "evil" in out
            assert_inert(out)

            code, out = await trio.to_thread.run_sync(
                lambda: invoke("chat", key, "--home", home, stdin="/quit\n")
            )
            assert code == 0, out
            assert f"{MARKUP_NAME} ␛" not in out  # the OSC sequence is gone, not pictured
            assert f"{MARKUP_NAME} evil: hi [/] red␍Alice: ok" in out, repr(out)
            assert_inert(out)
        nursery.cancel_scope.cancel()
