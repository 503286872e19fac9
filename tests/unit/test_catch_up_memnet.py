"""Catch-up costs (issue 9): receipts held while catching up, one seen-read per batch."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import trio
import trio.testing

from boxless.client import events as ev
from boxless.client.transport import Incoming
from tests.memnet_fixtures import Person, befriend, homes, memnet, wait_for

__all__ = ["homes"]  # a fixture

T = TypeVar("T")


async def aenumerate(items: AsyncIterator[T]) -> AsyncIterator[tuple[int, T]]:
    i = 0
    async for item in items:
        yield i, item
        i += 1


def all_in(person: Person, ids: list[bytes], state: str) -> Callable[[], bool]:
    return lambda: all(person.message(m).state == state for m in ids)


async def test_a_catch_up_of_many_pages_is_acknowledged_by_one_receipt_per_sender(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Three pages from each of two contacts: two receipts (one per sender), not one
    per page per sender; all delivered; progress is published while it runs."""
    async with memnet(homes, ("alice", "bob", "carol")) as (net, (alice, bob, carol)):
        await befriend(alice, bob)
        await befriend(carol, bob)
        await trio.sleep(60)
        bob.transport.set_online(False)
        sent: dict[str, list[bytes]] = {"alice": [], "carol": []}
        for i in range(250):
            sent["alice"].append(await alice.client.send_text(bob.me, f"a{i}"))
            sent["carol"].append(await carol.client.send_text(bob.me, f"c{i}"))
            await trio.sleep(0.001)  # one timestamp each: the store keeps send order
        for person in (alice, carol):
            await wait_for(person, all_in(person, sent[person.name], "sent"))
        bob.transport.set_online(True, catch_up=False)
        before = bob.transport.attempts
        history = bob.transport.history

        async def over_the_network(
            topics: Sequence[str], since: int | None
        ) -> AsyncIterator[Incoming]:
            async for i, item in aenumerate(history(topics, since)):
                if i % 100 == 0:
                    await trio.sleep(0.05)  # a round trip to the store node per page
                yield item

        bob.transport.history = over_the_network  # type: ignore[method-assign,assignment]
        async with bob.client.events() as events:
            assert await bob.client.catch_up() == 500
            progress = []
            while True:
                try:
                    event = events.receive_nowait()
                except trio.WouldBlock:
                    break
                if isinstance(event, ev.CatchUpProgress):
                    progress.append((event.done, event.finished))
        assert progress == [(500, False), (500, True)]
        for person in (alice, carol):
            await wait_for(person, all_in(person, sent[person.name], "delivered"))
        assert bob.transport.attempts - before == 2
        assert bob.texts(alice) == [f"a{i}" for i in range(250)]


async def test_a_message_twice_in_one_batch_is_applied_once(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A store (or a relay) that repeats a message inside one page: the batch reads
    the seen marks once, so the copy must be caught by the batch's own marks."""
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        contact = bob.contact(alice)
        assert contact is not None
        await trio.sleep(5)
        bob.transport.set_online(False)
        before = len(net.stored(contact.conversation_topic))
        await alice.client.send_text(bob.me, "once")
        await trio.sleep(0.01)
        await alice.client.send_text(bob.me, "twice?")
        await trio.sleep(1)
        stored = net.stored(contact.conversation_topic)[before:]
        assert len(stored) == 2
        await bob.client.channel.receive_batch([stored[0], stored[1], stored[1], stored[0]])
        assert bob.texts(alice) == ["once", "twice?"]
        with bob.client.db.transaction() as cur:
            cur.execute("SELECT lamport FROM client_contacts WHERE identity_key = ?", (alice.me,))
            lamport = cur.fetchone()[0]
        await bob.client.channel.receive_batch(stored)  # a later batch: processed before
        assert bob.texts(alice) == ["once", "twice?"]
        assert bob.contact(alice).lamport == lamport  # type: ignore[union-attr]
