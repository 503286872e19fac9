"""A chat's files for the web UI's gallery: newest first, paged, per chat only."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

from boxless.blobs import PinPolicy
from boxless.client.attachment_transfer import AttachmentTransfer
from tests.api_fixtures import serve_api
from tests.blob_fixtures import addr_of, blob_node
from tests.memnet_fixtures import befriend, memnet

pytestmark = pytest.mark.trio


async def test_a_chats_files_newest_first_paged_and_bad_input(tmp_path: Path) -> None:
    async with (
        memnet(tmp_path, ("alice", "bob", "carol")) as (_net, (alice, bob, carol)),
        blob_node(tmp_path / "svc", pin_policy=PinPolicy()) as svc,
        blob_node(tmp_path / "ab") as ab,
        trio.open_nursery() as nursery,
    ):
        await befriend(alice, bob)
        await befriend(alice, carol)
        alice.client.attachments.use_transfer(AttachmentTransfer(ab.client, [addr_of(svc)]))
        api = await serve_api(nursery, alice.client, alice.home)
        auth = {"Authorization": f"Bearer {api.token}"}
        async with httpx.AsyncClient(
            base_url=api.url + "/api/v1", headers=auth, timeout=60
        ) as http:
            ids = []
            for i in range(3):
                r = await http.post(
                    f"/contacts/{bob.me.hex()}/attachments",
                    params={"name": f"f{i}.bin"},
                    content=bytes([i]) * 1000,
                )
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
            r = await http.post(
                f"/contacts/{carol.me.hex()}/attachments",
                params={"name": "other.bin"},
                content=b"x",
            )
            assert r.status_code == 201

            chat = f"contact:{bob.me.hex()}"
            page = (await http.get(f"/chats/{chat}/attachments", params={"limit": 2})).json()
            assert [f["name"] for f in page["files"]] == ["f2.bin", "f1.bin"]
            assert [f["message_id"] for f in page["files"]] == [ids[2], ids[1]]
            assert page["files"][0]["state"] == "ready" and page["files"][0]["outgoing"] is True
            rest = (
                await http.get(f"/chats/{chat}/attachments", params={"before": page["next"]})
            ).json()
            assert [f["name"] for f in rest["files"]] == ["f0.bin"] and rest["next"] is None
            # another chat's files never show; bad chats and numbers get clear errors
            assert (await http.get(f"/chats/contact:{'0' * 64}/attachments")).json()["files"] == []
            r = await http.get("/chats/contact:nothex/attachments")
            assert r.status_code == 404 and "contact:<key hex>" in r.json()["error"]["message"]
            r = await http.get(f"/chats/{chat}/attachments", params={"limit": "-1"})
            assert r.status_code == 422
        nursery.cancel_scope.cancel()
