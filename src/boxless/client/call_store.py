"""All the SQL of call history (:mod:`boxless.client.calls`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from boxless.client.store import Cursor

__all__ = ["CallRow", "calls", "put_call"]

MAX_HISTORY = 500


@dataclass(frozen=True, slots=True)
class CallRow:
    call_id: bytes
    peer: bytes
    outgoing: bool
    video: bool
    reason: str
    started_at_ms: int
    connected_at_ms: int | None
    ended_at_ms: int

    @property
    def duration_s(self) -> int:
        if self.connected_at_ms is None:
            return 0
        return max(0, (self.ended_at_ms - self.connected_at_ms) // 1000)


_COLS = "call_id, peer, outgoing, video, reason, started_at_ms, connected_at_ms, ended_at_ms"


def _row(r: tuple[Any, ...]) -> CallRow:
    return CallRow(
        bytes(r[0]),
        bytes(r[1]),
        bool(r[2]),
        bool(r[3]),
        str(r[4]),
        int(r[5]),
        None if r[6] is None else int(r[6]),
        int(r[7]),
    )


def put_call(cur: Cursor, row: CallRow) -> None:
    """Record an ended call (a second end of the same call id changes nothing)."""
    cur.execute(
        f"INSERT OR IGNORE INTO client_calls ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row.call_id,
            row.peer,
            int(row.outgoing),
            int(row.video),
            row.reason,
            row.started_at_ms,
            row.connected_at_ms,
            row.ended_at_ms,
        ),
    )


def calls(cur: Cursor, peer: bytes | None = None, limit: int = 50) -> list[CallRow]:
    """The latest calls, newest first (with ``peer``: with that contact only)."""
    limit = max(1, min(limit, MAX_HISTORY))
    if peer is None:
        cur.execute(
            f"SELECT {_COLS} FROM client_calls ORDER BY started_at_ms DESC LIMIT ?", (limit,)
        )
    else:
        cur.execute(
            f"SELECT {_COLS} FROM client_calls WHERE peer = ? ORDER BY started_at_ms DESC LIMIT ?",
            (peer, limit),
        )
    return [_row(r) for r in cur.fetchall()]
