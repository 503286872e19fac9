"""34/WAKU2-PEER-EXCHANGE (sans-IO): the codec and the exchange-peer cache.

Theory of operation
-------------------
A requester sends ``PeerExchangeRPC{query{num_peers}}`` on a fresh stream; the
responder answers ``PeerExchangeRPC{response{peer_infos[{enr}]}}`` and closes.
This module turns those bytes into values and back; the trio adapter is
:mod:`boxless.node.peer_exchange`.

* Server side: :func:`parse_request` refuses anything but a query (a peer
  sending garbage gets its stream reset) and caps ``num_peers`` at
  :data:`MAX_PEERS_PER_RESPONSE`; :func:`build_response` encodes ENRs.
* Client side: :func:`parse_response` decodes and verifies every ENR. A bad
  record is skipped and counted, not fatal: one broken entry shouldn't cost us
  the others (js-waku drops the whole response instead). Records of the same
  node are merged (highest ``seq`` wins) and at most the number asked for is
  kept.
* :class:`PeerCache` holds the ENRs we may hand out, keyed by peer id. Time is
  an argument: entries expire ``ttl`` seconds after they were last added
  (:meth:`PeerCache.get_timer` / :meth:`PeerCache.handle_timer`), the cache
  holds at most ``max_size`` of them (adding to a full cache evicts the entry
  seen longest ago), and a response is a uniform random sample, as the spec
  suggests for responders that don't use each peer only once. *Pinned* entries
  (our own record, configured peers) never expire or get evicted.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.errors import DecodeError, UsageError
from boxless.waku.enr import MAX_RECORD_SIZE, Enr
from boxless.wire import peer_exchange_pb2 as pb

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_CACHE_TTL",
    "MAX_PEERS_PER_RESPONSE",
    "MAX_REQUEST_SIZE",
    "MAX_RESPONSE_SIZE",
    "PEER_EXCHANGE_PROTOCOL_ID",
    "PeerCache",
    "PeerExchangeResult",
    "build_request",
    "build_response",
    "parse_request",
    "parse_response",
]

PEER_EXCHANGE_PROTOCOL_ID = "/vac/waku/peer-exchange/2.0.0-alpha1"

MAX_PEERS_PER_RESPONSE = 60
"""Most ENRs we send or accept in one response (js-waku asks for 60, the spec's cache size)."""

MAX_REQUEST_SIZE = 64
"""A query is one varint field: a dozen bytes. More is not a query."""

MAX_RESPONSE_SIZE = MAX_PEERS_PER_RESPONSE * (MAX_RECORD_SIZE + 8) + 16
"""60 records of at most 300 bytes with their protobuf framing."""

DEFAULT_CACHE_SIZE = 600
"""Spec 34: at least 60; ten times that leaves room for many requesters per refresh cycle."""

DEFAULT_CACHE_TTL = 30 * 60.0
"""Seconds an unpinned entry stays without being seen again."""


def build_request(num_peers: int) -> bytes:
    """Encode a query for ``num_peers`` peers."""
    if not 0 <= num_peers < 2**64:
        raise UsageError(f"num_peers out of range: {num_peers}")
    return pb.PeerExchangeRPC(query=pb.PeerExchangeQuery(num_peers=num_peers)).SerializeToString()


def _parse_rpc(data: bytes, limit: int, what: str) -> pb.PeerExchangeRPC:
    if len(data) > limit:
        raise DecodeError(f"peer exchange {what} of {len(data)} bytes exceeds {limit}")
    rpc = pb.PeerExchangeRPC()
    try:
        rpc.ParseFromString(data)
    except ProtobufDecodeError as exc:
        raise DecodeError(f"malformed peer exchange {what}: {exc}") from exc
    return rpc


def parse_request(data: bytes, cap: int = MAX_PEERS_PER_RESPONSE) -> int:
    """How many peers a request asks for, at most ``cap``.

    :class:`DecodeError` if ``data`` is not a peer exchange query.
    """
    rpc = _parse_rpc(data, MAX_REQUEST_SIZE, "request")
    if not rpc.HasField("query") or rpc.HasField("response"):
        raise DecodeError("peer exchange request carries no query")
    return min(rpc.query.num_peers, cap)


def build_response(enrs: Iterable[Enr]) -> bytes:
    """Encode a response carrying ``enrs``."""
    infos = [pb.PeerInfo(enr=enr.encode()) for enr in enrs]
    rpc = pb.PeerExchangeRPC(response=pb.PeerExchangeResponse(peer_infos=infos))
    return rpc.SerializeToString()


@dataclass(frozen=True, slots=True)
class PeerExchangeResult:
    """What a responder sent: the valid records and how many entries were not."""

    enrs: tuple[Enr, ...]
    invalid: int


def parse_response(data: bytes, max_peers: int = MAX_PEERS_PER_RESPONSE) -> PeerExchangeResult:
    """Decode a response; keep at most ``max_peers`` valid records, one per node.

    :class:`DecodeError` if ``data`` is not a peer exchange response at all.
    Entries that are empty, invalid, or beyond ``max_peers`` are counted in
    :attr:`PeerExchangeResult.invalid`.
    """
    rpc = _parse_rpc(data, MAX_RESPONSE_SIZE, "response")
    if not rpc.HasField("response"):
        raise DecodeError("peer exchange answer carries no response")
    best: dict[bytes, Enr] = {}
    invalid = 0
    for info in rpc.response.peer_infos:
        try:
            enr = Enr.decode(info.enr)
        except DecodeError:
            invalid += 1
            continue
        key = enr.public_key
        if key in best:
            invalid += 1
            if enr.seq <= best[key].seq:
                continue
        elif len(best) >= max_peers:
            invalid += 1
            continue
        best[key] = enr
    return PeerExchangeResult(tuple(best.values()), invalid)


@dataclass(slots=True)
class _Entry:
    enr: Enr
    seen: float
    pinned: bool


class PeerCache:
    """ENRs we know and may give out, with expiry and a size bound (sans-IO).

    Keyed by peer id bytes. A record replaces the one held for its node only
    if its ``seq`` is at least as high (an equal one just refreshes the time).
    """

    def __init__(
        self,
        *,
        max_size: int = DEFAULT_CACHE_SIZE,
        ttl: float = DEFAULT_CACHE_TTL,
        rng: random.Random | None = None,
    ) -> None:
        if max_size < 1 or ttl <= 0:
            raise UsageError("PeerCache needs max_size >= 1 and ttl > 0")
        self.max_size = max_size
        self.ttl = ttl
        self._rng = rng or random.SystemRandom()
        self._entries: dict[bytes, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, peer_id: bytes) -> bool:
        return peer_id in self._entries

    def get(self, peer_id: bytes) -> Enr | None:
        """The record held for ``peer_id`` (peer id bytes), if any."""
        entry = self._entries.get(peer_id)
        return entry.enr if entry else None

    def add(self, enr: Enr, now: float, *, pinned: bool = False) -> bool:
        """Remember ``enr`` as seen at ``now``; True if it is new or newer than what we had.

        Pinning is sticky: once pinned, an entry stays pinned until :meth:`remove`.
        """
        key = enr.peer_id().to_bytes()
        old = self._entries.get(key)
        if old is not None:
            if enr.seq < old.enr.seq:
                return False
            newer = enr.seq > old.enr.seq
            if newer:
                old.enr = enr
            old.seen = now
            old.pinned = old.pinned or pinned
            return newer
        if not pinned:
            self.expire(now)
            if self._unpinned() >= self.max_size:
                self._evict_oldest()
        self._entries[key] = _Entry(enr, now, pinned)
        return True

    def remove(self, peer_id: bytes) -> None:
        """Forget ``peer_id`` (pinned or not); no error if unknown."""
        self._entries.pop(peer_id, None)

    def sample(self, n: int, now: float, *, exclude: Collection[bytes] = ()) -> list[Enr]:
        """Up to ``n`` records chosen uniformly at random, leaving out peer ids in ``exclude``."""
        self.expire(now)
        pool = [e.enr for k, e in self._entries.items() if k not in exclude]
        return self._rng.sample(pool, min(max(n, 0), len(pool)))

    def expire(self, now: float) -> int:
        """Drop unpinned entries not seen for ``ttl`` seconds; return how many."""
        # the same sum as get_timer, so a timer fired at its time always expires its entry
        stale = [k for k, e in self._entries.items() if not e.pinned and e.seen + self.ttl <= now]
        for key in stale:
            del self._entries[key]
        return len(stale)

    def get_timer(self) -> float | None:
        """When the next unpinned entry expires, or None if none will."""
        times = [e.seen + self.ttl for e in self._entries.values() if not e.pinned]
        return min(times, default=None)

    def handle_timer(self, now: float) -> None:
        """Let time pass: expire what is due."""
        self.expire(now)

    def _unpinned(self) -> int:
        return sum(1 for e in self._entries.values() if not e.pinned)

    def _evict_oldest(self) -> None:
        candidates = [(e.seen, k) for k, e in self._entries.items() if not e.pinned]
        if candidates:
            del self._entries[min(candidates)[1]]
