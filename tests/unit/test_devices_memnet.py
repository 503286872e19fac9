"""Linked devices over the in-memory network: link A2 to Alice, fan-out, revoke."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing

from boxless.chat import envelope as env
from boxless.chat.topics import bundle_topic, contact_topic
from boxless.client import store as db
from boxless.client.core import Client
from boxless.client.devices import DeviceRevoked, create_linked_account, receive_link
from boxless.client.devices_core import PairingRefused, PendingDevice
from boxless.client.memory_transport import Fault, MemoryNetwork
from boxless.crypto.sealed import seal
from boxless.errors import UsageError
from boxless.identity.keystore import NoIdentity
from boxless.waku.message import WakuMessage
from tests.memnet_fixtures import (
    FAST_KDF,
    PASS,
    POW,
    WAIT,
    Person,
    befriend,
    homes,
    memnet,
    wait_for,
    wall,
)

__all__ = ["homes"]  # a fixture


async def _run_until_revoked(
    client: Client, *, task_status: trio.TaskStatus[Client] = trio.TASK_STATUS_IGNORED
) -> None:
    try:
        await client.run(task_status=task_status)
    except* DeviceRevoked:
        pass


@asynccontextmanager
async def _running(client: Client) -> AsyncIterator[None]:
    """``client`` (a linked device) runs until revoked, ready within WAIT; cancelled
    when the block ends."""
    async with trio.open_nursery() as nursery:
        await nursery.start(_run_until_revoked, client)
        with trio.fail_after(WAIT):
            await client.ready.wait()
        yield
        nursery.cancel_scope.cancel()


def _unread(person: Person, other: Person) -> list[bytes]:
    with person.client.db.transaction() as cur:
        return db.unread_incoming(cur, other.me)


async def _link_second(net: MemoryNetwork, alice: Person, home: Path) -> tuple[Person, str]:
    """A2: shows an offer, Alice's A1 takes it, A2 receives the account."""
    pending = PendingDevice.create("Alice's phone", "android", wall())
    transport = net.transport("alice2")
    preview = alice.client.devices.preview(pending.offer.link)
    assert (preview.name, preview.code) == ("Alice's phone", pending.offer.code)
    async with trio.open_nursery() as nursery:
        got: list[object] = []

        async def wait_link() -> None:
            got.append(await receive_link(transport, pending, wall))

        nursery.start_soon(wait_link)
        await alice.client.devices.link(pending.offer.link)
    (linked,) = got
    account = create_linked_account(home, PASS, linked, wall(), kdf=FAST_KDF)  # type: ignore[arg-type]
    client = Client(account, transport, clock=wall, pow_difficulty=POW)
    client.devices.import_snapshot(linked.snapshot)  # type: ignore[attr-defined]
    return Person("alice2", home, account, transport, client), pending.offer.link


async def _forge_key_shares(
    mallory: Person, carol: Person, *, claimed: Person, count: int = 40
) -> None:
    """Mallory seals ``count`` junk group key shares to Carol that claim to be
    ``claimed`` (a member, not Carol's contact) from Mallory's own device."""
    bundle = carol.account.device.bundle(wall())
    for i in range(count):
        junk = env.encode(
            env.new_message(env.GroupKeyShareBody(bytes([i]) * 64), lamport=i, sent_at_ms=1)
        )
        payload = seal(
            bundle.sealing_key,
            sender_identity_key=claimed.me,
            sender_device_key=mallory.client.my_device_key,
            ciphertext=mallory.client.sessions.encrypt(bundle, junk),
        )
        await mallory.transport.send(
            WakuMessage(payload=payload, content_topic=contact_topic(carol.me), timestamp=int(wall() * 1e9))
        )  # fmt: skip


@pytest.mark.trio
async def test_link_fan_out_and_revoke(homes: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        await bob.client.send_text(alice.me, "before the link")
        await wait_for(alice, lambda: "before the link" in alice.texts(bob))
        a2, link = await _link_second(net, alice, homes / "alice2")
        # replaying the used link is refused, and changes nothing
        serial = alice.client.devices.roster().serial
        with pytest.raises(PairingRefused, match="used already"):
            await alice.client.devices.link(link)
        assert alice.client.devices.roster().serial == serial
        async with _running(a2.client):
            # A2 has the account: contacts, history, profile
            assert a2.client.me == alice.me
            assert a2.state(bob) == "accepted"
            assert "before the link" in a2.texts(bob)
            assert {d.name for d in alice.client.devices.devices()} >= {"Alice's phone"}
            # Bob learns Alice's devices (the roster on her bundle topic) and writes to both
            await bob.client.devices.refresh(alice.me)
            await wait_for(alice, lambda: len(bob.client.devices.others(alice.me, b"")) == 2)
            await bob.client.send_text(alice.me, "to both")
            await wait_for(alice, lambda: "to both" in alice.texts(bob))
            await wait_for(a2, lambda: "to both" in a2.texts(bob))
            # A2 writes to Bob: read as Alice, the contact does not "move"
            device_before = bob.contact(alice).device_key  # type: ignore[union-attr]
            await a2.client.send_text(bob.me, "from the phone")
            await wait_for(bob, lambda: "from the phone" in bob.texts(alice))
            assert bob.contact(alice).device_key == device_before  # type: ignore[union-attr]
            # own-device sync: what A1 sends shows on A2 as sent by Alice, and back
            mid = await alice.client.send_text(bob.me, "from the laptop")
            await wait_for(a2, lambda: "from the laptop" in a2.texts(bob))
            assert a2.message(mid).outgoing
            assert "from the phone" in alice.texts(bob) and alice.contact(bob) is not None
            await alice.client.edit(mid, "from the laptop, edited")
            await wait_for(a2, lambda: a2.message(mid).edited)
            # read on A2 clears unread on A1
            await bob.client.send_text(alice.me, "unread on both")
            await wait_for(alice, lambda: "unread on both" in alice.texts(bob))
            await wait_for(a2, lambda: "unread on both" in a2.texts(bob))
            assert _unread(alice, bob) and _unread(a2, bob)
            await a2.client.mark_read(bob.me)
            await wait_for(alice, lambda: not _unread(alice, bob))
            # revoke A2: it wipes its keys when it learns; Bob stops writing to it
            a2_key = a2.client.my_device_key
            blind = net.add_fault(  # A2 does not hear of it at once: it keeps its keys
                Fault(receiver="alice2", content_topic=bundle_topic(alice.me), loss=1.0)
            )
            await alice.client.devices.revoke(a2_key)
            bob.client.devices._asked.clear()  # type: ignore[attr-defined]
            await bob.client.devices.refresh(alice.me)
            assert bob.client.devices.others(alice.me, b"") == [
                b for b in bob.client.devices.others(alice.me, b"") if b.curve25519 != a2_key
            ]
            assert len(bob.client.devices.others(alice.me, b"")) == 1
            # asking about the revoked device: not certified, and its (still valid)
            # bundle does not become Alice's newest in Bob's bundle book
            bob.client.devices._asked.clear()  # type: ignore[attr-defined]
            assert not await bob.client.devices.learn(alice.me, a2_key)
            held = bob.client.bundles.stored(alice.me)
            assert held is None or held.curve25519 != a2_key
            await bob.client.send_text(alice.me, "after the revocation")
            await wait_for(alice, lambda: "after the revocation" in alice.texts(bob))
            await trio.sleep(5)
            assert "after the revocation" not in a2.texts(bob)
            # the revoked device still sending: dropped
            await a2.client.send_text(bob.me, "ghost")
            await trio.sleep(120)
            assert "ghost" not in bob.texts(alice)
            # it learns (its bundle topic, read again): wipes its keys, its client stops
            net.remove_fault(blind)
            a2.client.devices._asked.clear()  # type: ignore[attr-defined]
            await a2.client.devices.refresh(alice.me)
            with trio.fail_after(WAIT):
                await a2.client.devices.wiped.wait()
        a2.transport.close()
        a2.account.close()
        # the wiped device can't open its account any more
        from boxless.identity.account import open_account

        with pytest.raises(NoIdentity):
            open_account(homes / "alice2", PASS)
        with pytest.raises(UsageError, match="revoked|no active"):
            await alice.client.devices.revoke(a2_key)


ORIGIN = "http://127.0.0.1:8765"
TOKEN = "t" * 32


@pytest.mark.trio
async def test_the_devices_api(homes: Path, autojump_clock: trio.testing.MockClock) -> None:
    import httpx

    from boxless.api.app import build_app

    async with memnet(homes, ("alice",)) as (_net, (alice,)):
        app = build_app(alice.client, TOKEN, ORIGIN, lambda: {"ok": True})
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=ORIGIN + "/api/v1",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as http:
            r = await http.get("/devices")
            assert r.status_code == 200, r.text
            (me,) = r.json()["devices"]
            assert me["this_device"] and me["device"] == alice.client.my_device_key.hex()
            # bad and expired links: a clear 422, nothing changed
            r = await http.post("/devices/link/preview", json={"link": "boxless://d/AAAA"})
            assert r.status_code == 422 and "link" in r.json()["error"]["message"]
            old = PendingDevice.create("Old", "linux", wall() - 3600)
            r = await http.post("/devices/link", json={"link": old.offer.link})
            assert r.status_code == 422 and "expired" in r.json()["error"]["message"]
            pending = PendingDevice.create("Tablet", "ios", wall())
            r = await http.post("/devices/link/preview", json={"link": pending.offer.link})
            assert r.json()["code"] == pending.offer.code and r.json()["name"] == "Tablet"
            async with alice.client.events() as events:
                r = await http.post("/devices/link", json={"link": pending.offer.link})
                assert r.status_code == 201, r.text
                kinds = []
                while (e := events.receive_nowait()) is not None:
                    kinds.append((e.type, getattr(e, "what", None)))
                    if kinds[-1] == ("devices", "linked"):
                        break
            assert ("devices", "sending") in kinds
            tablet = r.json()["device"]
            r = await http.post("/devices/link", json={"link": pending.offer.link})
            assert r.status_code == 422 and "used already" in r.json()["error"]["message"]
            r = await http.put(f"/devices/{tablet}", json={"name": "Kitchen tablet"})
            names = {d["name"] for d in r.json()["devices"]}
            assert "Kitchen tablet" in names and len(names) == 2
            r = await http.delete(f"/devices/{me['device']}")
            assert r.status_code == 409
            r = await http.delete(f"/devices/{tablet}")
            assert r.status_code == 200 and len(r.json()["devices"]) == 1
            r = await http.delete(f"/devices/{tablet}")
            assert r.status_code == 409
            r = await http.delete("/devices/xyz")
            assert r.status_code == 422


@pytest.mark.trio
async def test_a_group_sees_one_member_with_two_devices(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    from tests.unit.test_groups_memnet import make_group, texts

    async with memnet(homes, ("alice", "bob", "carol")) as (net, (alice, bob, carol)):
        gid = await make_group(alice, [bob, carol], "Trip")
        await bob.client.groups.send_text(gid, "before the link")
        await wait_for(alice, lambda: "before the link" in texts(alice, gid))
        a2, _ = await _link_second(net, alice, homes / "alice2")
        async with _running(a2.client):
            assert "before the link" in texts(a2, gid)  # the group and its history came
            for i in range(20):
                await bob.client.groups.send_text(gid, f"bob {i}")
            await wait_for(alice, lambda: "bob 19" in texts(alice, gid))
            await wait_for(a2, lambda: "bob 19" in texts(a2, gid))
            ours = [t for t in texts(alice, gid) if t.startswith("bob ")]
            assert ours == [t for t in texts(a2, gid) if t.startswith("bob ")]
            assert ours == [f"bob {i}" for i in range(20)]
            # the second device writes: one member, Alice, for Bob and Carol
            await a2.client.groups.send_text(gid, "from the phone")
            await wait_for(bob, lambda: "from the phone" in texts(bob, gid))
            await wait_for(carol, lambda: "from the phone" in texts(carol, gid))
            assert bob.client.groups.state(gid).members == carol.client.groups.state(gid).members
            await alice.client.groups.send_text(gid, "from the laptop")
            await wait_for(a2, lambda: "from the laptop" in texts(a2, gid))
            await wait_for(alice, lambda: "from the phone" in texts(alice, gid))
            # revoked (it does not hear of it): the group's next messages pass it by
            net.add_fault(Fault(receiver="alice2", content_topic=bundle_topic(alice.me), loss=1.0))
            await alice.client.devices.revoke(a2.client.my_device_key)
            for other in (bob, carol):
                other.client.devices._asked.clear()  # type: ignore[attr-defined]
                await other.client.devices.refresh(alice.me)
            await bob.client.groups.send_text(gid, "bob after the revocation")
            await alice.client.groups.send_text(gid, "alice after the revocation")
            await wait_for(carol, lambda: "bob after the revocation" in texts(carol, gid))
            await wait_for(bob, lambda: "alice after the revocation" in texts(bob, gid))
            await trio.sleep(60)
            assert "bob after the revocation" not in texts(a2, gid)
            assert "alice after the revocation" not in texts(a2, gid)


@pytest.mark.trio
async def test_a_device_no_roster_lists_cannot_write_as_us(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Mallory (Bob's contact) seals a message that claims to be Alice on Alice and
    Bob's topic, from Mallory's own device: Bob does not take it as Alice's (the
    device is not hers), Alice does not take it as her own copy, nothing changes."""
    from boxless.chat import envelope as env
    from boxless.crypto.sealed import seal
    from boxless.waku.message import WakuMessage

    async with memnet(homes, ("alice", "bob", "mallory")) as (_net, (alice, bob, mallory)):
        await befriend(alice, bob)
        await befriend(mallory, alice)
        topic = alice.contact(bob).conversation_topic  # type: ignore[union-attr]
        forged = env.encode(env.new_message(env.Text("I am Alice"), lamport=5, sent_at_ms=1))
        for target in (alice, bob):
            bundle = target.account.device.bundle(wall())
            olm = mallory.client.sessions.encrypt(bundle, forged)
            payload = seal(
                bundle.sealing_key,
                sender_identity_key=alice.me,
                sender_device_key=mallory.client.my_device_key,
                ciphertext=olm,
            )
            await mallory.transport.send(
                WakuMessage(payload=payload, content_topic=topic, timestamp=int(wall() * 1e9))
            )
        await trio.sleep(120)
        assert "I am Alice" not in alice.texts(bob)
        assert "I am Alice" not in bob.texts(alice)
        assert bob.contact(alice).device_key == alice.client.my_device_key  # type: ignore[union-attr]


@pytest.mark.trio
async def test_a_restored_device_joins_the_roster(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    from boxless.client import devices_store as dstore
    from boxless.identity.account import create_account
    from boxless.identity.profile import Profile
    from tests.memnet_fixtures import FAST_KDF as KDF

    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        a2, _ = await _link_second(net, alice, homes / "alice2")
        a2.account.close()
        # Alice restores her account on a third machine (same identity, new device),
        # with the roster her backup held
        account = create_account(
            homes / "alice3", PASS, alice.account.identity, Profile(display_name="Alice", updated_at=int(wall())), wall(),
            kdf=KDF,
        )  # fmt: skip
        restored = Client(account, net.transport("alice3"), clock=wall, pow_difficulty=POW)
        with restored.db.transaction() as cur:
            dstore.put_roster(cur, alice.client.devices.roster(), int(wall() * 1000))
        async with trio.open_nursery() as nursery:
            await nursery.start(_run_until_revoked, restored)
            key = restored.my_device_key
            await wait_for(alice, lambda: alice.client.devices.roster().active(key) is not None)
            assert len(alice.client.devices.roster().devices) == 3
            bob.client.devices._asked.clear()  # type: ignore[attr-defined]
            await bob.client.devices.refresh(alice.me)
            with bob.client.db.transaction() as cur:
                assert bob.client.devices.certified(cur, alice.me, key)
            nursery.cancel_scope.cancel()
        account.close()


@pytest.mark.trio
async def test_a_device_restored_without_a_roster_is_adopted_by_its_bundle(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Alice never linked (no roster) and restores from the phrase: Bob's roster read
    of her bundle topic keeps the new device's bundle (the light node's history is
    deduplicated: the bundle book's own read after it would find nothing), so her
    message from it moves the contact there; a bundle certified by another
    identity on her topic is not taken."""
    from boxless.identity.account import create_account
    from boxless.identity.keys import Identity, encode_published_bundle
    from boxless.identity.profile import Profile
    from boxless.identity.seed import generate_phrase
    from boxless.waku.message import WakuMessage

    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        # Mallory publishes her own device's bundle on Alice's bundle topic
        mallory = create_account(
            homes / "mallory", PASS, Identity.from_phrase(generate_phrase()), Profile(display_name="Alice", updated_at=int(wall())), wall(),
            kdf=FAST_KDF,
        )  # fmt: skip
        await net.transport("mallory").send(
            WakuMessage(
                payload=encode_published_bundle(mallory.device.bundle(wall())),
                content_topic=bundle_topic(alice.me),
                timestamp=int(wall() * 1e9),
            )
        )
        forged = mallory.device.certificate.device_curve25519
        bob.client.devices._asked.clear()  # type: ignore[attr-defined]
        assert not await bob.client.devices.learn(alice.me, forged)
        held = bob.client.bundles.stored(alice.me)
        assert held is None or held.curve25519 != forged
        mallory.close()
        account = create_account(
            homes / "alice3", PASS, alice.account.identity, Profile(display_name="Alice", updated_at=int(wall())), wall(),
            kdf=FAST_KDF,
        )  # fmt: skip
        restored = Client(account, net.transport("alice3"), clock=wall, pow_difficulty=POW)
        async with trio.open_nursery() as nursery:
            await nursery.start(restored.run)
            with trio.fail_after(WAIT):
                await restored.bundles.published.wait()
            key = restored.my_device_key
            bob.client.devices._asked.clear()  # type: ignore[attr-defined]
            assert not await bob.client.devices.learn(alice.me, key)  # no roster lists it
            held = bob.client.bundles.stored(alice.me)
            assert held is not None and held.curve25519 == key
            await restored.add_contact(bob.link(), intro="Alice, restored")
            await wait_for(bob, lambda: bob.contact(alice).device_key == key)  # type: ignore[union-attr]
            assert bob.state(alice) == "accepted"
            nursery.cancel_scope.cancel()
        account.close()


@pytest.mark.trio
async def test_a_member_who_is_not_our_contact_reads_our_new_device(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Carol is in Bob's group with Alice but is not Alice's contact: the first key
    share from Alice's new device waits in Carol's inbox until Carol has read Alice's
    roster (it was dropped before), then is applied and the message reads."""
    from tests.unit.test_groups_memnet import make_group, texts

    async with memnet(homes, ("alice", "bob", "carol")) as (net, (alice, bob, carol)):
        gid = await make_group(bob, [alice, carol], "Trip")
        with carol.client.db.transaction() as cur:
            assert db.get_contact(cur, alice.me) is None
        a2, _ = await _link_second(net, alice, homes / "alice2")
        async with _running(a2.client):
            await a2.client.groups.send_text(gid, "from the phone")
            await wait_for(bob, lambda: "from the phone" in texts(bob, gid))
            await wait_for(carol, lambda: "from the phone" in texts(carol, gid))


@pytest.mark.trio
async def test_a_bundle_lookup_does_not_eat_the_device_list(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The light node returns a stored message to one read only: Bob's bundle lookup
    of Alice's topic (right after she linked A2) reads her new roster too, and hands
    it to the device book, so A2 is certified even though the roster read finds
    nothing new."""
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        a2, _ = await _link_second(net, alice, homes / "alice2")
        key = a2.client.my_device_key
        bob.client.bundles._asked.clear()  # type: ignore[attr-defined]
        await bob.client.bundles.refresh(alice.me)
        bob.client.devices._asked.clear()  # type: ignore[attr-defined]
        assert await bob.client.devices.learn(alice.me, key)
        a2.account.close()


@pytest.mark.trio
async def test_forged_shares_claiming_a_member_are_dropped_once_its_roster_is_read(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Mallory seals group key shares to Carol that claim to be Alice (a member, not
    Carol's contact) from Mallory's own device: they wait (bounded) only until Carol
    reads Alice's roster, which does not list that device; then they are dropped and
    Alice's real new device is still read."""
    from boxless.client import group_store as gs
    from tests.unit.test_groups_memnet import make_group, texts

    async with memnet(homes, ("alice", "bob", "carol", "mallory")) as (net, people):
        alice, bob, carol, mallory = people
        gid = await make_group(bob, [alice, carol], "Trip")
        a2, _ = await _link_second(net, alice, homes / "alice2")
        await _forge_key_shares(mallory, carol, claimed=alice)
        await trio.sleep(5)
        limit = carol.client.groups.core.timings.limits.inbox_per_sender
        with carol.client.db.transaction() as cur:
            assert 0 < gs.inbox_counts(cur, alice.me)[0] <= limit
        await trio.sleep(120)  # Carol's roster watch reads Alice's roster
        with carol.client.db.transaction() as cur:
            assert gs.inbox_counts(cur, alice.me)[0] == 0
        async with _running(a2.client):
            await a2.client.groups.send_text(gid, "from the phone")
            await wait_for(carol, lambda: "from the phone" in texts(carol, gid))


@pytest.mark.trio
async def test_a_device_certified_before_its_bundle_is_stored_gets_the_next_message(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The process test's A3: Bob reads Alice's roster (it certifies the new device)
    before the device's bundle reached the store, so he reads its first message but
    holds no bundle to fan out to; his next message reads the topic again and
    reaches it (before: A1 only, until the roster went stale 5 minutes later)."""
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        a2, _ = await _link_second(net, alice, homes / "alice2")
        key = a2.client.my_device_key
        bob.client.devices._asked.clear()  # type: ignore[attr-defined]
        assert await bob.client.devices.learn(alice.me, key)  # no bundle of A2 yet
        assert key not in [b.curve25519 for b in bob.client.devices.others(alice.me, b"")]
        async with _running(a2.client):
            with trio.fail_after(WAIT):
                await a2.client.bundles.published.wait()
            await bob.client.send_text(alice.me, "hello A2")
            await wait_for(alice, lambda: "hello A2" in alice.texts(bob))
            await wait_for(a2, lambda: "hello A2" in a2.texts(bob))
        a2.transport.close()
        a2.account.close()
