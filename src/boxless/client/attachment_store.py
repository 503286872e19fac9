"""All the SQL of attachments (:mod:`boxless.client.attachments`).

A row per file of a message, keyed by (message id, index). ``descriptor`` is
the file's Attachment protobuf, key included: it lives only in this encrypted
database; the encrypted bytes live in the block store.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from boxless.chat.attachment import AttachmentRef
from boxless.client.store import Cursor
from boxless.wire import attachment_pb2

__all__ = [
    "AttachmentRow",
    "attachments_of",
    "get_attachment",
    "get_setting",
    "Repin",
    "due_repins",
    "put_attachment",
    "put_repin",
    "resumable",
    "set_setting",
    "set_state",
    "update_repin",
]

STATES = ("remote", "downloading", "ready", "failed")


@dataclass(frozen=True, slots=True)
class AttachmentRow:
    message_id: bytes
    idx: int
    chat: str
    outgoing: bool
    ref: AttachmentRef
    state: str
    done: int
    error: str | None
    updated_ms: int


_COLS = "message_id, idx, chat, outgoing, descriptor, state, done, error, updated_ms"


def _row(r: tuple[Any, ...]) -> AttachmentRow:
    pb = attachment_pb2.Attachment()
    pb.ParseFromString(r[4])
    ref = AttachmentRef.from_proto(pb)  # checked when stored; checked again (a bug shows here)
    return AttachmentRow(
        bytes(r[0]), int(r[1]), str(r[2]), bool(r[3]), ref, str(r[5]), int(r[6]), r[7], int(r[8])
    )


def put_attachment(
    cur: Cursor,
    message_id: bytes,
    idx: int,
    chat: str,
    outgoing: bool,
    ref: AttachmentRef,
    state: str,
    now_ms: int,
) -> bool:
    """Store one file of a message; False if it was already there (a re-delivery)."""
    assert state in STATES
    cur.execute(
        "INSERT OR IGNORE INTO client_attachments "
        "(message_id, idx, chat, outgoing, descriptor, size, state, done, error, updated_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
        (
            message_id,
            idx,
            chat,
            int(outgoing),
            ref.to_proto().SerializeToString(),
            ref.size,
            state,
            ref.size if state == "ready" else 0,
            now_ms,
        ),
    )
    return bool(cur.rowcount)


def get_attachment(cur: Cursor, message_id: bytes, idx: int) -> AttachmentRow | None:
    r = cur.execute(
        f"SELECT {_COLS} FROM client_attachments WHERE message_id = ? AND idx = ?",
        (message_id, idx),
    ).fetchone()
    return None if r is None else _row(r)


def attachments_of(cur: Cursor, message_id: bytes) -> list[AttachmentRow]:
    rows = cur.execute(
        f"SELECT {_COLS} FROM client_attachments WHERE message_id = ? ORDER BY idx", (message_id,)
    ).fetchall()
    return [_row(r) for r in rows]


def set_state(
    cur: Cursor,
    message_id: bytes,
    idx: int,
    state: str,
    now_ms: int,
    *,
    done: int | None = None,
    error: str | None = None,
) -> None:
    assert state in STATES
    cur.execute(
        "UPDATE client_attachments SET state = ?, done = COALESCE(?, done), error = ?, updated_ms = ? "
        "WHERE message_id = ? AND idx = ?",
        (state, done, error, now_ms, message_id, idx),
    )


def set_peers(cur: Cursor, message_id: bytes, idx: int, peers: tuple[str, ...]) -> None:
    """Replace where a received file is (its sender pinned it again there)."""
    row = get_attachment(cur, message_id, idx)
    assert row is not None
    ref = replace(row.ref, peers=peers)
    cur.execute(
        "UPDATE client_attachments SET descriptor = ? WHERE message_id = ? AND idx = ?",
        (ref.to_proto().SerializeToString(), message_id, idx),
    )


def resumable(cur: Cursor, max_size: int, limit: int) -> list[AttachmentRow]:
    """Files to fetch after a restart: interrupted ones, and new ones under ``max_size``."""
    rows = cur.execute(
        f"SELECT {_COLS} FROM client_attachments "
        "WHERE state = 'downloading' OR (state = 'remote' AND size <= ?) "
        "ORDER BY updated_ms LIMIT ?",
        (max_size, limit),
    ).fetchall()
    return [_row(r) for r in rows]


def get_setting(cur: Cursor, name: str, default: int) -> int:
    r = cur.execute(
        "SELECT value FROM client_attachment_settings WHERE name = ?", (name,)
    ).fetchone()
    return default if r is None else int(r[0])


def set_setting(cur: Cursor, name: str, value: int) -> None:
    cur.execute(
        "INSERT INTO client_attachment_settings (name, value) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, value),
    )


# -- re-pins: sent files that fewer service nodes keep than wanted ---------------------------

MAX_REPINS = 1000  # rows kept; the oldest (nearest expiry) go first past it


@dataclass(frozen=True, slots=True)
class Repin:
    cid: bytes
    size: int
    pinned_by: tuple[str, ...]
    tries: int
    next_ms: int
    expires_ms: int
    error: str | None


def put_repin(
    cur: Cursor, cid: bytes, size: int, pinned_by: tuple[str, ...], next_ms: int, expires_ms: int
) -> None:
    cur.execute(
        "INSERT INTO client_attachment_repins (cid, size, pinned_by, next_ms, expires_ms) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (cid) DO UPDATE SET pinned_by = excluded.pinned_by",
        (cid, size, "\n".join(pinned_by), next_ms, expires_ms),
    )
    cur.execute(
        "DELETE FROM client_attachment_repins WHERE cid IN (SELECT cid FROM "
        "client_attachment_repins ORDER BY expires_ms DESC LIMIT -1 OFFSET ?)",
        (MAX_REPINS,),
    )


def due_repins(cur: Cursor, now_ms: int, limit: int) -> list[Repin]:
    """Rows whose next try is due (expired ones are deleted first)."""
    cur.execute("DELETE FROM client_attachment_repins WHERE expires_ms <= ?", (now_ms,))
    rows = cur.execute(
        "SELECT cid, size, pinned_by, tries, next_ms, expires_ms, error "
        "FROM client_attachment_repins WHERE next_ms <= ? ORDER BY next_ms LIMIT ?",
        (now_ms, limit),
    ).fetchall()
    return [
        Repin(bytes(r[0]), int(r[1]), tuple(p for p in str(r[2]).split("\n") if p), int(r[3]),
              int(r[4]), int(r[5]), r[6])
        for r in rows
    ]  # fmt: skip


def update_repin(
    cur: Cursor,
    cid: bytes,
    pinned_by: tuple[str, ...],
    *,
    done: bool,
    next_ms: int,
    error: str | None,
) -> None:
    if done:
        cur.execute("DELETE FROM client_attachment_repins WHERE cid = ?", (cid,))
        return
    cur.execute(
        "UPDATE client_attachment_repins SET pinned_by = ?, tries = tries + 1, next_ms = ?, "
        "error = ? WHERE cid = ?",
        ("\n".join(pinned_by), next_ms, error, cid),
    )
