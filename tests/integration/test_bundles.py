"""Published device bundles: an expired link still works, a restored account is
reachable again, forged bundles are ignored (real service node, real clients)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from boxless.archive.base import ArchiveQuery
from boxless.chat.requests import ContactEvent
from boxless.chat.topics import bundle_topic
from boxless.client.core import Client
from boxless.identity.account import create_account, open_account
from boxless.identity.contact_code import (
    InvalidContactCode,
    decode_contact_code,
    make_contact_code,
)
from boxless.identity.keys import (
    Device,
    Identity,
    decode_published_bundle,
)
from boxless.identity.profile import Profile
from boxless.identity.seed import generate_phrase
from boxless.node.service import WakuNode
from boxless.waku.message import WakuMessage
from tests.chat_fixtures import (
    FAST_KDF,
    PASS,
    befriend,
    make_account,
    running_client,
    start_service,
    wait_for,
)
from tests.unit.test_published_bundle import sealed_for

DAY = 86_400


async def _published(client: Client, service: WakuNode) -> None:
    """Until the client's bundle is published and in the service node's archive."""
    topic = bundle_topic(client.me)
    with trio.fail_after(30):
        await client.bundles.published.wait()
        while not _held(service, topic):  # noqa: ASYNC110 (the archive has no event)
            await trio.sleep(0.05)


def _held(service: WakuNode, content_topic: str) -> list[WakuMessage]:
    assert service.archive is not None
    rows = service.archive.query(ArchiveQuery(include_data=True, limit=100)).rows
    return [WakuMessage.decode(r.message) for r in rows if r.content_topic == content_topic]


def _expired_link(client: Client, name: str) -> str:
    """A link made 40 days ago (links are valid for 30)."""
    acc = client.account
    return make_contact_code(acc.identity, acc.device, name, time.time() - 40 * DAY).link


async def test_an_expired_link_works_through_the_published_bundle(tmp_path: Path) -> None:
    for name in ("alice", "bob", "carol", "mallory"):
        make_account(tmp_path / name, name.title()).close()
    async with trio.open_nursery() as nursery:
        s1 = await start_service(nursery, tmp_path, "s1")
        addrs = [s1.addrs()[0]]
        async with (
            running_client(tmp_path / "alice", addrs) as alice,
            running_client(tmp_path / "bob", addrs) as bob,
        ):
            await _published(bob, s1)
            # What the store holds on Bob's bundle topic is Bob's current device.
            held = _held(s1, bundle_topic(bob.me))
            assert len(held) == 1
            got = decode_published_bundle(held[0].payload, bob.me, time.time())
            assert got.curve25519 == bob.my_device_key
            assert b"Bob" not in held[0].payload  # no profile on the open topic
            assert bob.me not in held[0].payload and bob.my_device_key not in held[0].payload

            # Mallory publishes a newer bundle of her own device on Bob's topic.
            mallory_identity = Identity.from_phrase(generate_phrase())
            forged = Device.create(mallory_identity, time.time()).bundle(time.time() + 5)
            sent = await alice.transport.send(
                WakuMessage(
                    payload=sealed_for(bob.me, forged),
                    content_topic=bundle_topic(bob.me),
                    timestamp=time.time_ns(),
                )
            )
            assert sent.accepted

            old_link = _expired_link(bob, "Bob")
            with pytest.raises(InvalidContactCode, match="expired"):
                decode_contact_code(old_link, time.time())  # the link alone is too old
            row = await alice.add_contact(old_link, intro="found your old link")
            assert row.device_key == bob.my_device_key
            stored = alice.bundles.stored(bob.me)
            assert stored is not None and stored.curve25519 == bob.my_device_key

            await wait_for(bob, lambda: any(c.identity_key == alice.me for c in bob.contacts()))
            await bob.respond(alice.me, ContactEvent.ACCEPT)
            await wait_for(alice, lambda: alice.contacts()[0].state == "accepted")
            mid = await alice.send_text(bob.me, "hello through a fresh bundle")
            await wait_for(bob, lambda: len(bob.messages(alice.me)) == 1)
            assert bob.messages(alice.me)[0].text == "hello through a fresh bundle"
            await wait_for(alice, lambda: alice.messages(bob.me)[-1].state in ("delivered", "read"))
            assert alice.messages(bob.me)[-1].message_id == mid

            # Carol never went online: nothing published, her old link is refused
            # with advice; Mallory's own bundle on Carol's topic changes nothing.
            with open_account(tmp_path / "carol", PASS) as carol:
                carol_old = make_contact_code(
                    carol.identity, carol.device, "Carol", time.time() - 40 * DAY
                ).link
                carol_key = carol.identity.public_key
                carol_topic = bundle_topic(carol_key)
            await alice.transport.send(
                WakuMessage(
                    payload=sealed_for(carol_key, forged),
                    content_topic=carol_topic,
                    timestamp=time.time_ns(),
                )
            )
            with pytest.raises(InvalidContactCode, match="fresh link"):
                await alice.add_contact(carol_old)
        nursery.cancel_scope.cancel()


async def test_a_contact_restored_on_a_new_device_is_reachable_again(tmp_path: Path) -> None:
    phrase = generate_phrase()
    make_account(tmp_path / "alice", "Alice").close()
    create_account(
        tmp_path / "bob", PASS, Identity.from_phrase(phrase), Profile("Bob"), time.time(), FAST_KDF
    ).close()
    async with trio.open_nursery() as nursery:
        s1 = await start_service(nursery, tmp_path, "s1")
        addrs = [s1.addrs()[0]]
        async with running_client(tmp_path / "alice", addrs) as alice:
            async with running_client(tmp_path / "bob", addrs) as bob:
                await befriend(alice, bob)
                old_device = bob.my_device_key
            alice.confirm_verified(bob.me)

            # Bob loses his computer and restores his account from the phrase.
            create_account(
                tmp_path / "bob2",
                PASS,
                Identity.from_phrase(phrase),
                Profile("Bob"),
                time.time(),
                FAST_KDF,
            ).close()
            async with alice.events() as events, running_client(tmp_path / "bob2", addrs) as bob2:
                assert bob2.me == bob.me and bob2.my_device_key != old_device
                await _published(bob2, s1)
                alice_link = alice.account.contact_code(time.time()).link
                await bob2.add_contact(alice_link, intro="it's Bob, on my new laptop")
                await wait_for(bob2, lambda: bob2.contacts()[0].state == "accepted", timeout=60)
                [c] = alice.contacts()
                assert c.state == "accepted" and c.device_key == bob2.my_device_key
                assert c.verified_key == old_device  # verification is now broken, and shown
                seen = []
                while "verification_broken" not in seen:
                    with trio.fail_after(5):
                        seen.append((await events.receive()).type)

                await alice.send_text(bob2.me, "welcome back")
                await wait_for(
                    bob2, lambda: any(m.text == "welcome back" for m in bob2.messages(alice.me))
                )
                await bob2.send_text(alice.me, "thanks!")
                await wait_for(
                    alice, lambda: any(m.text == "thanks!" for m in alice.messages(bob2.me))
                )
        nursery.cancel_scope.cancel()
