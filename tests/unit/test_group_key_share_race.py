"""A group text is not lost when the Olm message carrying its key share is lost.

Written while chasing a fault run (docs/benchmarks.md, "Fault runs"): after a
kill, Alice held Bob's Megolm session only from a later index than Bob's text
(``group message dropped: MessageBeforeKeyShare``) and the text had not shown
within 120 s. The suspected path, made deterministic here: Bob's session
rotates (Carol removed) and the key share to Alice is lost (a key share is
sent once); Bob's next text reaches Alice, who cannot read it and asks for the
key; Bob re-shares at his session's *current* index, past the text's, and
Alice drops the text as MessageBeforeKeyShare. On main the text still arrives
(the group's repair re-sends it), so this path alone does not lose it; the
test keeps it that way.
"""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from boxless.chat.topics import contact_topic
from boxless.client.memory_transport import Fault
from boxless.waku.message import WakuMessage
from tests.memnet_fixtures import homes, memnet, wait_for
from tests.unit.test_groups_memnet import make_group, members, texts

__all__ = ["homes"]  # a fixture


async def test_a_text_whose_key_share_was_lost_is_read_after_the_re_share(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob", "carol")) as (net, (alice, bob, carol)):
        gid = await make_group(alice, [bob, carol])
        await bob.client.groups.send_text(gid, "before")
        await wait_for(alice, lambda: "before" in texts(alice, gid))

        lost: list[WakuMessage] = []

        def lose_first(msg: WakuMessage, sender: str, receiver: str) -> bool:
            if lost:
                return False
            lost.append(msg)
            return True

        net.add_fault(
            Fault(
                sender="bob",
                receiver="alice",
                content_topic=contact_topic(alice.me),
                drop=lose_first,
            )
        )
        await alice.client.groups.remove(gid, carol.me)
        await wait_for(bob, lambda: members(bob, gid) == {alice.me, bob.me})
        await bob.client.groups.send_text(gid, "after the rotation")
        await wait_for(bob, lambda: bool(lost))  # Bob's new key to Alice was lost
        await wait_for(alice, lambda: "after the rotation" in texts(alice, gid), timeout=1800)
