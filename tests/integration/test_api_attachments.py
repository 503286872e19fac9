"""The attachments API over real clients (memnet messages, real blob hosts and HTTP)."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio
from PIL import Image

from boxless.blobs import PinPolicy
from boxless.client.attachment_transfer import AttachmentTransfer
from tests.api_fixtures import serve_api
from tests.blob_fixtures import addr_of, blob_node
from tests.memnet_fixtures import befriend, memnet, wait_for

pytestmark = pytest.mark.trio


def _jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 22.0, 7.5)})
    buf = io.BytesIO()
    Image.effect_noise((3000, 1500), 40).convert("RGB").save(buf, "JPEG", exif=exif)
    return buf.getvalue()


async def test_upload_list_fetch_range_and_thumbnail(tmp_path: Path) -> None:
    data = os.urandom(1_000_003)
    async with (
        memnet(tmp_path, ("alice", "bob")) as (_net, (alice, bob)),
        blob_node(tmp_path / "svc", pin_policy=PinPolicy()) as svc,
        blob_node(tmp_path / "ab") as ab,
        blob_node(tmp_path / "bb") as bb,
        trio.open_nursery() as nursery,
    ):
        await befriend(alice, bob)
        alice.client.attachments.use_transfer(AttachmentTransfer(ab.client, [addr_of(svc)]))
        bob.client.attachments.use_transfer(AttachmentTransfer(bb.client, [addr_of(svc)]))
        a_api = await serve_api(nursery, alice.client, alice.home)
        b_api = await serve_api(nursery, bob.client, bob.home)
        auth = {"Authorization": f"Bearer {a_api.token}"}
        async with httpx.AsyncClient(
            base_url=a_api.url + "/api/v1", headers=auth, timeout=60
        ) as http:
            url = f"/contacts/{bob.me.hex()}/attachments"

            async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
                for i in range(0, len(data), 100_000):
                    yield data[i : i + 100_000]

            r = await http.post(
                url, params={"name": "../data.bin", "mime": "text/html"}, content=chunked()
            )
            assert r.status_code == 201, r.text
            file_id = r.json()["id"]
            assert r.json()["attachments"][0]["mime"] == "text/html"
            r = await http.post(
                url, params={"name": "p.jpg", "mime": "image/jpeg"}, content=_jpeg_with_gps()
            )
            assert r.status_code == 201, r.text
            photo = r.json()["attachments"][0]
            photo_id = r.json()["id"]
            assert (photo["kind"], photo["width"], photo["height"]) == ("image", 2048, 1024)
            r = await http.post(
                url, params={"name": "x.png", "mime": "image/png"}, content=b"not a png"
            )
            assert r.status_code == 422 and "send it as a file" in r.json()["error"]["message"]
            assert (
                await http.post("/contacts/" + "0" * 64 + "/attachments", content=b"x")
            ).status_code == 404

        rows = await b_api.until(
            f"/messages/{file_id}/attachments", lambda j: bool(j) and j[0]["state"] == "ready"
        )
        assert rows[0]["name"] == "data.bin" and rows[0]["inline"] is False
        base = f"/messages/{file_id}/attachments/0"
        whole = await b_api.request("GET", base + "/content")
        assert whole.content == data
        assert whole.headers["content-type"] == "application/octet-stream"
        assert whole.headers["content-disposition"].startswith("attachment;")
        auth = {"Authorization": f"Bearer {b_api.token}"}
        async with httpx.AsyncClient(
            base_url=b_api.url + "/api/v1", headers=auth, timeout=60
        ) as http:
            r = await http.get(base + "/content", headers={"Range": "bytes=70000-70099"})
            assert r.status_code == 206 and r.content == data[70000:70100]
            assert r.headers["content-range"] == f"bytes 70000-70099/{len(data)}"
            r = await http.get(base + "/content", headers={"Range": "bytes=-10"})
            assert r.status_code == 206 and r.content == data[-10:]
            r = await http.get(base + "/content", headers={"Range": f"bytes={len(data)}-"})
            assert r.status_code == 416
            # the photo: no GPS left, a JPEG thumbnail, served inline as image/jpeg
            await b_api.until(
                f"/messages/{photo_id}/attachments", lambda j: j and j[0]["state"] == "ready"
            )
            r = await http.get(f"/messages/{photo_id}/attachments/0/content")
            assert (
                r.headers["content-type"] == "image/jpeg"
                and not Image.open(io.BytesIO(r.content)).getexif()
            )
            r = await http.get(f"/messages/{photo_id}/attachments/0/thumbnail")
            assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).format == "JPEG"
            assert (await http.get(base + "/thumbnail")).status_code == 404
            assert (
                await http.get("/messages/" + "ab" * 16 + "/attachments/0/content")
            ).status_code == 404
            # a group: Bob sends Alice's group a file through his API; Alice lists it by its id
            gid = (await bob.client.groups.create("Trip")).group_id
            await bob.client.groups.invite(gid, alice.me)
            await wait_for(
                alice, lambda: gid in {g.group_id for g in alice.client.groups.groups()}, 30
            )
            r = await http.post(
                f"/groups/{gid.hex()}/attachments", params={"name": "g.txt"}, content=b"group file"
            )
            assert r.status_code == 201, r.text
            gmid = r.json()["id"]
            got = await a_api.until(
                f"/messages/{gmid}/attachments", lambda j: bool(j) and j[0]["state"] == "ready"
            )
            assert got[0]["name"] == "g.txt"
            r = await http.put("/attachments/settings", json={"auto_download_bytes": 0})
            assert r.json() == {"auto_download_bytes": 0, "auto_download": "all"}
            r = await http.put("/attachments/settings", json={"auto_download": "photos"})
            assert r.json() == {"auto_download_bytes": 0, "auto_download": "photos"}
            r = await http.put("/attachments/settings", json={"auto_download": "videos"})
            assert r.status_code == 422 and "auto_download" in r.json()["error"]["message"]
            assert (
                await http.put("/attachments/settings", json={"auto_download_bytes": -1})
            ).status_code == 422
        nursery.cancel_scope.cancel()
