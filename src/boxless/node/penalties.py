"""Penalising peers that send malformed input to request/response protocols.

Relay has gossipsub's peer score; store, metadata, light push, filter and peer
exchange have this. Sans-IO: :meth:`PenaltyBox.record` takes the time and
returns whether the peer crossed the line (``threshold`` violations within
``window`` seconds); the node then disconnects it and refuses it until
``ban_seconds`` have passed. Bounded: at most ``max_peers`` are tracked, the
stalest forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable


class PenaltyBox:
    """Counts protocol violations per peer and decides bans."""

    def __init__(
        self,
        *,
        threshold: int = 5,
        window: float = 60.0,
        ban_seconds: float = 600.0,
        max_peers: int = 10_000,
    ) -> None:
        self.threshold = threshold
        self.window = window
        self.ban_seconds = ban_seconds
        self.max_peers = max_peers
        self._hits: OrderedDict[Hashable, deque[float]] = OrderedDict()
        self._banned_until: dict[Hashable, float] = {}

    def record(self, peer: Hashable, now: float) -> bool:
        """Note one violation by ``peer``; True if it is now banned."""
        hits = self._hits.pop(peer, None) or deque()
        hits.append(now)
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        self._hits[peer] = hits
        while len(self._hits) > self.max_peers:
            self._hits.popitem(last=False)
        if len(hits) >= self.threshold:
            self._banned_until[peer] = now + self.ban_seconds
            del self._hits[peer]
            return True
        return False

    def is_banned(self, peer: Hashable, now: float) -> bool:
        until = self._banned_until.get(peer)
        if until is None:
            return False
        if now >= until:
            del self._banned_until[peer]
            return False
        return True
