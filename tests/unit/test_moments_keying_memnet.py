"""Moments keying between real clients on the in-memory network (virtual time).

A has contacts B, C, D. The first post gives each a reader key over Olm; the
second (all except D) costs A no Olm message: one shares message on A's feed
topic, B and C find their record, D (not in the audience, but a reader of A's
feed) finds none. A blocks C and hides its moments from D: the feed secret
rotates, the third post reaches B only. Attackers: D floods A's old feed topic
with garbage and with copies of a real shares message whose records it
rewrites — counted and dropped, nothing shown.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
import trio.testing

from boxless.chat import moment_shares as shares
from boxless.chat.requests import ContactEvent
from boxless.client.moments_core import AudienceMode
from boxless.waku.message import WakuMessage
from tests.memnet_fixtures import Person, befriend, memnet, settle, wait_for, wall_ns


def _texts(p: Person) -> list[str]:
    return [v.post.content.text for v in p.client.moments.feed() if v.post.content]


def _count_olm(p: Person) -> Callable[[], int]:
    """Count the 1:1 messages ``p`` queues (each still sent as usual)."""
    calls = [0]
    real = p.client.conversations.queue_in

    def counting(*args: Any, **kw: Any) -> Any:
        calls[0] += 1
        return real(*args, **kw)

    p.client.conversations.queue_in = counting  # type: ignore[method-assign]
    return lambda: calls[0]


async def test_posts_after_the_first_cost_no_olm_and_removed_readers_read_nothing(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(tmp_path, ("alice", "bob", "carol", "dave")) as (net, people):
        a, b, c, d = people
        for x in (b, c, d):
            await befriend(a, x)
        olm = _count_olm(a)
        await a.client.moments.post("first: keys over Olm")
        for v in (b, c, d):
            await wait_for(v, lambda v=v: _texts(v) == ["first: keys over Olm"])
        assert olm() == 3  # one key share (with the reader key) each
        [old_topic] = d.client.moments.topics()

        before = olm()
        await a.client.moments.post(
            "second: one shares message", audience=AudienceMode.EXCEPT, chosen=[d.me]
        )
        for v in (b, c):
            await wait_for(v, lambda v=v: "second: one shares message" in _texts(v))
        assert olm() == before  # the steady state: O(1) messages, no Olm per reader
        stored = [m for m in net.stored(old_topic)]
        assert len(stored) == 1
        await settle(30)
        assert _texts(d) == ["first: keys over Olm"]  # got the shares message, no record
        assert d.client.moments.drops.as_dict() == {}

        # D, a reader of A's feed, attacks it: garbage, and the real message with
        # every record rewritten (a forged share for whoever's tag it keeps)
        real = shares.parse(stored[0].message.payload)
        rewritten = b"".join(tag + os.urandom(32) for tag in real.records)
        forged = (
            b"BXS1" + real.salt + len(real.records).to_bytes(2, "big") + rewritten + real.header
        )
        for payload in [os.urandom(300) for _ in range(20)] + [forged]:
            await d.transport.send(
                WakuMessage(payload=payload, content_topic=old_topic, timestamp=wall_ns())
            )
        await settle(30)
        for v in (b, c):
            drops = v.client.moments.drops.as_dict()
            assert drops.get("bad_shares") == 20 and drops.get("forged_share") == 1
            assert len(_texts(v)) == 2

        # C is blocked, D hidden from: the feed rotates, only B reads the third post
        await a.client.respond(c.me, ContactEvent.BLOCK)
        a.client.moments.set_settings(hidden_from=[d.me])
        before = olm()
        await a.client.moments.post("third: after the rotation")
        await wait_for(b, lambda: "third: after the rotation" in _texts(b))
        assert olm() == before + 1  # B gets the new feed secret, once
        [new_topic] = [t for t in b.client.moments.topics() if t != old_topic]
        assert net.stored(new_topic) == []  # B was the only reader: it went over Olm
        await a.client.moments.post("fourth: steady again")
        await wait_for(b, lambda: "fourth: steady again" in _texts(b))
        assert olm() == before + 1 and len(net.stored(new_topic)) == 1
        await settle(30)
        assert "third: after the rotation" not in _texts(c) + _texts(d)
        assert "fourth: steady again" not in _texts(c) + _texts(d)
        assert new_topic not in c.client.moments.topics() + d.client.moments.topics()

        # D is un-hidden: as a contact with no reader key it is welcomed with the posts
        # it may see -- not those made while it was hidden, nor the one excluding it
        a.client.moments.set_settings(hidden_from=[])
        assert await a.client.moments.welcome() == 1
        await settle(30)
        assert new_topic in d.client.moments.topics()  # its new reader key came with it
        assert _texts(d) == ["first: keys over Olm"]
