"""Profiles: status/region/cover shared with contacts end to end; alias, tags,
notes and star kept locally; the alias wins where contacts are named."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import trio
import trio.testing
from PIL import Image

from boxless.chat import envelope as env
from boxless.client import profile_store as ps
from boxless.client.profile_rules import MAX_TAGS, clean_tags
from boxless.identity.profile import InvalidProfile
from tests.memnet_fixtures import befriend, homes, memnet, settle, wait_for

__all__ = ["homes"]  # a fixture


def _jpeg(w: int = 120, h: int = 45) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), (30, 120, 200)).save(out, "JPEG", quality=60)
    return out.getvalue()


def test_profile_update_round_trips_its_new_fields() -> None:
    body = env.ProfileUpdate("Alice", b"", "Out hiking", "Lisbon", _jpeg())
    msg = env.new_message(body, lamport=1, sent_at_ms=1)
    assert env.decode(env.encode(msg)).body == body
    big = env.ProfileUpdate(
        "n", b"\x00" * env.MAX_AVATAR_BYTES, "s" * 100, "r" * 64, b"\x00" * env.MAX_COVER_BYTES
    )
    assert len(env.encode(env.new_message(big, lamport=1, sent_at_ms=1))) <= env.MAX_ENCODED_BYTES
    with pytest.raises(Exception, match="cover"):
        env.ProfileUpdate("n", cover=b"\x00" * (env.MAX_COVER_BYTES + 1))


def test_tags_are_cleaned_and_bounded() -> None:
    assert clean_tags(["work", " Work ", "", "family"]) == ("family", "work")
    with pytest.raises(InvalidProfile, match="at most"):
        clean_tags([f"t{i}" for i in range(MAX_TAGS + 1)])
    with pytest.raises(InvalidProfile, match="one line"):
        clean_tags(["a\nb"])


async def test_details_reach_contacts_and_local_notes_stay_local(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob", "carol")) as (_net, (alice, bob, carol)):
        await befriend(alice, bob)
        cover = _jpeg()
        await alice.client.profiles.set_details(status="Out hiking", region="Lisbon", cover=cover)

        def bob_sees() -> ps.Details:
            return bob.client.profiles.contact(alice.me)[1]

        await wait_for(bob, lambda: bob_sees().status == "Out hiking")
        assert bob_sees().region == "Lisbon" and bob_sees().cover == cover
        # a contact made later gets the details with the acceptance
        await befriend(carol, alice)
        await wait_for(carol, lambda: carol.client.profiles.contact(alice.me)[1].region == "Lisbon")

        # Bob's alias, tags and star: his list and group names use the alias; Alice learns nothing
        bob.client.profiles.set_notes(
            alice.me,
            alias="Ali (climbing)",
            tags=["climbing", "work"],
            note="met at the wall",
            phone="+351 900 000 000",
            starred=True,
        )
        names = {c.identity_key: c.display_name for c in bob.client.contacts()}
        assert names[alice.me] == "Ali (climbing)"
        assert bob.client.find_contact("ali (climbing)").identity_key == alice.me
        assert bob.client.profiles.tags() == {"climbing": 1, "work": 1}
        found = bob.client.search.search("Ali (climbing)").contacts
        assert [(x.key, x.name) for x in found] == [(alice.me.hex(), "Ali (climbing)")]
        assert [x.name for x in bob.client.search.search("alice").contacts] == ["Ali (climbing)"]
        gid = (await alice.client.groups.create("Crag")).group_id
        with bob.client.db.transaction() as cur:
            assert bob.client.groups.core.name(cur, gid, alice.me) == "Ali (climbing)"
        await settle(5)
        assert alice.client.profiles.contact(bob.me)[2] == ps.ContactNotes()
        assert [c.display_name for c in carol.client.contacts()] == ["Alice"]


async def test_a_contacts_bad_fields_are_not_kept(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob")) as (_net, (alice, bob)):
        await befriend(alice, bob)
        await alice.client.profiles.set_details(status="fine", region="Porto")
        await wait_for(bob, lambda: bob.client.profiles.contact(alice.me)[1].status == "fine")
        contact = alice.contact(bob)
        assert contact is not None
        bad = env.ProfileUpdate("Alice", b"", "evil\u202eline", "x" * 65, b"GIF89a not an image")
        alice.client.conversations.queue(contact, bad)
        await settle(30)
        got = bob.client.profiles.contact(alice.me)[1]
        assert (got.status, got.region, got.cover) == ("fine", "Porto", None)
