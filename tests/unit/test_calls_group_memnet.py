"""Group calls as a client feature: real clients over the in-memory network, virtual time.

Alice befriends Bob and Carol and makes a group; Bob and Carol are not each
other's contacts, so their pair's offer/answer/candidates go to a member card
only. Mallory, Bob's contact but no member, tries to ring and to join.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from boxless.calls.group import LOST_AFTER
from boxless.chat import envelope as env
from boxless.chat.topics import contact_topic
from boxless.errors import UsageError
from tests.memnet_fixtures import Person, befriend, homes, memnet, settle, wait_for
from tests.unit.test_calls_core import sdp
from tests.unit.test_groups_memnet import make_group

__all__ = ["homes"]  # a fixture

FP = {"alice": 1, "bob": 2, "carol": 3}


def cur(p: Person) -> dict | None:  # type: ignore[type-arg]
    assert p.client.calls.group is not None
    return p.client.calls.group.current()


def others(p: Person) -> set[str]:
    c = cur(p)
    return set() if c is None else {x["key"] for x in c["participants"]}


async def browser(p: Person) -> None:
    """What the browser does with the call's state: offers and answers (fake SDP)."""
    c = cur(p)
    group = p.client.calls.group
    assert c is not None and group is not None
    cid = bytes.fromhex(c["call_id"])
    for x in c["participants"]:
        peer = bytes.fromhex(x["key"])
        if x["need_offer"] or (x["remote_kind"] == "offer" and not x["described"]):
            await group.describe(cid, peer, sdp(FP[p.name]))


async def test_a_group_call_of_three_over_member_cards(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    names = ("alice", "bob", "carol", "mallory")
    async with memnet(homes, names) as (net, (alice, bob, carol, mallory)):
        gid = await make_group(alice, [bob, carol])
        await befriend(bob, mallory)
        gc = alice.client.calls.group
        assert gc is not None
        started = await gc.start(gid, video=True)
        cid = bytes.fromhex(started["call_id"])
        assert started["chat"] == f"group:{gid.hex()}" and not started["ringing"]
        for p in (bob, carol):
            await wait_for(p, lambda p=p: cur(p) is not None)  # type: ignore[misc]
            c = cur(p)
            assert c is not None and c["ringing"] and c["rung"]
            assert c["started_by"] == alice.me.hex()
        # Bob joins first, then Carol (a member who is not Bob's contact)
        for p in (bob, carol):
            group = p.client.calls.group
            assert group is not None
            await group.join(cid)
            await settle(1.0)
        everyone = [alice, bob, carol]
        for _ in range(6):  # a few rounds of "browser" work until every pair has both SDPs
            for p in everyone:
                await browser(p)
            await settle(0.5)
        for p in everyone:
            assert others(p) == {q.me.hex() for q in everyone if q is not p}, p.name
            c = cur(p)
            assert c is not None
            assert all(x["code"] and x["remote_sdp"] for x in c["participants"]), p.name
        # each pair shows one code on both sides
        code = {
            (p.me, bytes.fromhex(x["key"])): x["code"]
            for p in everyone
            for x in (cur(p) or {})["participants"]
        }
        assert code[(bob.me, carol.me)] == code[(carol.me, bob.me)]
        assert code[(alice.me, bob.me)] != code[(alice.me, carol.me)]
        # candidates for one pair reach only that pair
        bg = bob.client.calls.group
        assert bg is not None
        await bg.add_candidates(cid, carol.me, ("candidate:1 1 udp 9 127.0.0.1 5 typ host",))
        await wait_for(
            carol,
            lambda: any(x["remote_candidates"] for x in (cur(carol) or {})["participants"]),
        )
        # the call holds on keep-alives
        await settle(LOST_AFTER + 5)
        assert len(others(alice)) == 2
        with pytest.raises(UsageError, match="group call"):  # one call at a time
            await alice.client.calls.start(bob.me, sdp(1), False)

        # -- the attacker: a non-member rings, joins, answers; a replay of the ended call
        bob_core = bg.core
        before = bob_core.dropped["not a member"]
        contact = mallory.client.conversations.accepted(bob.me)
        for kind in (env.CallSignalKind.RING, env.CallSignalKind.JOIN):
            body = env.CallSignal(cid, kind, group_id=gid)
            data = env.encode(mallory.client.conversations.new_message(contact, body))
            await mallory.client.channel.send_contact(
                contact, contact.conversation_topic, data, ephemeral=True
            )
        await settle(1.0)
        assert bob_core.dropped["not a member"] == before + 2
        assert len(others(bob)) == 2

        # Carol leaves: the others see one participant; her row has the call
        cg = carol.client.calls.group
        assert cg is not None
        await cg.leave(cid)
        for p in (alice, bob):
            await wait_for(p, lambda p=p: len(others(p)) == 1)  # type: ignore[misc]
        [row] = cg.history(gid)
        assert row["chat"] == f"group:{gid.hex()}" and row["started_by"] == alice.me.hex()
        assert row["duration_s"] >= LOST_AFTER and set(row["participants"]) == {
            alice.me.hex(),
            bob.me.hex(),
        }
        # a replay of Carol's join for the call she left is refused
        ended = cg.core.dropped["ended call"]
        body = env.CallSignal(cid, env.CallSignalKind.JOIN, group_id=gid)
        card = bg.groups.core.card  # Bob writes to Carol's card (they are no contacts)
        with bob.client.db.transaction() as c:
            carol_card = card(c, carol.me)
        assert carol_card is not None
        msg = env.new_message(body, lamport=0, sent_at_ms=int(bob.client.clock() * 1000))
        await bob.client.channel.send_card(
            carol_card, contact_topic(carol.me), env.encode(msg), ephemeral=True
        )
        await settle(1.0)
        assert cg.core.dropped["ended call"] == ended + 1
        assert cur(carol) is None
        # Alice and Bob hang up: everyone has a row
        await gc.leave(cid)
        await wait_for(bob, lambda: not others(bob))
        await bg.leave(cid)
        assert gc.history(gid)[0]["outgoing"] and not bg.history(gid)[0]["outgoing"]
