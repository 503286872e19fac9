"""Real clients over the in-memory network on virtual time (issue 9 item 7)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from boxless.chat.requests import ContactEvent
from boxless.chat.topics import bundle_topic
from boxless.client.core import Client
from boxless.client.memory_transport import Fault, MemoryNetwork
from boxless.client.verification import FLOW_TIMEOUT_S
from boxless.errors import UsageError
from boxless.identity.account import open_account
from tests.memnet_fixtures import (
    PASS,
    Person,
    befriend,
    homes,
    make_account,
    memnet,
    running,
    wait_for,
    wall,
    wall_ns,
)

__all__ = ["homes"]  # a fixture


async def test_one_to_one_exchange_both_ways_with_ticks(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        mid = await alice.client.send_text(bob.me, "hello Bob")
        await wait_for(alice, lambda: alice.message(mid).state == "delivered")
        assert bob.texts(alice) == ["hello Bob"]
        reply = await bob.client.send_text(alice.me, "hi Alice")
        await wait_for(bob, lambda: bob.message(reply).state == "delivered")
        assert alice.texts(bob) == ["hello Bob", "hi Alice"]
        assert await bob.client.mark_read(alice.me) == 1
        await wait_for(alice, lambda: alice.message(mid).state == "read")
        assert bob.message(reply).state == "delivered"


async def test_a_contact_request_is_accepted(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await alice.client.add_contact(bob.link(), intro="hi, it's Alice")
        await wait_for(bob, lambda: bob.state(alice) == "request_received")
        request = bob.contact(alice)
        assert request is not None and request.intro == "hi, it's Alice"
        assert request.display_name == "Alice" and alice.state(bob) == "request_sent"
        with pytest.raises(UsageError):
            await alice.client.send_text(bob.me, "too early")
        await bob.client.respond(alice.me, ContactEvent.ACCEPT)
        await wait_for(alice, lambda: alice.state(bob) == "accepted")
        a, b = alice.contact(bob), bob.contact(alice)
        assert a is not None and b is not None
        assert a.conversation_topic == b.conversation_topic
        mid = await alice.client.send_text(bob.me, "thanks")
        await wait_for(alice, lambda: alice.message(mid).state == "delivered")


async def test_a_declined_request_stays_declined_on_our_side(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("bob", "carol")) as (net, (bob, carol)):
        await carol.client.add_contact(bob.link(), intro="Carol here")
        await wait_for(bob, lambda: bob.state(carol) == "request_received")
        await bob.client.respond(carol.me, ContactEvent.DECLINE)
        assert bob.state(carol) == "declined"
        with pytest.raises(UsageError):
            await bob.client.send_text(carol.me, "no")
        await trio.sleep(120)
        assert bob.state(carol) == "declined" and bob.texts(carol) == []


async def test_the_requester_learns_of_a_decline(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("bob", "carol")) as (net, (bob, carol)):
        await carol.client.add_contact(bob.link())
        await wait_for(bob, lambda: bob.state(carol) == "request_received")
        await bob.client.respond(carol.me, ContactEvent.DECLINE)
        await wait_for(carol, lambda: carol.state(bob) == "declined", timeout=600)


async def test_crossed_requests_converge_on_one_conversation(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Both add each other before either request arrives (a 5 s delay on every link)."""
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        slow = net.add_fault(Fault(delay=5.0))
        await alice.client.add_contact(bob.link())
        await bob.client.add_contact(alice.link())
        assert alice.state(bob) == bob.state(alice) == "request_sent"
        await wait_for(alice, lambda: alice.state(bob) == "accepted")
        await wait_for(bob, lambda: bob.state(alice) == "accepted")
        net.remove_fault(slow)
        a, b = alice.contact(bob), bob.contact(alice)
        assert a is not None and b is not None
        assert a.conversation_topic == b.conversation_topic
        m1 = await alice.client.send_text(bob.me, "we crossed")
        m2 = await bob.client.send_text(alice.me, "so we did")
        await wait_for(alice, lambda: alice.message(m1).state == "delivered")
        await wait_for(bob, lambda: bob.message(m2).state == "delivered")
        assert sorted(alice.texts(bob)) == sorted(bob.texts(alice)) == ["so we did", "we crossed"]


async def test_an_offline_recipient_catches_up_from_history_once_and_in_order(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        bob.transport.set_online(False)
        ids = []
        for i in range(50):
            ids.append(await alice.client.send_text(bob.me, f"message {i}"))
            await trio.sleep(0.01)  # each is sent at its own (virtual) time
        await wait_for(alice, lambda: all(alice.message(m).state == "sent" for m in ids))
        assert bob.texts(alice) == []
        bob.transport.set_online(True, catch_up=False)  # the client catches up itself
        assert await bob.client.catch_up() >= 50
        assert bob.texts(alice) == [f"message {i}" for i in range(50)]
        await wait_for(alice, lambda: all(alice.message(m).state == "delivered" for m in ids))
        assert await bob.client.catch_up() == 0  # nothing twice
        assert bob.texts(alice) == [f"message {i}" for i in range(50)]


async def test_ten_percent_loss_is_repaired_by_resends(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """10 % of what either side sends live is lost (texts and receipts alike); the
    outbox's timers re-send until every message is delivered."""
    async with memnet(homes, ("alice", "bob"), seed=1) as (net, (alice, bob)):
        await befriend(alice, bob)
        net.add_fault(Fault(sender="alice", receiver="bob", loss=0.1))
        net.add_fault(Fault(sender="bob", receiver="alice", loss=0.1))
        start = trio.current_time()
        ids = []
        for i in range(50):
            ids.append(await alice.client.send_text(bob.me, f"message {i}"))
            await trio.sleep(0.01)
        await wait_for(alice, lambda: all(alice.message(m).state == "delivered" for m in ids))
        assert net.stats.lost > 0
        assert bob.texts(alice) == [f"message {i}" for i in range(50)]
        assert trio.current_time() - start < 600  # re-sent after 30 s, then 60 s ...


async def test_a_restarted_client_keeps_its_state(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    net = MemoryNetwork(now_ns=wall_ns)
    for name in ("alice", "bob"):
        make_account(homes / name, name.title())
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        async with running(net, homes / "alice", "alice") as alice:
            async with running(net, homes / "bob", "bob") as bob:
                await befriend(alice, bob)
                mid = await alice.client.send_text(bob.me, "before")
                await wait_for(alice, lambda: alice.message(mid).state == "delivered")
                bob_key = bob.me
            # Bob is down: a message waits in the store
            late = await alice.client.send_text(bob_key, "while you were out")
            await wait_for(alice, lambda: alice.message(late).state == "sent")
            await trio.sleep(5)
            async with running(net, homes / "bob", "bob") as bob:
                assert bob.state(alice) == "accepted"
                assert bob.texts(alice) == ["before", "while you were out"]
                await wait_for(alice, lambda: alice.message(late).state == "delivered")
                reply = await bob.client.send_text(alice.me, "back")
                await wait_for(bob, lambda: bob.message(reply).state == "delivered")
            assert alice.texts(bob) == ["before", "while you were out", "back"]
        nursery.cancel_scope.cancel()


# -- timers ------------------------------------------------------------------------


async def test_a_send_that_fails_is_retried_with_backoff(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Offline: each attempt fails (NetworkError); retries back off 2 s, 4 s, 8 s ...
    (±20 %), so 100 s offline cost a handful of attempts, and the message goes
    at the first retry after the network is back."""
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        await trio.sleep(60)  # receipts and pictures of befriending are settled
        alice.transport.set_online(False)
        before = alice.transport.attempts
        mid = await alice.client.send_text(bob.me, "are you there?")
        await trio.sleep(100)
        assert alice.message(mid).state == "queued"
        assert 4 <= alice.transport.attempts - before <= 7  # 0, 2, 6, 14, 30, 62 s (±20 %)
        alice.transport.set_online(True, catch_up=False)
        back = trio.current_time()
        await wait_for(alice, lambda: alice.message(mid).state == "delivered")
        assert trio.current_time() - back <= 64 * 1.2 + 1  # the next retry


async def test_a_refused_send_is_retried(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        alice.transport.refusing = "429: too many requests"
        mid = await alice.client.send_text(bob.me, "hello")
        await trio.sleep(20)
        assert alice.message(mid).state == "queued" and bob.texts(alice) == []
        alice.transport.refusing = None
        await wait_for(alice, lambda: alice.message(mid).state == "delivered", timeout=40)


async def test_an_unacknowledged_message_is_resent_after_30_s(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The first copy is lost on the way to Bob (the store has it, but Bob is live
    and doesn't look): Alice's outbox re-sends it 30 s (±20 %) after it went."""
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        await trio.sleep(60)
        lost = net.add_fault(Fault(sender="alice", receiver="bob", loss=1.0))
        mid = await alice.client.send_text(bob.me, "first copy lost")
        await wait_for(alice, lambda: alice.message(mid).state == "sent")
        sent_at = trio.current_time()
        net.remove_fault(lost)
        await wait_for(alice, lambda: alice.message(mid).state == "delivered")
        assert 30 * 0.8 <= trio.current_time() - sent_at <= 30 * 1.2 + 1
        assert bob.texts(alice) == ["first copy lost"]


async def test_delivery_receipts_for_a_catch_up_go_in_one_message(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Receipts wait 10 ms and go as one batch: 20 messages caught up from the
    store are acknowledged by one Waku message, not 20."""
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        await trio.sleep(60)
        bob.transport.set_online(False)
        ids = []
        for i in range(20):
            ids.append(await alice.client.send_text(bob.me, f"m{i}"))
            await trio.sleep(0.01)
        await wait_for(alice, lambda: all(alice.message(m).state == "sent" for m in ids))
        bob.transport.set_online(True, catch_up=False)
        before = bob.transport.attempts
        await bob.client.catch_up()
        await wait_for(alice, lambda: all(alice.message(m).state == "delivered" for m in ids))
        assert bob.transport.attempts - before == 1


@pytest.mark.slow  # a virtual day: ~17,000 wake-ups of the idle group timer (5 s), ~10 s real
async def test_the_device_bundle_is_published_at_start_and_then_daily(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice",)) as (net, (alice,)):
        topic = bundle_topic(alice.me)
        await trio.sleep(1)
        assert len(net.stored(topic)) == 1
        await trio.sleep(86_400)
        assert len(net.stored(topic)) == 2


async def test_a_refused_bundle_publication_is_retried_every_minute(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    net = MemoryNetwork(now_ns=wall_ns)
    make_account(homes / "alice", "Alice")
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        transport = net.transport("alice")
        transport.refusing = "503: busy"
        account = open_account(homes / "alice", PASS)
        try:
            client = Client(account, transport, clock=wall, pow_difficulty=4)
            await nursery.start(client.run)
            topic = bundle_topic(client.me)
            await trio.sleep(150)
            assert net.stored(topic) == [] and transport.attempts_by_topic[topic] == 3  # 0, 60, 120 s
            transport.refusing = None
            await trio.sleep(60)
            assert len(net.stored(topic)) == 1
        finally:
            nursery.cancel_scope.cancel()
    transport.close()
    account.close()


async def test_a_reordered_burst_is_read_without_waiting_for_resends(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """80 texts sent at once reach Bob shuffled (0-5 s of jitter on the link, as a
    relay mesh may). vodozemac keeps 40 skipped keys per chain, so some arrive
    after their key is gone (DuplicateMessage): Bob asks Alice to re-send at once
    instead of waiting for her 30 s re-send (on main 27 of 80 waited)."""
    async with memnet(homes, ("alice", "bob"), seed=2) as (net, (alice, bob)):
        await befriend(alice, bob)
        await trio.sleep(60)
        net.add_fault(Fault(sender="alice", receiver="bob", jitter=5.0))
        sent = [f"burst {i}" for i in range(80)]
        for text in sent:
            await alice.client.send_text(bob.me, text)
        start = trio.current_time()
        await wait_for(bob, lambda: len(bob.texts(alice)) == len(sent))
        assert bob.texts(alice) == sent
        assert trio.current_time() - start < 10


async def test_edit_react_delete_typing_and_verification_through_the_public_api(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)
        mid = await alice.client.send_text(bob.me, "helo")
        await wait_for(bob, lambda: bob.texts(alice) == ["helo"])
        async with bob.client.events() as events:
            await alice.client.edit(mid, "hello")
            await wait_for(bob, lambda: bob.message(mid).edited)
            assert bob.message(mid).text == "hello" and alice.message(mid).text == "hello"
            await bob.client.react(mid, "👍")
            await wait_for(alice, lambda: alice.message(mid).reactions == {"👍": ["them"]})
            assert bob.message(mid).reactions == {"👍": ["me"]}
            async with alice.client.events() as alice_events:
                await bob.client.typing(alice.me, True)  # ephemeral: never stored
                with trio.fail_after(5):
                    while (await alice_events.receive()).type != "typing":
                        pass
            await alice.client.delete(mid)
            await wait_for(bob, lambda: bob.message(mid).deleted)
            assert bob.message(mid).text == "" and bob.message(mid).reactions == {}
            kinds = set()
            while True:
                try:
                    kinds.add(events.receive_nowait().type)
                except trio.WouldBlock:
                    break
        assert "message" in kinds
        with pytest.raises(UsageError):
            await bob.client.edit(mid, "not mine")
        assert bob.contact(alice).verified_key is None  # type: ignore[union-attr]
        row = bob.client.confirm_verified(alice.me)
        assert row.verified_key == row.device_key
        assert len(net.stored(bob.contact(alice).conversation_topic)) >= 5  # type: ignore[union-attr]


async def test_emoji_verification_and_its_ten_minute_timeout(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A flow both confirm verifies both; a flow nobody answers is cancelled on
    both sides after FLOW_TIMEOUT_S (10 min, the real value, in virtual time)."""
    async with memnet(homes, ("alice", "bob")) as (net, (alice, bob)):
        await befriend(alice, bob)

        def state(p: Person, other: Person) -> str:
            return str(p.client.sas.current(other.me)["state"])

        await alice.client.sas.start(bob.me)
        await wait_for(bob, lambda: state(bob, alice) == "requested")
        await bob.client.sas.accept(alice.me)
        await wait_for(alice, lambda: state(alice, bob) == "compare")
        await wait_for(bob, lambda: state(bob, alice) == "compare")
        assert (
            alice.client.sas.current(bob.me)["emoji"] == bob.client.sas.current(alice.me)["emoji"]
        )
        await alice.client.sas.confirm(bob.me)
        await bob.client.sas.confirm(alice.me)
        await wait_for(alice, lambda: state(alice, bob) == "verified")
        await wait_for(bob, lambda: state(bob, alice) == "verified")
        for p, other in ((alice, bob), (bob, alice)):
            row = p.contact(other)
            assert row is not None and row.verified_key == row.device_key

        started = trio.current_time()
        await alice.client.sas.start(bob.me)
        await wait_for(bob, lambda: state(bob, alice) == "requested")
        await wait_for(alice, lambda: state(alice, bob) == "cancelled")
        await wait_for(bob, lambda: state(bob, alice) == "cancelled")
        assert alice.client.sas.current(bob.me)["reason"] == "timeout"
        assert FLOW_TIMEOUT_S <= trio.current_time() - started <= FLOW_TIMEOUT_S + 5
