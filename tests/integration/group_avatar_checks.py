"""Group pictures as attachments between two real clients (run from
``tests/integration/test_attachments_client.py``'s group test, which has the group): the admin's picture is
uploaded encrypted and pinned, the member fetches and verifies it; a member who is
not an admin cannot change it; a reference to something that is not a picture fails
with what happened (messages over the in-memory Waku network, files over real
py-libp2p hosts with a service node)."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import httpx
import pytest
import trio
from PIL import Image

from boxless.blobs import BlobService
from boxless.chat.attachment import AttachmentKind
from boxless.chat.avatar_ref import decode_avatar_ref, encode_avatar_ref
from boxless.client.attachment_transfer import FileInfo
from boxless.client.group_avatars import GroupAvatars, NotAnAdmin, PictureUnavailable
from tests.api_fixtures import Api, serve_api
from tests.blob_fixtures import addr_of, aiter_chunks
from tests.integration.test_cli_groups import boxless
from tests.memnet_fixtures import Person, wait_for


def _png(size: tuple[int, int]) -> bytes:
    im = Image.new("RGB", size, (20, 120, 200))
    for x in range(0, size[0], 5):
        im.putpixel((x, x % size[1]), (250, 250, 0))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


async def check_group_pictures(
    tmp_path: Path,
    alice: Person,
    bob: Person,
    svc: BlobService,
    bblobs: BlobService,
    gid: bytes,
    nursery: trio.Nursery,
) -> None:
    """Run by ``test_attachments_client``'s group test, whose people, nodes and group
    (Alice admin, Bob member; transfers in use, Bob's without service peers) it reuses:
    a group forms in seconds, so the two share one."""
    a_pics = GroupAvatars(alice.client.groups, alice.client.attachments)
    b_pics = GroupAvatars(bob.client.groups, bob.client.attachments)

    # the attacker: Bob is a member, not an admin; nothing is uploaded for him
    before = (bblobs.client.store.used, bblobs.client.store.pins())
    with pytest.raises(NotAnAdmin, match="admins"):
        await b_pics.set(gid, _png((64, 64)))
    assert (bblobs.client.store.used, bblobs.client.store.pins()) == before

    state = await a_pics.set(gid, _png((1200, 700)))
    ref = decode_avatar_ref(state.avatar)
    assert ref is not None and ref.kind is AttachmentKind.IMAGE and ref.mime == "image/jpeg"
    assert (ref.width, ref.height) == (512, 512) and ref.thumbnail and ref.blurhash
    assert [addr_of(svc)] == list(ref.peers)  # pinned on the service node
    await wait_for(bob, lambda: bob.client.groups.state(gid).avatar == state.avatar)

    data, mime = await b_pics.picture(gid)
    assert mime == "image/jpeg" and len(data) == ref.size
    assert data == (await a_pics.picture(gid))[0]
    assert Image.open(io.BytesIO(data)).size == (512, 512)
    again, _ = await b_pics.picture(gid)  # from the local cache now
    assert again == data and bob.client.attachments.transfer.is_cached(ref)

    # an admin's reference to bytes that are not a picture: refused with what happened
    junk = os.urandom(5000)
    bad = await alice.client.attachments.require_transfer().upload(
        aiter_chunks(junk), FileInfo("x.jpeg", mime="image/jpeg", kind=AttachmentKind.IMAGE)
    )
    state = await alice.client.groups.update(gid, avatar=encode_avatar_ref(bad))
    await wait_for(bob, lambda: bob.client.groups.state(gid).avatar == state.avatar)
    with pytest.raises(PictureUnavailable, match="not an image"), trio.fail_after(30):
        await b_pics.picture(gid)

    # over the API (the web UI's calls) and the CLI
    a_api = await serve_api(nursery, alice.client, alice.home)
    b_api = await serve_api(nursery, bob.client, bob.home)
    url = f"/groups/{gid.hex()}/avatar"
    body = {"image": base64.b64encode(_png((300, 200))).decode()}
    async with _http(b_api) as bob_http, _http(a_api) as alice_http:
        r = await bob_http.put(url, json=body)  # the attacker again
        assert r.status_code == 403 and r.json()["error"]["code"] == "not_admin", r.text
        r = await alice_http.put(url, json={"image": "bm90IGEgcGljdHVyZQ=="})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_image"
        r = await alice_http.put(url, json=body)
        assert r.status_code == 200, r.text
        g = r.json()
        assert g["avatar_url"].startswith(f"/api/v1{url}?v=") and g["avatar_blurhash"]
        await wait_for(bob, lambda: bob.client.groups.state(gid).avatar != state.avatar)
        g = (await bob_http.get(f"/groups/{gid.hex()}")).json()
        thumb = base64.b64decode(g["avatar"])  # shown while the picture loads
        assert thumb.startswith(b"\xff\xd8\xff") and len(thumb) < 1536
        r = await bob_http.get(g["avatar_url"].removeprefix("/api/v1"))
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(r.content)).size == (200, 200)
        assert r.headers["x-content-type-options"] == "nosniff"

        code, out, err = await boxless(b_api, "group", "avatar", "Trip", "--remove")
        assert code != 0 and "admins" in err, (out, err)
        pic = tmp_path / "p.png"
        pic.write_bytes(_png((900, 900)))
        code, out, err = await boxless(a_api, "group", "avatar", "Trip", str(pic))
        assert code == 0 and "picture set" in out, err
        g = (await alice_http.get(f"/groups/{gid.hex()}")).json()
        r = await alice_http.get(g["avatar_url"].removeprefix("/api/v1"))
        assert Image.open(io.BytesIO(r.content)).size == (512, 512)
        code, out, err = await boxless(a_api, "group", "avatar", "Trip", "--remove")
        assert code == 0 and "picture removed" in out, err
        assert alice.client.groups.state(gid).avatar == b""
        assert (await alice_http.get(url)).status_code == 404


def _http(api: Api) -> httpx.AsyncClient:
    auth = {"Authorization": f"Bearer {api.token}"}
    return httpx.AsyncClient(base_url=api.url + "/api/v1", headers=auth, timeout=60)
