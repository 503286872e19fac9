"""Albums and media metadata over the API (multipart/form-data), seeks, and their attackers.

Real clients (memnet messages), real blob hosts, real HTTP. Alice posts an
album (two photos and a video with its duration) and a voice note with a
waveform as a browser's FormData would; Bob lists them with the metadata,
the blurhash and a Range read that seeks. Attackers: a tenth file, a file
in an album that is not a photo/video, a waveform over 100 bytes, a duration
over 24 h, a voice note that is not audio, a broken body.
"""

from __future__ import annotations

import base64
import io
import os
import random
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


def _jpeg(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((w, h), 60).convert("RGB").save(buf, "JPEG")
    return buf.getvalue()


def _gif() -> bytes:
    frames = [Image.new("RGB", (32, 32), (i * 60, 0, 0)) for i in range(4)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    return buf.getvalue()


async def test_albums_metadata_and_seeks_over_the_api(tmp_path: Path) -> None:
    video = os.urandom(700_001)
    voice = os.urandom(20_000)
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
        bob.client.attachments.set_auto_download_bytes(0)  # seeks read what is not cached
        a_api = await serve_api(nursery, alice.client, alice.home)
        b_api = await serve_api(nursery, bob.client, bob.home)
        auth = {"Authorization": f"Bearer {a_api.token}"}
        url = f"/contacts/{bob.me.hex()}/attachments"
        async with httpx.AsyncClient(
            base_url=a_api.url + "/api/v1", headers=auth, timeout=60
        ) as http:
            album = [
                ("caption", (None, "the beach")),
                ("file", ("a.jpg", _jpeg(640, 480), "image/jpeg")),
                ("file", ("b.jpg", _jpeg(300, 600), "image/jpeg")),
                ("duration_ms", (None, "12500")),
                ("width", (None, "1280")),
                ("height", (None, "720")),
                ("file", ("c.mp4", video, "video/mp4")),
            ]
            r = await http.post(url, files=album)
            assert r.status_code == 201, r.text
            album_id = r.json()["id"]
            a, b, c = r.json()["attachments"]
            assert (a["kind"], a["width"], a["height"]) == ("image", 640, 480)
            assert len(a["blurhash"]) == 28 and b["blurhash"] != a["blurhash"]
            assert (c["kind"], c["duration_ms"], c["width"], c["height"]) == (
                "video",
                12500,
                1280,
                720,
            )
            wave = bytes(range(0, 200, 2))  # 100 samples
            r = await http.post(
                url,
                files=[
                    ("kind", (None, "voice")),
                    ("duration_ms", (None, "3100")),
                    ("waveform", (None, base64.b64encode(wave).decode())),
                    ("file", ("note.ogg", voice, "audio/ogg; codecs=opus")),
                ],
            )
            assert r.status_code == 201, r.text
            voice_id = r.json()["id"]
            v = r.json()["attachments"][0]
            assert (v["kind"], v["duration_ms"], v["waveform"]) == ("voice", 3100, list(wave))
            r = await http.post(url, files=[("file", ("s.gif", _gif(), "image/gif"))])
            assert r.status_code == 201, r.text
            s = r.json()["attachments"][0]
            assert (s["kind"], s["animated"], s["mime"]) == ("sticker", True, "image/gif")
            # the raw-body upload takes the same metadata in its query
            r = await http.post(
                url,
                params={"name": "v.webm", "mime": "audio/webm", "kind": "voice", "duration_ms": 9},
                content=b"opus",
            )
            assert r.status_code == 201 and r.json()["attachments"][0]["duration_ms"] == 9

            # attackers: each refused with what is wrong, nothing sent (counted once Bob
            # has the four messages above: one still in flight would look like a leak)
            await wait_for(bob, lambda: len(bob.client.conversations.messages(alice.me)) >= 4)
            before = len(bob.client.conversations.messages(alice.me))
            bad: list[tuple[list[tuple[str, tuple[str | None, object] | tuple]], int, str]] = [
                ([("file", (f"{i}.jpg", _jpeg(8, 8), "image/jpeg")) for i in range(10)], 422, "9"),
                (
                    [
                        ("file", ("a.jpg", _jpeg(8, 8), "image/jpeg")),
                        ("file", ("x.pdf", b"%PDF", "application/pdf")),
                    ],
                    422,
                    "only photos and videos",
                ),
                (
                    [
                        ("kind", (None, "voice")),
                        ("waveform", (None, base64.b64encode(bytes(101)).decode())),
                        ("file", ("n.ogg", b"x", "audio/ogg")),
                    ],
                    400,
                    "at most 100",
                ),
                (
                    [
                        ("duration_ms", (None, str(24 * 3600 * 1000 + 1))),
                        ("file", ("v.mp4", b"x", "video/mp4")),
                    ],
                    400,
                    "duration_ms",
                ),  # fmt: skip
                (
                    [("kind", (None, "voice")), ("file", ("n.png", b"x", "image/x-icon"))],
                    400,
                    "audio",
                ),
                (
                    [("waveform", (None, "AAAA")), ("file", ("f.bin", b"x", "text/plain"))],
                    400,
                    "only a voice note",
                ),
                ([("caption", (None, "no file"))], 400, "no file part"),
            ]
            for files, status, words in bad:
                r = await http.post(url, files=files)
                assert r.status_code == status and words in r.json()["error"]["message"], r.text
            r = await http.post(
                url,
                content=b"--xx\r\nContent-Disposition: form-data; name=file; filename=a\r\n\r\nab",
                headers={"Content-Type": "multipart/form-data; boundary=xx"},
            )
            assert r.status_code == 400 and r.json()["error"]["code"] == "bad_upload"
            assert len(bob.client.conversations.messages(alice.me)) == before

        # Bob: the album and the voice note with their metadata; seeks into the video
        rows = await b_api.until(f"/messages/{album_id}/attachments", lambda j: len(j) == 3)
        assert [r["name"] for r in rows] == ["a.jpg", "b.jpg", "c.mp4"]
        assert rows[2]["state"] == "remote" and rows[2]["duration_ms"] == 12500
        rows = await b_api.until(f"/messages/{voice_id}/attachments", lambda j: len(j) == 1)
        assert rows[0]["waveform"] == list(wave)
        auth = {"Authorization": f"Bearer {b_api.token}"}
        rng = random.Random(7)
        async with httpx.AsyncClient(
            base_url=b_api.url + "/api/v1", headers=auth, timeout=60
        ) as http:
            base = f"/messages/{album_id}/attachments/2/content"
            for _ in range(12):
                first = rng.randrange(len(video))
                last = min(len(video) - 1, first + rng.randrange(1, 200_000))
                r = await http.get(base, headers={"Range": f"bytes={first}-{last}"})
                assert r.status_code == 206 and r.content == video[first : last + 1]
            # a seek does not make the whole file cached (only a full read does)
            ref = bob.client.attachments.attachment(bytes.fromhex(album_id), 2).ref
            assert not bob.client.attachments.transfer.is_cached(ref)  # type: ignore[union-attr]
            r = await http.get(base)
            assert r.content == video
        nursery.cancel_scope.cancel()
