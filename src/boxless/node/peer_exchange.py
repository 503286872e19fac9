"""Peer exchange over libp2p: the service, the client, and how the cache fills.

:class:`PeerExchangeService` serves ``/vac/waku/peer-exchange/2.0.0-alpha1``:
it reads one query, answers with a random sample of the :class:`PeerCache`
(never the requester's own record) and closes. An unreadable query gets the
stream reset and is counted; the service keeps serving.

:func:`request_peers` is the client: one query, the verified ENRs back.

How records get into the cache (kept deliberately simple):

1. Our own ENR, pinned, refreshed from ``own_enr_provider`` on every request
   (so a bumped ``seq`` goes out at once). Handing it out lets a client that
   learned of us by address pass a signed, dialable record of us on.
2. ENRs of configured peers, pinned: :meth:`PeerExchangeService.add_known`.
3. Whatever peer exchange responses bring: :meth:`PeerExchangeService.learn_from`
   asks a peer (a static/service peer we are connected to) and caches what it
   answers. As that peer includes its own record (point 1 on its side), this
   is also how we learn a connected service node's ENR.

Anonymity trade-off (spec 34, "Responder"): we have no discv5 random walk, so
the cache holds records of peers we learned about from peers we use, and a
requester can learn part of our neighbourhood. The random sampling and the
TTL only soften that.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from boxless.errors import DecodeError, NetworkError
from boxless.node.streams import (
    DEFAULT_TIMEOUT,
    read_request,
    reply_and_close,
    request,
    reset_quietly,
)
from boxless.waku import peer_exchange as px
from boxless.waku.enr import Enr

logger = logging.getLogger(__name__)


async def request_peers(
    host: IHost, peer_id: ID, num: int, *, timeout: float = DEFAULT_TIMEOUT
) -> list[Enr]:
    """Ask ``peer_id`` for up to ``num`` peers; return the valid, verified ENRs.

    Invalid records in the answer are skipped (and logged with their count).
    Raises :class:`NetworkError` if the peer can't be reached or doesn't
    answer within ``timeout``, :class:`DecodeError` if the answer is not a
    peer exchange response. Cancellation resets the stream.
    """
    num = min(num, px.MAX_PEERS_PER_RESPONSE)
    reply = await request(
        host,
        peer_id,
        [px.PEER_EXCHANGE_PROTOCOL_ID],
        px.build_request(num),
        max_response=px.MAX_RESPONSE_SIZE,
        timeout=timeout,
    )
    result = px.parse_response(reply, max_peers=num)
    if result.invalid:
        logger.info("peer exchange: %s sent %d unusable records", peer_id, result.invalid)
    return list(result.enrs)


class PeerExchangeService:
    """Answers peer exchange queries from ``cache``; also fills it (see module doc).

    ``on_violation(peer, "peer_exchange")`` is awaited for each unreadable
    query (the node passes ``Peering.violation``: count, and disconnect repeat
    offenders).
    """

    def __init__(
        self,
        host: IHost,
        cache: px.PeerCache,
        own_enr_provider: Callable[[], Enr | None],
        *,
        on_violation: Callable[[ID, str], Awaitable[None]] | None = None,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.host = host
        self.cache = cache
        self.own_enr_provider = own_enr_provider
        self.on_violation = on_violation
        self.clock = clock

    def register(self) -> None:
        """Start serving the protocol on ``host``."""
        self.host.set_stream_handler(TProtocol(px.PEER_EXCHANGE_PROTOCOL_ID), self.handle)

    def add_known(self, enrs: Iterable[Enr]) -> None:
        """Pin records we were configured with (static peers)."""
        now = self.clock()
        for enr in enrs:
            self.cache.add(enr, now, pinned=True)

    async def learn_from(self, peer_id: ID, num: int = px.MAX_PEERS_PER_RESPONSE) -> int:
        """Ask ``peer_id`` for peers and cache them; return how many were new or newer.

        A failing peer is logged and yields 0: discovery is best effort.
        Cancellation abandons the request (its stream is reset).
        """
        try:
            enrs = await request_peers(self.host, peer_id, num)
        except (NetworkError, DecodeError) as exc:
            logger.info("peer exchange with %s failed: %s", peer_id, exc)
            return 0
        now = self.clock()
        ours = self.host.get_id()
        return sum(self.cache.add(e, now) for e in enrs if e.peer_id() != ours)

    def answer(self, data: bytes, requester: ID) -> bytes:
        """The response to query bytes ``data``; :class:`DecodeError` if it isn't one."""
        num = px.parse_request(data)
        now = self.clock()
        own = self.own_enr_provider()
        if own is not None:
            self.cache.add(own, now, pinned=True)
        return px.build_response(self.cache.sample(num, now, exclude={requester.to_bytes()}))

    async def handle(self, stream: INetStream) -> None:
        """Serve one query on ``stream``; never raises for a peer's mistake."""
        peer = stream.muxed_conn.peer_id
        data = await read_request(stream, px.MAX_REQUEST_SIZE, "peer_exchange", self.on_violation)
        if data is None:
            return
        try:
            reply = self.answer(data, peer)
        except DecodeError as exc:
            logger.info("bad peer exchange request from %s: %s", peer, exc)
            await reset_quietly(stream)
            if self.on_violation is not None:
                await self.on_violation(peer, "peer_exchange")
            return
        await reply_and_close(stream, reply, "peer exchange")
