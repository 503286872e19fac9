"""Waku relay (11/WAKU2-RELAY) for a Boxless node: the API the node layer uses.

``WakuRelay`` wraps the py-libp2p adaptation in ``relay_gossipsub`` (read its
docstring for every deviation from py-libp2p) behind a small trio-native API::

    relay = WakuRelay(host)
    async with trio.open_nursery() as nursery:
        await nursery.start(relay.run)
        messages = await relay.subscribe("/waku/2/rs/1/0")
        await relay.publish("/waku/2/rs/1/0", encoded_waku_message)
        async for m in messages:  # RelayMessage(pubsub_topic, data, msg_id, from_peer)
            ...

Data is the encoded WakuMessage; decoding (and rejecting what does not decode,
via ``add_validator``) is the node layer's job. The caller owns the nursery:
``run`` starts py-libp2p's services inside it and stops them when cancelled.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio
from libp2p.abc import IHost
from libp2p.peer.id import ID
from libp2p.pubsub.score import ScoreParams
from libp2p.tools.anyio_service import background_trio_service

from boxless.errors import UsageError
from boxless.node.relay_gossipsub import (
    WAKU_RELAY_PROTOCOL,
    RelayGossipSub,
    RelayMessage,
    RelayMetrics,
    RelayPubsub,
    Validator,
    waku_message_id,
)

__all__ = [
    "WAKU_RELAY_PROTOCOL",
    "RelayMessage",
    "RelayMetrics",
    "RelayNotRunning",
    "Validator",
    "WakuRelay",
    "waku_message_id",
]

if TYPE_CHECKING:  # trio-stubs (pulled in by py-libp2p) shadow trio's own types
    from trio_typing import TaskStatus
else:
    from trio import TaskStatus

logger = logging.getLogger(__name__)


class RelayNotRunning(UsageError):
    """Local misuse: the relay was used before ``run`` started (or after it ended)."""


class WakuRelay:
    """A Waku relay node on a libp2p host.

    :param degree, degree_low, degree_high: gossipsub D, D_lo, D_hi.
    :param heartbeat_interval: seconds between mesh/gossip heartbeats.
    :param score_params: peer scoring; the default penalises invalid messages.
    :param spam_protection: py-libp2p's per-peer 10 msg/s limit (off: Waku uses RLN).
    :param backpressure_timeout: longest a message waits for a full queue or a
        slow subscriber before it is dropped and counted in ``metrics``.
    :param subscription_buffer: messages buffered per subscription channel.
    """

    def __init__(
        self,
        host: IHost,
        *,
        degree: int = 6,
        degree_low: int = 4,
        degree_high: int = 12,
        heartbeat_interval: float = 1.0,
        score_params: ScoreParams | None = None,
        spam_protection: bool = False,
        backpressure_timeout: float = 5.0,
        subscription_buffer: int = 256,
    ) -> None:
        self.host = host
        self.router = RelayGossipSub(
            degree=degree,
            degree_low=degree_low,
            degree_high=degree_high,
            heartbeat_interval=heartbeat_interval,
            score_params=score_params,
            spam_protection=spam_protection,
        )
        self.pubsub = RelayPubsub(host, self.router, backpressure_timeout=backpressure_timeout)
        self.subscription_buffer = subscription_buffer
        self._running = False

    @property
    def metrics(self) -> RelayMetrics:
        """Rejections and last-resort drops since start."""
        return self.pubsub.metrics

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the relay until cancelled; use with ``await nursery.start(relay.run)``.

        Started means the stream handler is registered and the heartbeat runs.
        Cancellation stops py-libp2p's services and closes every subscription.
        """
        try:
            async with background_trio_service(self.pubsub), background_trio_service(self.router):
                self._running = True
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._running = False
            for sinks in self.pubsub.sinks.values():
                for sink in sinks:
                    sink.close()
            self.pubsub.sinks.clear()

    def _check_running(self) -> None:
        if not self._running:
            raise RelayNotRunning("WakuRelay.run() has not started")

    async def subscribe(self, pubsub_topic: str) -> trio.MemoryReceiveChannel[RelayMessage]:
        """Join ``pubsub_topic``; return a channel of the messages that arrive on it.

        Each call returns a new channel; closing it unsubscribes that channel
        only. A subscriber that does not read pushes back on the network (see
        ``backpressure_timeout``). Cancellation may leave the topic joined.
        """
        self._check_running()
        send, receive = trio.open_memory_channel[RelayMessage](self.subscription_buffer)
        self.pubsub.sinks.setdefault(pubsub_topic, []).append(send)
        await self.pubsub.subscribe(pubsub_topic)
        return receive

    async def unsubscribe(self, pubsub_topic: str) -> None:
        """Leave ``pubsub_topic`` (PRUNE the mesh) and close its channels."""
        self._check_running()
        for sink in self.pubsub.sinks.pop(pubsub_topic, []):
            sink.close()
        await self.pubsub.unsubscribe(pubsub_topic)

    async def publish(self, pubsub_topic: str, data: bytes) -> int:
        """Publish ``data`` (an encoded WakuMessage) unsigned on ``pubsub_topic``.

        Returns the number of peers it was queued to (0 if none, or if it was a
        duplicate of a message seen recently). Awaits while the peers' outbound
        queues are full. Local validators run on it too; it is delivered to
        this node's own subscribers, as in go-libp2p.
        """
        self._check_running()
        return await self.pubsub.publish_data(pubsub_topic, data)

    def add_validator(self, pubsub_topic: str | None, validator: Validator) -> None:
        """Add a check ``(topic, data, forwarding_peer) -> bool`` (sync or async).

        ``pubsub_topic=None`` applies it to every topic. A rejected message is
        neither delivered nor forwarded, and counts against the forwarding
        peer's score; enough of them and we stop accepting from (graylist) it.
        """
        self.pubsub.validators.setdefault(pubsub_topic, []).append(validator)

    def remove_validator(self, pubsub_topic: str | None, validator: Validator) -> None:
        """Remove a validator added with ``add_validator``."""
        validators = self.pubsub.validators.get(pubsub_topic, [])
        if validator in validators:
            validators.remove(validator)

    def blacklist(self, peer: ID) -> None:
        """Refuse all relay traffic from ``peer`` and drop its pubsub stream."""
        self.pubsub.add_to_blacklist(peer)

    def mesh_peers(self, pubsub_topic: str) -> set[ID]:
        """Peers in our mesh for ``pubsub_topic`` (empty if not subscribed)."""
        return set(self.router.mesh.get(pubsub_topic, ()))

    def topic_peers(self, pubsub_topic: str) -> set[ID]:
        """Connected relay peers subscribed to ``pubsub_topic``."""
        return set(self.pubsub.peer_topics.get(pubsub_topic, ()))

    def score(self, peer: ID, pubsub_topic: str) -> float:
        """The peer's gossipsub score on ``pubsub_topic``."""
        scorer = self.router.scorer
        return scorer.score(peer, [pubsub_topic]) if scorer is not None else 0.0
