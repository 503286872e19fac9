"""An in-memory Waku network for tests: live delivery by content topic, a store, faults.

Theory of operation
-------------------
One :class:`MemoryNetwork` per test stands for the service nodes (relay, store,
filter, light push) that real clients reach. Each client gets a
:class:`MemoryTransport` from :meth:`MemoryNetwork.transport`; it implements
:class:`boxless.client.transport.Transport` exactly, with the semantics of
:class:`~boxless.client.transport.LightTransport` over a
:class:`~boxless.node.light.LightNode` (the default for users):

* **send** validates the message against the relay rules (size, meta,
  timestamp drift against the network's clock, content-topic syntax), hashes
  it over the pubsub topic autosharding gives its content topic (the
  default cluster and shard count of :mod:`boxless.node.config`), keeps it in
  the store unless it is ephemeral, and pushes it to every transport subscribed
  to that content topic at that moment. As on a real service node the sender
  itself is among them: light push hands the message to relay, relay hands
  it to the node's own subscription, and filter pushes it to *every*
  subscriber of the topic (:meth:`boxless.node.filter.FilterService.on_message`
  does not know who pushed it). The answer is ``Sent(accepted, detail, hash)``;
  an offline transport raises :class:`~boxless.errors.NetworkError` as a light
  node with no reachable service peer does.
* **receive**: like a light node, each transport drops a message whose hash it
  has already received (filter and store may both deliver one); a message
  arriving while nobody has :meth:`MemoryTransport.incoming` open is marked
  received all the same (a light node does that too) and is lost to it.
* **store**: messages by content topic, with ``timestamp or received time``,
  queried like store v3 (``time_start`` inclusive; oldest first by timestamp
  then hash, one pubsub topic after another) and by hash. Retention keeps at
  most ``max_stored`` messages (oldest received evicted first) and, with
  ``max_age_ns``, none older than that. Like a light node, ``history`` and
  ``fetch`` yield only messages the transport has not received yet.
* **faults** (:class:`Fault`): loss (a rate drawn from the network's seeded
  :class:`random.Random`, or a predicate) and delay (fixed, plus a seeded
  jitter that reorders messages) on links from one sender
  to one receiver, or to the store (:data:`STORE`: the message never reached
  a store node); a transport may be offline (sends fail, live messages are
  missed but stored) or refusing (sends answered ``accepted=False``);
  :meth:`MemoryNetwork.partition` cuts live links between sets of transports.
  A delayed delivery runs in a task of the network's own nursery (start it
  with ``await nursery.start(network.run)``), so it follows
  ``trio.testing.MockClock``; at delivery time the receiver must still be
  online, subscribed and reachable.

Everything is bounded: the store, each transport's seen set and incoming
channels, subscriptions, and the number of deliveries in flight.

``tests/integration/test_transport_conformance.py`` runs one suite against this
and a :class:`~boxless.client.transport.LightTransport` over a real service
node. Not modelled: the light node's own store catch-up when it first reaches
a service peer (the client catches up itself), several service peers and
failover, relay's mesh (every subscriber is one hop away), and rate limits
(use ``refusing``).
"""

from __future__ import annotations

import collections
import logging
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from boxless._trio_compat import TaskStatus
from boxless.client.transport import Incoming, Sent, Transport
from boxless.errors import NetworkError, UsageError
from boxless.fanout import Fanout
from boxless.waku.message import MAX_TIMESTAMP_DRIFT_NS, WakuMessage, message_hash, validate
from boxless.waku.sharding import DEFAULT_CLUSTER_ID, DEFAULT_NUM_SHARDS, pubsub_topic_for

__all__ = ["STORE", "Fault", "MemoryNetwork", "MemoryTransport", "NetworkStats"]

logger = logging.getLogger(__name__)

STORE = "store"
"""The receiver name of the store in a :class:`Fault`."""

CATCH_UP_MARGIN_NS = 60 * 10**9  # what a light node re-reads on reconnecting
SEEN_CAPACITY = 20_000  # as boxless.node.light
PAGE_SIZE = 100
MAX_TOPICS = 10_000
INCOMING_BUFFER = 1024

Drop = Callable[[WakuMessage, str, str], bool]
"""``drop(message, sender, receiver)``: True to lose this message on this link."""


@dataclass(frozen=True, slots=True)
class Fault:
    """Loss and delay on the links that match: ``sender`` and ``receiver`` are
    transport names (``None``: any transport; the store is matched only by
    :data:`STORE`), ``content_topic`` narrows it to one topic. ``loss`` is a
    probability; ``drop`` decides per message; ``delay`` is in seconds, plus up
    to ``jitter`` seconds drawn per message (so messages overtake each other)."""

    sender: str | None = None
    receiver: str | None = None
    content_topic: str | None = None
    loss: float = 0.0
    drop: Drop | None = None
    delay: float = 0.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss <= 1.0:
            raise UsageError(f"loss is a probability, got {self.loss}")
        if self.delay < 0 or self.jitter < 0:
            raise UsageError(f"delay and jitter must not be negative: {self.delay}, {self.jitter}")

    def matches(self, msg: WakuMessage, sender: str, receiver: str) -> bool:
        if self.sender is not None and self.sender != sender:
            return False
        if self.content_topic is not None and self.content_topic != msg.content_topic:
            return False
        if receiver == STORE:
            return self.receiver == STORE
        return self.receiver is None or self.receiver == receiver


@dataclass(slots=True)
class NetworkStats:
    """What the network did, for assertions."""

    sent: int = 0
    stored: int = 0
    evicted: int = 0
    delivered: int = 0
    lost: int = 0
    duplicates: int = 0
    late: int = 0  # delayed deliveries whose receiver went away meanwhile
    overflow: int = 0  # deliveries dropped because max_in_flight were delayed already


@dataclass(frozen=True, slots=True)
class _Stored:
    pubsub_topic: str
    message: WakuMessage
    message_hash: bytes
    timestamp: int


@dataclass(slots=True)
class _Store:
    """The network's message store (sans-IO): by content topic, bounded."""

    max_stored: int
    max_age_ns: int | None
    by_topic: dict[str, dict[bytes, _Stored]] = field(default_factory=dict)
    order: OrderedDict[bytes, str] = field(default_factory=OrderedDict)  # received order

    def put(self, row: _Stored, now_ns: int) -> tuple[bool, int]:
        """Keep ``row``; return (new, how many were evicted)."""
        if row.message_hash in self.order:
            return False, 0
        self.by_topic.setdefault(row.message.content_topic, {})[row.message_hash] = row
        self.order[row.message_hash] = row.message.content_topic
        return True, self.prune(now_ns)

    def prune(self, now_ns: int) -> int:
        evicted = 0
        while len(self.order) > self.max_stored:
            self._evict_oldest()
            evicted += 1
        if self.max_age_ns is not None:
            cutoff = now_ns - self.max_age_ns
            for digest, ct in list(self.order.items()):
                if self.by_topic[ct][digest].timestamp < cutoff:
                    self._evict(digest)
                    evicted += 1
        return evicted

    def _evict_oldest(self) -> None:
        digest = next(iter(self.order))
        self._evict(digest)

    def _evict(self, digest: bytes) -> None:
        ct = self.order.pop(digest)
        rows = self.by_topic[ct]
        del rows[digest]
        if not rows:
            del self.by_topic[ct]

    def query(self, content_topics: Iterable[str], since_ns: int | None) -> list[_Stored]:
        """Rows on ``content_topics`` with timestamp >= ``since_ns``, by timestamp then hash."""
        rows = [
            row
            for ct in set(content_topics)
            for row in self.by_topic.get(ct, {}).values()
            if since_ns is None or row.timestamp >= since_ns
        ]
        rows.sort(key=lambda r: (r.timestamp, r.message_hash))
        return rows

    def by_hash(self, content_topic: str, hashes: Iterable[bytes]) -> list[_Stored]:
        rows = self.by_topic.get(content_topic, {})
        return [rows[h] for h in dict.fromkeys(hashes) if h in rows]


class MemoryNetwork:
    """The network of one test. Start :meth:`run` before delayed deliveries.

    :param now_ns: the network's wall clock (Unix ns) for timestamp checks,
        store times and retention; pass one derived from ``trio.current_time()``
        under a MockClock.
    :param max_drift_ns: the timestamp rule's bound (``None``: not checked).
    :param seed: of the random source that decides ``Fault.loss``.
    """

    def __init__(
        self,
        *,
        now_ns: Callable[[], int] = time.time_ns,
        cluster_id: int = DEFAULT_CLUSTER_ID,
        num_shards: int = DEFAULT_NUM_SHARDS,
        max_drift_ns: int | None = MAX_TIMESTAMP_DRIFT_NS,
        max_stored: int = 100_000,
        max_age_ns: int | None = None,
        max_in_flight: int = 10_000,
        seed: int = 0,
    ) -> None:
        if max_stored < 1 or max_in_flight < 1:
            raise UsageError("max_stored and max_in_flight must be at least 1")
        self.now_ns = now_ns
        self.cluster_id = cluster_id
        self.num_shards = num_shards
        self.max_drift_ns = max_drift_ns
        self.max_in_flight = max_in_flight
        self.random = random.Random(seed)
        self.stats = NetworkStats()
        self.faults: list[Fault] = []
        self._store = _Store(max_stored, max_age_ns)
        self._transports: dict[str, MemoryTransport] = {}
        self._sides: dict[str, int] = {}
        self._nursery: trio.Nursery | None = None
        self._in_flight = 0

    # -- lifecycle ----------------------------------------------------------------

    async def run(
        self, *, task_status: TaskStatus[MemoryNetwork] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Own the tasks of delayed deliveries until cancelled (cancelling loses
        the deliveries still in flight, like a network that stops)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                task_status.started(self)
                await trio.sleep_forever()
            finally:
                self._nursery = None

    def transport(self, name: str) -> MemoryTransport:
        """A new client connection called ``name`` (unique while it is open)."""
        if name == STORE or name in self._transports:
            raise UsageError(f"a transport called {name!r} is already on this network")
        transport = MemoryTransport(self, name)
        self._transports[name] = transport
        return transport

    def _close(self, transport: MemoryTransport) -> None:
        if self._transports.get(transport.name) is transport:
            del self._transports[transport.name]

    def pubsub_topic(self, content_topic: str) -> str:
        return pubsub_topic_for(content_topic, self.cluster_id, self.num_shards)

    # -- faults -------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> Fault:
        """Apply ``fault`` from now on; :meth:`remove_fault` undoes it."""
        self.faults.append(fault)
        return fault

    def remove_fault(self, fault: Fault) -> None:
        self.faults.remove(fault)

    def partition(self, *sides: Collection[MemoryTransport]) -> None:
        """Cut live links between transports on different ``sides`` (until :meth:`heal`).
        Transports on no side reach everyone; the store stays reachable by all."""
        self._sides = {t.name: i for i, side in enumerate(sides) for t in side}

    def heal(self) -> None:
        self._sides = {}

    def _reachable(self, sender: str, receiver: str) -> bool:
        a, b = self._sides.get(sender), self._sides.get(receiver)
        return a is None or b is None or a == b

    def _link(self, msg: WakuMessage, sender: str, receiver: str) -> float | None:
        """The delay on this link for ``msg``, or None if it is lost."""
        delay = 0.0
        for fault in self.faults:
            if not fault.matches(msg, sender, receiver):
                continue
            if fault.loss and self.random.random() < fault.loss:
                return None
            if fault.drop is not None and fault.drop(msg, sender, receiver):
                return None
            extra = self.random.uniform(0.0, fault.jitter) if fault.jitter else 0.0
            delay = max(delay, fault.delay + extra)
        return delay

    # -- the store ----------------------------------------------------------------

    def stored(self, content_topic: str) -> list[Incoming]:
        """What the store holds on ``content_topic``, oldest first."""
        return [
            Incoming(r.message, r.message_hash) for r in self._store.query([content_topic], None)
        ]

    def _keep(self, row: _Stored) -> None:
        new, evicted = self._store.put(row, self.now_ns())
        self.stats.stored += new
        self.stats.evicted += evicted

    def _query(self, content_topics: Sequence[str], since_ns: int | None) -> list[_Stored]:
        """Store v3 order: one pubsub topic after another, each by timestamp then hash."""
        by_pubsub: dict[str, list[str]] = {}
        for ct in content_topics:
            by_pubsub.setdefault(self.pubsub_topic(ct), []).append(ct)
        return [row for cts in by_pubsub.values() for row in self._store.query(cts, since_ns)]

    def _fetch(self, content_topic: str, hashes: Sequence[bytes]) -> list[_Stored]:
        return self._store.by_hash(content_topic, hashes)

    # -- sending ------------------------------------------------------------------

    def _send(self, sender: MemoryTransport, msg: WakuMessage) -> Sent:
        now = self.now_ns()
        if self.max_drift_ns is None:
            validate(msg, now, max_drift_ns=2**62)
        else:
            validate(msg, now, max_drift_ns=self.max_drift_ns)
        pubsub = self.pubsub_topic(msg.content_topic)
        digest = message_hash(pubsub, msg)
        if sender.refusing is not None:
            return Sent(False, f"refused ({sender.refusing})", digest)
        self.stats.sent += 1
        if not msg.ephemeral and self._link(msg, sender.name, STORE) is not None:
            self._keep(_Stored(pubsub, msg, digest, msg.timestamp or now))
        peers = 0
        for receiver in list(self._transports.values()):
            if not receiver.listens_to(msg.content_topic):
                continue
            if not self._reachable(sender.name, receiver.name):
                continue
            peers += receiver is not sender
            delay = self._link(msg, sender.name, receiver.name)
            if delay is None:
                self.stats.lost += 1
            elif delay > 0:
                self._deliver_later(sender.name, receiver, pubsub, msg, digest, delay)
            else:
                receiver._receive(pubsub, msg, digest)
        return Sent(True, f"relayed to {peers} peers", digest)

    def _deliver_later(
        self,
        sender: str,
        receiver: MemoryTransport,
        pubsub: str,
        msg: WakuMessage,
        digest: bytes,
        delay: float,
    ) -> None:
        if self._nursery is None:
            raise UsageError("a delay needs the network running: await nursery.start(net.run)")
        if self._in_flight >= self.max_in_flight:
            self.stats.overflow += 1
            return
        self._in_flight += 1

        async def later() -> None:
            try:
                await trio.sleep(delay)
            finally:
                self._in_flight -= 1
            if (
                self._transports.get(receiver.name) is receiver
                and receiver.listens_to(msg.content_topic)
                and self._reachable(sender, receiver.name)
            ):
                receiver._receive(pubsub, msg, digest)
            else:
                self.stats.late += 1

        self._nursery.start_soon(later)


class MemoryTransport:
    """One client's connection to a :class:`MemoryNetwork` (a light node's view).

    ``online = False`` takes it off the network; :meth:`set_online` brings it
    back and, like a light node reconnecting to a service peer, delivers what
    the store got on its topics meanwhile. ``refusing`` (a reason) makes the
    network answer its sends with ``accepted=False``.
    """

    def __init__(self, network: MemoryNetwork, name: str) -> None:
        self.network = network
        self.name = name
        self.online = True
        self.refusing: str | None = None
        self.attempts = 0  # calls of send, whatever became of them
        self.attempts_by_topic: collections.Counter[str] = collections.Counter()
        self.content_topics: set[str] = set()
        self.last_received_ns: int | None = None
        self.offline_since_ns: int | None = None
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._listeners: Fanout[Incoming] = Fanout(logger, "message")
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryTransport({self.name!r})"

    def listens_to(self, content_topic: str) -> bool:
        return self.online and not self._closed and content_topic in self.content_topics

    def close(self) -> None:
        """Leave the network (a stopped node); the name is free again."""
        self._closed = True
        self.network._close(self)

    def set_online(self, online: bool, *, catch_up: bool = True) -> None:
        """Go offline, or come back (then, with ``catch_up``, receive what the store
        holds on our topics since the last message we received, less a margin)."""
        if online == self.online:
            return
        self.online = online
        if not online:
            self.offline_since_ns = self.network.now_ns()
            return
        since = (self.last_received_ns or self.offline_since_ns or 0) - CATCH_UP_MARGIN_NS
        self.offline_since_ns = None
        if catch_up:
            for row in self.network._query(sorted(self.content_topics), since):
                self._receive(row.pubsub_topic, row.message, row.message_hash)

    def _check(self) -> None:
        if self._closed:
            raise UsageError(f"transport {self.name!r} is closed")
        if not self.online:
            raise NetworkError("no service peer took the message: offline (memory network)")

    def _mark_seen(self, digest: bytes) -> bool:
        """Remember ``digest``; False if it was seen already."""
        if digest in self._seen:
            return False
        self._seen[digest] = None
        if len(self._seen) > SEEN_CAPACITY:
            self._seen.popitem(last=False)
        return True

    def _receive(self, pubsub: str, msg: WakuMessage, digest: bytes) -> None:
        del pubsub  # one network: the hash already covers it
        if not self._mark_seen(digest):
            self.network.stats.duplicates += 1
            return
        if msg.timestamp:
            self.last_received_ns = max(self.last_received_ns or 0, msg.timestamp)
        self.network.stats.delivered += 1
        self._listeners.publish(Incoming(msg, digest))

    # -- the Transport protocol ----------------------------------------------------

    async def send(self, msg: WakuMessage) -> Sent:
        """Push ``msg`` to the network. Raises :class:`NetworkError` when offline,
        :class:`~boxless.errors.ValidationError` for a message relay would refuse."""
        await trio.lowlevel.checkpoint()
        self.attempts += 1
        self.attempts_by_topic[msg.content_topic] += 1
        self._check()
        return self.network._send(self, msg)

    async def subscribe(self, content_topics: Sequence[str]) -> None:
        """Receive these content topics live from now on."""
        await trio.lowlevel.checkpoint()
        new = set(content_topics) - self.content_topics
        if len(self.content_topics) + len(new) > MAX_TOPICS:
            raise UsageError(f"at most {MAX_TOPICS} content topics per transport")
        self.content_topics |= new

    @asynccontextmanager
    async def incoming(self) -> AsyncIterator[trio.MemoryReceiveChannel[Incoming]]:
        """Every message received while the context is open (bounded: a listener
        that falls ``INCOMING_BUFFER`` behind misses messages, as with a node)."""
        async with self._listeners.listen(INCOMING_BUFFER) as recv:
            yield recv

    async def history(
        self, content_topics: Sequence[str], since_ns: int | None
    ) -> AsyncIterator[Incoming]:
        """What the store holds on ``content_topics`` since ``since_ns`` (inclusive),
        in store order, less what we received already; one checkpoint per page."""
        self._check()
        rows = self.network._query(content_topics, since_ns)
        async for item in self._unseen(rows):
            yield item

    async def fetch(self, content_topic: str, hashes: Sequence[bytes]) -> AsyncIterator[Incoming]:
        """The stored messages with these hashes, less what we received already."""
        self._check()
        async for item in self._unseen(self.network._fetch(content_topic, hashes)):
            yield item

    async def _unseen(self, rows: list[_Stored]) -> AsyncIterator[Incoming]:
        for i, row in enumerate(rows):
            if i % PAGE_SIZE == 0:
                await trio.lowlevel.checkpoint()
                self._check()
            if self._mark_seen(row.message_hash):
                yield Incoming(row.message, row.message_hash)

    def status(self) -> dict[str, object]:
        peers = sum(1 for t in self.network._transports.values() if t.online) - 1
        return {
            "mode": "memory",
            "connected": self.online and not self._closed,
            "peers": max(peers, 0) if self.online else 0,
            "topics": len(self.content_topics),
        }


if TYPE_CHECKING:

    def _conforms(transport: MemoryTransport) -> Transport:
        return transport  # mypy checks MemoryTransport against the Protocol here
