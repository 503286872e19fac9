"""`boxless chats ...` against the local API of a real in-process client: list, pin,
mute (a group's is the group's own flag), unread mark, delete for me, and the
errors a wrong name gets. One person and a group keep it quick; the 1:1 side of
the same API is covered in tests/unit/test_chat_settings.py."""

from __future__ import annotations

from pathlib import Path

from tests.api_fixtures import people
from tests.integration.test_cli_groups import fails, ok


async def test_chat_commands(tmp_path: Path) -> None:
    async with people(tmp_path, "Alice") as p:
        alice = p["Alice"]
        assert "No chat has a setting yet" in await ok(alice, "chats", "list")
        g = await alice.call("POST", "/groups", {"name": "Book club"})
        chat = f"group:{g['id']}"

        assert "Book club is pinned to the top" in await ok(alice, "chats", "pin", "book club")
        assert "Book club is muted" in await ok(alice, "chats", "mute", chat)
        assert "Book club is marked unread" in await ok(alice, "chats", "unread", "Book club")
        await alice.call("PUT", f"/chats/{chat}/draft", {"text": "later"})
        listed = await ok(alice, "chats", "list")
        assert "Book club" in listed and "later" in listed and listed.count("yes") == 3
        s = (await alice.call("GET", "/chats/settings"))[chat]
        assert (s["pinned"], s["muted"], s["marked_unread"]) == (True, True, True)
        assert (await alice.call("GET", f"/groups/{g['id']}"))["muted"]  # the group's own flag
        await ok(alice, "chats", "read", "Book club")
        await ok(alice, "chats", "unpin", "Book club")
        await ok(alice, "chats", "unmute", "Book club")
        s = (await alice.call("GET", "/chats/settings")).get(chat)
        assert (s["pinned"], s["muted"], s["marked_unread"]) == (False, False, False)

        await alice.call("POST", f"/groups/{g['id']}/messages", {"text": "bye"})
        said = await ok(alice, "chats", "delete", "Book club", "--yes")
        assert "messages removed from this device" in said
        assert await alice.call("GET", f"/groups/{g['id']}/messages") == []
        assert (await alice.call("GET", f"/groups/{g['id']}"))["member"]

        assert "no chat called 'Carol'" in await fails(alice, "chats", "pin", "Carol")
        assert "no such contact" in await fails(alice, "chats", "mute", "contact:" + "ab" * 32)
