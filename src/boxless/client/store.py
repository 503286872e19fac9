"""The client's shared tables: contacts, 1:1 messages, outbox, dedup, sync, bundles.

Each feature with tables of its own has its own store module
(:mod:`~boxless.client.group_store`, :mod:`~boxless.client.broadcast_store`); no
SQL lives anywhere else.

Synapse's habit: domain code decides, storage functions hold the SQL. Each
function takes the cursor of a transaction the caller owns (``with
db.transaction() as cur``), so one incoming message — decrypt, dedup mark,
stored message, contact change — commits or rolls back as one unit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from boxless.chat.outbox import ROW_COLUMNS, OutboxRow
from boxless.storage.userdb import migration_files


class Cursor(Protocol):
    """A DB-API cursor of a transaction the caller owns (SQLCipher's, here)."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]], /) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


def client_migrations() -> list[Any]:
    return migration_files("boxless.client")


@dataclass(frozen=True, slots=True)
class ContactRow:
    identity_key: bytes
    display_name: str
    bundle: bytes
    device_key: bytes
    state: str
    intro: str
    conversation_topic: str
    verified_key: bytes | None
    lamport: int
    added_at_ms: int
    updated_at_ms: int
    avatar: bytes | None = None  # their picture (ProfileUpdate); see set_contact_avatar


_CONTACT_COLS = (
    "identity_key, display_name, bundle, device_key, state, intro, conversation_topic, "
    "verified_key, lamport, added_at_ms, updated_at_ms, avatar"
)


def put_contact(cur: Cursor, c: ContactRow) -> None:
    """Insert or update a contact. An existing row keeps its avatar: rows built
    afresh (from a contact link, say) know none, so only set_contact_avatar changes it."""
    cur.execute(
        f"INSERT INTO client_contacts ({_CONTACT_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT(identity_key) DO UPDATE SET display_name=excluded.display_name, "
        "bundle=excluded.bundle, device_key=excluded.device_key, state=excluded.state, "
        "intro=excluded.intro, conversation_topic=excluded.conversation_topic, "
        "verified_key=excluded.verified_key, lamport=excluded.lamport, "
        "updated_at_ms=excluded.updated_at_ms",
        (
            c.identity_key,
            c.display_name,
            c.bundle,
            c.device_key,
            c.state,
            c.intro,
            c.conversation_topic,
            c.verified_key,
            c.lamport,
            c.added_at_ms,
            c.updated_at_ms,
            c.avatar,
        ),
    )


def observe_lamport(cur: Cursor, identity_key: bytes, lamport: int) -> None:
    """Move a contact's Lamport clock up to ``lamport`` (never down): one statement
    per received message instead of reading and rewriting the whole row."""
    cur.execute(
        "UPDATE client_contacts SET lamport = ? WHERE identity_key = ? AND lamport < ?",
        (lamport, identity_key, lamport),
    )


def observe_lamports(cur: Cursor, clocks: Iterable[tuple[bytes, int]]) -> None:
    """:func:`observe_lamport` for many contacts in one statement (a receive batch's
    highest Lamport per contact)."""
    cur.executemany(
        "UPDATE client_contacts SET lamport = ? WHERE identity_key = ? AND lamport < ?",
        [(lamport, key, lamport) for key, lamport in clocks],
    )


def set_contact_avatar(cur: Cursor, identity_key: bytes, avatar: bytes | None) -> None:
    """Store a contact's picture (None: they have none)."""
    cur.execute(
        "UPDATE client_contacts SET avatar = ? WHERE identity_key = ?", (avatar, identity_key)
    )


def _contact(row: tuple[Any, ...]) -> ContactRow:
    (key, name, bundle, device, state, intro, topic, verified, lamport, added, updated, pic) = row
    return ContactRow(
        key,
        name,
        bundle,
        device,
        state,
        intro,
        topic,
        verified,
        lamport,
        added,
        updated,
        bytes(pic) if pic else None,
    )


def get_contact(cur: Cursor, identity_key: bytes) -> ContactRow | None:
    cur.execute(
        f"SELECT {_CONTACT_COLS} FROM client_contacts WHERE identity_key = ?", (identity_key,)
    )
    row = cur.fetchone()
    return _contact(row) if row else None


def list_contacts(cur: Cursor) -> list[ContactRow]:
    cur.execute(f"SELECT {_CONTACT_COLS} FROM client_contacts ORDER BY display_name, added_at_ms")
    return [_contact(r) for r in cur.fetchall()]


def contact_by_topic(cur: Cursor, topic: str) -> ContactRow | None:
    cur.execute(
        f"SELECT {_CONTACT_COLS} FROM client_contacts WHERE conversation_topic = ?", (topic,)
    )
    row = cur.fetchone()
    return _contact(row) if row else None


@dataclass(frozen=True, slots=True)
class MessageRow:
    message_id: bytes
    contact: bytes
    outgoing: bool
    lamport: int
    sent_at_ms: int
    received_at_ms: int | None
    text: str
    reply_to: bytes | None
    edited: bool
    deleted: bool
    state: str
    reactions: dict[str, list[str]]


_MSG_COLS = (
    "message_id, contact, outgoing, lamport, sent_at_ms, received_at_ms, text, reply_to, "
    "edited, deleted, state, reactions"
)


def _message(row: tuple[Any, ...]) -> MessageRow:
    (mid, contact, out, lamport, sent, recv, text, reply, edited, deleted, state, reactions) = row
    return MessageRow(
        mid,
        contact,
        bool(out),
        lamport,
        sent,
        recv,
        text,
        reply,
        bool(edited),
        bool(deleted),
        state,
        json.loads(reactions),
    )


def add_message(cur: Cursor, m: MessageRow) -> bool:
    """Insert ``m``; False if a message with its id exists (a duplicate)."""
    cur.execute(
        f"INSERT OR IGNORE INTO client_messages ({_MSG_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            m.message_id,
            m.contact,
            int(m.outgoing),
            m.lamport,
            m.sent_at_ms,
            m.received_at_ms,
            m.text,
            m.reply_to,
            int(m.edited),
            int(m.deleted),
            m.state,
            json.dumps(m.reactions) if m.reactions else "{}",  # a new text has none: no encoder
        ),
    )
    return bool(cur.rowcount)


def get_message(cur: Cursor, message_id: bytes) -> MessageRow | None:
    cur.execute(f"SELECT {_MSG_COLS} FROM client_messages WHERE message_id = ?", (message_id,))
    row = cur.fetchone()
    return _message(row) if row else None


def update_message(cur: Cursor, m: MessageRow) -> None:
    cur.execute(
        "UPDATE client_messages SET text=?, edited=?, deleted=?, state=?, reactions=? "
        "WHERE message_id=?",
        (m.text, int(m.edited), int(m.deleted), m.state, json.dumps(m.reactions), m.message_id),
    )


def list_messages(
    cur: Cursor, contact: bytes, limit: int = 50, before_lamport: int | None = None
) -> list[MessageRow]:
    """The newest ``limit`` messages of a conversation (before ``before_lamport``), oldest first."""
    cur.execute(
        f"SELECT {_MSG_COLS} FROM client_messages WHERE contact = ? AND lamport < ? "
        "ORDER BY lamport DESC, sent_at_ms DESC, message_id DESC LIMIT ?",
        (contact, before_lamport if before_lamport is not None else 2**62, limit),
    )
    return [_message(r) for r in reversed(cur.fetchall())]


def unread_incoming(cur: Cursor, contact: bytes) -> list[bytes]:
    cur.execute(
        "SELECT message_id FROM client_messages WHERE contact = ? AND outgoing = 0 "
        "AND state = 'received'",
        (contact,),
    )
    return [r[0] for r in cur.fetchall()]


def set_incoming_read(cur: Cursor, ids: list[bytes]) -> None:
    cur.executemany(
        "UPDATE client_messages SET state='read' WHERE message_id=?", [(i,) for i in ids]
    )


def save_outbox_row(cur: Cursor, row: OutboxRow) -> None:
    cols = ", ".join(ROW_COLUMNS)
    marks = ",".join("?" * len(ROW_COLUMNS))
    cur.execute(f"INSERT OR REPLACE INTO client_outbox ({cols}) VALUES ({marks})", tuple(row))


def delete_outbox_row(cur: Cursor, message_id: bytes) -> None:
    cur.execute("DELETE FROM client_outbox WHERE message_id = ?", (message_id,))


def load_outbox_rows(cur: Cursor) -> list[tuple[Any, ...]]:
    cur.execute(f"SELECT {', '.join(ROW_COLUMNS)} FROM client_outbox")
    return list(cur.fetchall())


def mark_seen(cur: Cursor, message_hash: bytes, now_ms: int) -> bool:
    """Record a processed Waku message; False if it was processed before."""
    cur.execute(
        "INSERT OR IGNORE INTO client_seen (message_hash, seen_at_ms) VALUES (?, ?)",
        (message_hash, now_ms),
    )
    return bool(cur.rowcount)


def mark_seen_many(cur: Cursor, marks: Sequence[tuple[bytes, int]]) -> None:
    """Record processed Waku messages ``(message_hash, now_ms)`` in one statement."""
    cur.executemany(
        "INSERT OR IGNORE INTO client_seen (message_hash, seen_at_ms) VALUES (?, ?)", marks
    )


def seen_among(cur: Cursor, hashes: Sequence[bytes]) -> set[bytes]:
    """Which of ``hashes`` were processed before (one read for a batch)."""
    found: set[bytes] = set()
    for i in range(0, len(hashes), 500):
        chunk = hashes[i : i + 500]
        marks = ",".join("?" * len(chunk))
        cur.execute(f"SELECT message_hash FROM client_seen WHERE message_hash IN ({marks})", chunk)
        found.update(bytes(r[0]) for r in cur.fetchall())
    return found


def was_seen(cur: Cursor, message_hash: bytes) -> bool:
    cur.execute("SELECT 1 FROM client_seen WHERE message_hash = ?", (message_hash,))
    return cur.fetchone() is not None


def get_sync(cur: Cursor, topic: str) -> int | None:
    cur.execute("SELECT last_ns FROM client_sync WHERE content_topic = ?", (topic,))
    row = cur.fetchone()
    return int(row[0]) if row else None


def set_sync(cur: Cursor, topic: str, last_ns: int) -> None:
    cur.execute(
        "INSERT INTO client_sync (content_topic, last_ns) VALUES (?, ?) "
        "ON CONFLICT(content_topic) DO UPDATE SET last_ns = MAX(last_ns, excluded.last_ns)",
        (topic, last_ns),
    )


def get_state(cur: Cursor, key: str) -> bytes | None:
    cur.execute("SELECT value FROM client_state WHERE key = ?", (key,))
    row = cur.fetchone()
    return bytes(row[0]) if row else None


def set_state(cur: Cursor, key: str, value: bytes) -> None:
    cur.execute("INSERT OR REPLACE INTO client_state (key, value) VALUES (?, ?)", (key, value))


def get_bundle(cur: Cursor, identity_key: bytes) -> bytes | None:
    """The newest published bundle we verified for ``identity_key`` (serialized)."""
    cur.execute("SELECT bundle FROM client_bundles WHERE identity_key = ?", (identity_key,))
    row = cur.fetchone()
    return None if row is None else bytes(row[0])


def bundle_created_at(cur: Cursor, identity_key: bytes) -> int | None:
    cur.execute("SELECT created_at FROM client_bundles WHERE identity_key = ?", (identity_key,))
    row = cur.fetchone()
    return None if row is None else int(row[0])


def put_bundle(
    cur: Cursor,
    identity_key: bytes,
    device_key: bytes,
    created_at: int,
    bundle: bytes,
    fetched_at_ms: int,
) -> None:
    cur.execute(
        "INSERT OR REPLACE INTO client_bundles "
        "(identity_key, device_key, created_at, bundle, fetched_at_ms) VALUES (?, ?, ?, ?, ?)",
        (identity_key, device_key, created_at, bundle, fetched_at_ms),
    )
