"""Own-device sync, all the SQL (client/ownsync.py): the registers, and where a
group's read position lands when another device of ours read up to a Lamport time."""

from __future__ import annotations

from boxless.client.ownsync_core import Register, default
from boxless.storage.userdb import Cursor

__all__ = ["count_registers", "favourite_id", "get_register", "group_seq_through", "put_register"]


def get_register(cur: Cursor, key: str) -> Register:
    """The register of ``key`` (its default at clock 0 if never written)."""
    cur.execute("SELECT value, clock, device FROM devices_sync_registers WHERE key = ?", (key,))
    row = cur.fetchone()
    if row is None:
        return default(key)
    return Register(str(row[0]), int(row[1]), bytes(row[2]))


def count_registers(cur: Cursor) -> int:
    """How many registers were ever written (the table's bound is the plug-in's)."""
    cur.execute("SELECT COUNT(*) FROM devices_sync_registers")
    return int(cur.fetchone()[0])


def put_register(cur: Cursor, key: str, reg: Register) -> None:
    cur.execute(
        "INSERT INTO devices_sync_registers (key, value, clock, device) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value, clock = excluded.clock,"
        " device = excluded.device",
        (key, reg.value, reg.clock, reg.device),
    )


def favourite_id(cur: Cursor, chat: str, message_id: str) -> int | None:
    """The id of the favourite that keeps ``message_id`` of ``chat``, if saved."""
    cur.execute(
        "SELECT id FROM client_favourites WHERE chat = ? AND message_id = ?", (chat, message_id)
    )
    row = cur.fetchone()
    return None if row is None else int(row[0])


def group_seq_through(cur: Cursor, group_id: bytes, lamport: int) -> int | None:
    """The local sequence number of the newest incoming text at or before ``lamport``
    in the group (our read position once another device read up to it)."""
    cur.execute(
        "SELECT MAX(seq) FROM client_group_messages WHERE group_id = ? AND lamport <= ?"
        " AND outgoing = 0 AND kind = 'text'",
        (group_id, lamport),
    )
    row = cur.fetchone()
    return None if row is None or row[0] is None else int(row[0])
