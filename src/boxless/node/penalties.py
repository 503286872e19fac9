"""Penalising peers that send malformed input to request/response protocols.

Relay has gossipsub's peer score; store, metadata, light push, filter and peer
exchange have this. Sans-IO: :meth:`PenaltyBox.record` takes the time and
returns whether the peer crossed the line (``threshold`` violations within
``window`` seconds); the node then disconnects it and refuses it until
``ban_seconds`` have passed.

Bounded against free-to-make peer ids (see :mod:`boxless.node.limits`): both
the violation histories and the bans live in :class:`~boxless.node.limits.PeerTable`
s, at most ``max_peers`` and ``max_bans`` entries, and once full they turn over
at most ``admit_rate`` entries a second. So a flood of fresh ids, each with one
violation, can neither grow memory nor wash out the history of a repeat
offender (it would take ``max_peers / admit_rate`` seconds), nor lift a ban
early faster than that. Violations past the budget are still reported to the
caller's metrics; they just are not remembered.

Usable by any service (filter included): ``record(peer, now)`` and
``is_banned(peer, now)`` are plain synchronous calls; ``now`` is any monotonic
seconds clock, e.g. ``trio.current_time()``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

from boxless.node.limits import PeerTable

__all__ = ["PenaltyBox"]


class PenaltyBox:
    """Counts protocol violations per peer and decides bans."""

    def __init__(
        self,
        *,
        threshold: int = 5,
        window: float = 60.0,
        ban_seconds: float = 600.0,
        max_peers: int = 10_000,
        max_bans: int = 10_000,
        admit_rate: float = 50.0,
    ) -> None:
        self.threshold = threshold
        self.window = window
        self.ban_seconds = ban_seconds
        self.max_peers = max_peers
        burst = max(1, int(admit_rate * 2))
        self._hits: PeerTable[Hashable, deque[float]] = PeerTable(
            max_peers, admit_rate=admit_rate, admit_burst=burst
        )
        self._banned_until: PeerTable[Hashable, float] = PeerTable(
            max_bans, admit_rate=admit_rate, admit_burst=burst
        )

    @property
    def tracked_peers(self) -> int:
        """Peers with a violation history (bounded by ``max_peers``)."""
        return len(self._hits)

    @property
    def banned_peers(self) -> int:
        """Bans held (bounded by ``max_bans``; expired ones go on the next look)."""
        return len(self._banned_until)

    @property
    def forgotten(self) -> int:
        """Violations or bans not remembered because the global budget was spent."""
        return self._hits.refused + self._banned_until.refused

    def record(self, peer: Hashable, now: float) -> bool:
        """Note one violation by ``peer``; True if it is now banned (disconnect it)."""
        hits = self._hits.get_or_admit(peer, deque, now)
        if hits is None:
            return False
        hits.append(now)
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.threshold:
            self._hits.pop(peer)
            self._banned_until.admit(peer, now + self.ban_seconds, now)
            return True
        return False

    def is_banned(self, peer: Hashable, now: float) -> bool:
        until = self._banned_until.peek(peer)
        if until is None:
            return False
        if now >= until:
            self._banned_until.pop(peer)
            return False
        return True
