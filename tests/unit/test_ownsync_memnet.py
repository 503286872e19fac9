"""Own-device sync over the in-memory network: chat flags, reactions and group read
positions follow Alice from A1 to A2 and back; a contact sending the same body is
ignored and counted; two devices changing one setting at once converge."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from boxless.chat import envelope as env
from boxless.chat.ownsync import OwnSync, SyncEntry
from boxless.chat.requests import ContactEvent
from boxless.chat.topics import contact_topic
from boxless.client import group_action_store as gas
from boxless.client import group_store as gs
from boxless.client.memory_transport import Fault
from boxless.client.ownsync_core import setting_key
from tests.memnet_fixtures import WAIT, Person, homes, memnet, wait_for
from tests.unit.test_devices_memnet import _forge_key_shares, _link_second, _running
from tests.unit.test_groups_memnet import make_group, texts

__all__ = ["homes"]  # a fixture


async def _until(pred: Callable[[], bool]) -> None:
    """A refusal emits no event: poll (virtual time, MockClock)."""
    with trio.fail_after(WAIT):
        while not pred():  # noqa: ASYNC110 (no event to wait on; virtual time)
            await trio.sleep(0.1)


def _flags(p: Person, chat: str) -> tuple[bool, bool, bool]:
    s = p.client.chat_settings.get(chat)
    return s.pinned, s.muted, s.marked_unread


def _notes(p: Person, other: Person) -> tuple[str, tuple[str, ...], bool]:
    notes = p.client.profiles.contact(other.me)[2]
    return notes.alias, notes.tags, notes.starred


def _post(p: Person, post_id: bytes) -> Any:
    return next((v for v in p.client.moments.feed() if v.post.post_id == post_id), None)


def _group_unread(p: Person, gid: bytes) -> int:
    with p.client.db.transaction() as cur:
        return gs.meta(cur, gid).unread


def _group_reactions(p: Person, mid: str) -> list[tuple[bytes, str]]:
    with p.client.db.transaction() as cur:
        return gas.reactions_of(cur, [mid]).get(mid, [])


@pytest.mark.trio
async def test_settings_reactions_and_group_reads_follow_our_other_device(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob", "carol")) as (net, (alice, bob, carol)):
        gid = await make_group(alice, [bob, carol], "Trip")  # befriends Bob and Carol
        bob_chat, group_chat = f"contact:{bob.me.hex()}", f"group:{gid.hex()}"
        mid = await bob.client.send_text(alice.me, "hello Alice")
        await wait_for(alice, lambda: "hello Alice" in alice.texts(bob))
        a2, _ = await _link_second(net, alice, homes / "alice2")
        async with _running(a2.client):
            # chat flags, both ways
            alice.client.chat_settings.update(bob_chat, pinned=True)
            await wait_for(a2, lambda: _flags(a2, bob_chat) == (True, False, False))
            a2.client.chat_settings.update(bob_chat, muted=True, marked_unread=True)
            await wait_for(alice, lambda: _flags(alice, bob_chat) == (True, True, True))
            a2.client.chat_settings.update(group_chat, muted=True)  # a group's own flag
            await wait_for(alice, lambda: _flags(alice, group_chat)[1])
            # a 1:1 reaction made on A1 shows on A2 as ours
            await alice.client.react(mid, "👍")
            await wait_for(a2, lambda: a2.message(mid).reactions == {"👍": ["me"]})
            await alice.client.react(mid, "👍", remove=True)
            await wait_for(a2, lambda: a2.message(mid).reactions == {})
            # group: read on A2 clears unread on A1 (a read position, not a receipt)
            for i in range(3):
                await bob.client.groups.send_text(gid, f"bob {i}")
            await wait_for(alice, lambda: "bob 2" in texts(alice, gid))
            await wait_for(a2, lambda: "bob 2" in texts(a2, gid))
            assert _group_unread(alice, gid) >= 3 and _group_unread(a2, gid) >= 3
            newest = max(seq for seq, _ in a2.client.groups.messages(gid, 50))
            await a2.client.groups.mark_read(gid, newest)
            await wait_for(alice, lambda: _group_unread(alice, gid) == 0)
            # a group reaction made on A2 shows on A1 as Alice's
            (target,) = [
                m.message_id for _, m in a2.client.groups.messages(gid, 50) if m.text == "bob 1"
            ]
            await a2.client.groups.react(gid, target, "🎉")
            await wait_for(alice, lambda: (alice.me, "🎉") in _group_reactions(alice, target))
            # favourites: saved on A1, on A2; removed on A2, gone on A1
            fav = alice.client.favourites.add(bob_chat, mid.hex())
            await wait_for(
                a2, lambda: [f.message_id for f in a2.client.favourites.list()] == [mid.hex()]
            )
            (theirs,) = a2.client.favourites.list()
            a2.client.favourites.remove(theirs.id)
            await wait_for(alice, lambda: alice.client.favourites.list() == [])
            assert fav.text == theirs.text == "hello Alice"
            # what Alice keeps about a contact, and blocks
            alice.client.profiles.set_notes(
                bob.me, alias="Bobby", tags=["work", "tennis"], note="owes me 5 €", starred=True
            )
            await wait_for(a2, lambda: _notes(a2, bob) == ("Bobby", ("tennis", "work"), True))
            assert a2.client.profiles.contact(bob.me)[2].note == "owes me 5 €"
            await a2.client.contact_book.respond(carol.me, ContactEvent.BLOCK)
            await wait_for(alice, lambda: alice.state(carol) == "blocked")
            # Moments: Bob posts after the link (both devices get the key); a like and a
            # comment made on A1 show on A2 as Alice's
            bob.client.devices._asked.clear()  # type: ignore[attr-defined]
            await bob.client.devices.refresh(alice.me)
            post_id = await bob.client.moments.post("sunset")
            await wait_for(a2, lambda: _post(a2, post_id) is not None)
            await wait_for(alice, lambda: _post(alice, post_id) is not None)
            await alice.client.moments.like(post_id)
            comment = await alice.client.moments.comment(post_id, "wow")
            await wait_for(a2, lambda: alice.me in _post(a2, post_id).likes)  # type: ignore[union-attr]
            await wait_for(a2, lambda: [c.act_id for c in _post(a2, post_id).comments] == [comment])  # type: ignore[union-attr]
            assert alice.client.own_sync.refused == 0 and a2.client.own_sync.refused == 0
        a2.transport.close()
        a2.account.close()


@pytest.mark.trio
async def test_a_contact_sending_our_sync_is_ignored_and_counted(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    from tests.memnet_fixtures import befriend

    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        bob_chat = f"contact:{bob.me.hex()}"
        alice.client.chat_settings.update(bob_chat, pinned=True)
        forged = OwnSync(
            (
                SyncEntry(setting_key(bob_chat, "pinned"), "false", 2**62),
                SyncEntry(setting_key(bob_chat, "muted"), "true", 2**62),
            )
        )
        plaintext = env.encode(env.new_message(forged, lamport=0, sent_at_ms=1))
        contact = bob.contact(alice)
        assert contact is not None
        # on our conversation topic, and on Alice's own contact topic (where her
        # devices' syncs travel)
        await bob.client.channel.send_contact(contact, contact.conversation_topic, plaintext)
        await _until(lambda: alice.client.own_sync.refused == 1)
        await bob.client.channel.send_contact(contact, contact_topic(alice.me), plaintext)
        await _until(lambda: alice.client.own_sync.refused == 2)
        assert _flags(alice, bob_chat) == (True, False, False)
        # and it did not stop Bob's ordinary messages
        await bob.client.send_text(alice.me, "still friends")
        await wait_for(alice, lambda: "still friends" in alice.texts(bob))
        assert alice.client.own_sync.refused == 2


@pytest.mark.trio
async def test_two_devices_changing_one_setting_at_once_converge(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    from tests.memnet_fixtures import befriend

    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        bob_chat = f"contact:{bob.me.hex()}"
        a2, _ = await _link_second(net, alice, homes / "alice2")
        async with _running(a2.client):
            alice.client.chat_settings.update(bob_chat, pinned=True)
            await wait_for(a2, lambda: _flags(a2, bob_chat)[0])
            # both change the pin while they cannot hear each other (same instant):
            # A1 unpins; A2 unpins, re-pins and marks unread
            cut = [net.add_fault(Fault(receiver=r, loss=1.0)) for r in ("alice", "alice2")]
            alice.client.chat_settings.update(bob_chat, pinned=False)
            a2.client.chat_settings.update(bob_chat, pinned=False)
            await trio.sleep(1)
            a2.client.chat_settings.update(bob_chat, pinned=True, marked_unread=True)
            await trio.sleep(5)
            assert not _flags(alice, bob_chat)[0] and _flags(a2, bob_chat)[0]
            for fault in cut:
                net.remove_fault(fault)
            # they hear each other again (the store kept what they missed)
            for p in (alice, a2):
                await p.client.catch_up()
            await wait_for(alice, lambda: _flags(alice, bob_chat) == (True, False, True))
            await trio.sleep(30)
            assert _flags(alice, bob_chat) == _flags(a2, bob_chat) == (True, False, True)
            # a change made while this device cannot send goes once it can (retried)
            alice.transport.set_online(False)
            alice.client.chat_settings.update(bob_chat, muted=True)
            await trio.sleep(5)
            alice.transport.set_online(True)
            await wait_for(a2, lambda: _flags(a2, bob_chat)[1])
        a2.transport.close()
        a2.account.close()


@pytest.mark.trio
async def test_a_stranger_claiming_a_member_cannot_crowd_out_its_new_device(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Mallory seals 40 group key shares to Carol claiming to be Alice (a member, not
    Carol's contact) from Mallory's own device, before Carol read Alice's roster.
    Alice's real new device A2 then writes: its first key share still gets a row
    in Carol's group inbox (Mallory's fill her device's share, not Alice's), and
    Carol reads A2's message once the roster is read. Before, the 32 rows of the
    claimed identity were Mallory's and A2's share was dropped."""
    async with memnet(homes, ("alice", "bob", "carol", "mallory")) as (net, people):
        alice, bob, carol, mallory = people
        gid = await make_group(bob, [alice, carol], "Trip")
        a2, _ = await _link_second(net, alice, homes / "alice2")
        await _forge_key_shares(mallory, carol, claimed=alice)
        await trio.sleep(1)
        limit = carol.client.groups.core.timings.limits.inbox_per_sender
        a2_key = a2.client.my_device_key
        with carol.client.db.transaction() as cur:
            assert gs.inbox_counts(cur, alice.me)[0] == limit  # Mallory's device: full
            assert gs.inbox_counts_of_device(cur, alice.me, a2_key)[0] == 0
        async with _running(a2.client):
            await a2.client.groups.send_text(gid, "from the phone")
            await trio.sleep(1)  # well before Carol's roster watch (60 s)
            with carol.client.db.transaction() as cur:
                assert gs.inbox_counts_of_device(cur, alice.me, a2_key)[0] >= 1
            await wait_for(carol, lambda: "from the phone" in texts(carol, gid))
            with carol.client.db.transaction() as cur:
                assert gs.inbox_counts(cur, alice.me)[0] == 0  # Mallory's dropped
        a2.transport.close()
        a2.account.close()
