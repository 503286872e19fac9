"""The group tables (migrations ``0002_groups``, ``0003_group_features``,
``0006_group_queues``,
``0007_group_outbox``, ``0008_group_pending_session``): every SQL statement of the group layer.

As in :mod:`boxless.client.store`: each function takes the cursor of a
transaction the caller owns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from boxless.chat.outbox import ROW_COLUMNS, OutboxRow
from boxless.client.store import Cursor


@dataclass(frozen=True, slots=True)
class GroupMessageRow:
    message_id: str
    group_id: bytes
    sender: bytes
    outgoing: bool
    lamport: int
    sent_at_ms: int
    received_at_ms: int | None
    text: str
    state: str
    kind: str = "text"  # text | event (a membership or settings change, rendered)
    mentions_me: bool = False
    pinned: bool = False
    read_count: int = 0  # members other than the sender whose read marker covers it
    # Filled by :meth:`boxless.client.group_actions.GroupActions.decorate` (its own tables):
    reply_to: str | None = None
    mentions: tuple[bytes, ...] = ()
    mention_all: bool = False
    edited: bool = False
    deleted: bool = False
    reactions: tuple[tuple[bytes, str], ...] = ()  # (member, emoji) in the order added


@dataclass(frozen=True, slots=True)
class GroupMeta:
    muted: bool
    read_seq: int
    unread: int
    mentions: int


@dataclass(frozen=True, slots=True)
class PendingJoin:
    group_id: bytes
    name: str
    admin: bytes
    link: str
    requested_at_ms: int


_MSG_COLS = (
    "message_id, group_id, sender, outgoing, lamport, sent_at_ms, received_at_ms, text, state,"
    " kind, mentions_me, pinned"
)
_READ_COUNT = (
    "(SELECT COUNT(*) FROM client_group_reads r WHERE r.group_id = m.group_id"
    " AND r.member != m.sender AND r.lamport >= m.lamport)"
)


def add_group(cur: Cursor, group_id: bytes, sds_state: dict[str, object], now_ms: int) -> None:
    cur.execute(
        "INSERT OR IGNORE INTO client_groups (group_id, sds_state, joined_at_ms) VALUES (?,?,?)",
        (group_id, json.dumps(sds_state), now_ms),
    )


def group_ids(cur: Cursor) -> list[bytes]:
    cur.execute("SELECT group_id FROM client_groups ORDER BY joined_at_ms")
    return [bytes(r[0]) for r in cur.fetchall()]


def has_group(cur: Cursor, group_id: bytes) -> bool:
    cur.execute("SELECT 1 FROM client_groups WHERE group_id = ?", (group_id,))
    return cur.fetchone() is not None


def get_sds_state(cur: Cursor, group_id: bytes) -> dict[str, object] | None:
    cur.execute("SELECT sds_state FROM client_groups WHERE group_id = ?", (group_id,))
    row = cur.fetchone()
    return None if row is None else dict(json.loads(row[0]))


def set_sds_state(cur: Cursor, group_id: bytes, state: dict[str, object]) -> None:
    cur.execute(
        "UPDATE client_groups SET sds_state = ? WHERE group_id = ?", (json.dumps(state), group_id)
    )


def add_op(cur: Cursor, group_id: bytes, op_id: bytes, op: bytes) -> None:
    cur.execute(
        "INSERT OR IGNORE INTO client_group_ops (group_id, op_id, op) VALUES (?,?,?)",
        (group_id, op_id, op),
    )


def list_ops(cur: Cursor, group_id: bytes) -> list[bytes]:
    cur.execute("SELECT op FROM client_group_ops WHERE group_id = ?", (group_id,))
    return [bytes(r[0]) for r in cur.fetchall()]


def put_card(cur: Cursor, identity_key: bytes, card: bytes, device_key: bytes) -> None:
    cur.execute(
        "INSERT OR REPLACE INTO client_group_cards (identity_key, card, device_key) VALUES (?,?,?)",
        (identity_key, card, device_key),
    )


def get_card(cur: Cursor, identity_key: bytes) -> tuple[bytes, bytes] | None:
    """``(card, device_key)`` of a member, or None."""
    cur.execute(
        "SELECT card, device_key FROM client_group_cards WHERE identity_key = ?", (identity_key,)
    )
    row = cur.fetchone()
    return None if row is None else (bytes(row[0]), bytes(row[1]))


def add_message(cur: Cursor, m: GroupMessageRow) -> bool:
    cur.execute(
        f"INSERT OR IGNORE INTO client_group_messages ({_MSG_COLS})"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            m.message_id,
            m.group_id,
            m.sender,
            int(m.outgoing),
            m.lamport,
            m.sent_at_ms,
            m.received_at_ms,
            m.text,
            m.state,
            m.kind,
            int(m.mentions_me),
            int(m.pinned),
        ),
    )
    return bool(cur.rowcount)


def list_messages(
    cur: Cursor, group_id: bytes, limit: int = 50, before_seq: int | None = None
) -> list[tuple[int, GroupMessageRow]]:
    """The newest ``limit`` messages (older than message ``before_seq``), oldest first.

    Ordered by (SDS Lamport time, id): a total order that respects causality and
    is the same on every device, whatever order messages arrived in (a message
    repaired late lands where it belongs). ``seq`` is only this device's arrival
    number, used as the paging cursor.
    """
    if before_seq is None:
        cur.execute(
            f"SELECT seq, {_MSG_COLS}, {_READ_COUNT} FROM client_group_messages m"
            " WHERE group_id = ? ORDER BY lamport DESC, message_id DESC LIMIT ?",
            (group_id, limit),
        )
    else:
        cur.execute(
            f"SELECT seq, {_MSG_COLS}, {_READ_COUNT} FROM client_group_messages m"
            " WHERE group_id = ? AND (lamport, message_id) < (SELECT lamport, message_id"
            " FROM client_group_messages WHERE seq = ?)"
            " ORDER BY lamport DESC, message_id DESC LIMIT ?",
            (group_id, before_seq, limit),
        )
    rows = [(r[0], _message(r[1:])) for r in cur.fetchall()]
    return list(reversed(rows))


def get_message(cur: Cursor, message_id: str) -> tuple[int, GroupMessageRow] | None:
    cur.execute(
        f"SELECT seq, {_MSG_COLS}, {_READ_COUNT} FROM client_group_messages m WHERE message_id = ?",
        (message_id,),
    )
    r = cur.fetchone()
    return None if r is None else (r[0], _message(r[1:]))


def pinned_messages(cur: Cursor, group_id: bytes) -> list[tuple[int, GroupMessageRow]]:
    cur.execute(
        f"SELECT seq, {_MSG_COLS}, {_READ_COUNT} FROM client_group_messages m"
        " WHERE group_id = ? AND pinned = 1 ORDER BY lamport, message_id",
        (group_id,),
    )
    return [(r[0], _message(r[1:])) for r in cur.fetchall()]


def _message(r: tuple[Any, ...]) -> GroupMessageRow:
    mid, gid, sender, out, lamport, sent, recv, text, state, kind, mentions, pinned, reads = r
    return GroupMessageRow(
        mid,
        bytes(gid),
        bytes(sender),
        bool(out),
        lamport,
        sent,
        recv,
        text,
        state,
        kind,
        bool(mentions),
        bool(pinned),
        int(reads),
    )


def set_message_state(
    cur: Cursor, message_id: str, state: str, only_from: str | None = None
) -> bool:
    """Set a message's state (only if it is ``only_from``, when given); True if it changed."""
    cur.execute(
        "UPDATE client_group_messages SET state = ? WHERE message_id = ? AND state != ?"
        " AND (? IS NULL OR state = ?)",
        (state, message_id, state, only_from, only_from),
    )
    return bool(cur.rowcount)


def set_pinned(cur: Cursor, group_id: bytes, message_id: str, pinned: bool) -> bool:
    cur.execute(
        "UPDATE client_group_messages SET pinned = ? WHERE group_id = ? AND message_id = ?",
        (int(pinned), group_id, message_id),
    )
    return bool(cur.rowcount)


def last_message(cur: Cursor, group_id: bytes) -> tuple[int, GroupMessageRow] | None:
    rows = list_messages(cur, group_id, 1)
    return rows[0] if rows else None


def meta(cur: Cursor, group_id: bytes) -> GroupMeta:
    cur.execute("SELECT muted, read_seq FROM client_groups WHERE group_id = ?", (group_id,))
    muted, read_seq = cur.fetchone()
    cur.execute(
        "SELECT COUNT(*), COALESCE(SUM(mentions_me), 0) FROM client_group_messages"
        " WHERE group_id = ? AND seq > ? AND outgoing = 0 AND kind = 'text'",
        (group_id, read_seq),
    )
    unread, mentions = cur.fetchone()
    return GroupMeta(bool(muted), int(read_seq), int(unread), int(mentions))


def set_muted(cur: Cursor, group_id: bytes, muted: bool) -> None:
    cur.execute("UPDATE client_groups SET muted = ? WHERE group_id = ?", (int(muted), group_id))


def set_read_seq(cur: Cursor, group_id: bytes, seq: int) -> bool:
    """Move my read position forward (never back); True if it moved."""
    cur.execute(
        "UPDATE client_groups SET read_seq = ? WHERE group_id = ? AND read_seq < ?",
        (seq, group_id, seq),
    )
    return bool(cur.rowcount)


def put_read(cur: Cursor, group_id: bytes, member: bytes, lamport: int) -> bool:
    """A member's read marker, kept only if it moves forward; True if it did."""
    cur.execute(
        "INSERT INTO client_group_reads (group_id, member, lamport) VALUES (?,?,?)"
        " ON CONFLICT (group_id, member) DO UPDATE SET lamport = excluded.lamport"
        " WHERE excluded.lamport > client_group_reads.lamport",
        (group_id, member, lamport),
    )
    return bool(cur.rowcount)


def add_join(cur: Cursor, j: PendingJoin) -> None:
    cur.execute(
        "INSERT OR REPLACE INTO client_group_joins (group_id, name, admin, link,"
        " requested_at_ms) VALUES (?,?,?,?,?)",
        (j.group_id, j.name, j.admin, j.link, j.requested_at_ms),
    )


def list_joins(cur: Cursor) -> list[PendingJoin]:
    cur.execute(
        "SELECT group_id, name, admin, link, requested_at_ms FROM client_group_joins"
        " ORDER BY requested_at_ms"
    )
    return [PendingJoin(bytes(g), n, bytes(a), link, t) for g, n, a, link, t in cur.fetchall()]


def drop_join(cur: Cursor, group_id: bytes) -> None:
    cur.execute("DELETE FROM client_group_joins WHERE group_id = ?", (group_id,))


def add_pending(
    cur: Cursor,
    message_hash: bytes,
    group_id: bytes,
    session_id: bytes | None,
    payload: bytes,
    now_ms: int,
    timestamp_ns: int | None = None,
) -> None:
    """Keep a group message until its key comes; ``timestamp_ns`` is its Waku timestamp."""
    cur.execute(
        "INSERT OR IGNORE INTO client_group_pending (message_hash, group_id, session_id,"
        " payload, received_at_ms, timestamp_ns) VALUES (?,?,?,?,?,?)",
        (message_hash, group_id, session_id, payload, now_ms, timestamp_ns),
    )


def is_pending(cur: Cursor, message_hash: bytes) -> bool:
    cur.execute("SELECT 1 FROM client_group_pending WHERE message_hash = ?", (message_hash,))
    return cur.fetchone() is not None


def pending_since(cur: Cursor, message_hash: bytes) -> int | None:
    """When a message still waiting for its key arrived (ms), or None if it isn't waiting."""
    cur.execute(
        "SELECT received_at_ms FROM client_group_pending WHERE message_hash = ?", (message_hash,)
    )
    row = cur.fetchone()
    return None if row is None else int(row[0])


def take_pending(
    cur: Cursor, group_id: bytes, session_id: bytes | None = None
) -> list[tuple[bytes, bytes]]:
    """Remove and return ``(message_hash, payload)`` of a group's messages waiting for
    ``session_id``'s key (rows from before sessions were recorded too), or all of them."""
    return [(h, p) for h, p, _ in take_pending_stamped(cur, group_id, session_id)]


def take_pending_stamped(
    cur: Cursor, group_id: bytes, session_id: bytes | None = None
) -> list[tuple[bytes, bytes, int | None]]:
    """:func:`take_pending` with each message's Waku timestamp (None if not recorded)."""
    where = (
        "group_id = ?"
        if session_id is None
        else ("group_id = ? AND (session_id = ? OR session_id IS NULL)")
    )
    args = (group_id,) if session_id is None else (group_id, session_id)
    cur.execute(
        f"SELECT message_hash, payload, timestamp_ns FROM client_group_pending WHERE {where}"
        " ORDER BY received_at_ms",
        args,
    )
    rows = [(bytes(h), bytes(p), None if t is None else int(t)) for h, p, t in cur.fetchall()]
    cur.execute(f"DELETE FROM client_group_pending WHERE {where}", args)
    return rows


def add_inbox(
    cur: Cursor, sender: bytes, device: bytes, group_id: bytes | None, body: bytes, now_ms: int
) -> None:
    cur.execute(
        "INSERT INTO client_group_inbox (sender, device, group_id, body, received_at_ms)"
        " VALUES (?,?,?,?,?)",
        (sender, device, group_id, body, now_ms),
    )


def inbox_counts(cur: Cursor, sender: bytes) -> tuple[int, int]:
    """``(rows from sender, rows in all)`` of the inbox."""
    cur.execute("SELECT COUNT(*) FROM client_group_inbox WHERE sender = ?", (sender,))
    from_sender = int(cur.fetchone()[0])
    cur.execute("SELECT COUNT(*) FROM client_group_inbox")
    return from_sender, int(cur.fetchone()[0])


def inbox_counts_of_device(cur: Cursor, sender: bytes, device: bytes) -> tuple[int, int]:
    """``(rows from this device claiming sender, rows in all)`` of the inbox."""
    cur.execute(
        "SELECT COUNT(*) FROM client_group_inbox WHERE sender = ? AND device = ?",
        (sender, device),
    )
    from_device = int(cur.fetchone()[0])
    cur.execute("SELECT COUNT(*) FROM client_group_inbox")
    return from_device, int(cur.fetchone()[0])


def take_inbox_for(
    cur: Cursor, groups: Iterable[bytes], senders: Iterable[bytes]
) -> list[tuple[bytes, bytes, bytes]]:
    """Remove and return the waiting ``(sender, device, body)`` rows of these groups or
    from these senders: the only rows that something new could place."""
    found: dict[int, tuple[bytes, bytes, bytes]] = {}
    for column, keys in (("group_id", groups), ("sender", senders)):
        for key in keys:
            cur.execute(
                f"SELECT id, sender, device, body FROM client_group_inbox WHERE {column} = ?",
                (key,),
            )
            for i, s, d, b in cur.fetchall():
                found[int(i)] = (bytes(s), bytes(d), bytes(b))
    for i in found:
        cur.execute("DELETE FROM client_group_inbox WHERE id = ?", (i,))
    return [found[i] for i in sorted(found)]


def expire_queues(cur: Cursor, inbox_before_ms: int, pending_before_ms: int) -> int:
    """Forget inbox and pending rows older than these times; how many went."""
    cur.execute("DELETE FROM client_group_inbox WHERE received_at_ms < ?", (inbox_before_ms,))
    gone = int(cur.rowcount)
    cur.execute("DELETE FROM client_group_pending WHERE received_at_ms < ?", (pending_before_ms,))
    return gone + int(cur.rowcount)


def oldest_queued(cur: Cursor) -> tuple[float | None, float | None]:
    """``(oldest inbox row, oldest pending row)`` as Unix seconds (None: empty)."""
    found: list[float | None] = []
    for table in ("client_group_inbox", "client_group_pending"):
        cur.execute(f"SELECT MIN(received_at_ms) FROM {table}")  # two fixed table names
        row = cur.fetchone()
        found.append(None if row is None or row[0] is None else int(row[0]) / 1000)
    return found[0], found[1]


def pending_counts(cur: Cursor, group_id: bytes) -> tuple[int, int]:
    """``(waiting messages of the group, in all)``."""
    cur.execute("SELECT COUNT(*) FROM client_group_pending WHERE group_id = ?", (group_id,))
    in_group = int(cur.fetchone()[0])
    cur.execute("SELECT COUNT(*) FROM client_group_pending")
    return in_group, int(cur.fetchone()[0])


def newest_read_lamport(cur: Cursor, group_id: bytes, seq: int) -> int | None:
    """The Lamport time of the newest incoming text up to ``seq`` (my read position)."""
    cur.execute(
        "SELECT MAX(lamport) FROM client_group_messages WHERE group_id = ? AND seq <= ?"
        " AND outgoing = 0 AND kind = 'text'",
        (group_id, seq),
    )
    row = cur.fetchone()
    return None if row is None or row[0] is None else int(row[0])


def outgoing_up_to(cur: Cursor, group_id: bytes, lamport: int, limit: int) -> list[tuple[str, str]]:
    """``(message_id, state)`` of our newest ``limit`` texts at or before ``lamport``."""
    cur.execute(
        "SELECT message_id, state FROM client_group_messages WHERE group_id = ?"
        " AND outgoing = 1 AND kind = 'text' AND lamport <= ? ORDER BY lamport DESC LIMIT ?",
        (group_id, lamport, limit),
    )
    return [(str(m), str(st)) for m, st in cur.fetchall()]


_OUTBOX_COLS = ", ".join(ROW_COLUMNS)


def put_direct(cur: Cursor, row: OutboxRow) -> None:
    """Insert or update one direct outbox entry (a :mod:`boxless.chat.outbox` row)."""
    cur.execute(
        f"INSERT OR REPLACE INTO client_group_direct_outbox ({_OUTBOX_COLS})"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        row,
    )


def due_direct(cur: Cursor, now: float, limit: int) -> list[tuple[object, ...]]:
    """The direct outbox rows due at ``now`` (oldest first), in ROW_COLUMNS order."""
    cur.execute(
        f"SELECT {_OUTBOX_COLS} FROM client_group_direct_outbox WHERE next_attempt_at <= ?"
        " ORDER BY queued_at LIMIT ?",
        (now, limit),
    )
    return [_outbox_row(r) for r in cur.fetchall()]


def get_direct(cur: Cursor, message_id: bytes) -> tuple[object, ...] | None:
    cur.execute(
        f"SELECT {_OUTBOX_COLS} FROM client_group_direct_outbox WHERE message_id = ?",
        (message_id,),
    )
    row = cur.fetchone()
    return None if row is None else _outbox_row(row)


def _outbox_row(r: tuple[object, ...]) -> tuple[object, ...]:
    return tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)


def next_direct_at(cur: Cursor) -> float | None:
    cur.execute("SELECT MIN(next_attempt_at) FROM client_group_direct_outbox")
    row = cur.fetchone()
    return None if row is None or row[0] is None else float(row[0])


def done_direct(cur: Cursor, message_id: bytes) -> None:
    cur.execute("DELETE FROM client_group_direct_outbox WHERE message_id = ?", (message_id,))
