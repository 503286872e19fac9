"""A receive batch does per-batch what it used to do per message (issue 9, catch-up):
the Lamport clock moved once per contact, the device check read once per
(sender, device) -- with the same result as message by message, and nothing
half-applied when the batch rolls back."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from boxless.chat import envelope as env
from boxless.client import store as db
from boxless.client.transport import Incoming
from tests.memnet_fixtures import Person, befriend, homes, memnet

__all__ = ["homes"]  # a fixture


def lamport_of(person: Person, other: Person) -> int:
    contact = person.contact(other)
    assert contact is not None
    return contact.lamport


async def held_back(alice: Person, bob: Person, net: object, n: int) -> list[Incoming]:
    """``n`` texts from Alice that Bob, offline, has not received: the store's copies."""
    contact = bob.contact(alice)
    assert contact is not None
    bob.transport.set_online(False)
    before = len(net.stored(contact.conversation_topic))  # type: ignore[attr-defined]
    for i in range(n):
        await alice.client.send_text(bob.me, f"t{i}")
        await trio.sleep(0.01)
    await trio.sleep(1)
    stored = net.stored(contact.conversation_topic)[before:]  # type: ignore[attr-defined]
    assert len(stored) == n
    return list(stored)


def lamports_of(person: Person, other: Person) -> list[int]:
    with person.client.db.transaction() as cur:
        return [m.lamport for m in db.list_messages(cur, other.me, 1000)]


async def test_a_batch_moves_the_clock_once_to_what_single_messages_would(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Shuffled within the batch, the contact's clock ends at the highest Lamport
    (as message by message); a message Bob stamps for Alice inside the batch, after
    her k-th message, comes after every one of hers so far (it reads the batch's
    clock, not the one stored before the batch)."""
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        await trio.sleep(5)
        stored = await held_back(alice, bob, net, 6)
        before = lamport_of(bob, alice)
        stamped: list[tuple[int, int]] = []  # (Alice's lamport, Bob's stamp after it)

        def stamp_after(cur: db.Cursor, sender: bytes, msg: env.ChatMessage) -> None:
            if sender == alice.me and isinstance(msg.body, env.Text):
                contact = db.get_contact(cur, sender)
                assert contact is not None
                ours = bob.client.conversations._new_message(cur, contact, env.Typing(True))
                stamped.append((msg.lamport, ours.lamport))

        bob.client.channel.handlers.accepted.append(stamp_after)  # after Lamport's own hook
        order = [stored[i] for i in (1, 0, 3, 2, 5, 4)]
        await bob.client.channel.receive_batch(order)
        bob.client.channel.handlers.accepted.remove(stamp_after)
        theirs = sorted(lamports_of(bob, alice))
        assert len(theirs) == 6 and theirs[0] > before
        seen = 0
        for lamport, ours in stamped:
            seen = max(seen, lamport)
            assert ours > seen  # Lamport order: our stamp follows what we had seen
        # our stamps ticked the clock too: it ends past both, as one message at a time would
        assert lamport_of(bob, alice) == max(theirs[-1], stamped[-1][1])
        # a later batch of the same messages changes nothing
        await bob.client.channel.receive_batch(stored)
        assert lamport_of(bob, alice) == max(theirs[-1], stamped[-1][1])


async def test_a_batch_that_rolls_back_leaves_nothing_half_applied(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A feature's end-of-batch write fails: no text, no clock, no seen mark stays;
    Bob's next stamp is from the clock before the batch; the same messages then go
    through as if the failed batch never happened."""
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        await trio.sleep(5)
        stored = await held_back(alice, bob, net, 4)
        before, texts = lamport_of(bob, alice), bob.texts(alice)

        def fail(cur: db.Cursor) -> None:
            raise RuntimeError("disk full")

        bob.client.channel.handlers.batch_end.append(fail)
        with pytest.raises(RuntimeError):
            await bob.client.channel.receive_batch(stored)
        bob.client.channel.handlers.batch_end.remove(fail)
        assert bob.texts(alice) == texts
        assert lamport_of(bob, alice) == before
        with bob.client.db.transaction() as cur:
            assert db.seen_among(cur, [i.message_hash for i in stored]) == set()
        contact = bob.contact(alice)
        assert contact is not None
        # the rolled-back batch's clocks are forgotten, not written by a later stamp
        assert bob.client.conversations.new_message(contact, env.Typing(True)).lamport == (
            before + 1
        )
        await bob.client.channel.receive_batch(stored)
        assert bob.texts(alice) == texts + [f"t{i}" for i in range(4)]
        assert lamport_of(bob, alice) == max(lamports_of(bob, alice))


async def test_the_device_check_reads_a_roster_once_per_sender_per_batch(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Ten messages from Alice in one batch: one roster read (was ten); the next
    batch reads it again (the memo never outlives its transaction)."""
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        await trio.sleep(5)
        stored = await held_back(alice, bob, net, 12)
        reads: list[str] = []

        def trace(sql: str) -> None:
            if "FROM devices_rosters" in sql:
                reads.append(sql)

        bob.client.db.conn.set_trace_callback(trace)
        try:
            await bob.client.channel.receive_batch(stored[:10])
            first = len(reads)
            await bob.client.channel.receive_batch(stored[10:])
        finally:
            bob.client.db.conn.set_trace_callback(None)
        assert first == 1
        assert len(reads) == 2
        assert bob.texts(alice)[-12:] == [f"t{i}" for i in range(12)]
