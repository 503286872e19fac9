"""How the client reaches the network: one interface, two node modes.

The client core only needs four things from the network: send a message on a
content topic (and learn whether the network took it), receive what arrives
on its content topics, read history from store nodes, and know whether it is
connected. :class:`LightTransport` does that over a :class:`LightNode` (light
push, filter, store — the default for users); :class:`RelayTransport` over a
full :class:`WakuNode` that relays (``boxless up --relay``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from boxless.errors import BoxlessError, NetworkError
from boxless.node.light import LightNode
from boxless.node.service import WakuNode
from boxless.node.store_client import StoreQuerySpec, iter_pages
from boxless.waku.message import WakuMessage, message_hash
from boxless.waku.sharding import pubsub_topic_for


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message for one of our content topics, live or from history."""

    message: WakuMessage
    message_hash: bytes


@dataclass(frozen=True, slots=True)
class Sent:
    """The network's answer to a send: ``accepted`` means a relay took it."""

    accepted: bool
    detail: str
    message_hash: bytes


class Transport(Protocol):
    async def send(self, msg: WakuMessage) -> Sent: ...

    async def subscribe(self, content_topics: Sequence[str]) -> None: ...

    def incoming(self) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[Incoming]]: ...

    def history(
        self, content_topics: Sequence[str], since_ns: int | None
    ) -> AsyncIterator[Incoming]: ...

    def fetch(self, content_topic: str, hashes: Sequence[bytes]) -> AsyncIterator[Incoming]:
        """The messages with these hashes that a store holds (repair by hint)."""
        ...

    def status(self) -> dict[str, object]: ...


@asynccontextmanager
async def _incoming(
    source: AbstractAsyncContextManager[trio.MemoryReceiveChannel[Any]],
    keep: Callable[[Any], bool],
) -> AsyncIterator[trio.MemoryReceiveChannel[Incoming]]:
    """A node's received messages (either kind) as :class:`Incoming`, filtered."""
    send, recv = trio.open_memory_channel[Incoming](1024)
    async with source as messages, trio.open_nursery() as nursery:

        async def pump() -> None:
            async for item in messages:
                if keep(item):
                    await send.send(Incoming(item.message, item.message_hash))

        nursery.start_soon(pump)
        try:
            yield recv
        finally:
            nursery.cancel_scope.cancel()


class LightTransport:
    """The client over a light node (the default)."""

    def __init__(self, node: LightNode) -> None:
        self.node = node

    async def send(self, msg: WakuMessage) -> Sent:
        res = await self.node.send(msg)
        detail = (
            f"relayed to {res.relay_peers} peers"
            if res.accepted
            else f"refused ({res.status}: {res.description})"
        )
        return Sent(res.accepted, detail, res.message_hash)

    async def subscribe(self, content_topics: Sequence[str]) -> None:
        await self.node.subscribe(content_topics)

    def incoming(self) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[Incoming]]:
        return _incoming(self.node.messages(), lambda item: True)

    async def history(
        self, content_topics: Sequence[str], since_ns: int | None
    ) -> AsyncIterator[Incoming]:
        async for item in self.node.history(content_topics, since_ns):
            yield Incoming(item.message, item.message_hash)

    async def fetch(self, content_topic: str, hashes: Sequence[bytes]) -> AsyncIterator[Incoming]:
        async for item in self.node.fetch(content_topic, hashes):
            yield Incoming(item.message, item.message_hash)

    def status(self) -> dict[str, object]:
        return {
            "mode": "light",
            "service_peer": str(self.node.current) if self.node.current else None,
            "service_peers": len(self.node.service_peers),
            "peers": len(self.node.host.get_connected_peers()),
            "connected": self.node.current is not None,
        }


class RelayTransport:
    """The client over a full relay node."""

    def __init__(self, node: WakuNode) -> None:
        self.node = node
        self.content_topics: set[str] = set()

    def _topic(self, content_topic: str) -> str:
        return pubsub_topic_for(
            content_topic, self.node.config.cluster_id, self.node.config.num_shards
        )

    async def send(self, msg: WakuMessage) -> Sent:
        res = await self.node.publish(self._topic(msg.content_topic), msg)
        if res.peers:
            return Sent(True, f"relayed to {res.peers} peers", res.message_hash)
        return Sent(False, "no relay peer on this topic yet", res.message_hash)

    async def subscribe(self, content_topics: Sequence[str]) -> None:
        self.content_topics.update(content_topics)

    def incoming(self) -> AbstractAsyncContextManager[trio.MemoryReceiveChannel[Incoming]]:
        return _incoming(
            self.node.messages(), lambda item: item.message.content_topic in self.content_topics
        )

    async def history(
        self, content_topics: Sequence[str], since_ns: int | None
    ) -> AsyncIterator[Incoming]:
        by_topic: dict[str, set[str]] = {}
        for ct in content_topics:
            by_topic.setdefault(self._topic(ct), set()).add(ct)
        specs = [
            StoreQuerySpec(
                pubsub_topic=topic,
                content_topics=tuple(sorted(cts)),
                time_start=since_ns,
                page_size=100,
            )
            for topic, cts in by_topic.items()
        ]
        async for item in self._query(specs):
            yield item

    async def fetch(self, content_topic: str, hashes: Sequence[bytes]) -> AsyncIterator[Incoming]:
        topic = self._topic(content_topic)
        for i in range(0, len(hashes), 100):
            spec = StoreQuerySpec(
                pubsub_topic=topic, message_hashes=tuple(hashes[i : i + 100]), page_size=100
            )
            async for item in self._query([spec]):
                yield item

    async def _query(self, specs: list[StoreQuerySpec]) -> AsyncIterator[Incoming]:
        """Run ``specs`` at the first static peer that answers."""
        errors = []
        for peer in self.node.static_peers:
            try:
                for spec in specs:
                    topic = spec.pubsub_topic or ""
                    async for page in iter_pages(self.node.host, peer.peer_id, spec):
                        for m in page:
                            if m.message is not None:
                                yield Incoming(m.message, message_hash(topic, m.message))
                return
            except BoxlessError as exc:
                errors.append(f"{peer.peer_id}: {exc}")
        if errors:
            raise NetworkError("no store node answered: " + "; ".join(errors))

    def status(self) -> dict[str, object]:
        peers = len(self.node.host.get_connected_peers())
        return {"mode": "relay", "peers": peers, "connected": peers > 0}
