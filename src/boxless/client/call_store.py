"""All the SQL of call history (:mod:`boxless.client.calls`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from boxless.client.store import Cursor

__all__ = ["CallRow", "GroupCallRow", "calls", "group_calls", "put_call", "put_group_call"]

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


# -- group calls ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupCallRow:
    call_id: bytes
    group_id: bytes
    started_by: bytes
    participants: tuple[bytes, ...]
    video: bool
    started_at_ms: int
    joined_at_ms: int | None
    ended_at_ms: int

    @property
    def duration_s(self) -> int:
        if self.joined_at_ms is None:
            return 0
        return max(0, (self.ended_at_ms - self.joined_at_ms) // 1000)


_GCOLS = (
    "call_id, group_id, started_by, participants, video, started_at_ms, joined_at_ms, ended_at_ms"
)


def _group_row(r: tuple[Any, ...]) -> GroupCallRow:
    keys = bytes(r[3])
    return GroupCallRow(
        bytes(r[0]),
        bytes(r[1]),
        bytes(r[2]),
        tuple(keys[i : i + 32] for i in range(0, len(keys), 32)),
        bool(r[4]),
        int(r[5]),
        None if r[6] is None else int(r[6]),
        int(r[7]),
    )


def put_group_call(cur: Cursor, row: GroupCallRow) -> None:
    """Record an ended group call (a second end of the same call id changes nothing)."""
    cur.execute(
        f"INSERT OR IGNORE INTO client_group_calls ({_GCOLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row.call_id,
            row.group_id,
            row.started_by,
            b"".join(row.participants),
            int(row.video),
            row.started_at_ms,
            row.joined_at_ms,
            row.ended_at_ms,
        ),
    )


def group_calls(cur: Cursor, group_id: bytes | None = None, limit: int = 50) -> list[GroupCallRow]:
    """The latest group calls, newest first (with ``group_id``: in that group only)."""
    limit = max(1, min(limit, MAX_HISTORY))
    if group_id is None:
        cur.execute(
            f"SELECT {_GCOLS} FROM client_group_calls ORDER BY started_at_ms DESC LIMIT ?",
            (limit,),
        )
    else:
        cur.execute(
            f"SELECT {_GCOLS} FROM client_group_calls WHERE group_id = ? "
            "ORDER BY started_at_ms DESC LIMIT ?",
            (group_id, limit),
        )
    return [_group_row(r) for r in cur.fetchall()]
