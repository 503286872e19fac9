"""The pin request protocol: a client asks a service node to fetch and keep a DAG.

Wire (``/boxless/blobs/pin/1.0.0``): one unsigned-varint length-prefixed
protobuf each way on a fresh stream, like Waku's request/response protocols::

    message PinRequest  { bytes cid = 1; uint64 retention_s = 2; }
    message PinResponse { uint32 status = 1; string message = 2; uint64 bytes = 3; }

Semantics (a small subset of the IPFS Pinning Service API's "add pin", over
libp2p instead of HTTP, with the requester as the only origin): the node
fetches the DAG *from the requesting peer only* over Bitswap, verifying every
block, stores it and pins it for ``retention_s`` (0 or above the node's maximum:
the maximum, 30 days by default), and answers once the whole DAG is held.
Status codes: 200 pinned, 400 malformed request, 403 not allowed to pin here,
413 over the requester's quota or the file size limit, 422 the DAG breaks a
rule (bad block, size lie, too deep/wide), 429 too many pins at once, 504 the
requester did not deliver the blocks.

Who may pin (bounding what a stranger can make a node fetch and keep): peers
the operator configured (``trusted``), and, if ``open_to_clients``, this node's
clients — as ``is_client`` decides (the Waku node says: its filter subscribers,
i.e. its light clients; a node without filter: any connected peer), else any
connected peer — each within ``peer_quota`` bytes
of pins, ``max_file`` per DAG, ``per_peer_active`` pins in flight (and
``total_active`` overall). A pin runs for at most ``pin_timeout`` seconds.

Honest pins: a request for a root the node has a pin record of first checks that
the record's blocks are still on disk (:meth:`PinService.lost_blocks`: a ``stat``
per block in a worker thread, no re-hash, at most ``check_blocks`` blocks). If
none is lost, the requester's own pin is renewed ("already pinned"). If some are,
they are forgotten and the DAG is fetched from the requester again — only the
lost blocks travel (the walk reads the others locally) — which repairs every pin
of that root; the requester's pin is renewed ("repaired"), no quota is charged
again. So a sender's re-pin ("Ask again") brings back a file its node lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from boxless.blobs.bitswap import BadDag, Bitswap, BlobUnavailable, DagFetcher, DagLimits
from boxless.blobs.cid import Cid
from boxless.blobs.store import DEFAULT_RETENTION_S, QuotaExceeded
from boxless.blobs.unixfs import pb_bytes, pb_fields, pb_varint
from boxless.errors import DecodeError, NetworkError, PeerError
from boxless.node.streams import read_request, reply_and_close, request

logger = logging.getLogger(__name__)

PIN_PROTOCOL = "/boxless/blobs/pin/1.0.0"
MAX_FRAME = 4096
OK, BAD_REQUEST, FORBIDDEN, TOO_LARGE, BAD_DAG, BUSY, UNAVAILABLE = (
    200,
    400,
    403,
    413,
    422,
    429,
    504,
)

__all__ = ["PIN_PROTOCOL", "PinPolicy", "PinRefused", "PinService", "request_pin"]


class PinRefused(PeerError):
    """A service node answered a pin request with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"pin refused ({status}): {message}")
        self.status = status


@dataclass(frozen=True)
class PinRequest:
    cid: Cid
    retention_s: int = 0

    def encode(self) -> bytes:
        return pb_bytes(1, bytes(self.cid)) + (
            pb_varint(2, self.retention_s) if self.retention_s else b""
        )

    @classmethod
    def decode(cls, frame: bytes) -> PinRequest:
        cid: Cid | None = None
        retention = 0
        for fld, wire, value in pb_fields(frame):
            if fld == 1 and wire == 2 and isinstance(value, bytes):
                cid = Cid.decode(value)
            elif fld == 2 and wire == 0 and isinstance(value, int):
                retention = value
        if cid is None:
            raise DecodeError("pin request without a CID")
        return cls(cid, retention)


@dataclass(frozen=True)
class PinResponse:
    status: int
    message: str = ""
    nbytes: int = 0

    def encode(self) -> bytes:
        out = pb_varint(1, self.status) + pb_varint(3, self.nbytes)
        return out + (pb_bytes(2, self.message.encode()) if self.message else b"")

    @classmethod
    def decode(cls, frame: bytes) -> PinResponse:
        status, message, nbytes = 0, "", 0
        for fld, wire, value in pb_fields(frame):
            if fld == 1 and wire == 0 and isinstance(value, int):
                status = value
            elif fld == 2 and wire == 2 and isinstance(value, bytes):
                message = value.decode("utf-8", "replace")[:500]
            elif fld == 3 and wire == 0 and isinstance(value, int):
                nbytes = value
        return cls(status, message, nbytes)


@dataclass(frozen=True)
class PinPolicy:
    """Who may pin here and how much (see the module docstring)."""

    trusted: frozenset[ID] = frozenset()
    open_to_clients: bool = True
    is_client: Callable[[ID], bool] | None = None
    peer_quota: int = 2 * 1024**3
    max_file: int = 2 * 1024**3 + 64 * 1024**2
    max_retention_s: int = DEFAULT_RETENTION_S
    per_peer_active: int = 2
    total_active: int = 16
    pin_timeout: float = 900.0
    limits: DagLimits = DagLimits()
    check_blocks: int = 50_000  # blocks stat-ed per request for a root held already


class PinService:
    """Serves :data:`PIN_PROTOCOL` on a host, fetching through ``bitswap``."""

    def __init__(
        self,
        host: IHost,
        bitswap: Bitswap,
        policy: PinPolicy = PinPolicy(),
        *,
        on_violation: Callable[[ID, str], Awaitable[None]] | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self.bitswap = bitswap
        self.store = bitswap.store
        self.policy = policy
        self.on_violation = on_violation
        self.now = now
        self._active: dict[ID, int] = {}

    def register(self) -> None:
        self.host.set_stream_handler(TProtocol(PIN_PROTOCOL), self._handle)

    def _allowed(self, peer: ID) -> bool:
        if peer in self.policy.trusted:
            return True
        if not self.policy.open_to_clients:
            return False
        if self.policy.is_client is not None:
            return self.policy.is_client(peer)
        return bool(self.host.get_network().get_connections(peer))

    async def _handle(self, stream: INetStream) -> None:
        peer = stream.muxed_conn.peer_id
        frame = await read_request(stream, MAX_FRAME, PIN_PROTOCOL, self.on_violation)
        if frame is None:
            return
        try:
            req = PinRequest.decode(frame)
        except DecodeError as exc:
            answer = PinResponse(BAD_REQUEST, f"malformed pin request: {exc}")
        else:
            answer = await self.pin_for(peer, req)
        await reply_and_close(stream, answer.encode(), PIN_PROTOCOL)

    async def pin_for(self, peer: ID, req: PinRequest) -> PinResponse:
        """Decide, then fetch from ``peer`` and pin ``req.cid`` (or repair it, if the
        blocks of a pin of it are lost); never raises for peer errors."""
        pol = self.policy
        if not self._allowed(peer):
            return PinResponse(
                FORBIDDEN, "this node pins only for its clients and configured peers"
            )
        active = self._active.get(peer, 0)
        if active >= pol.per_peer_active or sum(self._active.values()) >= pol.total_active:
            return PinResponse(BUSY, "too many pins in progress; retry later")
        self._active[peer] = active + 1
        try:
            return await self._pin_or_repair(peer, req)
        finally:
            self._active[peer] -= 1
            if not self._active[peer]:
                del self._active[peer]

    async def _pin_or_repair(self, peer: ID, req: PinRequest) -> PinResponse:
        owner = peer.to_base58()
        pins = self.store.pins(req.cid)
        lost = await self.lost_blocks(req.cid) if pins else 0
        mine = next((p for p in pins if p[2] == owner), None)
        if mine is not None and not lost:  # asked again: keep it longer, fetch nothing
            pin_id, _root, _owner, nbytes, _exp = mine
            self.store.renew(pin_id, self.now() + self._retention(req))
            return PinResponse(OK, "already pinned; retention renewed", nbytes)
        if mine is not None:  # a repair: its bytes are counted in the quota already
            room = self.policy.max_file
        else:
            room = min(self.policy.max_file, self.policy.peer_quota - self.store.owner_bytes(owner))
            if room <= 0:
                return PinResponse(
                    TOO_LARGE, "your pin quota on this node is used up; unpin or wait"
                )
        return await self._fetch_and_pin(peer, owner, req, room, repair=mine, lost=lost)

    async def lost_blocks(self, root: Cid) -> int:
        """Check the blocks the pins of ``root`` list are on disk (a ``stat`` each in a
        worker thread, at most ``check_blocks``); forget the lost ones; how many."""
        blocks = self.store.pin_blocks_of(root, self.policy.check_blocks)
        lost = await trio.to_thread.run_sync(self.store.lost_names, blocks)
        if lost:
            self.store.forget(lost)
            logger.warning("pin of %s had lost %d of its blocks", root, len(lost))
        return len(lost)

    def _retention(self, req: PinRequest) -> int:
        cap = self.policy.max_retention_s
        return req.retention_s if 0 < req.retention_s <= cap else cap

    async def _fetch_and_pin(
        self,
        peer: ID,
        owner: str,
        req: PinRequest,
        room: int,
        *,
        repair: tuple[int, str, str, int, float | None] | None = None,
        lost: int = 0,
    ) -> PinResponse:
        pol = self.policy
        limits = DagLimits(
            max_bytes=room,
            max_blocks=min(pol.limits.max_blocks, 64 + room // 1024),
            max_depth=pol.limits.max_depth,
            max_links=pol.limits.max_links,
        )
        fetcher = DagFetcher(self.bitswap, [peer], limits=limits)
        cids: list[Cid] = []
        stored = 0
        failure: PinResponse | None = None
        with trio.move_on_after(pol.pin_timeout) as scope:
            try:
                async for cid, block, _ in fetcher.blocks(req.cid):
                    self.store.put(cid, block, self.now())
                    cids.append(cid)
                    stored += len(block)
            except BadDag as exc:
                failure = PinResponse(TOO_LARGE if "over the" in str(exc) else BAD_DAG, str(exc))
            except QuotaExceeded as exc:
                failure = PinResponse(TOO_LARGE, f"node storage full: {exc}")
            except (BlobUnavailable, NetworkError) as exc:
                failure = PinResponse(UNAVAILABLE, f"could not fetch the blocks from you: {exc}")
        if scope.cancelled_caught:
            failure = PinResponse(
                UNAVAILABLE, f"the DAG did not arrive within {pol.pin_timeout:.0f}s"
            )
        if failure is not None:
            self.store.discard(cids)  # what a failed pin fetched does not linger
            return failure
        retention = self._retention(req)
        if repair is not None:
            self.store.renew(repair[0], self.now() + retention)
            logger.info("repaired %s for %s (%d lost blocks)", req.cid, owner, lost)
            return PinResponse(OK, f"repaired: {lost} lost blocks fetched again", repair[3])
        self.store.pin(req.cid, owner, cids, stored, self.now(), retention)
        logger.info("pinned %s for %s (%d bytes, %d s)", req.cid, owner, stored, retention)
        return PinResponse(OK, "pinned", stored)


async def request_pin(
    host: IHost, peer: ID, cid: Cid, *, retention_s: int = 0, timeout: float = 900.0
) -> int:
    """Ask ``peer`` to fetch ``cid`` from us and pin it; return the bytes it pinned.

    Raises :class:`PinRefused` with the node's status, or :class:`NetworkError`.
    Our own Bitswap must be serving the blocks while this waits.
    """
    frame = await request(
        host,
        peer,
        [PIN_PROTOCOL],
        PinRequest(cid, retention_s).encode(),
        max_response=MAX_FRAME,
        timeout=timeout,
    )
    answer = PinResponse.decode(frame)
    if answer.status != OK:
        raise PinRefused(answer.status, answer.message)
    return answer.nbytes
