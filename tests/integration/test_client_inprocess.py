"""Alice and Bob, two light clients, two service nodes, all in this process."""

from __future__ import annotations

from pathlib import Path

import trio

from boxless.chat.requests import ContactEvent
from boxless.client.core import Client
from tests.chat_fixtures import make_account, running_client, start_service


async def _wait_state(client: Client, message_id: bytes, state: str, timeout: float = 30) -> None:
    with trio.fail_after(timeout):
        async with client.events() as events:
            while True:
                with client.db.transaction() as cur:
                    from boxless.client import store

                    msg = store.get_message(cur, message_id)
                if msg is not None and msg.state == state:
                    return
                await events.receive()


async def _wait_for(client: Client, pred, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(timeout):
        async with client.events() as events:
            while not pred():
                await events.receive()


async def test_alice_and_bob_become_contacts_and_chat(tmp_path: Path) -> None:
    for name in ("alice", "bob"):
        make_account(tmp_path / name, name.title()).close()
    async with trio.open_nursery() as nursery:
        s1 = await start_service(nursery, tmp_path, "s1")
        s2 = await start_service(nursery, tmp_path, "s2", peers=(s1.addrs()[0],))
        addrs = [s1.addrs()[0], s2.addrs()[0]]
        async with (
            running_client(tmp_path / "alice", addrs) as alice,
            running_client(tmp_path / "bob", [addrs[1], addrs[0]]) as bob,
        ):
            bob_link = bob.account.contact_code(
                trio.current_time() and __import__("time").time()
            ).link
            await alice.add_contact(bob_link, intro="hi, it's Alice")
            await _wait_for(bob, lambda: any(c.state == "request_received" for c in bob.contacts()))
            [req] = bob.contacts()
            assert req.display_name == "Alice" and req.intro == "hi, it's Alice"
            await bob.respond(req.identity_key, ContactEvent.ACCEPT)
            await _wait_for(alice, lambda: alice.contacts()[0].state == "accepted")
            bob_key = alice.contacts()[0].identity_key
            mid = await alice.send_text(bob_key, "hello Bob")
            await _wait_state(alice, mid, "delivered")
            [got] = bob.messages(req.identity_key)
            assert got.text == "hello Bob" and not got.outgoing
            await bob.mark_read(req.identity_key)
            await _wait_state(alice, mid, "read")
        nursery.cancel_scope.cancel()


async def test_verified_contact_whose_device_changes_is_flagged(tmp_path: Path) -> None:
    import time as _time

    from boxless.identity.contact_code import make_contact_code
    from boxless.identity.keys import Device

    for name in ("alice", "bob"):
        make_account(tmp_path / name, name.title()).close()
    async with trio.open_nursery() as nursery:
        s1 = await start_service(nursery, tmp_path, "s1")
        addrs = [s1.addrs()[0]]
        async with (
            running_client(tmp_path / "alice", addrs) as alice,
            running_client(tmp_path / "bob", addrs) as bob,
        ):
            await alice.add_contact(bob.account.contact_code(_time.time()).link)
            bob_key = bob.me
            row = alice.confirm_verified(bob_key)
            assert row.verified_key == row.device_key
            # someone presents a link for Bob's identity with another device
            other = Device.create(bob.account.identity, _time.time())
            link = make_contact_code(bob.account.identity, other, "Bob", _time.time()).link
            async with alice.events() as events:
                await alice.add_contact(link)
                seen = []
                with trio.move_on_after(5):
                    while "verification_broken" not in seen:
                        seen.append((await events.receive()).type)
                assert "verification_broken" in seen, seen
            [c] = alice.contacts()
            assert c.verified_key is not None and c.verified_key != c.device_key
        nursery.cancel_scope.cancel()


async def test_a_new_name_reaches_contacts_only(tmp_path: Path) -> None:
    import time as _time

    for name in ("alice", "bob"):
        make_account(tmp_path / name, name.title()).close()
    async with trio.open_nursery() as nursery:
        s1 = await start_service(nursery, tmp_path, "s1")
        async with (
            running_client(tmp_path / "alice", [s1.addrs()[0]]) as alice,
            running_client(tmp_path / "bob", [s1.addrs()[0]]) as bob,
        ):
            await alice.add_contact(bob.account.contact_code(_time.time()).link)
            await _wait_for(bob, lambda: bool(bob.contacts()))
            await bob.respond(bob.contacts()[0].identity_key, ContactEvent.ACCEPT)
            await _wait_for(alice, lambda: alice.contacts()[0].state == "accepted")
            await alice.set_display_name("Alice Liddell")
            await _wait_for(bob, lambda: bob.contacts()[0].display_name == "Alice Liddell")
            assert alice.account.profile.display_name == "Alice Liddell"
        nursery.cancel_scope.cancel()
