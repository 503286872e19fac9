"""Profiles over the local API: details, cover, a contact's card, notes, tags."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
import trio

from tests.api_fixtures import serve_api
from tests.memnet_fixtures import befriend, memnet, wait_for

pytestmark = pytest.mark.trio

JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x00" * 100).decode()


async def test_profile_card_notes_and_bad_input(tmp_path: Path) -> None:
    async with (
        memnet(tmp_path, ("alice", "bob")) as (_net, (alice, bob)),
        trio.open_nursery() as nursery,
    ):
        await befriend(alice, bob)
        a = await serve_api(nursery, alice.client, alice.home)
        b = await serve_api(nursery, bob.client, bob.home)
        async with (
            httpx.AsyncClient(
                base_url=a.url + "/api/v1", headers={"Authorization": f"Bearer {a.token}"}
            ) as ha,
            httpx.AsyncClient(
                base_url=b.url + "/api/v1", headers={"Authorization": f"Bearer {b.token}"}
            ) as hb,
        ):
            r = await ha.put("/me/profile", json={"status": "At the crag", "region": "Sintra"})
            assert r.status_code == 200 and r.json()["status"] == "At the crag"
            r = await ha.put("/me/cover", json={"image": JPEG})
            assert r.status_code == 200 and r.json()["cover"] == JPEG
            await wait_for(bob, lambda: bob.client.profiles.contact(alice.me)[1].cover is not None)
            card = (await hb.get(f"/contacts/{alice.me.hex()}/profile")).json()
            assert (card["name"], card["status"], card["region"]) == (
                "Alice",
                "At the crag",
                "Sintra",
            )
            assert card["cover"] == JPEG and card["alias"] == "" and card["tags"] == []

            r = await hb.put(
                f"/contacts/{alice.me.hex()}/notes",
                json={"alias": "Ali", "tags": ["climbing"], "starred": True, "phone": "+351 1"},
            )
            assert r.status_code == 200
            assert (r.json()["name"], r.json()["profile_name"]) == ("Ali", "Alice")
            listed = (await hb.get("/contacts")).json()
            assert [c["name"] for c in listed] == ["Ali"]
            assert (await hb.get("/contacts/tags")).json() == [{"tag": "climbing", "count": 1}]
            notes = (await hb.get("/contacts/notes")).json()
            assert notes[alice.me.hex()]["starred"] is True
            assert (await ha.get(f"/contacts/{bob.me.hex()}/profile")).json()["alias"] == ""

            # bad input: clear errors, nothing changed
            r = await ha.put("/me/cover", json={"image": "not base64!"})
            assert r.status_code == 422
            r = await ha.put("/me/cover", json={"image": base64.b64encode(b"GIF89a").decode()})
            assert r.status_code == 400 and "PNG, JPEG or WebP" in r.json()["error"]["message"]
            r = await hb.put(f"/contacts/{alice.me.hex()}/notes", json={"alias": "a\u202eb"})
            assert r.status_code == 400 and "control" in r.json()["error"]["message"]
            r = await hb.put(f"/contacts/{'00' * 32}/notes", json={"alias": "x"})
            assert r.status_code == 404
            r = await hb.put(f"/contacts/{alice.me.hex()}/notes", json={"tags": ["x"] * 65})
            assert r.status_code == 422
            assert (await hb.get(f"/contacts/{alice.me.hex()}/profile")).json()["alias"] == "Ali"
        nursery.cancel_scope.cancel()
