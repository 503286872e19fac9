"""Texts stored by a catch-up are indexed right after it, not in its receive
transactions (issue 9); search finds them soon after, edits and deletes of queued
texts are honoured, and live texts are indexed at once again."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from boxless.client import search_store as ss
from boxless.client.search_query import parse_query
from tests.memnet_fixtures import Person, befriend, homes, memnet, wait_for

__all__ = ["homes"]  # a fixture


def found(p: Person, q: str) -> list[str]:
    with p.client.db.transaction() as cur:
        return sorted(h.text for h in ss.search_messages(cur, parse_query(q), 100))


def pending(p: Person) -> int:
    with p.client.db.transaction() as cur:
        return ss.pending_count(cur)


async def test_caught_up_texts_are_indexed_after_the_catch_up(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        await alice.client.send_text(bob.me, "before the trip: zebra one")
        await wait_for(bob, lambda: len(bob.texts(alice)) == 1)
        assert pending(bob) == 0 and found(bob, "zebra") == ["before the trip: zebra one"]

        bob.transport.set_online(False)
        for i in range(30):
            await alice.client.send_text(bob.me, f"away {i:02d} zebra")
            await trio.sleep(0.001)
        await trio.sleep(10)
        bob.transport.set_online(True, catch_up=False)
        assert await bob.client.catch_up() >= 30
        # stored, but queued for the index: the catch-up did not index them
        assert len(bob.texts(alice)) == 31
        assert pending(bob) == 30
        assert found(bob, "zebra") == ["before the trip: zebra one"]
        # ...which it does right after, in the background
        await wait_for(bob, lambda: pending(bob) == 0)
        assert len(found(bob, "zebra")) == 31
        assert found(bob, "away 17") == ["away 17 zebra"]

        # live again: indexed in the receive transaction, nothing queued
        await alice.client.send_text(bob.me, "back home: okapi")
        await wait_for(bob, lambda: found(bob, "okapi") == ["back home: okapi"])
        assert pending(bob) == 0


async def test_a_queued_text_edited_or_deleted_is_indexed_as_it_is_now(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A crash during a catch-up leaves the switch on and texts queued: the next
    start indexes them (here: run's first pass, played by index_pending)."""
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        bob.client.search_index.begin()  # a catch-up is running
        await alice.client.send_text(bob.me, "walrus stays")
        edit = await alice.client.send_text(bob.me, "walrus to edit")
        gone = await alice.client.send_text(bob.me, "walrus to delete")
        await wait_for(bob, lambda: len(bob.texts(alice)) == 3)
        assert pending(bob) == 3 and found(bob, "walrus") == []
        await alice.client.edit(edit, "narwhal now")
        await alice.client.delete(gone)
        await wait_for(bob, lambda: "narwhal now" in bob.texts(alice))
        await wait_for(bob, lambda: bob.message(gone).deleted)
        assert found(bob, "narwhal") == ["narwhal now"]  # the edit indexed it already
        # a crash here: the switch is still on in the database; the next start indexes
        assert await bob.client.search_index.index_pending() == 3
        assert found(bob, "walrus") == ["walrus stays"]
        assert found(bob, "narwhal") == ["narwhal now"]  # once, not twice
        with bob.client.db.transaction() as cur:
            cur.execute("SELECT count(*) FROM client_search_docs")
            assert cur.fetchone()[0] == 2
        bob.client.search_index.end()
        await alice.client.send_text(bob.me, "walrus live")
        await wait_for(bob, lambda: "walrus live" in found(bob, "walrus"))
        assert pending(bob) == 0
