"""All the SQL of payments in chat: cards (transfers, requests) and contacts' addresses.

Each function runs inside the caller's transaction (``cur``); the tables are in
``client/migrations_payments/0002_cards.sql``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from boxless.client.store import Cursor

__all__ = [
    "CardRow",
    "ack_transfer",
    "acked",
    "add_card",
    "card",
    "cards_of_chat",
    "cards_paying",
    "get_peer_address",
    "open_cards",
    "put_peer_address",
    "set_status",
    "tx_seen",
]

_COLS = (
    "message_id, chat, kind, outgoing, author, body, tx_hash, request_id, status, reason,"
    " created_ms, updated_ms"
)


@dataclass(frozen=True, slots=True)
class CardRow:
    message_id: str
    chat: str
    kind: str  # transfer | request
    outgoing: bool
    author: bytes
    body: bytes  # the PaymentBody protobuf
    tx_hash: bytes | None
    request_id: bytes | None
    status: str
    reason: str
    created_ms: int
    updated_ms: int


def _row(r: Any) -> CardRow:
    return CardRow(
        str(r[0]),
        str(r[1]),
        str(r[2]),
        bool(r[3]),
        bytes(r[4]),
        bytes(r[5]),
        None if r[6] is None else bytes(r[6]),
        None if r[7] is None else bytes(r[7]),
        str(r[8]),
        str(r[9]),
        int(r[10]),
        int(r[11]),
    )


def add_card(cur: Cursor, c: CardRow) -> bool:
    """Insert ``c``; False if a card with its message id exists (a duplicate)."""
    cur.execute(
        f"INSERT OR IGNORE INTO payment_card ({_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            c.message_id,
            c.chat,
            c.kind,
            int(c.outgoing),
            c.author,
            c.body,
            c.tx_hash,
            c.request_id,
            c.status,
            c.reason,
            c.created_ms,
            c.updated_ms,
        ),
    )
    return bool(cur.rowcount)


def tx_seen(cur: Cursor, tx_hash: bytes) -> bool:
    """Whether a card already names this transaction (a replay must not count twice)."""
    cur.execute("SELECT 1 FROM payment_card WHERE tx_hash = ? LIMIT 1", (tx_hash,))
    return cur.fetchone() is not None


def card(cur: Cursor, message_id: str) -> CardRow | None:
    cur.execute(f"SELECT {_COLS} FROM payment_card WHERE message_id = ?", (message_id,))
    r = cur.fetchone()
    return None if r is None else _row(r)


def cards_of_chat(cur: Cursor, chat: str, limit: int = 500) -> list[CardRow]:
    cur.execute(
        f"SELECT {_COLS} FROM payment_card WHERE chat = ? ORDER BY created_ms DESC LIMIT ?",
        (chat, limit),
    )
    return [_row(r) for r in cur.fetchall()]


def cards_paying(cur: Cursor, request_id: bytes) -> list[CardRow]:
    """Transfer cards that say they pay the request ``request_id``."""
    cur.execute(
        f"SELECT {_COLS} FROM payment_card WHERE kind = 'transfer' AND request_id = ?"
        " ORDER BY created_ms",
        (request_id,),
    )
    return [_row(r) for r in cur.fetchall()]


def open_cards(cur: Cursor, limit: int = 200) -> list[CardRow]:
    """Transfer cards whose chain verdict is not final yet, oldest first."""
    cur.execute(
        f"SELECT {_COLS} FROM payment_card WHERE status = 'pending' AND kind = 'transfer'"
        " ORDER BY created_ms LIMIT ?",
        (limit,),
    )
    return [_row(r) for r in cur.fetchall()]


def set_status(cur: Cursor, message_id: str, status: str, reason: str, now_ms: int) -> bool:
    """Change a card's status; True if it changed."""
    cur.execute(
        "UPDATE payment_card SET status = ?, reason = ?, updated_ms = ?"
        " WHERE message_id = ? AND (status != ? OR reason != ?)",
        (status, reason, now_ms, message_id, status, reason),
    )
    return bool(cur.rowcount)


def ack_transfer(cur: Cursor, chat: str, tx_hash: bytes) -> str | None:
    """Mark our transfer card with ``tx_hash`` in ``chat`` acknowledged by its
    recipient; its message id, or None if there is no such card of ours."""
    cur.execute(
        "UPDATE payment_card SET acked = 1 WHERE chat = ? AND tx_hash = ? AND outgoing = 1"
        " AND kind = 'transfer'",
        (chat, tx_hash),
    )
    if not cur.rowcount:
        return None
    cur.execute(
        "SELECT message_id FROM payment_card WHERE chat = ? AND tx_hash = ? AND outgoing = 1",
        (chat, tx_hash),
    )
    row = cur.fetchone()
    return None if row is None else str(row[0])


def acked(cur: Cursor, message_id: str) -> bool:
    cur.execute("SELECT acked FROM payment_card WHERE message_id = ?", (message_id,))
    row = cur.fetchone()
    return bool(row and row[0])


def put_peer_address(
    cur: Cursor, contact: bytes, chain_id: int, address: bytes, now_ms: int
) -> None:
    cur.execute(
        "INSERT INTO payment_peer_address (contact, chain_id, address, updated_ms)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (contact) DO UPDATE SET chain_id = excluded.chain_id,"
        " address = excluded.address, updated_ms = excluded.updated_ms",
        (contact, chain_id, address, now_ms),
    )


def get_peer_address(cur: Cursor, contact: bytes) -> tuple[int, bytes] | None:
    cur.execute("SELECT chain_id, address FROM payment_peer_address WHERE contact = ?", (contact,))
    r = cur.fetchone()
    return None if r is None else (int(r[0]), bytes(r[1]))
