"""Search, favourites and forwarding: real clients (real SQLCipher databases) over the
in-memory network on virtual time, their API through the ASGI app, and an attacker's
queries (property test: any text is a result or a clear 422, never a 500)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.api.app import build_app
from boxless.chat.requests import ContactEvent
from boxless.client import search_store as ss
from boxless.client import store as db
from boxless.client.forward import MAX_FORWARD_TARGETS
from boxless.client.search_query import InvalidQuery, parse_chat, parse_query, snippet
from boxless.crypto.olm_sessions import migration_files as crypto_migrations
from boxless.errors import UsageError
from boxless.storage.userdb import KdfParams, UserDB, create_user_db, migration_files
from tests.memnet_fixtures import Person, befriend, homes, memnet, wait_for
from tests.unit.test_group_actions import make_group

__all__ = ["homes"]  # a fixture

ORIGIN = "http://127.0.0.1:8765"


async def api(p: Person, method: str, path: str, **kw: Any) -> httpx.Response:
    app = build_app(p.client, "tok", ORIGIN, lambda: {})
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=ORIGIN,
        headers={"Authorization": "Bearer tok"},
    ) as http:
        return await http.request(method, "/api/v1" + path, **kw)


def _members(p: Person, gid: bytes) -> set[bytes]:
    try:
        return set(p.client.groups.state(gid).members)
    except UsageError:
        return set()


def texts(found: Any) -> list[str]:
    return [m["text"] for m in found["messages"]]


# -- the query -----------------------------------------------------------------------------


def test_query_terms_are_quoted_and_short_ones_become_like_patterns() -> None:
    q = parse_query('  Hello  "x" AND NEAR(a_b) %_ ok ')
    assert q.match == '"hello" AND """x""" AND "and" AND "near(a_b)"'
    assert q.short == ("%_", "ok")
    with pytest.raises(InvalidQuery, match="type a word"):
        parse_query(" \x00\t ")
    with pytest.raises(InvalidQuery, match="longer than"):
        parse_query("x" * 201)
    with pytest.raises(InvalidQuery, match="at most 8 words"):
        parse_query("a b c d e f g h i")
    assert parse_chat("group:" + "ab" * 32).is_group
    for bad in ("contact:xyz", "chat:" + "ab" * 32, "contact:" + "zz" * 32, ""):
        with pytest.raises(UsageError, match="is not a chat"):
            parse_chat(bad)
    long = "word " * 40 + "needle " + "tail " * 40
    cut = snippet(long, ("needle",))
    assert "needle" in cut and cut.startswith("…") and cut.endswith("…") and len(cut) < 100


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UserDB]:
    """A user database with the client's schema and a few texts, made once per module
    (in pytest's temporary directory: a cached one in /tmp outlived every run)."""
    path = tmp_path_factory.mktemp("search") / "user.db"
    u = create_user_db(path, "search corpus passphrase", KdfParams(1024, 1, 1))
    u.migrate("crypto", crypto_migrations())
    u.migrate("client", db.client_migrations())
    with u.transaction() as cur:
        cur.execute(
            "INSERT INTO client_contacts (identity_key, display_name, bundle, device_key,"
            " state, conversation_topic, added_at_ms, updated_at_ms)"
            " VALUES (?, 'Eve', x'', x'', 'accepted', 't', 0, 0)",
            (b"e" * 32,),
        )
        for i, t in enumerate(['say "hi" AND NEAR(x) * ^', "你好世界", "100% _ \\ done", "ok"]):
            row = db.MessageRow(
                bytes([i]) * 16, b"e" * 32, False, i, i, i, t, None, False, False, "received", {}
            )
            db.add_message(cur, row)
    # texts from before the index existed are indexed by its migration; later ones by
    # its triggers
    u.migrate("search", migration_files("boxless.client", "migrations_search"))
    with u.transaction() as cur:
        row = db.MessageRow(
            b"z" * 16, b"e" * 32, False, 9, 9, 9, "好", None, False, False, "received", {}
        )
        db.add_message(cur, row)
    yield u
    u.close()


@given(text=st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_any_query_text_is_a_result_or_a_clear_error(corpus: UserDB, text: str) -> None:
    try:
        q = parse_query(text)
    except InvalidQuery as exc:
        assert str(exc)
        return
    with corpus.transaction() as cur:
        hits = ss.search_messages(cur, q, 10)
    for h in hits:  # every hit has every term (case and accents aside)
        assert not all(t.isascii() for t in q.terms) or all(t in h.text.lower() for t in q.terms)


def test_fts5_syntax_is_plain_text(corpus: UserDB) -> None:
    with corpus.transaction() as cur:
        for text, want in [
            ('"hi"', ['say "hi" AND NEAR(x) * ^']),
            ("NEAR(x)", ['say "hi" AND NEAR(x) * ^']),
            ("AND", ['say "hi" AND NEAR(x) * ^']),
            ("100%", ["100% _ \\ done"]),
            ("_", ["100% _ \\ done"]),
            ("%", ["100% _ \\ done"]),
            ("*", ['say "hi" AND NEAR(x) * ^']),
            ("你好", ["你好世界"]),
            ("好世界", ["你好世界"]),
            ("ok", ["ok"]),
            ("好", ["好", "你好世界"]),
            ("o", ["ok", "100% _ \\ done"]),
            ("q9", []),
        ]:
            assert [h.text for h in ss.search_messages(cur, parse_query(text), 10)] == want, text


# -- real clients --------------------------------------------------------------------------


async def test_search_finds_texts_of_every_chat_and_drops_edited_and_deleted_ones(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob", "carol")) as (net, (alice, bob, carol)):
        gid = await make_group(alice, [bob, carol], "Hiking club")
        hello = await bob.client.send_text(alice.me, "Hello Alice, the picnic is on Sunday")
        await trio.sleep(1)  # distinct send times: results are newest sent first
        await bob.client.send_text(alice.me, "我们明天去北京吃烤鸭")
        await trio.sleep(1)
        group_mid = (
            await carol.client.groups.send_text(gid, "bring the picnic blanket")
        ).message_id
        await trio.sleep(1)
        await alice.client.send_text(bob.me, "my own picnic note")
        await wait_for(alice, lambda: len(alice.texts(bob)) == 3)
        await wait_for(
            alice,
            lambda: any(m.message_id == group_mid for _, m in alice.client.groups.messages(gid)),
        )

        found = (await api(alice, "GET", "/search", params={"q": "picnic"})).json()
        assert texts(found) == [
            "my own picnic note",
            "bring the picnic blanket",
            "Hello Alice, the picnic is on Sunday",
        ]
        by_text = {m["text"]: m for m in found["messages"]}
        mine = by_text["my own picnic note"]
        assert mine["outgoing"] and mine["sender"] == alice.me.hex()
        g = by_text["bring the picnic blanket"]
        assert g["chat"] == f"group:{gid.hex()}" and g["id"] == group_mid
        assert g["sender"] == carol.me.hex() and g["chat_name"] == "Hiking club"
        b = by_text["Hello Alice, the picnic is on Sunday"]
        assert b["chat"] == f"contact:{bob.me.hex()}" and b["id"] == hello.hex()
        assert b["sender_name"] == "Bob" and b["sent_at_ms"] > 0

        # prefix of the last word, two words, Chinese (2 and 3 characters), one chat
        assert len(texts((await api(alice, "GET", "/search", params={"q": "pic"})).json())) == 3
        assert texts(
            (await api(alice, "GET", "/search", params={"q": "sunday PICNIC"})).json()
        ) == ["Hello Alice, the picnic is on Sunday"]
        for q in ("北京", "吃烤鸭"):
            assert texts((await api(alice, "GET", "/search", params={"q": q})).json()) == [
                "我们明天去北京吃烤鸭"
            ]
        in_group = (
            await api(alice, "GET", "/search", params={"q": "picnic", "chat": f"group:{gid.hex()}"})
        ).json()
        assert texts(in_group) == ["bring the picnic blanket"] and in_group["contacts"] == []
        # names
        named = (await api(alice, "GET", "/search", params={"q": "hik"})).json()
        assert [x["name"] for x in named["groups"]] == ["Hiking club"]
        assert [
            x["name"]
            for x in (await api(alice, "GET", "/search", params={"q": "car"})).json()["contacts"]
        ] == ["Carol"]

        # an edit replaces the indexed text; a delete for everyone drops it
        await bob.client.edit(hello, "Hello Alice, the barbecue is on Sunday")
        await wait_for(alice, lambda: "barbecue" in alice.texts(bob)[0])
        await carol.client.groups.delete(gid, group_mid)
        await wait_for(alice, lambda: alice.client.groups.message(group_mid)[1].deleted)
        assert texts((await api(alice, "GET", "/search", params={"q": "picnic"})).json()) == [
            "my own picnic note"
        ]
        assert (
            len(texts((await api(alice, "GET", "/search", params={"q": "barbecue"})).json())) == 1
        )

        # an attacker's (or a careless) query is text: a result or a 422, never a 500
        for q in [
            '"',
            "NEAR(",
            "*",
            "a OR b",
            "\x00",
            "🙂",
            "%",
            "'; DROP TABLE x; --",
            "^pic",
            "pic*",
        ]:
            r = await api(alice, "GET", "/search", params={"q": q})
            assert r.status_code in (200, 422), (q, r.text)
        assert texts((await api(alice, "GET", "/search", params={"q": '"picnic'})).json()) == []

        # bad requests are 422s that say what to do
        for params in (
            {"q": ""},
            {"q": "x" * 201},
            {"q": "a", "chat": "nope"},
            {"q": "a", "limit": "x"},
        ):
            r = await api(alice, "GET", "/search", params=params)
            assert r.status_code == 422 and r.json()["error"]["message"], params

        # "delete chat for me" takes the chat's texts out of the index too
        assert alice.client.chat_settings.delete_chat(f"contact:{bob.me.hex()}") > 0
        with alice.client.db.transaction() as cur:
            cur.execute("SELECT COUNT(*) FROM client_search_docs WHERE chat = ?", (bob.me,))
            assert cur.fetchone()[0] == 0
        for q in ("barbecue", "picnic", "北京"):
            assert texts((await api(alice, "GET", "/search", params={"q": q})).json()) == []


async def test_favourites_survive_deletion_and_forward_reaches_writable_chats_in_order(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob", "carol", "dave")) as (net, (alice, bob, carol, dave)):
        gid = await make_group(alice, [bob, carol], "Team")
        await befriend(alice, dave)
        first = await bob.client.send_text(alice.me, "first: the door code is 4711")
        second = await bob.client.send_text(alice.me, "second: bring snacks")
        await wait_for(alice, lambda: len(alice.texts(bob)) == 2)
        bob_chat = f"contact:{bob.me.hex()}"

        r = await api(alice, "POST", "/favourites", json={"chat": bob_chat, "id": first.hex()})
        assert r.status_code == 201
        fav = r.json()
        assert fav["text"] == "first: the door code is 4711" and fav["sender"] == bob.me.hex()
        again = await api(alice, "POST", "/favourites", json={"chat": bob_chat, "id": first.hex()})
        assert again.json()["id"] == fav["id"]  # saved once
        await api(alice, "POST", "/favourites", json={"chat": bob_chat, "id": second.hex()})
        await bob.client.delete(first)
        await wait_for(alice, lambda: alice.message(first).deleted)
        listed = (await api(alice, "GET", "/favourites")).json()
        assert [f["text"] for f in listed] == [
            "second: bring snacks",
            "first: the door code is 4711",
        ]
        assert [
            f["text"] for f in (await api(alice, "GET", "/favourites", params={"q": "door"})).json()
        ] == ["first: the door code is 4711"]
        # a deleted message can be neither saved nor forwarded; a wrong chat is not found
        r = await api(alice, "POST", "/favourites", json={"chat": bob_chat, "id": first.hex()})
        assert r.status_code == 400 and "deleted" in r.json()["error"]["message"]
        other = f"contact:{carol.me.hex()}"
        r = await api(alice, "POST", "/favourites", json={"chat": other, "id": second.hex()})
        assert r.status_code == 400
        assert (await api(alice, "DELETE", f"/favourites/{fav['id']}")).status_code == 204
        assert (await api(alice, "DELETE", f"/favourites/{fav['id']}")).status_code == 404

        # forward two messages (one of them a group's) to Carol and Dave, in order
        hi = (await bob.client.groups.send_text(gid, "group: meet at 10")).message_id
        await wait_for(
            alice, lambda: any(m.message_id == hi for _, m in alice.client.groups.messages(gid))
        )
        body = {
            "messages": [
                {"chat": bob_chat, "id": second.hex()},
                {"chat": f"group:{gid.hex()}", "id": hi},
            ],
            "to": [f"contact:{carol.me.hex()}", f"contact:{dave.me.hex()}"],
        }
        r = await api(alice, "POST", "/forward", json=body)
        assert r.status_code == 200 and r.json() == {"sent": 4, "refused": {}}
        for p in (carol, dave):
            await wait_for(p, lambda p=p: len(p.texts(alice)) == 2)  # type: ignore[misc]
            assert p.texts(alice) == ["second: bring snacks", "group: meet at 10"]

        # refused: a blocked contact and a group we left, each with its reason
        await alice.client.respond(dave.me, ContactEvent.BLOCK)
        gid2 = (await carol.client.groups.create("Left")).group_id
        await carol.client.groups.invite(gid2, alice.me)
        await wait_for(alice, lambda: alice.me in _members(alice, gid2))
        await alice.client.groups.leave(gid2)
        body["to"] = [f"contact:{dave.me.hex()}", f"group:{gid2.hex()}", f"group:{gid.hex()}"]
        r = await api(alice, "POST", "/forward", json=body)
        refused = r.json()["refused"]
        assert r.json()["sent"] == 2 and set(refused) == {body["to"][0], body["to"][1]}
        assert all(refused.values())
        body["to"] = body["to"][:2]
        r = await api(alice, "POST", "/forward", json=body)
        assert r.status_code == 422 and "nothing was sent" in r.json()["error"]["message"]
        # caps
        body["to"] = [f"contact:{carol.me.hex()}"] * (MAX_FORWARD_TARGETS + 1)
        assert (await api(alice, "POST", "/forward", json=body)).status_code == 422
