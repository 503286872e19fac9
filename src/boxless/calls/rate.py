"""Per-peer token buckets for the call cores (rings, offers, renegotiations)."""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["Buckets", "take_token"]

Buckets = OrderedDict[bytes, tuple[float, float]]  # peer -> (tokens, when counted)


def take_token(
    buckets: Buckets, peer: bytes, now: float, burst: int, every: float, tracked: int
) -> bool:
    """Take one of ``peer``'s tokens: ``burst`` at once, then one per ``every`` s.
    At most ``tracked`` peers are remembered (the least recently seen go first)."""
    tokens, at = buckets.pop(peer, (float(burst), now))
    tokens = min(float(burst), tokens + max(0.0, now - at) / every)
    ok = tokens >= 1.0
    buckets[peer] = (tokens - 1.0 if ok else tokens, now)
    while len(buckets) > tracked:
        buckets.popitem(last=False)
    return ok
