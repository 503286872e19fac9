"""`boxless search`, `boxless favourites ...` and `boxless forward` against the local API
of real in-process clients (the typer app in a worker thread, as in test_cli_groups)."""

from __future__ import annotations

from pathlib import Path

from tests.api_fixtures import people
from tests.integration.test_cli_groups import boxless, ok


async def test_search_favourites_and_forward_commands(tmp_path: Path) -> None:
    async with people(tmp_path, "Alice", "Bob") as p:
        alice, bob = p["Alice"], p["Bob"]
        ka = alice.client.me.hex()
        sent = await bob.call("POST", f"/contacts/{ka}/messages", {"text": "the ferry is at 7:40"})
        await alice.until("/search?q=ferry", lambda r: len(r["messages"]) == 1)

        out = await ok(alice, "search", "ferry")
        assert "the ferry is at 7:40" in out and sent["id"] in out and "Bob" in out
        assert "the ferry" in await ok(alice, "search", "fer", "--chat", "bob")
        assert "no messages found" in await ok(alice, "search", "nothing-like-it")
        code, _, err = await boxless(alice, "search", "x" * 201)
        assert code == 2 and "longer than 200" in err
        code, _, err = await boxless(alice, "search", "ferry", "--chat", "Nobody")
        assert code == 2 and "no contact or group called 'Nobody'" in err

        assert "saved as favourite" in await ok(
            alice, "favourites", "add", sent["id"], "--from", "Bob"
        )
        listed = await ok(alice, "favourites", "list", "ferry")
        assert "the ferry is at 7:40" in listed
        fav_id = str(alice.client.favourites.list()[0].id)
        assert "no favourites" in await ok(alice, "favourites", "list", "bus")

        assert "sent 1 message(s)" in await ok(
            alice, "forward", sent["id"], "--from", "Bob", "--to", "Bob"
        )
        await bob.until(
            f"/contacts/{ka}/messages",
            lambda ms: [m["text"] for m in ms if not m["outgoing"]] == ["the ferry is at 7:40"],
        )
        assert "removed" in await ok(alice, "favourites", "rm", fav_id)
        code, _, err = await boxless(alice, "favourites", "rm", fav_id)
        assert code == 2 and "no such favourite" in err
