"""Group calls played as the attacker (W7). Mallory, a member of one of our groups,
keeps a made-up call "running" with a keep-alive now and then: we show its banner
(a call seen running, we were not rung). Before the fix every real ring from any
other group was then dropped as ``busy`` for as long as she kept it up.

Refused already (tests/unit/test_calls_group.py, test_calls_group_memnet.py): a
non-member's signals, ring floods past the per-peer rate, signals for another
group under a running call's id, bad SDP, candidate floods, a full call, replays
of an ended call; the receive pipeline's dedup and Olm refuse a replayed JOIN.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import trio
import trio.testing

from boxless.calls.group import (
    GroupCallCore,
    GroupChanged,
    GroupSend,
    GroupSignal,
    GroupSignalKind,
)
from boxless.chat import envelope as env
from boxless.chat.topics import contact_topic
from tests.memnet_fixtures import homes, memnet, wait_for
from tests.unit.test_attacks_receive_batch import send_forged
from tests.unit.test_calls_group_memnet import cur
from tests.unit.test_groups_memnet import make_group

__all__ = ["homes"]  # a fixture

ME, MALLORY, BOB = b"\x05" * 32, b"\x09" * 32, b"\x0b" * 32
HER_GROUP, BOBS_GROUP = b"h" * 32, b"b" * 32
FAKE, REAL = b"f" * 16, b"r" * 16


def test_a_members_made_up_call_does_not_make_real_rings_busy() -> None:
    core = GroupCallCore(ME)
    hers, bobs = {ME, MALLORY}, {ME, BOB}
    keepalive = GroupSignal(FAKE, HER_GROUP, GroupSignalKind.KEEPALIVE)
    now = 1000.0
    assert core.receive(MALLORY, keepalive, now, members=hers)  # her banner shows
    for _ in range(10):  # she keeps it "running" (well inside the banner's life)
        now += 60.0
        core.receive(MALLORY, keepalive, now, members=hers)
        core.handle_timer(now)
    assert core.current is not None and core.current.call_id == FAKE

    ring = GroupSignal(REAL, BOBS_GROUP, GroupSignalKind.RING)
    out = core.receive(BOB, ring, now, members=bobs)
    assert core.dropped["busy"] == 0
    assert core.current is not None and core.current.call_id == REAL and core.current.rung
    changed = [o.call for o in out if isinstance(o, GroupChanged)]
    assert [(c.call_id, c.ended) for c in changed] == [(FAKE, True), (REAL, False)]
    # her keep-alives no longer bring the banner back over Bob's ring
    assert core.receive(MALLORY, keepalive, now + 1, members=hers) == []
    assert core.current.call_id == REAL


def test_a_ring_while_rung_or_in_a_call_is_still_busy() -> None:
    core = GroupCallCore(ME)
    first = GroupSignal(FAKE, HER_GROUP, GroupSignalKind.RING)
    assert core.receive(MALLORY, first, 1000.0, members={ME, MALLORY})
    ring = GroupSignal(REAL, BOBS_GROUP, GroupSignalKind.RING)
    assert core.receive(BOB, ring, 1001.0, members={ME, BOB}) == []
    assert core.dropped["busy"] == 1 and core.current is not None
    assert core.current.call_id == FAKE


@pytest.mark.trio
async def test_the_client_shows_the_real_ring_over_a_made_up_banner(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The same over real clients: Carol (hostile, a member of Alice's group "Hers")
    sends keep-alives for a call that does not exist; Bob rings Alice in another
    group; Alice's client shows Bob's ring, and the banner ends in her history.
    Carol's signals naming a group she is not in are dropped."""
    async with memnet(homes, ("alice", "bob", "carol")) as (_net, (alice, bob, carol)):
        hers = await make_group(alice, [carol], "Hers")
        bobs = await make_group(alice, [bob], "Bob's")
        fake = GroupSignal(FAKE, hers, GroupSignalKind.KEEPALIVE)
        carols = carol.client.calls.group
        assert carols is not None
        await carols._send(GroupSend(alice.me, fake))  # her modified client's signal
        await wait_for(alice, lambda: (cur(alice) or {}).get("call_id") == FAKE.hex())
        await bob.client.calls.group.start(bobs, video=False)  # type: ignore[union-attr]
        await wait_for(alice, lambda: (cur(alice) or {}).get("started_by") == bob.me.hex())
        shown = cur(alice)
        assert shown is not None and shown["rung"] and shown["chat"] == f"group:{bobs.hex()}"
        history = alice.client.calls.group.history()  # type: ignore[union-attr]
        assert [(h["call_id"], h["started_by"]) for h in history] == [(FAKE.hex(), carol.me.hex())]
        # a forged group id (a group Alice is not in, or Bob's, which Carol is not in)
        dropped = alice.client.calls.group.core.dropped  # type: ignore[union-attr]
        for gid in (b"\x77" * 32, bobs):
            await carols._send(GroupSend(alice.me, replace(fake, group_id=gid, call_id=REAL)))
        with trio.fail_after(60):  # a refusal emits no event: poll (virtual time)
            while not (dropped["not our group"] == 1 and dropped["not a member"] == 1):  # noqa: ASYNC110
                await trio.sleep(0.5)


@pytest.mark.trio
async def test_a_member_cannot_signal_as_another_member(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Carol rings Bob claiming to be Dave (a member Bob knows only by his group
    card): Olm proves Carol's device, which is not Dave's as the group knows it, so
    Bob's client drops it (``unknown device``) and does not ring."""
    names = ("alice", "bob", "carol", "dave")
    async with memnet(homes, names) as (_net, (alice, bob, carol, dave)):
        gid = await make_group(alice, [bob, carol, dave])
        ring = env.CallSignal(REAL, env.CallSignalKind.RING, "", (), False, group_id=gid)
        await send_forged(carol, bob, dave, ring, contact_topic(bob.me))  # as Dave
        bobs = bob.client.calls.group
        assert bobs is not None
        with trio.fail_after(60):  # a refusal emits no event: poll (virtual time)
            while bobs.core.dropped["unknown device"] != 1:  # noqa: ASYNC110
                await trio.sleep(0.5)
        assert bobs.current() is None
