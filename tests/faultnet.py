"""Fault scenarios on in-process nodes: a partition between two halves, a lossy link.

Used by the quick cases (tests/integration/test_faults.py) and the long runner
(bench/fault_runner.py), with other counts and retry policies.

Theory of operation
-------------------
*Partition* (:func:`partition_heal`): four service nodes in two halves, A1-A2
listening on 127.0.0.2 and B1-B2 on 127.0.0.3 (B1 peers A1, B2 peers B1 and
A2). :class:`Partition` cuts the halves apart in process: every host of a half
(its service nodes and its client's light node) gets the other half's address
on its libp2p connection gate, so no dial across succeeds (static-peer
redials, the auto-connector, peer exchange), and the connections that cross
are closed; :meth:`Partition.heal` lifts the gate. Alice's light node uses
A1/A2, Bob's B1/B2. Texts sent each way during the partition stay in their
half (asserted); after the heal the nodes relink (the B side redials with its
1 s..60 s backoff) and the clients converge by their outboxes' re-sends (an
undelivered text is re-sent 30 s after the network took it, then 60 s, ...;
store resume between service nodes runs only at a node's start).

*Lossy link* (:func:`lossy_link`): Alice's light node (:class:`LossyLightNode`)
loses every tenth message pushed to it by filter, and every tenth send: the
request lost (the node never sees it) or, alternately, the answer lost (the
node took it, Alice sees a failure and sends again: the network carries it
twice). Deterministic, so every run loses some. Texts go both ways.

Both end with each text exactly once on each side, in send order, delivered.
Waiting is on client events (:func:`tests.chat_fixtures.wait_for`) with deadlines.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio
from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee
from libp2p.peer.id import ID
from multiaddr import Multiaddr

from boxless.chat.outbox import RetryPolicy
from boxless.client.core import Client
from boxless.errors import NetworkError
from boxless.node.config import NodeConfig
from boxless.node.light import LightNode, SendResult
from boxless.node.service import WakuNode
from boxless.waku.message import WakuMessage
from tests.chat_fixtures import befriend, make_account, running_client, start_service, wait_for

FAST_RETRIES = RetryPolicy(initial=0.5, cap=2.0, resend_if_undelivered_after=2.0, resend_cap=4.0)
"""For the quick tests: re-send an undelivered text after 2 s (production: 30 s)."""

HALF_A, HALF_B = "127.0.0.2", "127.0.0.3"
"""The loopback address each half listens on (clients stay on 127.0.0.1)."""


class Partition:
    """Cut and heal the link between two halves of in-process nodes.

    Each half's service nodes listen on their own loopback address. :meth:`cut`
    adds the other half's address to every host's libp2p connection gate (the
    swarm refuses to dial it: static-peer redials, the auto-connector and peer
    exchange all fail) and closes the connections that cross; :meth:`heal`
    takes the addresses off. A client's light node is gated like its half.
    ``relinked`` is set when a connection crosses again after a heal.
    """

    def __init__(self, half_a: list[IHost], half_b: list[IHost]) -> None:
        self.halves = ((half_a, HALF_B), (half_b, HALF_A))
        self.ids = ({h.get_id() for h in half_a}, {h.get_id() for h in half_b})
        self.relinked = trio.Event()
        self.is_cut = False
        for host in half_a:
            host.get_network().register_notifee(_Crossing(self, self.ids[1]))

    async def cut(self) -> None:
        self.is_cut = True
        for (hosts, other), other_ids in zip(self.halves, reversed(self.ids), strict=True):
            for host in hosts:
                host.get_network().connection_gate.add_to_deny_list(other)
                for peer in list(host.get_network().connections):
                    if peer in other_ids:
                        await host.disconnect(peer)

    def heal(self) -> None:
        self.is_cut = False
        self.relinked = trio.Event()
        for hosts, other in self.halves:
            for host in hosts:
                host.get_network().connection_gate.remove_from_deny_list(other)


class _Crossing(INotifee):
    """Sets the partition's ``relinked`` when a host of one half connects to the other."""

    def __init__(self, partition: Partition, others: set[ID]) -> None:
        self.partition, self.others = partition, others

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        if conn.muxed_conn.peer_id in self.others and not self.partition.is_cut:
            self.partition.relinked.set()

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        return None

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None


async def start_on(
    nursery: trio.Nursery, base: Path, name: str, ip: str, peers: tuple[str, ...] = ()
) -> WakuNode:
    """:func:`tests.chat_fixtures.start_service`, listening on ``ip``."""
    config = NodeConfig(
        base / name,
        (f"/ip4/{ip}/tcp/0",),
        peers=peers,
        store=True,
        filter=True,
        lightpush=True,
        store_resume=bool(peers),
    )
    node: WakuNode = await nursery.start(WakuNode(config).run)
    return node


def texts_from(client: Client, other: bytes) -> list[str]:
    return [m.text for m in client.messages(other, 500) if not m.outgoing]


def undelivered(client: Client, other: bytes) -> list[str]:
    return [
        m.text
        for m in client.messages(other, 500)
        if m.outgoing and m.state not in ("delivered", "read")
    ]


async def converge(
    alice: Client, bob: Client, sent: dict[str, list[str]], timeout: float
) -> tuple[float, float]:
    """Wait until each side has every text sent to it, then until every text is
    delivered; return the seconds each took. Then check: exactly once, in order."""
    t0 = trio.current_time()
    await wait_for(bob, lambda: set(sent["alice"]) <= set(texts_from(bob, alice.me)), timeout)
    await wait_for(alice, lambda: set(sent["bob"]) <= set(texts_from(alice, bob.me)), timeout)
    arrived = trio.current_time() - t0
    for c, o in ((alice, bob), (bob, alice)):
        await wait_for(c, lambda c=c, o=o: not undelivered(c, o.me), timeout)  # type: ignore[misc]
    delivered = trio.current_time() - t0
    for c, o, name in ((alice, bob, "bob"), (bob, alice, "alice")):
        got = texts_from(c, o.me)
        assert got == sent[name], f"from {name}: {len(got)} of {len(sent[name])}, or twice/order"
        mine = [m.text for m in c.messages(o.me, 500) if m.outgoing]
        assert mine == sent["alice" if name == "bob" else "bob"]
    return arrived, delivered


async def send_both_ways(
    alice: Client, bob: Client, sent: dict[str, list[str]], texts: int, tag: str
) -> None:
    for i in range(texts):
        for c, o, name in ((alice, bob, "alice"), (bob, alice, "bob")):
            text = f"{tag} {i:03d} from {name}"
            await c.send_text(o.me, text)
            sent[name].append(text)


# -- partition -------------------------------------------------------------------------------


@dataclass
class PartitionStats:
    before: int = 0
    during: int = 0
    after: int = 0
    cut_s: float = 0.0
    relinked_s: float = 0.0
    converged_s: float = 0.0
    delivered_s: float = 0.0
    arrivals_s: list[float] = field(default_factory=list)  # each text's, from the heal


@asynccontextmanager
async def halves(base: Path) -> AsyncIterator[list[WakuNode]]:
    """A1, A2 on :data:`HALF_A`, B1, B2 on :data:`HALF_B`; B1 peers A1, B2 peers B1 and A2."""
    async with trio.open_nursery() as nursery:
        a1 = await start_on(nursery, base, "a1", HALF_A)
        a2 = await start_on(nursery, base, "a2", HALF_A, (a1.addrs()[0],))
        b1 = await start_on(nursery, base, "b1", HALF_B, (a1.addrs()[0],))
        b2 = await start_on(nursery, base, "b2", HALF_B, (b1.addrs()[0], a2.addrs()[0]))
        yield [a1, a2, b1, b2]
        nursery.cancel_scope.cancel()


def _light_host(client: Client) -> IHost:
    node = client.transport.node  # type: ignore[attr-defined]
    assert isinstance(node, LightNode)
    return node.host


async def partition_heal(
    base: Path, texts: int, *, policy: RetryPolicy | None = None, timeout: float = 180
) -> PartitionStats:
    """The partition case (module docstring); ``texts`` each way during the cut."""
    stats = PartitionStats(before=3, during=texts, after=3)
    for name in ("alice", "bob"):
        make_account(base / name, name.title()).close()
    async with AsyncExitStack() as stack:
        a1, a2, b1, b2 = await stack.enter_async_context(halves(base))
        alice = await stack.enter_async_context(
            running_client(base / "alice", [a1.addrs()[0], a2.addrs()[0]])
        )
        bob = await stack.enter_async_context(
            running_client(base / "bob", [b1.addrs()[0], b2.addrs()[0]])
        )
        for c in (alice, bob):
            if policy is not None:
                c.conversations.outbox.policy = policy
        partition = Partition(
            [a1.host, a2.host, _light_host(alice)], [b1.host, b2.host, _light_host(bob)]
        )
        with trio.fail_after(timeout):
            await befriend(alice, bob)
        sent: dict[str, list[str]] = {"alice": [], "bob": []}
        await send_both_ways(alice, bob, sent, stats.before, "before")
        await converge(alice, bob, sent, timeout)

        t_cut = trio.current_time()
        await partition.cut()
        await send_both_ways(alice, bob, sent, texts, "during")
        for c, o in ((alice, bob), (bob, alice)):  # each half took its side's texts
            await wait_for(
                c,
                lambda c=c, o=o: all(  # type: ignore[misc]
                    m.state != "queued" for m in c.messages(o.me, 500) if m.outgoing
                ),
                timeout,
            )
        crossed = [t for t in texts_from(bob, alice.me) if t.startswith("during")]
        crossed += [t for t in texts_from(alice, bob.me) if t.startswith("during")]
        assert not crossed, f"texts crossed the partition: {crossed[:5]}"
        t_heal, heal_ms = trio.current_time(), time.time() * 1000
        stats.cut_s = t_heal - t_cut
        partition.heal()
        with trio.fail_after(timeout):
            await partition.relinked.wait()
        stats.relinked_s = trio.current_time() - t_heal
        arrived, delivered = await converge(alice, bob, sent, timeout)
        stats.converged_s = trio.current_time() - t_heal - (delivered - arrived)
        stats.delivered_s = trio.current_time() - t_heal
        stats.arrivals_s = sorted(
            ((m.received_at_ms or 0) - heal_ms) / 1000
            for c, o in ((alice, bob), (bob, alice))
            for m in c.messages(o.me, 500)
            if not m.outgoing and m.text.startswith("during")
        )
        await send_both_ways(alice, bob, sent, stats.after, "after")
        await converge(alice, bob, sent, timeout)
    return stats


# -- a lossy link ----------------------------------------------------------------------------


class LossyLightNode(LightNode):
    """A light node on a bad link: every tenth message pushed by filter never arrives,
    and every tenth send fails (alternately before and after the node took it).
    Off until :attr:`lossy` is set."""

    lossy = False
    seen = 0
    sends = 0
    dropped_in = 0
    dropped_requests = 0
    dropped_answers = 0

    def _deliver(self, topic: str, msg: WakuMessage, via: str) -> None:
        if self.lossy and via == "filter":
            self.seen += 1
            if self.seen % 10 == 0:
                self.dropped_in += 1
                return
        super()._deliver(topic, msg, via)

    async def send(self, msg: WakuMessage) -> SendResult:
        if not self.lossy:
            return await super().send(msg)
        self.sends += 1
        if self.sends % 20 == 10:
            self.dropped_requests += 1
            raise NetworkError("lossy link: the request was lost")
        result = await super().send(msg)
        if self.sends % 20 == 0:
            self.dropped_answers += 1
            raise NetworkError("lossy link: the answer was lost")
        return result


@dataclass
class LossyStats:
    texts: int = 0
    dropped_in: int = 0
    dropped_requests: int = 0
    dropped_answers: int = 0
    converged_s: float = 0.0
    delivered_s: float = 0.0


async def lossy_link(
    base: Path, texts: int, *, policy: RetryPolicy | None = None, timeout: float = 180
) -> LossyStats:
    """The lossy-link case (module docstring): ``texts`` each way over Alice's bad link."""
    stats = LossyStats(texts=texts)
    for name in ("alice", "bob"):
        make_account(base / name, name.title()).close()
    async with trio.open_nursery() as nursery, AsyncExitStack() as stack:
        s1 = await start_service(nursery, base, "s1")
        s2 = await start_service(nursery, base, "s2", peers=(s1.addrs()[0],))
        a1, a2 = s1.addrs()[0], s2.addrs()[0]
        alice = await stack.enter_async_context(
            running_client(base / "alice", [a1, a2], LossyLightNode)
        )
        bob = await stack.enter_async_context(running_client(base / "bob", [a2, a1]))
        for c in (alice, bob):
            if policy is not None:
                c.conversations.outbox.policy = policy
        with trio.fail_after(timeout):
            await befriend(alice, bob)
        node = alice.transport.node  # type: ignore[attr-defined]
        assert isinstance(node, LossyLightNode)
        node.lossy = True
        sent: dict[str, list[str]] = {"alice": [], "bob": []}
        t0 = time.monotonic()
        await send_both_ways(alice, bob, sent, texts, "lossy")
        arrived, _ = await converge(alice, bob, sent, timeout)
        stats.converged_s = arrived
        stats.delivered_s = time.monotonic() - t0
        stats.dropped_in = node.dropped_in
        stats.dropped_requests = node.dropped_requests
        stats.dropped_answers = node.dropped_answers
        nursery.cancel_scope.cancel()
    return stats
