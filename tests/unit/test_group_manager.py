"""GroupManager over an in-memory Waku network, on trio's MockClock (no sockets, no sleeps).

Three or more real clients (real databases, Olm, Megolm, SDS) on one
:class:`~boxless.client.memory_transport.MemoryNetwork`; every group timer runs
on virtual time with the short :data:`tests.unit.group_harness.FAST` timings.
"""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from boxless.chat.topics import group_topic
from boxless.client.memory_transport import Fault
from boxless.waku.message import WakuMessage
from tests.chat_fixtures import befriend
from tests.group_helpers import contacts_group, members, texts
from tests.unit.group_harness import memory_people, until


async def test_create_invite_chat_remove(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memory_people(tmp_path, ("alice", "bob", "carol")) as (_, (alice, bob, carol)):
        gid = await contacts_group(alice, [bob, carol], "Club", until)
        await bob.groups.send_text(gid, "hi all")
        for c in (alice, carol):
            await until(c, lambda c=c: "hi all" in texts(c, gid))  # type: ignore[misc]
        await alice.groups.remove(gid, carol.me)
        await until(bob, lambda: members(bob, gid) == {alice.me, bob.me})
        await bob.groups.send_text(gid, "carol is gone")
        await until(alice, lambda: "carol is gone" in texts(alice, gid))
        await trio.sleep(30)  # every timer fires a few times: re-sends, sync, repair
        assert "carol is gone" not in texts(carol, gid)


async def test_repair_after_ten_percent_loss(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memory_people(tmp_path, ("alice", "bob", "carol")) as (net, (alice, bob, carol)):
        gid = await contacts_group(alice, [bob, carol], "Lossy", until)
        seen = [0]

        def every_tenth(msg: WakuMessage, sender: str, receiver: str) -> bool:
            seen[0] += 1
            return seen[0] % 10 == 0  # 10 % loss, deterministic

        net.add_fault(Fault(receiver="bob", content_topic=group_topic(gid), drop=every_tenth))
        sent = []
        for i in range(40):
            sender = alice if i % 2 == 0 else carol
            text = f"message {i:02d}"
            await sender.groups.send_text(gid, text)
            sent.append(text)
        await until(bob, lambda: set(sent) <= set(texts(bob, gid)), timeout=600)
        assert net.stats.lost >= 3
        assert sorted(texts(bob, gid)) == sorted(set(texts(bob, gid)))  # nothing twice


async def test_direct_bodies_retry_with_backoff_until_the_network_takes_them(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The invite's log and key shares for Bob wait in the group outbox (chat/outbox's
    schedule) while Alice is offline, and go out when she is back."""
    async with memory_people(tmp_path, ("alice", "bob")) as (_, (alice, bob)):
        await befriend(alice, bob)
        gid = (await alice.groups.create("Later")).group_id
        alice.transport.set_online(False)  # type: ignore[attr-defined]
        await alice.groups.invite(gid, bob.me)
        await trio.sleep(20)  # several failed rounds: 0.5 s, 1 s, 2 s, 4 s, 5 s ...
        with alice.db.transaction() as cur:
            cur.execute("SELECT failures FROM client_group_direct_outbox")
            failures = [int(r[0]) for r in cur.fetchall()]
        assert failures and min(failures) >= 3
        assert not members(bob, gid)
        alice.transport.set_online(True)  # type: ignore[attr-defined]
        await until(bob, lambda: members(bob, gid) == {alice.me, bob.me}, timeout=30)
