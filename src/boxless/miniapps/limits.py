"""Bridge flood control: a pure token bucket per app, ``now`` passed in.

A page may make ``BURST`` bridge calls at once and ``RATE`` per second after
that; the first call over the limit suspends the app for ``SUSPEND_S`` (its
page is closed by the UI and every call refused until then). Bounded: one
entry per installed app, dropped when the app is removed.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BURST", "RATE", "SUSPEND_S", "BridgeLimiter"]

BURST = 40
RATE = 10.0
SUSPEND_S = 300.0


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    suspended_until: float = 0.0


class BridgeLimiter:
    def __init__(self, burst: int = BURST, rate: float = RATE, suspend_s: float = SUSPEND_S):
        self.burst, self.rate, self.suspend_s = burst, rate, suspend_s
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, app_id: str, now: float) -> bool:
        """Take one call's token; False (and the app suspended) when over the limit."""
        b = self._buckets.setdefault(app_id, _Bucket(float(self.burst), now))
        if now < b.suspended_until:
            return False
        b.tokens = min(float(self.burst), b.tokens + (now - b.at) * self.rate)
        b.at = now
        if b.tokens < 1.0:
            b.suspended_until = now + self.suspend_s
            return False
        b.tokens -= 1.0
        return True

    def suspend(self, app_id: str, now: float) -> None:
        """Suspend ``app_id`` now (the UI saw it flood first)."""
        b = self._buckets.setdefault(app_id, _Bucket(0.0, now))
        b.suspended_until = now + self.suspend_s

    def suspended(self, app_id: str, now: float) -> bool:
        b = self._buckets.get(app_id)
        return b is not None and now < b.suspended_until

    def forget(self, app_id: str) -> None:
        self._buckets.pop(app_id, None)
