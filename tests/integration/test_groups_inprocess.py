"""Group chats: three light clients on two in-process service nodes.

Alice creates a group and invites Bob and Carol (her contacts, not each
other's); all three exchange messages; Alice removes Carol, and what Alice and
Bob send afterwards never reaches Carol's messages (her device lacks the
rotated Megolm keys: the group messages wait undecryptable in her store).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import trio

from boxless.chat.requests import ContactEvent
from boxless.client import group_store as gs
from boxless.client.core import Client
from boxless.client.groups import NotAMember
from boxless.crypto.megolm import UnknownGroupSession, decode_group_message
from tests.chat_fixtures import make_account, running_client, start_service


async def _wait_for(client: Client, pred: Callable[[], bool], timeout: float = 60) -> None:
    with trio.fail_after(timeout):
        async with client.events() as events:
            while not pred():
                await events.receive()


async def _befriend(a: Client, b: Client) -> None:
    await a.add_contact(b.account.contact_code(time.time()).link)
    await _wait_for(b, lambda: any(c.identity_key == a.me for c in b.contacts()))
    await b.respond(a.me, ContactEvent.ACCEPT)
    await _wait_for(
        a, lambda: any(c.identity_key == b.me and c.state == "accepted" for c in a.contacts())
    )


def _texts(client: Client, gid: bytes) -> list[str]:
    return [m.text for _, m in client.groups.messages(gid, 500) if m.kind == "text"]


def _members(client: Client, gid: bytes) -> set[bytes]:
    try:
        return set(client.groups.state(gid).members)
    except NotAMember:  # not joined yet
        return set()


async def test_three_members_chat_and_a_removed_member_reads_nothing_after(
    tmp_path: Path,
) -> None:
    for name in ("alice", "bob", "carol"):
        make_account(tmp_path / name, name.title()).close()
    async with trio.open_nursery() as nursery:
        s1 = await start_service(nursery, tmp_path, "s1")
        s2 = await start_service(nursery, tmp_path, "s2", peers=(s1.addrs()[0],))
        a1, a2 = s1.addrs()[0], s2.addrs()[0]
        async with (
            running_client(tmp_path / "alice", [a1, a2]) as alice,
            running_client(tmp_path / "bob", [a2, a1]) as bob,
            running_client(tmp_path / "carol", [a1, a2]) as carol,
        ):
            await _befriend(alice, bob)
            await _befriend(alice, carol)

            state = await alice.groups.create("Book club")
            gid = state.group_id
            await alice.groups.invite(gid, bob.me)
            await alice.groups.invite(gid, carol.me)
            everyone = {alice.me, bob.me, carol.me}
            for c in (bob, carol):
                await _wait_for(c, lambda c=c: _members(c, gid) == everyone)  # type: ignore[misc]
            assert bob.groups.state(gid).name == "Book club"
            assert bob.groups.state(gid).creator == alice.me

            await alice.groups.send_text(gid, "hello from Alice")
            await bob.groups.send_text(gid, "hi, Bob here")
            await carol.groups.send_text(gid, "Carol says hi")
            want = {"hello from Alice", "hi, Bob here", "Carol says hi"}
            for c in (alice, bob, carol):
                await _wait_for(c, lambda c=c: set(_texts(c, gid)) == want)  # type: ignore[misc]

            await alice.groups.remove(gid, carol.me)
            await _wait_for(bob, lambda: _members(bob, gid) == {alice.me, bob.me})
            await _wait_for(carol, lambda: _members(carol, gid) == {alice.me, bob.me})
            await alice.groups.send_text(gid, "after Carol left (Alice)")
            await bob.groups.send_text(gid, "after Carol left (Bob)")
            after = {"after Carol left (Alice)", "after Carol left (Bob)"}
            await _wait_for(bob, lambda: after <= set(_texts(bob, gid)))
            await _wait_for(alice, lambda: after <= set(_texts(alice, gid)))
            # Carol's device got both Waku messages but holds no key for them.
            with trio.move_on_after(2):
                await _wait_for(carol, lambda: False)
            assert not after & set(_texts(carol, gid))
            with carol.db.transaction() as cur:
                pending = gs.take_pending(cur, gid)
            assert len(pending) >= 2
            for _, payload in pending:
                try:
                    carol.groups.sessions.decrypt(gid, None, decode_group_message(payload))
                except UnknownGroupSession:
                    continue
                raise AssertionError("a removed member decrypted a later group message")
        nursery.cancel_scope.cancel()
