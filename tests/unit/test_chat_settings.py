"""Per-chat settings (client/chat_settings.py) and their API (api/chats.py), with real
clients over the in-memory network on virtual time; the API over ASGI in memory.

Checked: chat names (malformed: 422, unknown: 404), the draft cap, pin / mute /
mark unread / draft round trips, a group's mute kept in the group's own flag,
"delete a chat for me" (messages gone, contact stays, a new message comes in,
the old ones never come back from store history), and that no one else -- a
stranger, a contact sending messages -- can make settings rows appear.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from boxless.client import events as ev
from boxless.client.chat_settings import (
    MAX_DRAFT,
    InvalidChatName,
    UnknownChat,
    parse_chat,
)
from boxless.errors import UsageError
from tests.asgi_api import api_client
from tests.memnet_fixtures import befriend, homes, memnet, settle, wait_for

__all__ = ["homes"]  # a fixture

ORIGIN = "http://127.0.0.1:8765"


@pytest.mark.parametrize(
    "name",
    [
        "",
        "contact:",
        "contact:" + "a" * 63,
        "contact:" + "A" * 64,
        "group:" + "g" * 64,
        "broadcast:" + "a" * 64,
        "contact:" + "a" * 64 + "\n",
        " contact:" + "a" * 64,
        "contact:" + "a" * 65,
    ],
)
def test_malformed_chat_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidChatName):
        parse_chat(name)


@given(
    st.one_of(
        st.text(max_size=80),
        st.builds(
            lambda kind, key: f"{kind}:{key}",
            st.sampled_from(["contact", "group", "Contact", "group "]),
            st.text(alphabet="0123456789abcdefABCDEF\n :", max_size=70),
        ),
    )
)
def test_any_chat_name_parses_or_is_refused_clearly(name: str) -> None:
    try:
        kind, key = parse_chat(name)
    except InvalidChatName as exc:
        assert "contact:<identity key, 64 hex>" in str(exc)
        return
    assert name == f"{kind}:{key.hex()}" and len(key) == 32


def test_chat_names_parse() -> None:
    assert parse_chat("contact:" + "ab" * 32) == ("contact", bytes.fromhex("ab" * 32))
    assert parse_chat("group:" + "01" * 32) == ("group", bytes.fromhex("01" * 32))


async def test_settings_round_trip_and_delete_for_me(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob", "mallory")) as (net, (alice, bob, mallory)):
        await befriend(alice, bob)
        settings = alice.client.chat_settings
        chat = f"contact:{bob.me.hex()}"

        # only chats that exist: a stranger's key, a made-up group, a bad name
        for bad, error in (
            (f"contact:{mallory.me.hex()}", UnknownChat),
            ("group:" + "00" * 32, UnknownChat),
            ("contact:xyz", InvalidChatName),
        ):
            with pytest.raises(error):
                settings.update(bad, pinned=True)
            with pytest.raises(error):
                settings.set_draft(bad, "hi")
            with pytest.raises(error):
                settings.delete_chat(bad)
        assert settings.all() == {}

        async with alice.client.events() as events:
            s = settings.update(chat, pinned=True, muted=True)
            assert (s.pinned, s.muted, s.marked_unread, s.draft) == (True, True, False, "")
            s = settings.update(chat, marked_unread=True)  # the others stay
            assert (s.pinned, s.muted, s.marked_unread) == (True, True, True)
            s = settings.set_draft(chat, "half a thought")
            assert s.draft == "half a thought" and s.pinned
            got = [events.receive_nowait() for _ in range(3)]
        assert got == [
            ev.ChatSettingsChanged(chat, "settings"),
            ev.ChatSettingsChanged(chat, "settings"),
            ev.ChatSettingsChanged(chat, "draft"),
        ]
        variant = next(v for v in ev.json_schema()["oneOf"] if v["title"] == "chat_settings")
        for event in got:
            data = ev.to_json(event)
            assert set(variant["required"]) == set(data) == set(variant["properties"])
            assert ev.from_json(data) == event and "half a thought" not in str(data)
        assert settings.all()[chat].draft == "half a thought"
        with pytest.raises(UsageError, match="at most"):
            settings.set_draft(chat, "x" * (MAX_DRAFT + 1))
        assert settings.get(chat).draft == "half a thought"  # nothing lost

        # messages both ways, then delete the chat for me
        await alice.client.send_text(bob.me, "one")
        await bob.client.send_text(alice.me, "two")
        await wait_for(alice, lambda: sorted(alice.texts(bob)) == ["one", "two"])
        await wait_for(bob, lambda: sorted(bob.texts(alice)) == ["one", "two"])
        assert settings.delete_chat(chat) == 2
        assert alice.texts(bob) == [] and alice.state(bob) == "accepted"
        assert alice.client.search.search("two").messages == []  # the index follows
        assert [m.text for m in bob.client.search.search("two").messages] == ["two"]
        s = settings.get(chat)
        assert s.cleared_at_ms is not None and not s.pinned and s.draft == ""
        assert s.muted  # a preference about the contact: kept
        assert sorted(bob.texts(alice)) == ["one", "two"]  # only for me

        # store history does not bring them back; a new message does come in
        await alice.client.catch_up()
        assert alice.texts(bob) == []
        await bob.client.send_text(alice.me, "three")
        await wait_for(alice, lambda: alice.texts(bob) == ["three"])

        # a contact's traffic and a stranger's request never make rows here
        await mallory.client.add_contact(alice.link(), intro="let me in")
        await wait_for(alice, lambda: alice.state(mallory) == "request_received")
        await settle(5)
        assert set(settings.all()) == {chat}


async def test_a_groups_mute_is_the_groups_own_flag(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice",)) as (net, (alice,)):
        g = await alice.client.groups.create("Trip")
        chat = f"group:{g.group_id.hex()}"
        settings = alice.client.chat_settings
        assert settings.update(chat, muted=True).muted
        assert alice.client.groups.summary(g.group_id).muted
        alice.client.groups.set_muted(g.group_id, False)  # PUT /groups/{gid}/mute
        assert not settings.get(chat).muted
        alice.client.groups.set_muted(g.group_id, True)
        assert settings.all()[chat].muted
        await alice.client.groups.send_text(g.group_id, "my own words")
        assert alice.client.groups.summary(g.group_id).unread == 0  # mine never count
        before = len(alice.client.groups.messages(g.group_id))
        assert before >= 1  # the "group created" event row
        assert settings.delete_chat(chat) == before
        assert alice.client.groups.messages(g.group_id) == []
        assert alice.client.groups.summary(g.group_id).member  # still in the group


async def test_the_chats_api(homes: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        chat = f"contact:{bob.me.hex()}"
        async with api_client(alice.client, ORIGIN) as http:
            r = await http.get("/chats/settings")
            assert r.status_code == 200 and r.json() == {}

            r = await http.put(f"/chats/{chat}/settings", json={"pinned": True})
            assert r.status_code == 200, r.text
            assert r.json() == {
                "pinned": True,
                "muted": False,
                "marked_unread": False,
                "draft": "",
                "cleared_at_ms": None,
            }
            r = await http.put(f"/chats/{chat.replace(':', '%3A')}/draft", json={"text": "hi"})
            assert r.status_code == 200 and r.json()["draft"] == "hi" and r.json()["pinned"]
            assert (await http.get("/chats/settings")).json()[chat]["draft"] == "hi"

            # bad names: 422; chats that do not exist: 404; bad bodies: 422
            for path in ("/chats/contact:nothex/settings", "/chats/bob/draft", "/chats/settings"):
                method = "DELETE" if path == "/chats/settings" else "PUT"
                body = {"text": "x"} if path.endswith("draft") else {}
                r = await http.request(method, path, json=body)
                assert r.status_code == 422, (path, r.text)
                assert r.json()["error"]["code"] == "invalid_chat"
            r = await http.put("/chats/group:" + "00" * 32 + "/settings", json={"muted": True})
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
            r = await http.put(f"/chats/{chat}/settings", json={"pinned": "yes please"})
            assert r.status_code == 422
            r = await http.put(f"/chats/{chat}/draft", json={"text": "x" * (MAX_DRAFT + 1)})
            assert r.status_code == 422 and "text" in r.json()["error"]["message"]
            r = await http.put(f"/chats/{chat}/draft", json={})
            assert r.status_code == 422

            await alice.client.send_text(bob.me, "to be deleted")
            r = await http.delete(f"/chats/{chat}")
            assert r.status_code == 200 and r.json() == {"removed": 1}
            assert alice.texts(bob) == []
            got = (await http.get("/chats/settings")).json()[chat]
            assert got["cleared_at_ms"] and not got["pinned"] and got["draft"] == ""
            # the documented routes are in the OpenAPI description
            paths = (await http.get("/openapi.json")).json()["paths"]
            assert {"/api/v1/chats/settings", "/api/v1/chats/{chat}/draft"} <= set(paths)
