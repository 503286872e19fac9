"""Keeping connections: static peers with reconnect, and the metadata handshake.

Theory of operation: py-libp2p tells us about connections through a notifee
whose callbacks run inside the swarm; we only push peer ids into bounded
channels there and do the work (metadata request, disconnects, redials) in
tasks of our own nursery. A static peer gets one task that dials it, waits
until it disconnects, and redials with exponential backoff (1 s doubling to
60 s); those dials skip py-libp2p's 60 s negative cache (``libp2p_shims.redial``),
so a peer that restarts is back by our next try. On every new connection,
either side asks the other's metadata; a peer of another cluster is
disconnected and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import multiaddr
import trio
from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr

from boxless._trio_compat import TaskStatus
from boxless.errors import ConfigError, DecodeError, NetworkError
from boxless.node.libp2p_shims import ADDRESS_ERRORS, DIAL_ERRORS, redial
from boxless.node.metrics import NodeMetrics
from boxless.node.penalties import PenaltyBox
from boxless.node.streams import (
    read_request,
    reply_and_close,
    request,
    reset_quietly,
)
from boxless.waku import metadata as md

logger = logging.getLogger(__name__)

DIAL_TIMEOUT = 10.0
BACKOFF_MIN = 1.0
BACKOFF_MAX = 60.0


def parse_peer(addr: str) -> PeerInfo:
    """Parse ``/ip4/.../tcp/N[/ws]/p2p/<id>`` into a PeerInfo, or say what's wrong."""
    try:
        return info_from_p2p_addr(multiaddr.Multiaddr(addr))
    except ADDRESS_ERRORS as exc:
        raise ConfigError(
            f"bad peer address {addr!r}: expected /ip4/HOST/tcp/PORT[/ws]/p2p/PEER_ID ({exc})"
        ) from exc


class _ConnectionEvents(INotifee):
    """Forwards connect/disconnect to channels; never blocks the swarm."""

    def __init__(self, on_connect: Callable[[ID], None], on_disconnect: Callable[[ID], None]):
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._on_connect(conn.muxed_conn.peer_id)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._on_disconnect(conn.muxed_conn.peer_id)

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None


class Peering:
    """Static peers, reconnects, and the 66/WAKU2-METADATA exchange."""

    def __init__(
        self,
        host: IHost,
        info: md.ClusterInfo,
        metrics: NodeMetrics,
        static_peers: list[PeerInfo],
        on_admitted: Callable[[ID], Awaitable[None]] | None = None,
    ) -> None:
        self.on_admitted = on_admitted
        self.host = host
        self.info = info
        self.metrics = metrics
        self.static_peers = static_peers
        self.peer_metadata: dict[ID, md.ClusterInfo] = {}
        self._disconnected: dict[ID, trio.Event] = {}
        self._new_peers_send, self._new_peers_recv = trio.open_memory_channel[ID](256)
        self.connected_event = trio.Event()
        self.penalties = PenaltyBox()
        self._gone_waiters: dict[ID, list[trio.Event]] = {}

    def is_connected(self, peer_id: ID) -> bool:
        return bool(self.host.get_network().get_connections(peer_id))

    async def wait_disconnected(self, peer_id: ID) -> None:
        """Return once we have no connection left to ``peer_id``."""
        if not self.is_connected(peer_id):
            return
        event = trio.Event()
        self._gone_waiters.setdefault(peer_id, []).append(event)
        await event.wait()

    async def wait_connected(self, peer_id: ID) -> None:
        """Return once we are connected to ``peer_id`` (bounded by the caller)."""
        while not self.is_connected(peer_id):  # noqa: ASYNC110  (no per-peer connect event)
            await trio.sleep(0.05)

    async def violation(self, peer_id: ID, protocol: str) -> None:
        """Count malformed input from ``peer_id``; disconnect it once it crosses the line."""
        self.metrics.protocol_violations.labels(protocol).inc()
        if self.penalties.record(peer_id, trio.current_time()):
            logger.warning("disconnecting %s: repeated malformed %s input", peer_id, protocol)
            await self.host.disconnect(peer_id)

    # -- connection events (called from the swarm) --
    def _on_connect(self, peer_id: ID) -> None:
        self.connected_event.set()
        try:
            self._new_peers_send.send_nowait(peer_id)
        except trio.WouldBlock:
            logger.warning("metadata queue full; skipping handshake with %s", peer_id)

    def _on_disconnect(self, peer_id: ID) -> None:
        if not self.host.get_network().get_connections(peer_id):
            self.peer_metadata.pop(peer_id, None)
            event = self._disconnected.get(peer_id)
            if event is not None:
                event.set()
            for waiter in self._gone_waiters.pop(peer_id, []):
                waiter.set()

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve metadata and keep static peers connected until cancelled."""
        self.host.set_stream_handler(md.METADATA_PROTOCOL_ID, self._serve_metadata)  # type: ignore[arg-type]
        self.host.get_network().register_notifee(
            _ConnectionEvents(self._on_connect, self._on_disconnect)
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._handshake_loop)
            for peer in self.static_peers:
                nursery.start_soon(self._keep_connected, peer)
            task_status.started()

    async def _keep_connected(self, peer: PeerInfo) -> None:
        backoff = BACKOFF_MIN
        while True:
            event = self._disconnected[peer.peer_id] = trio.Event()
            if not self.host.get_network().get_connections(peer.peer_id):
                try:
                    with trio.fail_after(DIAL_TIMEOUT):
                        await redial(self.host, peer)  # paced by our backoff, not the cache
                except DIAL_ERRORS as exc:
                    logger.info(
                        "dial %s failed (%s); retrying in %.0fs", peer.peer_id, exc, backoff
                    )
                    await trio.sleep(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
                    continue
                logger.info("connected to static peer %s", peer.peer_id)
            backoff = BACKOFF_MIN
            await event.wait()
            logger.info("static peer %s disconnected", peer.peer_id)

    async def _handshake_loop(self) -> None:
        async with trio.open_nursery() as nursery:
            async for peer_id in self._new_peers_recv:
                if self.penalties.is_banned(peer_id, trio.current_time()):
                    logger.info("refusing banned peer %s", peer_id)
                    nursery.start_soon(self.host.disconnect, peer_id)
                elif peer_id not in self.peer_metadata:
                    nursery.start_soon(self._ask_metadata, peer_id)

    async def _ask_metadata(self, peer_id: ID) -> None:
        try:
            reply = await request(
                self.host,
                peer_id,
                [md.METADATA_PROTOCOL_ID],
                md.encode_request(self.info),
                max_response=md.MAX_METADATA_SIZE,
            )
            remote = md.decode_response(reply)
        except NetworkError as exc:
            # A peer without the metadata protocol (e.g. a plain libp2p peer) is usable.
            logger.debug("no metadata from %s: %s", peer_id, exc)
            return
        except DecodeError as exc:
            logger.info("bad metadata from %s: %s", peer_id, exc)
            await self.violation(peer_id, "metadata")
            return
        await self._admit(peer_id, remote)

    async def _serve_metadata(self, stream: INetStream) -> None:
        peer_id = stream.muxed_conn.peer_id
        data = await read_request(stream, md.MAX_METADATA_SIZE, "metadata", self.violation)
        if data is None:
            return
        try:
            remote = md.decode_request(data)
        except DecodeError as exc:
            logger.info("bad metadata request from %s: %s", peer_id, exc)
            await reset_quietly(stream)
            await self.violation(peer_id, "metadata")
            return
        await reply_and_close(stream, md.encode_response(self.info), "metadata")
        await self._admit(peer_id, remote)

    async def _admit(self, peer_id: ID, remote: md.ClusterInfo) -> None:
        if md.is_compatible(self.info.cluster_id or 0, remote):
            first = peer_id not in self.peer_metadata
            self.peer_metadata[peer_id] = remote
            if first and self.on_admitted is not None:
                await self.on_admitted(peer_id)
            return
        self.metrics.cluster_mismatch.inc()
        logger.info(
            "disconnecting %s: cluster %s is not ours (%s)",
            peer_id,
            remote.cluster_id,
            self.info.cluster_id,
        )
        await self.host.disconnect(peer_id)
