"""The receive pipeline's per-message lookups use an index (issue 9): a contact by its
conversation topic was a scan of every contact row per received message."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from boxless.client import store as db
from tests.memnet_fixtures import befriend, homes, memnet

__all__ = ["homes"]  # a fixture


async def test_the_contact_of_a_conversation_topic_is_found_by_index(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        with bob.client.db.transaction() as cur:
            topic = db.get_contact(cur, alice.me).conversation_topic  # type: ignore[union-attr]
            cur.execute(
                "EXPLAIN QUERY PLAN SELECT * FROM client_contacts WHERE conversation_topic = ?",
                (topic,),
            )
            plan = " ".join(str(row[-1]) for row in cur.fetchall())
            assert "USING INDEX client_contacts_by_topic" in plan, plan
            found = db.contact_by_topic(cur, topic)
        assert found is not None and found.identity_key == alice.me
