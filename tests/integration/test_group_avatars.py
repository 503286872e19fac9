"""Group pictures as attachments between two real clients: the admin's picture is
uploaded encrypted and pinned, the member fetches and verifies it; a member who is
not an admin cannot change it; a reference to something that is not a picture fails
with what happened (messages over the in-memory Waku network, files over real
py-libp2p hosts with a service node)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import trio
from PIL import Image

from boxless.blobs import PinPolicy
from boxless.chat.attachment import AttachmentKind
from boxless.chat.avatar_ref import decode_avatar_ref, encode_avatar_ref
from boxless.client.attachment_transfer import AttachmentTransfer, FileInfo
from boxless.client.group_avatars import GroupAvatars, NotAnAdmin, PictureUnavailable
from boxless.client.group_core import NotAMember
from tests.blob_fixtures import addr_of, aiter_chunks, blob_node
from tests.memnet_fixtures import befriend, memnet, wait_for

pytestmark = pytest.mark.trio


def _png(size: tuple[int, int]) -> bytes:
    im = Image.new("RGB", size, (20, 120, 200))
    for x in range(0, size[0], 5):
        im.putpixel((x, x % size[1]), (250, 250, 0))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


async def test_the_admins_picture_reaches_a_member_and_a_member_cannot_change_it(
    tmp_path: Path,
) -> None:
    async with (
        memnet(tmp_path, ("alice", "bob")) as (_net, (alice, bob)),
        blob_node(tmp_path / "svc", pin_policy=PinPolicy()) as svc,
        blob_node(tmp_path / "ablobs") as ablobs,
        blob_node(tmp_path / "bblobs") as bblobs,
    ):
        await befriend(alice, bob)
        gid = (await alice.client.groups.create("Trip")).group_id
        await alice.client.groups.invite(gid, bob.me)

        def joined() -> bool:
            try:
                return len(bob.client.groups.state(gid).members) == 2
            except NotAMember:
                return False

        await wait_for(bob, joined)
        alice.client.attachments.use_transfer(AttachmentTransfer(ablobs.client, [addr_of(svc)]))
        bob.client.attachments.use_transfer(AttachmentTransfer(bblobs.client))
        a_pics = GroupAvatars(alice.client.groups, alice.client.attachments)
        b_pics = GroupAvatars(bob.client.groups, bob.client.attachments)

        # the attacker: Bob is a member, not an admin; nothing is uploaded for him
        with pytest.raises(NotAnAdmin, match="admins"):
            await b_pics.set(gid, _png((64, 64)))
        assert bblobs.client.store.used == 0 and bblobs.client.store.pins() == []

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

        # removing it
        state = await a_pics.set(gid, b"")
        assert state.avatar == b""
