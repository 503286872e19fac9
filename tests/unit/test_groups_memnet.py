"""Groups over the in-memory network on virtual time: real clients, public API only."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from boxless.chat.topics import group_topic
from boxless.client.groups import NotAMember
from boxless.client.memory_transport import Fault
from tests.memnet_fixtures import Person, befriend, homes, memnet, virtual_wall_clock, wait_for

__all__ = ["homes", "virtual_wall_clock"]  # fixtures

pytestmark = pytest.mark.usefixtures("virtual_wall_clock")


def texts(p: Person, gid: bytes) -> list[str]:
    return [m.text for _, m in p.client.groups.messages(gid, 10_000) if m.kind == "text"]


def members(p: Person, gid: bytes) -> set[bytes]:
    try:
        return set(p.client.groups.state(gid).members)
    except NotAMember:  # not joined yet
        return set()


async def make_group(admin: Person, others: list[Person], name: str = "Book club") -> bytes:
    """``admin`` befriends ``others``, creates a group and invites them all; returns
    once every member sees every member."""
    for p in others:
        await befriend(admin, p)
    gid = (await admin.client.groups.create(name)).group_id
    for p in others:
        await admin.client.groups.invite(gid, p.me)
    everyone = {admin.me} | {p.me for p in others}
    for p in others:
        await wait_for(p, lambda p=p: members(p, gid) == everyone)  # type: ignore[misc]
    return gid


async def test_three_members_chat_and_a_removed_member_reads_nothing_after(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob", "carol")) as (net, (alice, bob, carol)):
        gid = await make_group(alice, [bob, carol])
        assert bob.client.groups.state(gid).name == "Book club"
        assert carol.client.groups.state(gid).creator == alice.me
        await alice.client.groups.send_text(gid, "hello from Alice")
        await bob.client.groups.send_text(gid, "hi, Bob here")
        await carol.client.groups.send_text(gid, "Carol says hi")
        want = {"hello from Alice", "hi, Bob here", "Carol says hi"}
        for p in (alice, bob, carol):
            await wait_for(p, lambda p=p: set(texts(p, gid)) == want)  # type: ignore[misc]
        assert all(len(texts(p, gid)) == 3 for p in (alice, bob, carol))

        await alice.client.groups.remove(gid, carol.me)
        for p in (bob, carol):
            await wait_for(p, lambda p=p: members(p, gid) == {alice.me, bob.me})  # type: ignore[misc]
        await alice.client.groups.send_text(gid, "after Carol left (Alice)")
        await bob.client.groups.send_text(gid, "after Carol left (Bob)")
        after = {"after Carol left (Alice)", "after Carol left (Bob)"}
        for p in (alice, bob):
            await wait_for(p, lambda p=p: after <= set(texts(p, gid)))  # type: ignore[misc]
        await trio.sleep(120)  # every group timer has run a few times
        assert not after & set(texts(carol, gid))
        stored = net.stored(group_topic(gid))
        assert len(stored) >= 5  # Carol's node can read the topic: only keys keep her out


async def test_a_member_losing_ten_percent_is_repaired(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Bob misses 10 % of the live group messages; SDS notices the gaps (causal
    history, sync messages) and repairs them from the store by hash."""
    async with memnet(homes, ("alice", "bob", "carol"), seed=3) as (net, (alice, bob, carol)):
        gid = await make_group(alice, [bob, carol], "Lossy")
        lossy = net.add_fault(Fault(receiver="bob", content_topic=group_topic(gid), loss=0.1))
        lost_before = net.stats.lost
        start = trio.current_time()
        sent = []
        for i in range(60):
            sender = alice if i % 2 == 0 else carol
            text = f"message {i:02d} from {sender.name}"
            await sender.client.groups.send_text(gid, text)
            sent.append(text)
            await trio.sleep(0.5)
        await wait_for(bob, lambda: set(sent) <= set(texts(bob, gid)))
        assert net.stats.lost - lost_before >= 3  # the network really lost some
        assert sorted(texts(bob, gid)) == sorted(sent)  # each once
        net.remove_fault(lossy)
        repaired_in = trio.current_time() - start
        assert repaired_in < 300, repaired_in
