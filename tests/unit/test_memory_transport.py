"""The in-memory Waku network: live delivery by topic, the store, faults, virtual time."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from boxless.client.memory_transport import STORE, Fault, MemoryNetwork, MemoryTransport
from boxless.client.transport import Incoming
from boxless.errors import NetworkError, UsageError, ValidationError
from boxless.waku.message import WakuMessage, message_hash
from boxless.waku.sharding import pubsub_topic_for

T0 = 1_800_000_000 * 10**9
A = "/boxless/1/test-a/proto"
B = "/boxless/1/test-b/proto"


def virtual_ns() -> int:
    return T0 + int(trio.current_time() * 1e9)


def msg(
    text: str, topic: str = A, *, ts: int | None = None, ephemeral: bool = False
) -> WakuMessage:
    return WakuMessage(
        payload=text.encode(),
        content_topic=topic,
        timestamp=virtual_ns() if ts is None else ts,
        ephemeral=True if ephemeral else None,
    )


def drain(recv: trio.MemoryReceiveChannel[Incoming]) -> list[str]:
    out = []
    while True:
        try:
            out.append(recv.receive_nowait().message.payload.decode())
        except trio.WouldBlock:
            return out


def texts(items: list[Incoming]) -> list[str]:
    return [i.message.payload.decode() for i in items]


async def collect(it: object) -> list[Incoming]:
    return [item async for item in it]  # type: ignore[attr-defined]


@pytest.fixture
def net() -> MemoryNetwork:
    return MemoryNetwork(now_ns=virtual_ns)


async def test_live_delivery_reaches_subscribers_of_the_topic_at_send_time(
    net: MemoryNetwork,
) -> None:
    alice, bob, carol = net.transport("alice"), net.transport("bob"), net.transport("carol")
    await bob.subscribe([A])
    await carol.subscribe([B])
    async with bob.incoming() as bob_in, carol.incoming() as carol_in:
        sent = await alice.send(msg("one"))
        await carol.subscribe([A])  # too late for "one"
        await alice.send(msg("two"))
        assert drain(bob_in) == ["one", "two"]
        assert drain(carol_in) == ["two"]
    assert sent.accepted and sent.detail == "relayed to 1 peers"


async def test_hash_is_the_waku_hash_over_the_autosharded_pubsub_topic(
    net: MemoryNetwork,
) -> None:
    alice = net.transport("alice")
    m = msg("x")
    sent = await alice.send(m)
    assert sent.message_hash == message_hash(pubsub_topic_for(A, 42, 8), m)
    assert [i.message_hash for i in net.stored(A)] == [sent.message_hash]


async def test_the_sender_gets_its_own_message_back_when_subscribed(net: MemoryNetwork) -> None:
    """As filter does: light push -> relay -> the service node's own subscription
    -> filter pushes to every subscriber of the topic, the pusher included."""
    alice = net.transport("alice")
    await alice.subscribe([A])
    async with alice.incoming() as recv:
        sent = await alice.send(msg("echo"))
        assert drain(recv) == ["echo"]
    assert sent.detail == "relayed to 0 peers"


async def test_a_message_is_received_once(net: MemoryNetwork) -> None:
    alice, bob = net.transport("alice"), net.transport("bob")
    await bob.subscribe([A])
    m = msg("same")
    async with bob.incoming() as recv:
        await alice.send(m)
        await alice.send(m)
        assert drain(recv) == ["same"]
        assert await collect(bob.history([A], None)) == []  # received live already
    assert net.stats.duplicates == 1 and len(net.stored(A)) == 1


async def test_store_keeps_non_ephemeral_messages_in_timestamp_then_hash_order(
    net: MemoryNetwork,
) -> None:
    alice, bob = net.transport("alice"), net.transport("bob")
    now = virtual_ns()
    await alice.send(msg("late", ts=now + 2))
    await alice.send(msg("early", ts=now))
    await alice.send(msg("typing", ts=now + 1, ephemeral=True))
    tie = [msg("tie-1", ts=now + 1), msg("tie-2", ts=now + 1)]
    for m in tie:
        await alice.send(m)
    await alice.send(msg("other topic", B, ts=now))
    got = await collect(bob.history([A], None))
    ties = sorted(tie, key=lambda m: message_hash(pubsub_topic_for(A), m))
    assert texts(got) == ["early", *(m.payload.decode() for m in ties), "late"]
    since = await collect(net.transport("carol").history([A], now + 1))  # inclusive
    assert texts(since) == [*(m.payload.decode() for m in ties), "late"]


async def test_history_over_several_topics_and_fetch_by_hash(net: MemoryNetwork) -> None:
    alice, bob = net.transport("alice"), net.transport("bob")
    a = await alice.send(msg("a"))
    b = await alice.send(msg("b", B))
    assert sorted(texts(await collect(bob.history([A, B], None)))) == ["a", "b"]
    carol = net.transport("carol")
    got = await collect(carol.fetch(A, [b"\x00" * 32, a.message_hash, b.message_hash]))
    assert texts(got) == ["a"]  # b is on another content topic
    assert await collect(carol.fetch(A, [a.message_hash])) == []  # received already


async def test_retention_bounds_the_store_by_count_and_age(autojump_clock: object) -> None:
    net = MemoryNetwork(now_ns=virtual_ns, max_stored=3, max_age_ns=60 * 10**9)
    alice = net.transport("alice")
    for i in range(5):
        await alice.send(msg(str(i)))
    assert texts(net.stored(A)) == ["2", "3", "4"]
    await trio.sleep(50)
    await alice.send(msg("5"))
    await trio.sleep(20)
    await alice.send(msg("6"))  # 2, 3, 4 are 70 s old now
    assert texts(net.stored(A)) == ["5", "6"]
    assert net.stats.evicted == 5


async def test_offline_sends_fail_and_live_messages_are_missed_but_stored(
    net: MemoryNetwork,
) -> None:
    alice, bob = net.transport("alice"), net.transport("bob")
    await bob.subscribe([A])
    async with bob.incoming() as recv:
        bob.set_online(False)
        with pytest.raises(NetworkError):
            await bob.send(msg("from bob"))
        with pytest.raises(NetworkError):
            await collect(bob.history([A], None))
        await alice.send(msg("while away"))
        assert drain(recv) == []
        assert not bob.status()["connected"]
        bob.set_online(True)  # a light node catches up from the store on reconnecting
        assert drain(recv) == ["while away"]
        bob.set_online(False)
        await alice.send(msg("again"))
        bob.set_online(True, catch_up=False)
        assert drain(recv) == []
    assert texts(await collect(bob.history([A], None))) == ["again"]


async def test_seeded_loss_on_one_link_loses_live_copies_only(net: MemoryNetwork) -> None:
    alice, bob, carol = net.transport("alice"), net.transport("bob"), net.transport("carol")
    await bob.subscribe([A])
    await carol.subscribe([A])
    net.add_fault(Fault(sender="alice", receiver="bob", loss=0.1))
    async with bob.incoming() as bob_in, carol.incoming() as carol_in:
        for i in range(500):
            await alice.send(msg(str(i)))
        got_bob, got_carol = drain(bob_in), drain(carol_in)
    assert len(got_carol) == 500
    assert 20 < 500 - len(got_bob) < 80
    assert net.stats.lost == 500 - len(got_bob)
    missed = texts(await collect(bob.history([A], None)))
    assert sorted(missed + got_bob, key=int) == [str(i) for i in range(500)]


def test_same_seed_same_losses() -> None:
    def run() -> list[str]:
        net = MemoryNetwork(seed=7)
        net.add_fault(Fault(loss=0.5))
        alice, bob = net.transport("alice"), net.transport("bob")
        out: list[str] = []

        async def main() -> None:
            await bob.subscribe([A])
            async with bob.incoming() as recv:
                for i in range(50):
                    await alice.send(
                        WakuMessage(payload=str(i).encode(), content_topic=A, timestamp=None)
                    )
                out.extend(drain(recv))

        trio.run(main)
        return out

    assert run() == run()


async def test_a_predicate_decides_loss_and_a_store_fault_keeps_it_from_the_store(
    net: MemoryNetwork,
) -> None:
    alice, bob = net.transport("alice"), net.transport("bob")
    await bob.subscribe([A])
    odd = net.add_fault(Fault(drop=lambda m, s, r: int(m.payload) % 2 == 1))
    net.add_fault(Fault(receiver=STORE, drop=lambda m, s, r: m.payload == b"3"))
    async with bob.incoming() as recv:
        for i in range(5):
            await alice.send(msg(str(i)))
        assert drain(recv) == ["0", "2", "4"]
        net.remove_fault(odd)
        await alice.send(msg("5"))
        assert drain(recv) == ["5"]
    assert texts(net.stored(A)) == ["0", "1", "2", "4", "5"]


async def test_delay_runs_on_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    net = MemoryNetwork(now_ns=virtual_ns)
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        alice, bob = net.transport("alice"), net.transport("bob")
        await bob.subscribe([A])
        net.add_fault(Fault(receiver="bob", delay=30.0))
        async with bob.incoming() as recv:
            start = trio.current_time()
            await alice.send(msg("slow"))
            assert drain(recv) == []
            got = await recv.receive()
            assert got.message.payload == b"slow"
            assert trio.current_time() - start == pytest.approx(30.0)
            await alice.send(msg("missed"))
            bob.set_online(False, catch_up=False)
            await trio.sleep(31)
            assert drain(recv) == [] and net.stats.late == 1
        nursery.cancel_scope.cancel()


async def test_a_delay_needs_the_network_running(net: MemoryNetwork) -> None:
    alice, bob = net.transport("alice"), net.transport("bob")
    await bob.subscribe([A])
    net.add_fault(Fault(delay=1.0))
    with pytest.raises(UsageError, match="net.run"):
        await alice.send(msg("x"))


async def test_partition_cuts_live_links_until_healed(net: MemoryNetwork) -> None:
    alice, bob, carol = net.transport("alice"), net.transport("bob"), net.transport("carol")
    for t in (alice, bob, carol):
        await t.subscribe([A])
    async with bob.incoming() as bob_in, carol.incoming() as carol_in:
        net.partition([alice, carol], [bob])
        await alice.send(msg("split"))
        assert drain(bob_in) == [] and drain(carol_in) == ["split"]
        net.heal()
        await alice.send(msg("whole"))
        assert drain(bob_in) == ["whole"]
    assert texts(await collect(bob.history([A], None))) == ["split"]


async def test_relay_rules_apply_and_refusal_is_reported(net: MemoryNetwork) -> None:
    alice = net.transport("alice")
    with pytest.raises(ValidationError, match="timestamp"):
        await alice.send(msg("from the future", ts=virtual_ns() + 60 * 10**9))
    with pytest.raises(ValidationError, match="content-topic"):
        await alice.send(WakuMessage(payload=b"x", content_topic="nonsense"))
    alice.refusing = "429: too many requests"
    sent = await alice.send(msg("x"))
    assert not sent.accepted and "429" in sent.detail
    assert net.stored(A) == []


async def test_names_are_unique_while_open_and_a_closed_transport_receives_nothing(
    net: MemoryNetwork,
) -> None:
    alice, bob = net.transport("alice"), net.transport("bob")
    await bob.subscribe([A])
    with pytest.raises(UsageError):
        net.transport("bob")
    bob.close()
    with pytest.raises(UsageError):
        await bob.send(msg("x"))
    await alice.send(msg("stored"))
    bob2 = net.transport("bob")  # a restarted node: new seen set, no subscriptions
    assert texts(await collect(bob2.history([A], None))) == ["stored"]
    assert isinstance(bob2, MemoryTransport) and bob2.status()["mode"] == "memory"


async def test_a_slow_listener_misses_messages_instead_of_blocking_the_network(
    net: MemoryNetwork,
) -> None:
    alice, bob = net.transport("alice"), net.transport("bob")
    await bob.subscribe([A])
    async with bob.incoming() as recv:
        for i in range(1100):
            await alice.send(WakuMessage(payload=str(i).encode(), content_topic=A))
        assert len(drain(recv)) == 1024


async def test_jitter_reorders_messages_the_same_way_for_a_seed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def order(seed: int) -> list[str]:
        net = MemoryNetwork(now_ns=virtual_ns, seed=seed)
        async with trio.open_nursery() as nursery:
            await nursery.start(net.run)
            alice, bob = net.transport("alice"), net.transport("bob")
            await bob.subscribe([A])
            net.add_fault(Fault(sender="alice", delay=1.0, jitter=5.0))
            async with bob.incoming() as recv:
                for i in range(20):
                    await alice.send(msg(str(i)))
                got = [(await recv.receive()).message.payload.decode() for _ in range(20)]
            nursery.cancel_scope.cancel()
        return got

    first = await order(11)
    assert first != [str(i) for i in range(20)] and sorted(first, key=int) == [
        str(i) for i in range(20)
    ]
    assert await order(11) == first
