"""The tables of broadcast lists: every SQL statement of :mod:`boxless.client.broadcast`."""

from __future__ import annotations

from dataclasses import dataclass

from boxless.client.store import Cursor
from boxless.errors import UsageError


class UnknownBroadcastList(UsageError):
    """No broadcast list has that id."""


@dataclass(frozen=True, slots=True)
class BroadcastList:
    list_id: bytes
    name: str
    members: tuple[bytes, ...]  # identity keys, in the user's order
    created_at_ms: int
    updated_at_ms: int


@dataclass(frozen=True, slots=True)
class SentBroadcast:
    """One text sent to a list, with its recipients' delivery counts."""

    broadcast_id: bytes
    list_id: bytes
    text: str
    sent_at_ms: int
    recipients: tuple[bytes, ...]
    message_ids: tuple[bytes, ...]  # the 1:1 message each recipient got, same order
    states: tuple[str | None, ...]  # each message's delivery state (None: its chat is gone)

    @property
    def delivered(self) -> int:
        """How many recipients' devices have it (delivered or read)."""
        return sum(s in ("delivered", "read") for s in self.states)

    @property
    def read(self) -> int:
        return sum(s == "read" for s in self.states)


def list_ids(cur: Cursor) -> list[bytes]:
    cur.execute("SELECT list_id FROM client_broadcast_lists ORDER BY name, created_at_ms")
    return [r[0] for r in cur.fetchall()]


def get_list(cur: Cursor, list_id: bytes) -> BroadcastList:
    cur.execute(
        "SELECT name, created_at_ms, updated_at_ms FROM client_broadcast_lists WHERE list_id = ?",
        (list_id,),
    )
    row = cur.fetchone()
    if row is None:
        raise UnknownBroadcastList("no such broadcast list: see `boxless broadcast list`")
    cur.execute(
        "SELECT identity_key FROM client_broadcast_members WHERE list_id = ? ORDER BY position",
        (list_id,),
    )
    members = tuple(r[0] for r in cur.fetchall())
    return BroadcastList(list_id, row[0], members, row[1], row[2])


def set_members(cur: Cursor, list_id: bytes, keys: tuple[bytes, ...]) -> None:
    cur.execute("DELETE FROM client_broadcast_members WHERE list_id = ?", (list_id,))
    cur.executemany(
        "INSERT INTO client_broadcast_members (list_id, identity_key, position) VALUES (?, ?, ?)",
        [(list_id, key, i) for i, key in enumerate(keys)],
    )


def get_broadcast(cur: Cursor, broadcast_id: bytes) -> SentBroadcast:
    cur.execute(
        "SELECT list_id, text, sent_at_ms FROM client_broadcasts WHERE broadcast_id = ?",
        (broadcast_id,),
    )
    list_id, text, sent_at_ms = cur.fetchone()
    cur.execute(
        "SELECT b.recipient, b.message_id, m.state FROM client_broadcast_messages b"
        " LEFT JOIN client_messages m ON m.message_id = b.message_id"
        " WHERE b.broadcast_id = ? ORDER BY b.rowid",
        (broadcast_id,),
    )
    rows = cur.fetchall()
    return SentBroadcast(
        broadcast_id,
        list_id,
        text,
        sent_at_ms,
        tuple(r[0] for r in rows),
        tuple(r[1] for r in rows),
        tuple(r[2] for r in rows),
    )


def insert_list(cur: Cursor, list_id: bytes, name: str, now_ms: int) -> None:
    cur.execute(
        "INSERT INTO client_broadcast_lists (list_id, name, created_at_ms, updated_at_ms)"
        " VALUES (?, ?, ?, ?)",
        (list_id, name, now_ms, now_ms),
    )


def rename_list(cur: Cursor, list_id: bytes, name: str) -> None:
    cur.execute("UPDATE client_broadcast_lists SET name = ? WHERE list_id = ?", (name, list_id))


def touch_list(cur: Cursor, list_id: bytes, now_ms: int) -> None:
    cur.execute(
        "UPDATE client_broadcast_lists SET updated_at_ms = ? WHERE list_id = ?", (now_ms, list_id)
    )


def delete_list(cur: Cursor, list_id: bytes) -> None:
    cur.execute("DELETE FROM client_broadcast_lists WHERE list_id = ?", (list_id,))


def insert_broadcast(
    cur: Cursor, broadcast_id: bytes, list_id: bytes, text: str, now_ms: int
) -> None:
    cur.execute(
        "INSERT INTO client_broadcasts (broadcast_id, list_id, text, sent_at_ms)"
        " VALUES (?, ?, ?, ?)",
        (broadcast_id, list_id, text, now_ms),
    )


def add_recipient(cur: Cursor, broadcast_id: bytes, message_id: bytes, recipient: bytes) -> None:
    cur.execute(
        "INSERT INTO client_broadcast_messages (broadcast_id, message_id, recipient)"
        " VALUES (?, ?, ?)",
        (broadcast_id, message_id, recipient),
    )


def broadcast_ids(cur: Cursor, list_id: bytes, limit: int, before_ms: int | None) -> list[bytes]:
    """The newest ``limit`` broadcasts to the list sent before ``before_ms``, oldest first."""
    cur.execute(
        "SELECT broadcast_id FROM client_broadcasts WHERE list_id = ? AND sent_at_ms < ?"
        " ORDER BY sent_at_ms DESC, broadcast_id DESC LIMIT ?",
        (list_id, before_ms if before_ms is not None else 2**62, limit),
    )
    return [bytes(r[0]) for r in reversed(cur.fetchall())]
