"""Moments notifications: likes and comments on my posts, replies to my comments,
mentions — through the API of real clients on the in-memory network (virtual time)."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from boxless.chat.moment import ActKind
from boxless.client import moment_store as ms
from boxless.client.moments_core import MAX_NOTICES, notice_for
from tests.asgi_api import api_client as _api
from tests.memnet_fixtures import befriend, memnet, settle, wait_for

A, B, C = (bytes([i]) * 32 for i in range(1, 4))


def test_who_gets_which_notice() -> None:
    table = [
        # me, my post?, author, kind, author of the comment replied to -> notice
        (A, True, B, ActKind.LIKE, None, "like"),
        (A, True, B, ActKind.COMMENT, None, "comment"),
        (A, True, B, ActKind.COMMENT, C, "comment"),  # a reply to C on my post
        (A, True, B, ActKind.COMMENT, A, "reply"),
        (A, False, B, ActKind.COMMENT, A, "reply"),  # a reply to me on someone's post
        (A, False, B, ActKind.COMMENT, C, None),
        (A, False, B, ActKind.LIKE, None, None),  # likes on others' posts: nothing
        (A, True, A, ActKind.COMMENT, A, None),  # my own acts: nothing
        (A, True, B, ActKind.UNCOMMENT, None, None),
    ]
    for me, mine, author, kind, replied, want in table:
        assert notice_for(me, mine, author, kind, replied) == want, (mine, author, kind, replied)


async def test_notices_for_likes_comments_replies_and_mentions(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(tmp_path, ("alice", "bob", "carol")) as (_net, (alice, bob, carol)):
        for x, y in ((alice, bob), (alice, carol), (bob, carol)):
            await befriend(x, y)
        async with _api(alice.client) as a, _api(bob.client) as b, _api(carol.client) as c:
            r = await a.post("/moments", json={"text": "at the lake", "mentions": [bob.me.hex()]})
            pid = r.json()["id"]
            await wait_for(bob, lambda: bob.client.moments.unread_notices() == 1)
            got = (await b.get("/moments/notices")).json()
            assert got["unread"] == 1
            [n] = got["notices"]
            assert (n["kind"], n["actor"], n["post_id"]) == ("mention", alice.me.hex(), pid)
            assert (await b.get("/moments")).json()["notices_unread"] == 1
            assert (await b.post("/moments/notices/read")).status_code == 204
            assert (await b.get("/moments/notices")).json()["unread"] == 0

            await wait_for(carol, lambda: bool(carol.client.moments.feed()))
            await b.post(f"/moments/{pid}/like", json={"liked": True})
            cid = (await c.post(f"/moments/{pid}/comments", json={"text": "lovely"})).json()["id"]
            await wait_for(bob, lambda: bool(bob.client.moments.feed()[0].comments))
            r = await b.post(f"/moments/{pid}/comments", json={"text": "agreed", "reply_to": cid})
            assert r.status_code == 201
            await wait_for(carol, lambda: carol.client.moments.unread_notices() == 1)
            [n] = (await c.get("/moments/notices")).json()["notices"]
            assert (n["kind"], n["actor"], n["text"]) == ("reply", bob.me.hex(), "agreed")
            await wait_for(alice, lambda: alice.client.moments.unread_notices() == 3)
            kinds = [
                (n["kind"], n["actor"]) for n in (await a.get("/moments/notices")).json()["notices"]
            ]
            assert sorted(kinds) == sorted(
                [("like", bob.me.hex()), ("comment", carol.me.hex()), ("comment", bob.me.hex())]
            )

            # bounded: however many acts arrive, the newest MAX_NOTICES notices stay
            with carol.client.db.transaction() as cur:
                for i in range(MAX_NOTICES + 20):
                    ms.add_notice(
                        cur, bytes.fromhex(pid), "comment", bob.me, f"{i}", i, MAX_NOTICES
                    )
            got = carol.client.moments.notices(limit=1000)
            assert len(got) == MAX_NOTICES and got[0].text == f"{MAX_NOTICES + 19}"

            await b.post(f"/moments/{pid}/like", json={"liked": False})  # an unlike takes it back
            await wait_for(alice, lambda: alice.client.moments.unread_notices() == 2)
            await a.delete(f"/moments/{pid}")  # a deleted post's notices go with it
            await settle(10)
            for api in (a, b, c):
                assert (await api.get("/moments/notices")).json() == {"notices": [], "unread": 0}
