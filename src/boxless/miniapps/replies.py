"""Bot replies kept for the app pages that wait for them: a pure core, ``now`` passed in.

Theory of operation: a bot's answer to a page's ``backend.request`` reaches the
page as an ``app_message`` event, and an event reaches only the pages whose
events socket is open at that moment. So the client also keeps the answer here,
and the page reads what it still waits for when its socket (re)opens
(``GET /api/v1/miniapps/{app_id}/replies``, js/bridge.js ``resumeAppReplies``).

Only a request this client sent opens a slot (:meth:`PendingReplies.expect`);
a reply fills the slot of its app and request id once (:meth:`offer`), so the
bot (a peer: attacker-controlled) cannot add an entry, replace an answer or
answer another app's request. Bounded: ``per_app`` slots per app and ``total``
in all (the oldest slot gives way), each kept ``ttl_s`` from its request (longer
than the page's 30 s wait), payloads at most 16 KiB (the wire's limit).
Reading is read-only: the page hands each reply to a request it still waits
for, so a reply it already got live is not delivered twice.

A bot's pushes (not answers to anything) are kept the same way by
:class:`RecentPushes`: the last ``per_app`` of each installed app's bot for
``ttl_s``; the page hands the app those whose id it has not seen (live, or
before it opened the app).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

__all__ = ["PER_APP", "TOTAL", "TTL_S", "PendingReplies", "RecentPushes", "Reply"]

PER_APP = 32  # as the bridge's MAX_PENDING (js/bridge.js)
TOTAL = 128
TTL_S = 60.0

_EMPTY = object()


@dataclass(slots=True)
class _Slot:
    expires: float
    payload: Any = _EMPTY


@dataclass(frozen=True, slots=True)
class Reply:
    """A bot's answer to request ``request_id`` (hex) of an app page, or a push (its id)."""

    request_id: str
    payload: Any

    def to_json(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "payload": self.payload}


class _Kept:
    """Slots keyed by (app id, id), oldest first, each kept ``ttl_s``: at most
    ``per_app`` of one app (its oldest gives way) and ``total`` in all (the oldest)."""

    def __init__(self, per_app: int, total: int, ttl_s: float) -> None:
        self.per_app, self.total, self.ttl_s = per_app, total, ttl_s
        self._slots: OrderedDict[tuple[str, str], _Slot] = OrderedDict()

    def __len__(self) -> int:
        return len(self._slots)

    def _put(self, app_id: str, key: str, now: float, payload: Any = _EMPTY) -> None:
        self._expire(now)
        self._slots.pop((app_id, key), None)
        mine = [k for k in self._slots if k[0] == app_id]
        if len(mine) >= self.per_app:
            del self._slots[mine[0]]
        elif len(self._slots) >= self.total:
            self._slots.popitem(last=False)
        self._slots[(app_id, key)] = _Slot(now + self.ttl_s, payload)

    def _filled(self, app_id: str, now: float) -> list[Reply]:
        self._expire(now)
        return [
            Reply(key, slot.payload)
            for (app, key), slot in self._slots.items()
            if app == app_id and slot.payload is not _EMPTY
        ]

    def forget(self, app_id: str) -> None:
        """The app was removed: nothing of it is kept."""
        for key in [k for k in self._slots if k[0] == app_id]:
            del self._slots[key]

    def _expire(self, now: float) -> None:
        # slots are added in time order with one TTL, so the expired ones lead
        while self._slots:
            key, slot = next(iter(self._slots.items()))
            if slot.expires > now:
                break
            del self._slots[key]


class PendingReplies(_Kept):
    def __init__(self, per_app: int = PER_APP, total: int = TOTAL, ttl_s: float = TTL_S) -> None:
        super().__init__(per_app, total, ttl_s)

    def expect(self, app_id: str, request_id: str, now: float) -> None:
        """This client sent ``request_id`` for ``app_id``'s page: keep its answer."""
        self._put(app_id, request_id, now)

    def offer(self, app_id: str, request_id: str, payload: Any, now: float) -> bool:
        """The app's bot answered ``request_id``: kept (True) only when this client
        asked it and waits for it, and no answer came before."""
        self._expire(now)
        slot = self._slots.get((app_id, request_id))
        if slot is None or slot.payload is not _EMPTY:
            return False
        slot.payload = payload
        return True

    def replies(self, app_id: str, now: float) -> list[Reply]:
        """The answers kept for ``app_id`` (read-only; expired ones dropped)."""
        return self._filled(app_id, now)


class RecentPushes(_Kept):
    """The last pushes of each app's bot (only an installed app's bot gets here)."""

    def __init__(
        self, per_app: int = PER_APP // 2, total: int = TOTAL, ttl_s: float = TTL_S
    ) -> None:
        super().__init__(per_app, total, ttl_s)

    def add(self, app_id: str, push_id: str, payload: Any, now: float) -> None:
        """The app's bot pushed ``payload`` (its id ``push_id``; a repeated id is kept once)."""
        self._expire(now)
        if (app_id, push_id) not in self._slots:
            self._put(app_id, push_id, now, payload)

    def pushes(self, app_id: str, now: float) -> list[Reply]:
        """``app_id``'s pushes kept, oldest first (read-only)."""
        return self._filled(app_id, now)
