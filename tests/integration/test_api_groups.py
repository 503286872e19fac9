"""The group and broadcast resources of the local API, over real HTTP.

Real clients (light nodes, one in-process service node) each serve their API
on loopback exactly as `boxless up` does; every step goes through HTTP, and
what one person does is checked in the others' APIs.
"""

from __future__ import annotations

import base64
import secrets
import time
from pathlib import Path
from typing import Any

from tests.api_fixtures import Api, people


def _key(api: Api) -> str:
    return api.client.me.hex()


def _member(g: dict[str, Any], api: Api) -> dict[str, Any] | None:
    return next((m for m in g["members"] if m["identity_key"] == _key(api)), None)


async def test_group_lifecycle_through_the_api(tmp_path: Path) -> None:
    async with people(tmp_path, "Alice", "Bob", "Carol", "Dave") as p:
        alice, bob, carol, dave = p["Alice"], p["Bob"], p["Carol"], p["Dave"]
        r = await alice.request("POST", "/groups", {"name": "Trip", "description": "June"})
        assert r.status_code == 201, r.text
        g = r.json()
        gid = g["id"]
        assert (g["name"], g["description"], g["my_role"], g["member"]) == (
            "Trip",
            "June",
            "admin",
            True,
        )
        assert g["creator"] == _key(alice) and g["avatar"] is None and g["last_message"] is not None
        assert [m["name"] for m in g["members"]] == ["Alice"]

        for who in (bob, carol):
            r = await alice.request("POST", f"/groups/{gid}/members", {"identity_key": _key(who)})
            assert r.status_code == 201, r.text
        for who in (bob, carol):
            got = await who.until(f"/groups/{gid}", lambda g: len(g["members"]) == 3)
            assert got["my_role"] == "member" and got["name"] == "Trip"
            assert {m["name"] for m in got["members"]} >= {"Alice"}

        # settings by the admin reach the members; members may not change them
        avatar = base64.b64encode(b"\x89PNG fake avatar bytes").decode()
        g = await alice.call(
            "PATCH",
            f"/groups/{gid}",
            {"name": "Trip 2", "avatar": avatar, "announcements_only": True},
        )
        assert (g["name"], g["avatar"], g["announcements_only"]) == ("Trip 2", avatar, True)
        await bob.until(f"/groups/{gid}", lambda g: g["announcements_only"] and g["avatar"])
        r = await bob.request("POST", f"/groups/{gid}/messages", {"text": "can I?"})
        assert r.status_code == 400 and "only admins" in r.json()["error"]["message"]
        r = await bob.request("PATCH", f"/groups/{gid}", {"name": "Bob's trip"})
        assert r.status_code == 400, r.text

        # promote Bob; he can change settings now
        g = await alice.call("PUT", f"/groups/{gid}/members/{_key(bob)}/role", {"role": "admin"})
        assert _member(g, bob) == {"identity_key": _key(bob), "role": "admin", "name": "Bob"}
        await bob.until(f"/groups/{gid}", lambda g: g["my_role"] == "admin")
        await bob.call("PATCH", f"/groups/{gid}", {"announcements_only": False, "avatar": ""})
        await carol.until(
            f"/groups/{gid}", lambda g: not g["announcements_only"] and g["avatar"] is None
        )

        # a mention, unread counts, read markers
        sent = await alice.call("POST", f"/groups/{gid}/messages", {"text": "hi @Carol!"})
        assert sent["kind"] == "text" and sent["outgoing"] and sent["sender_name"] == "Alice"
        g = await carol.until(f"/groups/{gid}", lambda g: g["mentions"] == 1)
        assert g["unread"] >= 1 and g["last_message"]["text"] == "hi @Carol!"
        [got] = [
            m for m in await carol.call("GET", f"/groups/{gid}/messages") if m["id"] == sent["id"]
        ]
        assert got["mentions_me"] and not got["outgoing"] and got["sender_name"] == "Alice"
        g = await carol.call("POST", f"/groups/{gid}/read", {"seq": got["seq"]})
        assert g["unread"] == 0 and g["mentions"] == 0
        await alice.until(
            f"/groups/{gid}/messages",
            lambda ms: any(m["id"] == sent["id"] and m["read_count"] >= 1 for m in ms),
        )

        # pins and mute
        m = await alice.call("PUT", f"/groups/{gid}/pins/{sent['id']}", {"pinned": True})
        assert m["pinned"] and m["id"] == sent["id"]
        await bob.until(f"/groups/{gid}/pins", lambda ms: [x["id"] for x in ms] == [sent["id"]])
        assert (await bob.call("PUT", f"/groups/{gid}/mute", {"muted": True}))["muted"] is True

        # a link: Dave (a contact of Alice's only) joins by it; Alice's client admits him
        link = await alice.call("POST", f"/groups/{gid}/link", {"validity_s": 3600})
        assert link["link"].startswith("boxless://g/") and link["expires_at"] > time.time()
        assert link["qr_png"].startswith("data:image/png;base64,")
        preview = await dave.call("POST", "/groups/preview", {"link": link["link"]})
        assert preview["group"] == gid and preview["name"] == "Trip 2"
        assert preview["admin"] == _key(alice) and preview["admin_name"] == "Alice"
        r = await dave.request("POST", "/groups/join", {"link": link["link"]})
        assert r.status_code == 202 and r.json() == {
            "group": gid,
            "name": "Trip 2",
            "state": "requested",
        }
        await dave.until("/groups", lambda gs: [g["id"] for g in gs if g["member"]] == [gid])
        assert await dave.call("GET", "/groups/joins") == []
        await alice.until(f"/groups/{gid}", lambda g: _member(g, dave) is not None)

        # Carol leaves: still listed for her, gone from the others' member lists
        g = await carol.call("POST", f"/groups/{gid}/leave")
        assert g["member"] is False and g["my_role"] is None
        assert gid in [x["id"] for x in await carol.call("GET", "/groups")]
        await alice.until(f"/groups/{gid}", lambda g: _member(g, carol) is None)
        r = await carol.request("POST", f"/groups/{gid}/messages", {"text": "back?"})
        assert r.status_code == 400

        # Bob (an admin now) removes Dave
        g = await bob.call("DELETE", f"/groups/{gid}/members/{_key(dave)}")
        assert _member(g, dave) is None
        await alice.until(f"/groups/{gid}", lambda g: _member(g, dave) is None)
        await dave.until(f"/groups/{gid}", lambda g: not g["member"])  # he learns it too
        # events render as text in the history
        kinds = {m["kind"] for m in await alice.call("GET", f"/groups/{gid}/messages?limit=500")}
        assert kinds == {"text", "event"}


async def test_group_requests_are_checked(tmp_path: Path) -> None:
    async with people(tmp_path, "Alice") as p:
        alice = p["Alice"]
        gid = (await alice.call("POST", "/groups", {"name": "Solo"}))["id"]
        bad: list[tuple[str, str, Any]] = [
            ("PATCH", f"/groups/{gid}", {"avatar": "not base64!"}),
            ("PATCH", f"/groups/{gid}", {"name": ""}),
            ("PUT", f"/groups/{gid}/members/{'ab' * 32}/role", {"role": "owner"}),
            ("POST", f"/groups/{gid}/messages", {"text": "x", "mentions": ["zz"]}),
            ("POST", f"/groups/{gid}/read", {"seq": -1}),
            ("PUT", f"/groups/{gid}/mute", {}),
            ("POST", f"/groups/{gid}/link", {"validity_s": 1}),
            ("GET", f"/groups/{gid}/messages?before=x", None),
            ("GET", "/groups/nothex", None),
        ]
        for method, path, body in bad:
            r = await alice.request(method, path, body)
            assert r.status_code == 422, (method, path, r.text)
            assert set(r.json()["error"]) == {"code", "message"}
        r = await alice.request("POST", "/groups/preview", {"link": "https://example.com"})
        assert r.status_code == 400 and r.json()["error"]["message"]
        r = await alice.request("GET", "/groups/" + "cd" * 32)
        assert r.status_code == 400 and "no such group" in r.json()["error"]["message"]
        r = await alice.request("PUT", f"/groups/{gid}/pins/{'ef' * 32}", {"pinned": True})
        assert r.status_code == 400, r.text
        r = await alice.request(
            "POST", f"/groups/{gid}/members", {"identity_key": secrets.token_hex(32)}
        )
        assert r.status_code == 400 and "contacts" in r.json()["error"]["message"]

        schema = await alice.call("GET", "/openapi.json")
        paths = schema["paths"]
        for path, method in [
            ("/api/v1/groups/{gid}", "patch"),
            ("/api/v1/groups/{gid}/members/{key}/role", "put"),
            ("/api/v1/groups/join", "post"),
            ("/api/v1/groups/{gid}/pins/{message_id}", "put"),
            ("/api/v1/broadcasts/{id}/messages", "post"),
        ]:
            assert "requestBody" in paths[path][method], (path, method)
        assert "get" in paths["/api/v1/groups/joins"]


async def test_broadcast_lists_through_the_api(tmp_path: Path) -> None:
    async with people(tmp_path, "Alice", "Bob", "Carol") as p:
        alice, bob, carol = p["Alice"], p["Bob"], p["Carol"]
        members = [_key(bob), _key(carol)]
        r = await alice.request("POST", "/broadcasts", {"name": "Team", "members": members})
        assert r.status_code == 201, r.text
        lst = r.json()
        assert [(m["name"], m["state"]) for m in lst["members"]] == [
            ("Bob", "accepted"),
            ("Carol", "accepted"),
        ]
        assert lst["last_broadcast"] is None
        lid = lst["id"]

        r = await alice.request("POST", f"/broadcasts/{lid}/messages", {"text": "standup at 10"})
        assert r.status_code == 201, r.text
        sent = r.json()
        assert sent["sent"] == 2 and len(sent["message_ids"]) == 2 and sent["skipped"] == []
        for who, mid in zip((bob, carol), sent["message_ids"], strict=True):
            chat = await alice.call("GET", f"/contacts/{_key(who)}/messages")
            assert [(m["id"], m["text"]) for m in chat] == [(mid, "standup at 10")]
            got = await who.until(f"/contacts/{_key(alice)}/messages", lambda ms: bool(ms))
            assert [(m["id"], m["text"], m["outgoing"]) for m in got] == [
                (mid, "standup at 10", False)
            ]
        await bob.call("POST", f"/contacts/{_key(alice)}/read")
        [b] = await alice.until(
            f"/broadcasts/{lid}/messages", lambda bs: (bs[0]["delivered"], bs[0]["read"]) == (2, 1)
        )
        assert {r["name"]: r["state"] for r in b["recipients"]} == {
            "Bob": "read",
            "Carol": "delivered",
        }
        listed = await alice.call("GET", "/broadcasts")
        assert [x["id"] for x in listed] == [lid]
        assert listed[0]["last_broadcast"]["text"] == "standup at 10"

        lst = await alice.call(
            "PUT", f"/broadcasts/{lid}", {"name": "Core", "members": [members[1]]}
        )
        assert lst["name"] == "Core" and [m["name"] for m in lst["members"]] == ["Carol"]

        # refusals say what to do
        r = await alice.request(
            "POST", "/broadcasts", {"name": "All", "members": [secrets.token_hex(32)] * 1 + []}
        )
        assert r.status_code == 400 and "accepted contacts" in r.json()["error"]["message"]
        many = [secrets.token_hex(32) for _ in range(201)]
        r = await alice.request("POST", "/broadcasts", {"name": "All", "members": many})
        assert r.status_code == 400 and "at most 200" in r.json()["error"]["message"]
        r = await alice.request("POST", "/broadcasts", {"name": "x", "members": ["nothex"]})
        assert r.status_code == 422
        r = await alice.request("POST", f"/broadcasts/{lid}/messages", {"text": ""})
        assert r.status_code == 422

        r = await alice.request("DELETE", f"/broadcasts/{lid}")
        assert r.status_code == 204
        r = await alice.request("GET", f"/broadcasts/{lid}")
        assert r.status_code == 400 and "boxless broadcast list" in r.json()["error"]["message"]
        # the 1:1 messages stay in each chat
        assert len(await alice.call("GET", f"/contacts/{_key(carol)}/messages")) == 1
