"""Own-device sync played as the attacker (W7): one of our devices, compromised or
buggy, sends a setting dated far in the future; a revoked device's sync arrives late.

A flood of new keys from one of our devices stops at a bound on the registers.

Before the fix a single entry with the wire's largest clock (2^63 - 1) won over
every later change, and this device's next change of that setting needed clock
2^63, which the codec refuses: the setting was stuck for good on every device.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing

from boxless.chat import envelope as env
from boxless.chat.ownsync import MAX_CLOCK, OwnSync, SyncEntry
from boxless.chat.topics import contact_topic
from boxless.client import ownsync, ownsync_store
from boxless.client import ownsync_core as core
from boxless.client.memory_transport import Fault, MemoryNetwork
from boxless.client.ownsync_core import setting_key
from tests.memnet_fixtures import WAIT, Person, befriend, homes, memnet, wait_for
from tests.unit.test_devices_memnet import _link_second, _run_until_revoked

__all__ = ["homes"]  # a fixture


def _flags(p: Person, chat: str) -> tuple[bool, bool]:
    s = p.client.chat_settings.get(chat)
    return s.pinned, s.muted


async def _send_sync(sender: Person, me: bytes, entries: tuple[SyncEntry, ...]) -> None:
    """What a modified client of ours sends: an OwnSync, as sync_chats sends it."""
    msg = env.new_message(OwnSync(entries), lamport=0, sent_at_ms=1)
    await sender.client.channel.fan_out(
        me, sender.client.channel.my_device_key, contact_topic(me), env.encode(msg), watch=False
    )


@asynccontextmanager
async def _linked(
    homes: Path,
) -> AsyncIterator[tuple[MemoryNetwork, Person, Person, Person]]:
    """Alice (A1) and Bob befriended, Alice's second device A2 linked and running."""
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        a2, _ = await _link_second(net, alice, homes / "alice2")
        async with trio.open_nursery() as nursery:
            await nursery.start(_run_until_revoked, a2.client)
            with trio.fail_after(WAIT):
                await a2.client.ready.wait()
            yield net, alice, bob, a2
            nursery.cancel_scope.cancel()
        a2.transport.close()
        a2.account.close()


def test_the_core_refuses_a_clock_far_ahead_of_ours() -> None:
    now_ms = 1_700_000_000_000
    assert not core.from_the_future(now_ms + 3_600_000, now_ms)  # an hour of skew: taken
    assert core.from_the_future(now_ms + core.MAX_AHEAD_MS + 1, now_ms)
    assert core.from_the_future(MAX_CLOCK, now_ms)


@pytest.mark.trio
async def test_a_far_future_clock_does_not_pin_a_setting_and_a_revoked_device_is_ignored(
    homes: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with _linked(homes) as (net, alice, bob, a2):
        bob_chat = f"contact:{bob.me.hex()}"
        # A2 (compromised) pins Bob's chat with the largest clock the wire allows,
        # then makes an honest change that A1 takes (so the forged one was seen)
        forged = SyncEntry(setting_key(bob_chat, "pinned"), "true", MAX_CLOCK)
        await _send_sync(a2, alice.me, (forged,))
        a2.client.chat_settings.update(bob_chat, muted=True)
        await wait_for(alice, lambda: _flags(alice, bob_chat)[1])
        assert not _flags(alice, bob_chat)[0]
        assert alice.client.own_sync.refused_entries == 1
        # and the setting still follows the user both ways
        alice.client.chat_settings.update(bob_chat, pinned=True)
        await wait_for(a2, lambda: _flags(a2, bob_chat)[0])
        a2.client.chat_settings.update(bob_chat, pinned=False)
        await wait_for(alice, lambda: not _flags(alice, bob_chat)[0])

        # a sync A2 sent just before it was revoked arrives after the revoke
        late = Fault(sender="alice2", receiver="alice", delay=30.0)
        net.add_fault(late)
        unmute = SyncEntry(setting_key(bob_chat, "muted"), "false", 2**40)
        await _send_sync(a2, alice.me, (unmute,))
        caplog.set_level(logging.INFO, "boxless.client.channel")
        await alice.client.devices.revoke(a2.client.channel.my_device_key)
        with trio.fail_after(WAIT):  # the channel drops it (no longer certified)
            while "no longer) certified" not in caplog.text:  # noqa: ASYNC110
                await trio.sleep(1)
        assert _flags(alice, bob_chat) == (False, True)


@pytest.mark.trio
async def test_a_flood_of_new_keys_stops_at_the_registers_bound(
    homes: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A2 sends favourites of 128 made-up messages (valid keys, chats that exist or
    not): A1 keeps at most its bound of registers; a setting it already holds still
    follows A2."""
    async with _linked(homes) as (net, alice, bob, a2):
        bob_chat = f"contact:{bob.me.hex()}"
        alice.client.chat_settings.update(bob_chat, pinned=True)
        await wait_for(a2, lambda: _flags(a2, bob_chat)[0])
        with alice.client.db.transaction() as cur:
            held = ownsync_store.count_registers(cur)
        monkeypatch.setattr(ownsync, "MAX_REGISTERS", held + 10)
        for n in range(2):
            junk = tuple(
                SyncEntry(setting_key(f"group:{'ab' * 32}", f"fav:m{n}-{i}"), "true", 5)
                for i in range(64)
            )
            await _send_sync(a2, alice.me, junk)
        a2.client.chat_settings.update(bob_chat, pinned=False)
        await wait_for(alice, lambda: not _flags(alice, bob_chat)[0])
        with alice.client.db.transaction() as cur:
            assert ownsync_store.count_registers(cur) == held + 10
        assert alice.client.own_sync.refused_entries == 128 - 10
