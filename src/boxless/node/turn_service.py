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
(``rate``); :data:`MAX_PEERS_TRACKED` peers are remembered. Peer ids cost a
stranger nothing (a filter subscription is free), so all clients together get
at most :data:`TOTAL_BURST` grants, then one per :data:`TOTAL_EVERY` seconds
(``busy``): many ids, or cycling ids past the per-peer table, mint no more.
Refusals are counted in ``TurnIssuer.refused`` and answered with
``{"error": reason}``.

The client takes a node's answer as a peer's bytes (:func:`turn_url_refused`):
only ``turn:``/``turns:`` URLs of a host and port, and no loopback, private,
link-local or other non-global IP address unless it is the node's own (a node
on this machine or this LAN), so a hostile node cannot point every caller's
browser at their own router or at a third party's private services. A DNS name
is taken as it is (the browser resolves it).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any, Final

from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from boxless.buckets import Buckets
from boxless.errors import DecodeError, PeerError
from boxless.node.streams import read_request, reply_and_close, request
from boxless.node.turn import turn_credentials

__all__ = [
    "TURN_PROTOCOL",
    "TurnIssuer",
    "parse_turn_answer",
    "request_turn",
    "serve_turn",
    "turn_url_refused",
]

logger = logging.getLogger(__name__)

TURN_PROTOCOL: Final = "/boxless/turn/1.0.0"
MAX_REQUEST: Final = 64
MAX_REPLY: Final = 2048
GRANT_TTL: Final = 3600
GRANT_BURST: Final = 3
GRANT_EVERY: Final = 60.0
MAX_PEERS_TRACKED: Final = 1024
TOTAL_BURST: Final = 60
TOTAL_EVERY: Final = 1.0
_TURN_URL = re.compile(
    r"turns?:(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,253})(?::([0-9]{1,5}))?"
    r"(?:\?transport=(?:udp|tcp))?"
)


class TurnIssuer:
    """Decides who gets TURN credentials (see the module doc)."""

    def __init__(self, secret: bytes, urls: list[str], is_client: Callable[[Hashable], bool]):
        self.secret = secret
        self.urls = urls
        self.is_client = is_client
        self.refused: Counter[str] = Counter()
        self.granted = 0
        self._buckets = Buckets(GRANT_BURST, GRANT_EVERY, MAX_PEERS_TRACKED)
        self._total = Buckets(TOTAL_BURST, TOTAL_EVERY, 1)  # all clients together

    def answer(self, peer: Hashable, now: float) -> dict[str, Any]:
        if not self.is_client(peer):
            return self._refuse("not a light client")
        if not self._buckets.take(peer, now):
            return self._refuse("rate")
        if not self._total.take(None, now):
            return self._refuse("busy")
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


def turn_url_refused(url: object, node_hosts: set[str]) -> str | None:
    """None if ``url``, a TURN URL a node advertised, may go to our browser; else why
    not. ``node_hosts``: the addresses we reach that node at (see the module doc)."""
    found = _TURN_URL.fullmatch(url) if isinstance(url, str) else None
    if found is None:
        return "not a turn: or turns: URL of a host and port"
    host, port = found[1].strip("[]"), found[2]
    if port is not None and not 0 < int(port) < 65536:
        return "a port out of range"
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        host = "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if found[1].startswith("["):
            return "not an IPv6 address"
        return None  # a DNS name
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if (ip.is_global and not ip.is_multicast) or str(ip) in node_hosts:
        return None
    return f"{ip} is a loopback, private or reserved address, not the node's"


def _hosts_of(host: IHost, peer: ID) -> set[str]:
    """The IP addresses our open connections to ``peer`` reach it at (the socket's
    remote end: not the peerstore, which holds what the node says it listens on)."""
    out: set[str] = set()
    for conn in host.get_network().get_connections(peer):
        secured = getattr(getattr(conn, "muxed_conn", None), "secured_conn", None)
        remote = secured.get_remote_address() if secured is not None else None
        if remote:
            try:
                out.add(str(ipaddress.ip_address(remote[0])))
            except ValueError:
                continue  # not an IP (a relayed or in-memory connection)
    return out


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
    return parse_turn_answer(raw, _hosts_of(host, peer))


def parse_turn_answer(raw: bytes, node_hosts: set[str]) -> dict[str, Any]:
    """A node's TURN answer, checked as a peer's bytes: ``{urls, username, credential,
    ttl_s}``; raises :class:`PeerError` (a refusal, a URL we refuse) or
    :class:`DecodeError`. ``node_hosts``: see :func:`turn_url_refused`."""
    try:
        reply = json.loads(raw)
    except ValueError:
        raise DecodeError("the node's TURN answer is not JSON") from None
    if not isinstance(reply, dict):
        raise DecodeError("the node's TURN answer is not an object")
    if "error" in reply:
        raise PeerError(f"the node refused TURN credentials: {str(reply['error'])[:80]}")
    urls, ttl = reply.get("urls"), reply.get("ttl_s")
    ok = (
        isinstance(urls, list)
        and 0 < len(urls) <= 4
        and all(isinstance(u, str) and len(u) < 256 for u in urls)
        and isinstance(reply.get("username"), str)
        and isinstance(reply.get("credential"), str)
        and isinstance(ttl, int)
        and not isinstance(ttl, bool)
        and 0 < ttl <= 86400
    )
    if not ok:
        raise DecodeError("the node's TURN answer lacks urls, username, credential or ttl_s")
    for url in reply["urls"]:
        why = turn_url_refused(url, node_hosts)
        if why is not None:
            raise PeerError(f"the node's TURN URL is refused: {why}")
    return {k: reply[k] for k in ("urls", "username", "credential", "ttl_s")}
