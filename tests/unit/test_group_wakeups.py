"""An idle client does not wake for group timers (battery): counted on virtual time.

The group loops (``GroupTimers._sds_loop`` and ``._outbox_loop``) are counted
each time trio schedules them to run again (a wake-up: a timer ran out or work
woke them), over one virtual day under trio's MockClock.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import trio
import trio.testing

from tests.memnet_fixtures import Person, befriend, homes, memnet, wait_for

__all__ = ["homes"]  # a fixture

DAY = 86_400.0
LOOPS = ("_sds_loop", "_outbox_loop")


class Wakeups(trio.abc.Instrument):
    """Counts how often trio schedules the group timer loops to run."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()

    def task_scheduled(self, task: trio.lowlevel.Task) -> None:
        loop = task.name.rsplit(".", 1)[-1]
        if loop in LOOPS:
            self.count[loop] += 1

    def total(self) -> int:
        return sum(self.count.values())


def texts(p: Person, gid: bytes) -> list[str]:
    return [m.text for _, m in p.client.groups.messages(gid, 100) if m.kind == "text"]


async def idle_day() -> Wakeups:
    """The group loops' wake-ups over one virtual day of nothing happening."""
    await trio.sleep(60)  # start-up work settles
    wakeups = Wakeups()
    trio.lowlevel.add_instrument(wakeups)
    try:
        await trio.sleep(DAY)
    finally:
        trio.lowlevel.remove_instrument(wakeups)
    return wakeups


async def test_a_client_with_no_groups_does_not_wake_for_group_timers(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Before: the SDS loop looked every sync_check_s (5 s) and the outbox every
    60 s with nothing to do: about 18,700 wake-ups a virtual day."""
    async with memnet(homes, ("alice",)):
        wakeups = await idle_day()
    assert wakeups.total() <= 3, wakeups.count


async def test_a_quiet_group_wakes_only_for_its_sync_messages(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A group of two that said one thing each, then nothing for a day: the SDS
    sync message (every 30-60 s while the channel has history) is the only
    deadline, so the loops wake about once per sync period of either member.

    Before: 41,184 + 10,805 task steps of the two members' loops (the SDS loop
    looked every 5 s whatever happened), and each echo of a member's own sync
    message (not marked seen) waited for a key, so every minute each member asked
    the other to re-share its own session."""
    async with memnet(homes, ("alice", "bob")) as (_, (alice, bob)):
        await befriend(alice, bob)
        gid = (await alice.client.groups.create("Quiet")).group_id
        await alice.client.groups.invite(gid, bob.me)
        await wait_for(bob, lambda: gid in {g.group_id for g in bob.client.groups.groups()}, 600)
        await alice.client.groups.send_text(gid, "one")
        await bob.client.groups.send_text(gid, "two")
        await wait_for(alice, lambda: "two" in texts(alice, gid), 600)
        await wait_for(bob, lambda: "one" in texts(bob, gid), 600)
        before = dict(alice.client.groups.timers.rounds)
        wakeups = await idle_day()
        rounds = {k: v - before[k] for k, v in alice.client.groups.timers.rounds.items()}
    # measured: Alice's loops ran 2,152 + 5 rounds (6,454 task steps of both
    # members' loops); before, 41,184 + 10,805 task steps, and every echo of a
    # member's own sync message waited for a key and asked the others for it
    assert rounds["sds"] <= 2 * DAY / 30 and rounds["outbox"] <= 10, rounds
    assert wakeups.total() <= 3 * DAY / 30, wakeups.count
