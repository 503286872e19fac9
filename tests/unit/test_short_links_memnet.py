"""Short links between real clients over the in-memory network: adding and joining by
them, a rename republishing the card, and attackers publishing on the links' topics."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from boxless.chat.topics import contact_topic
from boxless.errors import UsageError
from boxless.groups.invites import (
    _SEAL_AAD,
    InvalidGroupLink,
    ShortGroupLink,
    decode_any_group_link,
    seal_group_link,
)
from boxless.identity.contact_code import (
    _CARD_AAD,
    InvalidContactCode,
    ShortContactLink,
    decode_contact_link,
    make_contact_code,
    short_contact_link,
)
from boxless.identity.keys import Identity
from boxless.waku.message import WakuMessage
from tests.memnet_fixtures import befriend, homes, memnet, wait_for, wall

__all__ = ["homes"]  # a fixture


async def test_add_by_short_link_and_a_forged_card_on_its_topic_is_ignored(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob", "mallory")) as (net, (alice, bob, mallory)):
        link = bob.client.links.contact_link
        assert len(link) <= 120
        await bob.client.links.published.wait()
        # Mallory has Bob's short link: she publishes her own signed card, named Bob,
        # on its topic -- newer than Bob's.
        short = decode_contact_link(link, wall())
        assert isinstance(short, ShortContactLink)
        await trio.sleep(10)
        fake = make_contact_code(mallory.account.identity, mallory.account.device, "Bob", wall())

        nonce = b"\x00" * 12
        payload = nonce + short._aead().encrypt(nonce, fake.to_bytes(), _CARD_AAD)
        sent = await mallory.transport.send(
            WakuMessage(payload=payload, content_topic=short.topic, timestamp=int(wall() * 1e9))
        )
        assert sent.accepted
        await mallory.transport.send(
            WakuMessage(
                payload=b"junk" * 20, content_topic=short.topic, timestamp=int(wall() * 1e9)
            )
        )
        code = await alice.client.links.resolve_contact(link)
        assert code.identity_key == bob.me and code.display_name == "Bob"
        row = await alice.client.add_contact(link, "hi from a short link")
        assert row.identity_key == bob.me
        await wait_for(bob, lambda: bob.state(alice) == "request_received")
        contact = bob.contact(alice)
        assert contact is not None and contact.intro == "hi from a short link"


async def test_a_short_link_nobody_published_gives_a_clear_error(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice",)) as (net, (alice,)):
        stranger = short_contact_link(Identity.from_private_bytes(b"\x55" * 32))
        with pytest.raises(InvalidContactCode, match="try again when"):
            await alice.client.add_contact(stranger.link)
        assert alice.client.contacts() == []


async def test_a_rename_republishes_the_card(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await bob.client.links.published.wait()
        await trio.sleep(5)
        await bob.client.set_display_name("Robert")
        await trio.sleep(5)
        code = await alice.client.links.resolve_contact(bob.client.links.contact_link)
        assert code.display_name == "Robert"


async def test_join_by_short_group_link_and_a_swapped_invite_is_ignored(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob", "mallory")) as (net, (alice, bob, mallory)):
        gid = (await alice.client.groups.create("Hikers")).group_id
        long = alice.client.groups.make_link(gid)
        link = await alice.client.links.publish_group_link(long)
        assert len(link) <= 120
        short = decode_any_group_link(link, wall())
        assert isinstance(short, ShortGroupLink)
        # Mallory got the link: she publishes an invite to her own group on its topic.
        mgid = (await mallory.client.groups.create("Hikers")).group_id
        hers = mallory.client.groups.make_link(mgid)

        nonce = b"\x01" * 12
        payload = nonce + short._aead().encrypt(nonce, hers.to_bytes(), _SEAL_AAD)
        await mallory.transport.send(
            WakuMessage(payload=payload, content_topic=short.topic, timestamp=int(wall() * 1e9))
        )
        with pytest.raises(Exception, match="sealed only"):
            seal_group_link(hers, short)
        resolved = await bob.client.links.resolve_group(link)
        assert resolved == long.link
        assert bob.client.groups.preview_link(resolved).group_id == gid
        await bob.client.groups.join(resolved)
        await wait_for(
            bob,
            lambda: (
                gid in {g.group_id for g in bob.client.groups.groups()}
                and bob.client.groups.state(gid).is_member(bob.me)
            ),
        )
        # expired: the invite is no longer offered
        brief = await alice.client.links.publish_group_link(alice.client.groups.make_link(gid, 60))
        await bob.client.links.resolve_group(brief)
        await trio.sleep(61)
        with pytest.raises(InvalidGroupLink, match="ask an admin"):
            await bob.client.links.resolve_group(brief)


async def test_re_adding_an_accepted_contact_sends_nothing(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        await trio.sleep(60)
        before = alice.contact(bob)
        requests = len(net._query([contact_topic(bob.me)], None))
        row = await alice.client.add_contact(bob.client.links.contact_link)
        assert row == before and alice.state(bob) == "accepted"
        await trio.sleep(5)
        assert len(net._query([contact_topic(bob.me)], None)) == requests  # nothing sent


async def test_group_picture_limit_is_clear_and_a_fitting_one_reaches_members(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A 40 KB group picture used to pass the op's check, then fail the 2,048-byte
    limit of a group op sent directly (a 400, and later `boxless up` stopped)."""
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        gid = (await alice.client.groups.create("Pics")).group_id
        await alice.client.groups.invite(gid, bob.me)
        await wait_for(bob, lambda: gid in {g.group_id for g in bob.client.groups.groups()})
        with pytest.raises(UsageError, match="the limit is 1,536"):
            await alice.client.groups.update(gid, avatar=b"\xff\xd8" + bytes(40_000))
        picture = b"\xff\xd8" + bytes(1534)
        await alice.client.groups.update(gid, avatar=picture)
        await wait_for(bob, lambda: bob.client.groups.state(gid).avatar == picture)
        await trio.sleep(120)  # timers, re-sends: the client keeps running
        await alice.client.groups.send_text(gid, "still here")
