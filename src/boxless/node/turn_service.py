"""A service node's TURN, advertised to its light clients with short-lived credentials.

Theory of operation. A node run with ``--turn`` answers the libp2p protocol
:data:`TURN_PROTOCOL`: one request frame (content ignored, at most 64 bytes),
one reply frame, JSON ``{"urls": [...], "username", "credential", "ttl_s"}`` —
coturn TURN REST API credentials minted with the node's secret
(:func:`~boxless.node.turn.turn_credentials`, a random label: the node learns
nothing of who the user is), valid :data:`GRANT_TTL` seconds. The secret never
leaves the node, so users no longer hold it. A light client asks its current
service peer when the browser needs ICE servers (``GET /api/v1/calls/current``)
and falls back to its own configuration (``--ice-server``, ``--turn-secret-file``)
when the node offers none.

Who gets credentials (:class:`TurnIssuer`, sans-IO, ``now`` passed in): only a
peer that holds a filter subscription at this node — its light client; others
are refused with ``not a light client``. Each client gets at most
:data:`GRANT_BURST` grants, then one per :data:`GRANT_EVERY` seconds
(``rate``); :data:`MAX_PEERS_TRACKED` peers are remembered. Refusals are counted
in ``TurnIssuer.refused`` and answered with ``{"error": reason}``.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Final

from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from boxless.errors import DecodeError, PeerError
from boxless.node.streams import read_request, reply_and_close, request
from boxless.node.turn import turn_credentials

__all__ = ["TURN_PROTOCOL", "TurnIssuer", "request_turn", "serve_turn"]

logger = logging.getLogger(__name__)

TURN_PROTOCOL: Final = "/boxless/turn/1.0.0"
MAX_REQUEST: Final = 64
MAX_REPLY: Final = 2048
GRANT_TTL: Final = 3600
GRANT_BURST: Final = 3
GRANT_EVERY: Final = 60.0
MAX_PEERS_TRACKED: Final = 1024


class TurnIssuer:
    """Decides who gets TURN credentials (see the module doc)."""

    def __init__(self, secret: bytes, urls: list[str], is_client: Callable[[Hashable], bool]):
        self.secret = secret
        self.urls = urls
        self.is_client = is_client
        self.refused: Counter[str] = Counter()
        self.granted = 0
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def answer(self, peer: Hashable, now: float) -> dict[str, Any]:
        if not self.is_client(peer):
            return self._refuse("not a light client")
        if not self._take(peer, now):
            return self._refuse("rate")
        user, password = turn_credentials(self.secret, os.urandom(6).hex(), now, GRANT_TTL)
        self.granted += 1
        return {
            "urls": list(self.urls),
            "username": user,
            "credential": password,
            "ttl_s": GRANT_TTL,
        }

    def _refuse(self, why: str) -> dict[str, Any]:
        self.refused[why] += 1
        return {"error": why}

    def _take(self, peer: Hashable, now: float) -> bool:
        tokens, at = self._buckets.pop(peer, (float(GRANT_BURST), now))
        tokens = min(float(GRANT_BURST), tokens + max(0.0, now - at) / GRANT_EVERY)
        ok = tokens >= 1.0
        self._buckets[peer] = (tokens - 1.0 if ok else tokens, now)
        while len(self._buckets) > MAX_PEERS_TRACKED:
            self._buckets.popitem(last=False)
        return ok


def serve_turn(host: IHost, issuer: TurnIssuer, clock: Callable[[], float]) -> None:
    """Answer :data:`TURN_PROTOCOL` on ``host`` with ``issuer``'s decisions."""

    async def handle(stream: INetStream) -> None:
        peer = stream.muxed_conn.peer_id
        if await read_request(stream, MAX_REQUEST, "turn", None) is None:
            return
        reply = issuer.answer(peer, clock())
        if "error" in reply:
            logger.info("turn credentials refused to %s: %s", peer, reply["error"])
        await reply_and_close(stream, json.dumps(reply).encode(), "turn")

    host.set_stream_handler(TProtocol(TURN_PROTOCOL), handle)


async def request_turn(host: IHost, peer: ID, timeout: float = 5.0) -> dict[str, Any]:
    """Ask a service node for TURN credentials: ``{urls, username, credential, ttl_s}``.

    Raises :class:`NetworkError` (unreachable, no TURN there), :class:`PeerError`
    (refused: ``not a light client``, ``rate``) or :class:`DecodeError`.
    """
    raw = await request(host, peer, [TURN_PROTOCOL], b"{}", max_response=MAX_REPLY, timeout=timeout)
    try:
        reply = json.loads(raw)
    except ValueError:
        raise DecodeError("the node's TURN answer is not JSON") from None
    if not isinstance(reply, dict):
        raise DecodeError("the node's TURN answer is not an object")
    if "error" in reply:
        raise PeerError(f"the node refused TURN credentials: {str(reply['error'])[:80]}")
    urls = reply.get("urls")
    ok = (
        isinstance(urls, list)
        and 0 < len(urls) <= 4
        and all(
            isinstance(u, str) and u.startswith(("turn:", "turns:")) and len(u) < 256 for u in urls
        )
        and isinstance(reply.get("username"), str)
        and isinstance(reply.get("credential"), str)
        and isinstance(reply.get("ttl_s"), int)
    )
    if not ok:
        raise DecodeError("the node's TURN answer lacks urls, username, credential or ttl_s")
    return {k: reply[k] for k in ("urls", "username", "credential", "ttl_s")}
