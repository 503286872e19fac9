"""`boxless moments ...` against the local API of two real in-process clients and a
service node (loopback): post to an audience, feed, like, comment, delete."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.api_fixtures import people
from tests.integration.test_cli_groups import boxless


async def test_moments_commands(tmp_path: Path) -> None:
    async with people(tmp_path, "Alice", "Bob") as apis:
        alice, bob = apis["Alice"], apis["Bob"]
        code, out, err = await boxless(
            alice,
            "moments",
            "post",
            "Lunch by the river",
            "--place",
            "Thames",
            "--except",
            "Nobody",
        )
        assert code != 0 and "no contact called 'Nobody'" in err + out  # says what to do
        code, out, err = await boxless(
            alice, "moments", "post", "Lunch by the river", "--place", "Thames"
        )
        assert code == 0 and out.startswith("posted "), err
        pid = out.split()[1]
        await bob.until("/moments", lambda got: len(got["posts"]) == 1)
        code, out, err = await boxless(bob, "moments", "feed")
        assert code == 0 and "Alice" in out and "Lunch by the river" in out and "Thames" in out, err
        assert (await bob.call("GET", "/moments"))["unread"] == 0  # the feed was read
        assert (await boxless(bob, "moments", "like", pid))[0] == 0
        code, out, err = await boxless(bob, "moments", "comment", pid, "Looks great")
        assert code == 0 and out.startswith("commented"), err
        await alice.until(
            "/moments", lambda got: bool(got["posts"][0]["comments"] and got["posts"][0]["likes"])
        )
        code, out, _ = await boxless(alice, "moments", "feed")
        assert "♡ Bob" in out and "Bob: Looks great" in out
        code, out, err = await boxless(bob, "moments", "delete", pid)
        assert code != 0 and "no post of yours" in err + out
        assert (await boxless(alice, "moments", "delete", pid))[0] == 0
        with trio.fail_after(60):
            await bob.until("/moments", lambda got: got["posts"] == [])
