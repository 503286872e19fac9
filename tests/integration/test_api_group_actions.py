"""Group replies, reactions, edits and deletes through the local API, three members.

Real clients (light nodes, one in-process service node) serve their API on
loopback as `boxless up` does; what one member does is checked in the others'
APIs, in the JSON shape of 1:1 messages (``reply_to``, ``edited``,
``deleted``, ``reactions``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api_fixtures import Api, people
from tests.integration.test_cli_groups import fails, ok


def _key(api: Api) -> str:
    return api.client.me.hex()


def _find(ms: list[dict[str, Any]], mid: str) -> dict[str, Any] | None:
    return next((m for m in ms if m["id"] == mid), None)


async def test_reply_react_edit_delete_through_the_api(tmp_path: Path) -> None:
    async with people(tmp_path, "Alice", "Bob", "Carol") as p:
        alice, bob, carol = p["Alice"], p["Bob"], p["Carol"]
        gid = (await alice.call("POST", "/groups", {"name": "Actions"}))["id"]
        for who in (bob, carol):
            await alice.call("POST", f"/groups/{gid}/members", {"identity_key": _key(who)})
        for who in (bob, carol):
            await who.until(f"/groups/{gid}", lambda g: len(g["members"]) == 3)
        msgs = f"/groups/{gid}/messages"

        hello = await bob.call("POST", msgs, {"text": "hello @Carol"})
        assert (hello["reply_to"], hello["edited"], hello["deleted"]) == (None, False, False)
        assert hello["reactions"] == {} and hello["mentions"] == [_key(carol)]
        g = await bob.call("GET", f"/groups/{gid}")
        assert g["unread"] == 0  # own messages never count as unread

        await carol.until(msgs, lambda ms: _find(ms, hello["id"]) is not None)
        reply = await carol.call("POST", msgs, {"text": "hi Bob", "reply_to": hello["id"]})
        assert reply["reply_to"] == hello["id"]
        path = f"{msgs}/{hello['id']}"
        m = await alice.call("POST", f"{path}/reactions", {"emoji": "👍"})
        assert m["reactions"] == {"👍": ["me"]}
        await carol.call("POST", f"{path}/reactions", {"emoji": "👍"})
        m = await bob.call("POST", f"{path}/edit", {"text": "hello, edited"})
        assert m["edited"] and m["text"] == "hello, edited"

        def settled(ms: list[dict[str, Any]]) -> bool:
            h, r = _find(ms, hello["id"]), _find(ms, reply["id"])
            return bool(
                h and r and h["edited"] and len(h["reactions"].get("👍", [])) == 2 and r["reply_to"]
            )

        for who in (alice, bob, carol):
            ms = await who.until(msgs, settled)
            h = _find(ms, hello["id"])
            assert h is not None and h["text"] == "hello, edited"
        h = _find(await bob.call("GET", msgs), hello["id"])
        assert h is not None and sorted(h["reactions"]["👍"]) == sorted([_key(alice), _key(carol)])

        # rules: Carol may not edit Bob's text nor delete it; an admin (Alice) may delete it
        r = await carol.request("POST", f"{path}/edit", {"text": "mine now"})
        assert r.status_code == 400 and "author" in r.json()["error"]["message"]
        r = await carol.request("DELETE", path)
        assert r.status_code == 400 and "admin" in r.json()["error"]["message"]
        r = await carol.request("POST", f"{path}/reactions", {"emoji": "not one"})
        assert r.status_code in (400, 422)
        m = await alice.call("DELETE", path)
        assert m["deleted"] and m["text"] == "" and m["reactions"] == {}
        for who in (bob, carol):
            await who.until(msgs, lambda ms: bool((h := _find(ms, hello["id"])) and h["deleted"]))
        r = await bob.request("POST", f"{path}/edit", {"text": "undelete"})
        assert r.status_code == 400 and "deleted" in r.json()["error"]["message"]

        # history pages with ?before=<seq>, oldest first within a page
        page = await alice.call("GET", f"{msgs}?limit=2")
        older = await alice.call("GET", f"{msgs}?limit=50&before={page[0]['seq']}")
        assert older and {m["id"] for m in older}.isdisjoint({m["id"] for m in page})

        one = await carol.call("GET", f"{msgs}/{reply['id']}")
        assert one["id"] == reply["id"] and one["reply_to"] == hello["id"]
        r = await carol.request("GET", f"{msgs}/{'f' * 64}")
        assert r.status_code == 404, r.text
        paths = (await alice.call("GET", "/openapi.json"))["paths"]
        for path in ("edit", "reactions"):
            assert "requestBody" in paths[f"/api/v1/groups/{{gid}}/messages/{{mid}}/{path}"]["post"]
        assert "delete" in paths["/api/v1/groups/{gid}/messages/{mid}"]

        # the same from the terminal: reply, react, edit, delete, and history shows them
        rid = reply["id"][:10]
        assert "reactions on" in await ok(alice, "group", "react", "Actions", rid, "🎉")
        assert "edited" in await ok(carol, "group", "edit", "Actions", rid, "hi Bob!")
        out = await ok(bob, "group", "reply", "Actions", rid, "thanks Carol")
        err = await fails(bob, "group", "edit", "Actions", rid, "Bob was here")
        assert "only a message's author may edit it" in err
        err = await fails(bob, "group", "delete", "Actions", rid)
        assert "only the author or an admin" in err
        ms = await carol.until(
            msgs,
            lambda ms: (
                any(m["text"] == "thanks Carol" for m in ms)
                and bool((r := _find(ms, reply["id"])) and r["reactions"])
            ),
        )
        assert "deleted" in await ok(carol, "group", "delete", "Actions", rid)
        out = await ok(carol, "group", "history", "Actions")
        assert "message deleted" in out and f"↪ {reply['id'][:8]} thanks Carol" in out
