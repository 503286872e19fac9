"""Token buckets per key, with bounded memory (sans-IO: ``now`` is passed in).

Each key may act ``burst`` times at once, then once per ``every`` seconds. At most
``max_keys`` keys are remembered, the least recently used forgotten first (a
forgotten key starts again with a full bucket: bound the keys a stranger can
make with a second, shared bucket — key ``None`` with ``max_keys=1``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

__all__ = ["Buckets"]


class Buckets:
    """Token buckets per key (see the module doc)."""

    def __init__(self, burst: float, every: float, max_keys: int = 1024) -> None:
        self.burst, self.every, self.max_keys = float(burst), every, max_keys
        self._state: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def take(self, key: Hashable, now: float) -> bool:
        """Whether ``key`` may act at ``now`` (its token is spent if so)."""
        tokens, at = self._state.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) / self.every)
        ok = tokens >= 1.0
        self._state[key] = (tokens - 1.0 if ok else tokens, now)
        while len(self._state) > self.max_keys:
            self._state.popitem(last=False)
        return ok

    def __len__(self) -> int:
        return len(self._state)
