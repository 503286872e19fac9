"""The poster's in-memory audience (contacts, reader keys, feed) between posts:
used while the database is unchanged, dropped by any write, so a reader removed
while it is warm gets nothing from the next post."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from boxless.chat import moment_shares as shares
from boxless.chat.requests import ContactEvent
from tests.memnet_fixtures import Person, befriend, memnet, settle, wait_for


def _texts(p: Person) -> list[str]:
    return [v.post.content.text for v in p.client.moments.feed() if v.post.content]


async def test_a_reader_removed_while_the_audience_is_cached_gets_nothing(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(tmp_path, ("alice", "bob", "carol")) as (net, people):
        a, b, c = people
        for x in (b, c):
            await befriend(a, x)
        moments = a.client.moments
        await moments.post("one")
        for v in (b, c):
            await wait_for(v, lambda v=v: "one" in _texts(v))
        await settle(5)
        await moments.post("two")
        for v in (b, c):
            await wait_for(v, lambda v=v: "two" in _texts(v))
        warm = moments._audience
        assert warm is not None and set(warm.readers) == {b.me, c.me}
        [topic] = c.client.moments.topics()

        # C is blocked while the audience is warm: the next post must see it
        await a.client.respond(c.me, ContactEvent.BLOCK)
        await moments.post("three")
        await wait_for(b, lambda: "three" in _texts(b))
        await settle(30)
        assert "three" not in _texts(c)
        # the audience as it is now: the cache if nothing wrote since, else read afresh
        # (any later write, e.g. own-device sync of the block, rightly drops the cache)
        with a.client.db.transaction() as cur:
            now = moments._read_audience(cur)
        assert set(now.readers) == {b.me}
        assert now.feed.epoch == warm.feed.epoch + 1  # rotated
        # nothing for C's old reader key on the old feed topic either
        carol_key = warm.readers[c.me][0]
        for stored in net.stored(topic)[2:]:
            parsed = shares.parse(stored.message.payload)
            tag = shares.reader_tag(carol_key, parsed.salt, parsed.header_digest())
            assert tag not in parsed.records
