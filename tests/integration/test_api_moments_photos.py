"""Moments with photos over the API: real clients (memnet messages), real blob hosts."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
import trio
from PIL import Image

from boxless.blobs import PinPolicy
from boxless.client.attachment_transfer import AttachmentTransfer
from tests.api_fixtures import serve_api
from tests.blob_fixtures import addr_of, blob_node
from tests.memnet_fixtures import befriend, memnet

pytestmark = pytest.mark.trio


def _jpeg(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (40 * i, 90, 200)).save(buf, "JPEG")
    return buf.getvalue()


async def test_a_post_with_three_photos(tmp_path: Path) -> None:
    async with (
        memnet(tmp_path, ("alice", "bob")) as (_net, (alice, bob)),
        blob_node(tmp_path / "svc", pin_policy=PinPolicy()) as svc,
        blob_node(tmp_path / "ab") as ab,
        blob_node(tmp_path / "bb") as bb,
        trio.open_nursery() as nursery,
    ):
        await befriend(alice, bob)
        alice.client.attachments.use_transfer(AttachmentTransfer(ab.client, [addr_of(svc)]))
        bob.client.attachments.use_transfer(AttachmentTransfer(bb.client))
        a_api = await serve_api(nursery, alice.client, alice.home)
        b_api = await serve_api(nursery, bob.client, bob.home)
        auth = {"Authorization": f"Bearer {a_api.token}"}
        async with httpx.AsyncClient(
            base_url=a_api.url + "/api/v1", headers=auth, timeout=60
        ) as http:
            tokens = []
            for i in range(3):
                r = await http.post(
                    "/moments/media",
                    params={"name": f"p{i}.jpg", "mime": "image/jpeg"},
                    content=_jpeg(i),
                )
                assert r.status_code == 201, r.text
                tokens.append(r.json()["token"])
            r = await http.post("/moments/media", params={"mime": "text/html"}, content=b"<b>")
            assert r.status_code == 415 and "photos" in r.json()["error"]["message"]
            r = await http.post("/moments", json={"text": "", "media": ["00" * 16]})
            assert r.status_code == 400 and "upload it again" in r.json()["error"]["message"]
            r = await http.post("/moments", json={"text": "Three views", "media": tokens})
            assert r.status_code == 201, r.text
            r = await http.post("/moments", json={"text": "again", "media": tokens[:1]})
            assert r.status_code == 400  # each upload is used once

        got = await b_api.until("/moments", lambda j: len(j["posts"]) == 1)
        media = got["posts"][0]["media"]
        assert [(m["index"], m["name"], m["kind"]) for m in media] == [
            (i, f"p{i}.jpg", "image") for i in range(3)
        ]
        pid = got["posts"][0]["id"]
        auth = {"Authorization": f"Bearer {b_api.token}"}
        async with httpx.AsyncClient(
            base_url=b_api.url + "/api/v1", headers=auth, timeout=60
        ) as http:
            r = await http.get(f"/moments/{pid}/media/2")
            assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
            with Image.open(io.BytesIO(r.content)) as img:
                assert img.size == (640, 480) and img.getpixel((5, 5))[0] in range(70, 90)
            assert (await http.get(f"/moments/{pid}/media/3")).status_code == 404
            assert (await http.get(f"/moments/{'00' * 16}/media/0")).status_code == 404
        nursery.cancel_scope.cancel()  # the two API servers
