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
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

__all__ = ["PER_APP", "TOTAL", "TTL_S", "PendingReplies", "Reply"]

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
    """A bot's answer to request ``request_id`` (hex) of an app page."""

    request_id: str
    payload: Any

    def to_json(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "payload": self.payload}


class PendingReplies:
    def __init__(self, per_app: int = PER_APP, total: int = TOTAL, ttl_s: float = TTL_S) -> None:
        self.per_app, self.total, self.ttl_s = per_app, total, ttl_s
        self._slots: OrderedDict[tuple[str, str], _Slot] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._slots)

    def expect(self, app_id: str, request_id: str, now: float) -> None:
        """This client sent ``request_id`` for ``app_id``'s page: keep its answer."""
        self._expire(now)
        self._slots.pop((app_id, request_id), None)
        mine = [k for k in self._slots if k[0] == app_id]
        if len(mine) >= self.per_app:
            del self._slots[mine[0]]
        elif len(self._slots) >= self.total:
            self._slots.popitem(last=False)
        self._slots[(app_id, request_id)] = _Slot(now + self.ttl_s)

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
        self._expire(now)
        return [
            Reply(rid, slot.payload)
            for (app, rid), slot in self._slots.items()
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
