"""The group-call API of real clients on the in-memory network (ASGI, virtual time):
start, ring, join, per-peer descriptions, leave, history, and the refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import trio
import trio.testing

from boxless.api.app import build_app
from tests.memnet_fixtures import homes, memnet, wait_for
from tests.unit.test_calls_core import sdp
from tests.unit.test_groups_memnet import make_group

__all__ = ["homes"]  # a fixture

TOKEN = "t" * 32
ORIGIN = "http://127.0.0.1:9"


def _api(client: Any) -> httpx.AsyncClient:
    app = build_app(client, TOKEN, ORIGIN, lambda: {"ok": True})
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=ORIGIN + "/api/v1",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )


async def test_the_group_call_api(homes: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with memnet(homes, ("alice", "bob", "zed")) as (_net, (alice, bob, zed)):
        gid = await make_group(alice, [bob])
        chat = f"group:{gid.hex()}"
        async with _api(alice.client) as a, _api(bob.client) as b, _api(zed.client) as z:
            assert (await a.get("/group-calls/current")).json()["call"] is None
            # refusals: not a group chat, a group we are not in, bad ids
            r = await a.post("/group-calls", json={"chat": f"contact:{bob.me.hex()}"})
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_chat"
            r = await z.post("/group-calls", json={"chat": chat, "video": False})
            assert r.status_code in (400, 403, 404, 409), r.text
            assert (await a.post("/group-calls/zz/join")).status_code == 422

            r = await a.post("/group-calls", json={"chat": chat, "video": True})
            assert r.status_code == 201, r.text
            cid = r.json()["call_id"]
            await wait_for(bob, lambda: bob.client.calls.group.current() is not None)  # type: ignore[union-attr]
            rung = (await b.get("/group-calls/current")).json()["call"]
            assert rung["rung"] and rung["started_by"] == alice.me.hex()
            assert (await b.post(f"/group-calls/{cid}/join")).status_code == 200
            await wait_for(alice, lambda: bool(alice.client.calls.group.current()["participants"]))  # type: ignore[union-attr,index]
            mine = (await a.get("/group-calls/current")).json()["call"]
            [peer] = mine["participants"]
            # the smaller key offers: whichever side that is posts the offer first
            offerer, answerer = (a, b) if alice.me < bob.me else (b, a)
            o_key, a_key = (bob.me, alice.me) if alice.me < bob.me else (alice.me, bob.me)
            assert peer["offerer"] == (alice.me < bob.me)
            r = await offerer.post(
                f"/group-calls/{cid}/peers/{o_key.hex()}/description", json={"sdp": "v=0 junk"}
            )
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_sdp"
            r = await offerer.post(
                f"/group-calls/{cid}/peers/{o_key.hex()}/description", json={"sdp": sdp(1)}
            )
            assert r.status_code == 200, r.text
            answerer_client = bob if offerer is a else alice

            def offered() -> bool:
                c = answerer_client.client.calls.group.current()  # type: ignore[union-attr]
                return bool(c and c["participants"] and c["participants"][0]["remote_sdp"])

            await wait_for(answerer_client, offered)
            r = await answerer.post(
                f"/group-calls/{cid}/peers/{a_key.hex()}/description", json={"sdp": sdp(2)}
            )
            assert r.status_code == 200 and r.json()["participants"][0]["code"]
            r = await a.post(
                f"/group-calls/{cid}/peers/{'00' * 32}/candidates", json={"candidates": ["x"]}
            )
            assert r.status_code == 400  # no such participant
            r = await a.post(
                f"/group-calls/{cid}/peers/{bob.me.hex()}/candidates",
                json={"candidates": ["c" * 600]},
            )
            assert r.status_code == 422
            # the 1:1 routes read the same parts (api/call_params.py)
            r = await a.post(f"/calls/{cid}/candidates", json={"candidates": ["c" * 600]})
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_candidate"
            r = await a.post("/calls/zz/accept", json={"sdp": sdp(1)})
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_id"
            # repairs: a description for an older round, rejoin, detach, retry
            r = await offerer.post(
                f"/group-calls/{cid}/peers/{o_key.hex()}/description",
                json={"sdp": sdp(1), "epoch": 7, "gen": 0},
            )
            assert r.status_code == 409 and r.json()["error"]["code"] == "stale_round"
            session = (await a.get("/group-calls/current")).json()["call"]["session"]
            r = await a.post(f"/group-calls/{cid}/join")  # a reloaded page: rejoin
            assert r.status_code == 200 and r.json()["session"] == session + 1
            assert r.json()["participants"][0]["epoch"] == 1
            r = await a.post(f"/group-calls/{cid}/detach", json={"session": session})
            assert not r.json()["detached"]  # an old page's detach changes nothing
            r = await a.post(f"/group-calls/{cid}/detach", json={"session": session + 1})
            assert r.json()["detached"]
            r = await a.post(f"/group-calls/{cid}/join")  # a page came back in time
            assert not r.json()["detached"]
            r = await b.post(f"/group-calls/{cid}/peers/{alice.me.hex()}/retry")
            assert r.status_code == 200 and r.json()["participants"][0]["epoch"] >= 1
            r = await b.post(f"/group-calls/{cid}/peers/{'00' * 32}/retry")
            assert r.status_code == 409
            assert (await b.post(f"/group-calls/{cid}/leave")).status_code == 200
            assert (await a.post(f"/group-calls/{cid}/leave")).status_code == 200
            rows = (await a.get(f"/calls?chat={chat}")).json()["calls"]
            assert rows[0]["group"] and rows[0]["participants"] == [bob.me.hex()]
            everything = (await a.get("/calls")).json()["calls"]
            assert any(r["chat"] == chat for r in everything)
