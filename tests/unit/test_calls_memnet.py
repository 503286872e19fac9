"""Calls as a client feature: two real clients over the in-memory network, virtual time."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from boxless.calls.core import LOST_AFTER, RING_TIMEOUT
from boxless.client.memory_transport import Fault
from boxless.errors import UsageError
from tests.memnet_fixtures import befriend, homes, memnet, settle, wait_for
from tests.unit.test_calls_core import sdp

__all__ = ["homes"]  # a fixture


def phase(person) -> str | None:  # type: ignore[no-untyped-def]
    cur = person.client.calls.current()
    return None if cur is None else cur["phase"]


async def test_call_rings_connects_ends_and_leaves_history(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob", "eve")) as (net, (alice, bob, eve)):
        await befriend(alice, bob)
        call = await alice.client.calls.start(bob.me, sdp(1), True)
        cid = bytes.fromhex(call["call_id"])
        assert call["phase"] == "outgoing"
        await wait_for(bob, lambda: phase(bob) == "incoming")
        got = bob.client.calls.current()
        assert (
            got["remote_sdp"] == sdp(1)
            and got["video"]
            and got["chat"] == f"contact:{alice.me.hex()}"
        )
        answered = await bob.client.calls.accept(cid, sdp(2))
        await wait_for(alice, lambda: phase(alice) == "connecting")
        assert alice.client.calls.current()["code"] == answered["code"] != ""
        assert alice.client.calls.current()["remote_sdp"] == sdp(2)
        await alice.client.calls.add_candidates(cid, ("candidate:1 1 udp 9 127.0.0.1 5 typ host",))
        await wait_for(bob, lambda: len(bob.client.calls.current()["remote_candidates"]) == 1)
        await alice.client.calls.connected(cid)
        await bob.client.calls.connected(cid)
        await settle(30.0)  # keep-alives hold the call up past LOST_AFTER
        assert phase(alice) == phase(bob) == "connected"
        await alice.client.calls.hang_up(cid)
        await wait_for(bob, lambda: phase(bob) is None)
        [row] = bob.client.calls.history(alice.me)
        assert row["reason"] == "hung_up" and 29 <= row["duration_s"] <= 32 and not row["outgoing"]
        assert alice.client.calls.history(bob.me)[0]["outgoing"]

        # declined, then missed (Bob never answers): rows on both sides
        c2 = await alice.client.calls.start(bob.me, sdp(1), False)
        await wait_for(bob, lambda: phase(bob) == "incoming")
        await bob.client.calls.decline(bytes.fromhex(c2["call_id"]))
        await wait_for(alice, lambda: phase(alice) is None)
        await alice.client.calls.start(bob.me, sdp(1), False)
        await wait_for(bob, lambda: phase(bob) == "incoming")
        await settle(RING_TIMEOUT + 1)
        assert phase(alice) is None and phase(bob) is None
        assert [r["reason"] for r in alice.client.calls.history(bob.me)] == [
            "missed",
            "declined",
            "hung_up",
        ]
        assert [r["reason"] for r in bob.client.calls.history(alice.me)][:2] == [
            "missed",
            "declined",
        ]

        # a stranger cannot ring anyone: no contact, no call (and no signal leaves)
        with pytest.raises(UsageError, match="contact"):
            await eve.client.calls.start(bob.me, sdp(5), False)
        assert eve.client.calls.current() is None
        assert phase(bob) is None


async def test_node_loss_ends_the_call_as_lost(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        call = await alice.client.calls.start(bob.me, sdp(1), False)
        cid = bytes.fromhex(call["call_id"])
        await wait_for(bob, lambda: phase(bob) == "incoming")
        await bob.client.calls.accept(cid, sdp(2))
        await wait_for(alice, lambda: phase(alice) == "connecting")
        await alice.client.calls.connected(cid)
        await bob.client.calls.connected(cid)
        net.add_fault(Fault(sender="bob", loss=1.0))  # Bob's node is gone
        await settle(LOST_AFTER + 6)
        assert phase(alice) is None
        assert alice.client.calls.history(bob.me)[0]["reason"] == "lost"


async def test_signals_are_never_kept_by_store_nodes(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Signals are Waku-ephemeral: a callee offline while it rang finds nothing in
    store history (no late ringing; a replay by a hostile store is dropped as stale,
    see test_calls_core)."""
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        deaf = net.add_fault(Fault(receiver="bob", loss=1.0))  # Bob hears nothing live
        await alice.client.calls.start(bob.me, sdp(1), True)
        await settle(RING_TIMEOUT + 5)  # Alice gives up: missed
        assert phase(alice) is None
        net.remove_fault(deaf)
        await bob.client.catch_up()
        assert bob.client.calls.core.dropped.total() == 0  # no signal reached the feature
        assert phase(bob) is None and bob.client.calls.history(alice.me) == []
        assert alice.client.calls.history(bob.me)[0]["reason"] == "missed"
