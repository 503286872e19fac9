"""Member cards travel with the ops that let members in, however those ops arrive.

Real clients on the in-memory network under trio's MockClock; the ops are
handed to Bob's group core the way the group topic or an answer would.
"""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from boxless.chat import envelope as env
from boxless.chat.topics import group_topic
from boxless.client import group_store as gs
from boxless.client.groups import NotAMember
from boxless.client.memory_transport import Fault
from boxless.groups import Invite, Rename, encode_op
from tests.memnet_fixtures import Person, befriend, homes, memnet, wait_for

__all__ = ["homes"]  # a fixture


async def test_a_card_that_came_with_an_op_waiting_for_its_parent_is_kept(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Alice renames the group, then invites Carol; Bob gets the Invite (with
    Carol's card) before the Rename it follows, and the Rename later with no
    card. Before, the card was dropped while the Invite waited (Carol was no
    member yet) and nothing brought it again: Bob knew Carol was in but not her
    device, and never shared his key with her."""
    async with memnet(homes, ("alice", "bob", "carol")) as (net, (alice, bob, carol)):
        await befriend(alice, bob)
        await befriend(alice, carol)
        gid = (await alice.client.groups.create("Cards")).group_id
        await alice.client.groups.invite(gid, bob.me)
        await wait_for(bob, lambda: gid in {g.group_id for g in bob.client.groups.groups()})
        await trio.sleep(30)  # keys and ops settled
        net.add_fault(Fault(sender="alice", receiver="bob", content_topic=group_topic(gid), loss=1))
        await alice.client.groups.update(gid, name="Cards 2")
        await alice.client.groups.invite(gid, carol.me)
        ops = alice.client.groups.core.logs[gid].ops()
        rename = next(o for o in ops if isinstance(o.body, Rename))
        invite = next(o for o in ops if isinstance(o.body, Invite) and o.body.member == carol.me)
        card = bytes(carol.account.contact_code(trio.current_time()).to_bytes())
        core = bob.client.groups.core
        with bob.account.db.transaction() as cur:
            core.apply_ops(cur, gid, env.GroupOpBody((encode_op(invite),), (card,)), alice.me)
            assert not core.log(cur, gid).state.is_member(carol.me)  # waits for the Rename
            assert gs.get_card(cur, carol.me) is not None  # ... and her card is kept
            core.apply_ops(cur, gid, env.GroupOpBody((encode_op(rename),)), alice.me)
            assert core.log(cur, gid).state.is_member(carol.me)
            assert core.device(cur, carol.me) is not None
        await bob.client.groups.send_text(gid, "hi Carol, from Bob")
        await wait_for(carol, lambda: "hi Carol, from Bob" in texts(carol, gid), 600)


def texts(p: Person, gid: bytes) -> list[str]:
    try:
        return [m.text for _, m in p.client.groups.messages(gid, 100)]
    except NotAMember:  # not joined yet
        return []
