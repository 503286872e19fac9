"""Broadcast lists: Alice and three contacts, real light clients on an in-process node.

Each recipient gets the broadcast as an ordinary message in their 1:1 chat
with Alice, and nothing in their database names the other recipients.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
import trio

from boxless.chat.requests import ContactEvent
from boxless.client.broadcast import MAX_MEMBERS, UnknownBroadcastList
from boxless.client.core import Client
from boxless.errors import UsageError
from tests.chat_fixtures import befriend, make_account, running_client, start_service, wait_for


def _db_mentions(client: Client, key: bytes) -> list[str]:
    """Every table.column of ``client``'s database holding ``key`` (bytes or hex)."""
    found = []
    with client.db.transaction() as cur:
        cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = [r[0] for r in cur.fetchall()]
        for table in tables:
            cur.execute(f'SELECT * FROM "{table}"')  # noqa: S608  # names from sqlite_master
            columns = [d[0] for d in cur.description]
            for row in cur.fetchall():
                for column, value in zip(columns, row, strict=True):
                    if (isinstance(value, bytes) and key in value) or (
                        isinstance(value, str) and key.hex() in value
                    ):
                        found.append(f"{table}.{column}")
    return found


async def test_a_broadcast_reaches_each_recipient_alone_in_their_1to1_chat(
    tmp_path: Path,
) -> None:
    names = ("alice", "bob", "carol", "dave")
    for name in names:
        make_account(tmp_path / name, name.title()).close()
    async with trio.open_nursery() as nursery:
        s1 = await start_service(nursery, tmp_path, "s1")
        addrs = [s1.addrs()[0]]
        async with (
            running_client(tmp_path / "alice", addrs) as alice,
            running_client(tmp_path / "bob", addrs) as bob,
            running_client(tmp_path / "carol", addrs) as carol,
            running_client(tmp_path / "dave", addrs) as dave,
        ):
            recipients = (bob, carol, dave)
            for r in recipients:
                await befriend(alice, r)
            family = alice.broadcasts.create("Family", [bob.me, carol.me, dave.me])
            assert family.members == (bob.me, carol.me, dave.me)
            sent = await alice.broadcasts.send(family.list_id, "Dinner at 8")
            assert sent.recipients == (bob.me, carol.me, dave.me)
            assert len(set(sent.message_ids)) == 3

            for r, mid in zip(recipients, sent.message_ids, strict=True):
                [mine] = alice.messages(r.me)
                assert mine.message_id == mid and mine.outgoing and mine.text == "Dinner at 8"
                await wait_for(r, lambda r=r: bool(r.messages(alice.me)))  # type: ignore[misc]
                [got] = r.messages(alice.me)
                assert got.message_id == mid and not got.outgoing and got.text == "Dinner at 8"
                assert [c.identity_key for c in r.contacts()] == [alice.me]

            def counts() -> tuple[int, int]:
                [b] = alice.broadcasts.sent(family.list_id)
                return b.delivered, b.read

            await wait_for(alice, lambda: counts() == (3, 0))
            await carol.mark_read(alice.me)
            await wait_for(alice, lambda: counts() == (3, 1))

            # no recipient's database names another recipient
            for r in recipients:
                for other in recipients:
                    if other is not r:
                        assert _db_mentions(r, other.me) == [], (r.me.hex(), other.me.hex())
            # ...while the check does see what is there (Alice's key, in Bob's contacts)
            assert "client_contacts.identity_key" in _db_mentions(bob, alice.me)

            # a member blocked since is skipped at send time, and said so by the result
            await alice.respond(dave.me, ContactEvent.BLOCK)
            again = await alice.broadcasts.send(family.list_id, "Dave won't see this")
            assert again.recipients == (bob.me, carol.me)
        nursery.cancel_scope.cancel()


async def test_lists_take_only_accepted_contacts_and_at_most_200(tmp_path: Path) -> None:
    make_account(tmp_path / "alice", "Alice").close()
    pending = make_account(tmp_path / "erin", "Erin")
    erin_link = pending.contact_code(time.time()).link
    pending.close()
    async with trio.open_nursery() as nursery:
        s1 = await start_service(nursery, tmp_path, "s1")
        async with running_client(tmp_path / "alice", [s1.addrs()[0]]) as alice:
            erin = await alice.add_contact(erin_link)  # request sent, never accepted
            with pytest.raises(UsageError, match="Erin is not an accepted contact"):
                alice.broadcasts.create("Friends", [erin.identity_key])
            stranger = secrets.token_bytes(32)
            with pytest.raises(UsageError, match="is not a contact.*add them as contacts"):
                alice.broadcasts.create("Friends", [stranger])
            too_many = [secrets.token_bytes(32) for _ in range(MAX_MEMBERS + 1)]
            with pytest.raises(UsageError, match="at most 200 contacts.*split"):
                alice.broadcasts.create("Everyone", too_many)
            with pytest.raises(UsageError, match="at least one member"):
                alice.broadcasts.create("Nobody", [])
            assert alice.broadcasts.lists() == []
            with pytest.raises(UnknownBroadcastList):
                await alice.broadcasts.send(secrets.token_bytes(16), "hi")
        nursery.cancel_scope.cancel()
