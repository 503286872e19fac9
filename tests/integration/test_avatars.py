"""Profile pictures end to end: Alice sets one over her API, Bob's client stores
it and his API shows it; new contacts get it; bad pictures are refused (ours)
or ignored (a contact's). Real clients over a real in-process service node."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image

from boxless.chat import envelope as env
from tests.api_fixtures import people as api_people
from tests.chat_fixtures import befriend, people, wait_for


def picture(colour: tuple[int, int, int], fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buf, fmt)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_a_picture_set_over_the_api_reaches_a_contact_and_their_api(
    tmp_path: Path,
) -> None:
    red = picture((200, 40, 40))
    async with api_people(tmp_path, "Alice", "Bob") as apis:
        alice, bob = apis["Alice"], apis["Bob"]
        me = await alice.call("PUT", "/me/avatar", {"image": b64(red)})
        assert me["avatar"] == b64(red) and me["name"] == "Alice"
        assert (await alice.call("GET", "/me"))["avatar"] == b64(red)

        [seen] = await bob.until("/contacts", lambda cs: cs[0]["avatar"] is not None)
        assert seen["avatar"] == b64(red) and seen["name"] == "Alice"
        [row] = bob.client.contacts()
        assert row.avatar == red  # stored in Bob's encrypted database

        # a contact's picture that is not one is ignored; the rest of the update applies
        contact = alice.client.contacts()[0]
        alice.client.conversations.queue(contact, env.ProfileUpdate("Alice L", b"GIF89a not ours"))
        await bob.until("/contacts", lambda cs: cs[0]["name"] == "Alice L")
        assert bob.client.contacts()[0].avatar == red

        me = await alice.call("PUT", "/me/avatar", {"image": ""})
        assert me["avatar"] is None
        await bob.until("/contacts", lambda cs: cs[0]["avatar"] is None)
        assert bob.client.contacts()[0].avatar is None


async def test_bad_pictures_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    async with api_people(tmp_path, "Alice") as apis:
        alice = apis["Alice"]
        cases = [
            (b64(picture((1, 2, 3), "GIF")), 400, "PNG, JPEG or WebP"),
            (b64(picture((1, 2, 3), "WEBP")), 400, "PNG or JPEG"),
            (b64(b"\xff\xd8\xff" + bytes(env.MAX_AVATAR_BYTES)), 400, "scale it down"),
            (b64(b"\x89PNG\r\n\x1a\n damaged"), 400, "damaged"),
            ("not base64!", 422, "base64"),
        ]
        for image, status, words in cases:
            r = await alice.request("PUT", "/me/avatar", {"image": image})
            assert r.status_code == status, r.text
            error = r.json()["error"]
            assert set(error) == {"code", "message"} and words in error["message"], error
        r = await alice.request("PUT", "/me/avatar", {"image": "A" * 80_000})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_body"
        assert (await alice.call("GET", "/me"))["avatar"] is None
        assert alice.client.account.profile.avatar is None


async def test_new_contacts_get_the_picture_both_ways(tmp_path: Path) -> None:
    red, blue = picture((200, 40, 40)), picture((40, 40, 200), "PNG")
    async with people(tmp_path, ("alice", "bob")) as (alice, bob):
        await alice.set_avatar(red)  # no contacts yet: nobody to tell
        await bob.set_avatar(blue)
        await befriend(alice, bob)  # Alice asks, Bob accepts
        await wait_for(bob, lambda: bob.contacts()[0].avatar == red)
        await wait_for(alice, lambda: alice.contacts()[0].avatar == blue)
