"""The Moments API of a real client on the in-memory network (ASGI, virtual time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
import trio.testing

from tests.asgi_api import api_client
from tests.memnet_fixtures import befriend, memnet, wait_for


def _liked_and_commented(view: Any) -> bool:
    return bool(view.likes) and bool(view.comments)  # the two may arrive in either order


async def test_the_moments_api(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with memnet(tmp_path, ("alice", "bob")) as (_net, (alice, bob)):
        await befriend(alice, bob)
        async with api_client(alice.client) as a, api_client(bob.client) as b:
            r = await a.post("/moments", json={"text": "hello moments", "place": "Home"})
            assert r.status_code == 201, r.text
            pid = r.json()["id"]
            await wait_for(bob, lambda: bool(bob.client.moments.feed()))
            got = (await b.get("/moments")).json()
            assert got["unread"] == 1
            [post] = got["posts"]
            assert (post["id"], post["text"], post["place"], post["poster"], post["mine"]) == (
                pid,
                "hello moments",
                "Home",
                alice.me.hex(),
                False,
            )
            assert (await b.post("/moments/read")).status_code == 204
            assert (await b.get("/moments")).json()["unread"] == 0
            assert (await b.post(f"/moments/{pid}/like", json={"liked": True})).status_code == 204
            r = await b.post(f"/moments/{pid}/comments", json={"text": "nice"})
            assert r.status_code == 201
            cid = r.json()["id"]
            await wait_for(alice, lambda: _liked_and_commented(alice.client.moments.feed()[0]))
            mine = (await a.get("/moments")).json()["posts"][0]
            assert mine["likes"] == [bob.me.hex()] and mine["comments"][0]["id"] == cid
            # the poster may delete any comment on its post
            r = await a.delete(f"/moments/{pid}/comments/{cid}")
            assert r.status_code == 204
            await wait_for(bob, lambda: not bob.client.moments.feed()[0].comments)

            # bad input: clear 4xx
            bad = [
                ("POST", "/moments", {"text": "x" * 2001}, 422),
                ("POST", "/moments", {"text": ""}, 400),  # the post rule: says what it needs
                ("POST", "/moments", {"text": "hi", "audience": "only", "chosen": ["zz"]}, 422),
                ("POST", "/moments", {"text": "hi", "audience": "everyone"}, 422),
                ("POST", f"/moments/{'00' * 16}/like", {}, 404),
                ("POST", "/moments/nothex/comments", {"text": "x"}, 422),
                ("DELETE", f"/moments/{pid}", None, 404),  # not Bob's post
                ("PUT", "/moments/settings", {"window": "1y"}, 422),
            ]
            for method, path, body, status in bad:
                r = await b.request(method, path, json=body)
                assert r.status_code == status, (method, path, r.status_code, r.text)

            r = await a.put(
                "/moments/settings", json={"window": "3d", "hidden_from": [bob.me.hex()]}
            )
            assert r.status_code == 200 and r.json()["window"] == "3d"
            assert r.json()["hidden_from"] == [bob.me.hex()]
            r = await a.post("/moments", json={"text": "not for bob"})
            assert r.status_code == 201
            assert (await a.delete(f"/moments/{pid}")).status_code == 204
            await wait_for(bob, lambda: not bob.client.moments.feed())
            assert [p["text"] for p in (await a.get("/moments")).json()["posts"]] == ["not for bob"]
            paths = (await a.get("/openapi.json")).json()["paths"]
            assert {"/api/v1/moments", "/api/v1/moments/{id}/comments"} <= set(paths)
