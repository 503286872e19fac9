"""Transport-level fixes to py-libp2p 0.8.1, as small subclasses.

Theory of operation
-------------------
Each class here overrides one py-libp2p behaviour that costs us throughput,
and says which. Nothing is monkeypatched: the host gets these classes through
``muxer_options``, which ``build_host`` passes to ``new_host``, and
``honour_muxer_classes(host)``, which it calls on the new host (and which
also installs the buffered reads below).

Buffered socket reads. Noise reads each frame as two reads from the raw
connection (2-byte length, then body), each a ``recv`` syscall and a trip
through trio's I/O wait. ``BufferedReadConnection`` serves those reads from
up-to-64 KiB socket reads, so one ``recv`` carries every frame that has
arrived; ``BufferedReadUpgrader`` wraps each raw connection in one before
the security handshake.

Muxer classes. ``MuxerMultistream.new_conn`` builds a plain ``Yamux`` whenever
yamux is negotiated, whatever class the muxer options name for it (only other
muxers get the configured class). ``HonouringMuxerMultistream`` builds the
configured class; ``honour_muxer_classes`` puts it in the host's upgrader.

Yamux WINDOW_UPDATE batching. ``YamuxStream.read`` hands receive credit back
to the sender after *every* read (``PY_YAMUX_RELEASE_ON_READ`` defaults on):
one WINDOW_UPDATE frame, hence one Noise frame and one ``send()`` syscall, per
read — about as many frames as the data it acknowledges when messages are
small. go-yamux, yamux-js and rust-yamux return credit only once the
unreturned amount reaches half the window. ``BatchedWindowYamuxStream`` does
the same, keeping py-libp2p's window auto-tuning (the window doubles when
updates come within 4 RTTs). The sender never stalls on it: while less than
half the window is unreturned, it still has at least half the window to send.

py-libp2p builds its streams with the module-level ``YamuxStream`` in two
places (``open_stream`` and ``handle_incoming``), both storing the new stream
in ``Yamux.streams`` straight away; ``BatchedWindowYamux`` makes that table
give each stream our subclass, which adds behaviour but no state.

Redials we schedule. After every address of a peer fails once, the swarm
refuses to dial that peer for 60 s (``_NegativePeerCache``: "recently failed
all addresses (negative cache)"), whoever asks. A restarted service node thus
stayed out of reach for a minute although our own 1 s retries ran; ``redial``
(used by the reconnect loops that own a backoff) forgets that failure first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import multiaddr.exceptions as multiaddr_errors
import trio
from libp2p.abc import IHost, IMuxedConn, IRawConnection, ISecureConn
from libp2p.connection_types import ConnectionType
from libp2p.custom_types import TMuxerOptions, TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.stream_muxer.mplex.mplex import MPLEX_PROTOCOL_ID, Mplex
from libp2p.stream_muxer.muxer_multistream import MuxerMultistream
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux, YamuxStream
from libp2p.transport.upgrader import TransportUpgrader
from multiaddr import Multiaddr

__all__ = [
    "BatchedWindowYamux",
    "BatchedWindowYamuxStream",
    "HonouringMuxerMultistream",
    "honour_muxer_classes",
    "muxer_options",
    "redial",
]


class BatchedWindowYamuxStream(YamuxStream):
    """A yamux stream that returns receive credit in half-window batches."""

    async def _auto_tune_and_send_window_update(self, *, bytes_read: int = 0) -> None:
        # Replaces py-libp2p's per-read WINDOW_UPDATE (see the module docstring).
        # No await before the send: the read-modify-write below is atomic in trio.
        self._pending_recv_release += bytes_read
        if self._pending_recv_release < self.target_recv_window // 2:
            return
        increment, self._pending_recv_release = self._pending_recv_release, 0
        self.recv_window += increment
        buffered = len(self.conn.stream_buffers.get(self.stream_id, b""))
        increment += self._apply_autotune_epoch(buffered)  # may grow the window
        await self.send_window_update(increment)


class _BatchedStreamTable(dict[int, YamuxStream]):
    """``Yamux.streams``, giving every stream stored in it the batching subclass."""

    def __setitem__(self, stream_id: int, stream: YamuxStream) -> None:
        if type(stream) is YamuxStream:
            stream.__class__ = BatchedWindowYamuxStream
        super().__setitem__(stream_id, stream)


class BatchedWindowYamux(Yamux):
    """py-libp2p's Yamux whose streams batch their WINDOW_UPDATE frames."""

    def __init__(
        self,
        secured_conn: ISecureConn,
        peer_id: ID,
        is_initiator: bool | None = None,
        on_close: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        super().__init__(secured_conn, peer_id, is_initiator, on_close)
        self.streams = _BatchedStreamTable()


def muxer_options(prefer_mplex: bool) -> TMuxerOptions:
    """Muxers for ``new_host(muxer_opt=...)``: yamux (batched) and mplex, preferred first.

    Both are always offered: js-waku speaks mplex only, go and nim peers prefer yamux.
    """
    yamux = (TProtocol(YAMUX_PROTOCOL_ID), BatchedWindowYamux)
    mplex = (TProtocol(MPLEX_PROTOCOL_ID), Mplex)
    return dict([mplex, yamux] if prefer_mplex else [yamux, mplex])


RAW_READ_SIZE = 64 * 1024


class TrafficCounter:
    """Bytes a host moved over its raw connections (Noise and muxer framing
    included; TCP/IP headers not), for metrics and the bandwidth benchmark."""

    __slots__ = ("bytes_in", "bytes_out")

    def __init__(self) -> None:
        self.bytes_in = 0
        self.bytes_out = 0


class BufferedReadConnection(IRawConnection):
    """A raw connection whose small reads are served from one large socket read."""

    def __init__(self, conn: IRawConnection, traffic: TrafficCounter | None = None) -> None:
        self._conn = conn
        self.is_initiator = conn.is_initiator
        self._buf = bytearray()
        self._traffic = traffic if traffic is not None else TrafficCounter()

    async def read(self, n: int | None = None) -> bytes:
        # py-libp2p's RawConnection.read(n) is one recv of at most n bytes.
        if not self._buf:
            data = await self._conn.read(RAW_READ_SIZE)
            self._traffic.bytes_in += len(data)
            if n is None or len(data) <= n:
                return data
            self._buf += data
        if n is None or n >= len(self._buf):
            out = bytes(self._buf)
            self._buf.clear()
        else:
            out = bytes(self._buf[:n])
            del self._buf[:n]
        return out

    async def write(self, data: bytes) -> None:
        await self._conn.write(data)
        self._traffic.bytes_out += len(data)

    async def close(self) -> None:
        await self._conn.close()

    def get_remote_address(self) -> tuple[str, int] | None:
        return self._conn.get_remote_address()

    def get_transport_addresses(self) -> list[Multiaddr]:
        return self._conn.get_transport_addresses()

    def get_connection_type(self) -> ConnectionType:
        return self._conn.get_connection_type()


class BufferedReadUpgrader(TransportUpgrader):
    """The swarm's upgrader, securing a ``BufferedReadConnection`` around each raw one."""

    def __init__(self, upstream: TransportUpgrader, traffic: TrafficCounter | None = None) -> None:
        super().__init__({}, {})
        self.traffic = traffic
        self.security_multistream = upstream.security_multistream
        self.muxer_multistream = upstream.muxer_multistream

    async def upgrade_security(
        self, raw_conn: IRawConnection, is_initiator: bool, peer_id: ID | None = None
    ) -> ISecureConn:
        buffered = BufferedReadConnection(raw_conn, self.traffic)
        return await super().upgrade_security(buffered, is_initiator, peer_id)


class HonouringMuxerMultistream(MuxerMultistream):
    """Muxer negotiation that builds the class the options name, yamux included."""

    async def new_conn(self, conn: ISecureConn, peer_id: ID) -> IMuxedConn:
        # Replaces MuxerMultistream.new_conn, which hard-codes ``Yamux(...)``.
        protocol, transport_class = await self._selector.select(
            conn, conn.is_initiator, self.negotiate_timeout
        )
        if issubclass(transport_class, Yamux):
            muxed: IMuxedConn = transport_class(conn, peer_id, is_initiator=conn.is_initiator)
        else:
            muxed = transport_class(conn, peer_id)  # as upstream
        return self._annotate_connection(muxed, conn, protocol)


def honour_muxer_classes(host: IHost, traffic: TrafficCounter | None = None) -> None:
    """Make ``host`` (from ``new_host``, not yet running) use its configured muxer
    classes and buffered reads; count its bytes in ``traffic`` if given."""
    swarm = host.get_network()
    if not isinstance(swarm, Swarm):
        raise TypeError(f"expected a py-libp2p Swarm, got {type(swarm).__name__}")
    upgrader = BufferedReadUpgrader(swarm.upgrader, traffic)
    current = upgrader.muxer_multistream
    upgrader.muxer_multistream = HonouringMuxerMultistream(
        current.transports, current.negotiate_timeout
    )
    swarm.upgrader = upgrader


#: Inbound connections a host accepts over its lifetime (see lift_leaking_limits).
INBOUND_CONNECTIONS_EVER = 1_000_000
#: Peers the peerstore keeps before it evicts (see lift_leaking_limits).
PEERSTORE_PEERS = 100_000


def lift_leaking_limits(host: IHost) -> None:
    """Give two py-libp2p 0.8.1 limits that leak room to last a node's life.

    * ``Swarm._inbound_limiter`` (250 slots) is taken per inbound connection and
      released only when its handler returns, and the handler waits for the
      *swarm* to finish (``manager.wait_finished()``), not for the connection to
      close: after 250 inbound connections ever -- light clients coming and
      going -- the node refuses every new one.
    * The peerstore keeps 1,000 peers and evicts those without addresses first,
      the host's own entry among them; identify then fails on our own key and
      takes the host down once ~1,000 distinct peers connected.

    Both are raised far past any node's life here (the parked handler of a
    closed connection still costs a few KiB until the node stops: bounded by the
    node's uptime, not by an attacker's pace beyond it; per-peer and total
    stream limits are ours, :mod:`boxless.node.limits`). Upstream fix: return
    from the inbound handler when the connection closes, and never evict the
    host's own peer record. ``tests/integration/test_libp2p_shims.py`` shows both.
    """
    swarm = host.get_network()
    if not isinstance(swarm, Swarm):
        raise TypeError(f"expected a py-libp2p Swarm, got {type(swarm).__name__}")
    swarm._inbound_limiter = trio.CapacityLimiter(INBOUND_CONNECTIONS_EVER)
    peerstore = host.get_peerstore()
    if hasattr(peerstore, "max_peers"):
        peerstore.max_peers = max(peerstore.max_peers, PEERSTORE_PEERS)


#: What parsing a user-supplied multiaddr can raise (py-multiaddr's errors are
#: ValueErrors or its own ``Error``; py-libp2p's ``InvalidAddrError`` is a ValueError).
ADDRESS_ERRORS: tuple[type[Exception], ...] = (multiaddr_errors.Error, ValueError)

#: What dialling a peer or opening a stream can raise: py-libp2p's own errors,
#: plus the socket and trio errors it lets through unwrapped.
DIAL_ERRORS: tuple[type[Exception], ...] = (
    BaseLibp2pError,
    OSError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    trio.TooSlowError,
)


async def redial(host: IHost, peer: PeerInfo) -> None:
    """Dial ``peer`` now, though its last dial failed: for reconnect loops that
    pace their own dials (a backoff we own); raises what ``host.connect`` raises.

    py-libp2p 0.8.1's ``Swarm.dial_peer`` refuses for 60 s to dial a peer whose
    every address failed once (``_NegativePeerCache``), so a service node that
    restarts on its old address is unreachable for up to a minute after it is
    back, whatever our retry pace. This drops that peer's entry (the public
    ``Swarm.unblock_peer``) and dials. Dials we do not schedule (a stream to a
    peer, py-libp2p's own) keep the cache, which spares dead peers a hammering.
    Upstream fix to propose: keep the backoff per address and short (go-libp2p:
    5 s + 1 s x failures squared, per address) and let an explicit connect skip
    it (go's ``network.WithForceDirectDial``), e.g. ``host.connect(peer,
    force=True)``. Seen on the way: a ``dial_peer`` that waited for another's
    in-flight dial dials on after it fails without looking at the cache.
    ``tests/integration/test_redial.py`` shows the refusal and the fix.
    """
    swarm = host.get_network()
    if not isinstance(swarm, Swarm):
        raise TypeError(f"expected a py-libp2p Swarm, got {type(swarm).__name__}")
    swarm.unblock_peer(peer.peer_id)
    await host.connect(peer)
