"""The group action tables (migration component ``group_actions``): every SQL
statement of replies, mentions, edits, deletes and reactions of group messages.

As in :mod:`boxless.client.store`: each function takes the cursor of a
transaction the caller owns. The message rows themselves stay in
``client_group_messages`` (:mod:`boxless.client.group_store`); an edit or a
delete rewrites their text there, so everything that reads it (search, the
chat list) sees the current text and never a deleted one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from boxless.client.store import Cursor

__all__ = [
    "Extra",
    "PendingAction",
    "ReactionStats",
    "add_pending",
    "add_reaction",
    "extras",
    "groups_of",
    "is_deleted",
    "pending_counts",
    "put_text_extra",
    "reaction_stats",
    "reactions_of",
    "remove_reaction",
    "set_deleted",
    "set_edited",
    "take_pending",
]


@dataclass(frozen=True, slots=True)
class Extra:
    reply_to: str | None = None
    mentions: tuple[bytes, ...] = ()
    mention_all: bool = False
    edited: bool = False
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class ReactionStats:
    has: bool  # the member carries this emoji on the message already
    emoji_present: bool  # someone carries this emoji on the message
    emoji_count: int  # distinct emoji on the message
    member_count: int  # the member's reactions on the message


@dataclass(frozen=True, slots=True)
class PendingAction:
    sender: bytes
    admin: bool
    body: bytes
    received_at_ms: int


def put_text_extra(
    cur: Cursor,
    message_id: str,
    reply_to: str | None,
    mentions: Sequence[bytes],
    mention_all: bool,
) -> None:
    """What a new text replies to and whom it mentions (nothing stored for a plain text)."""
    if reply_to is None and not mentions and not mention_all:
        return
    cur.execute(
        "INSERT INTO client_group_message_extra (message_id, reply_to, mentions, mention_all)"
        " VALUES (?,?,?,?) ON CONFLICT (message_id) DO UPDATE SET reply_to = excluded.reply_to,"
        " mentions = excluded.mentions, mention_all = excluded.mention_all",
        (message_id, reply_to, json.dumps([k.hex() for k in mentions]), int(mention_all)),
    )


def extras(cur: Cursor, message_ids: Sequence[str]) -> dict[str, Extra]:
    found: dict[str, Extra] = {}
    for chunk in _chunks(message_ids):
        cur.execute(
            "SELECT message_id, reply_to, mentions, mention_all, edited, deleted"
            f" FROM client_group_message_extra WHERE message_id IN ({_marks(chunk)})",
            tuple(chunk),
        )
        for mid, reply, mentions, everyone, edited, deleted in cur.fetchall():
            keys = tuple(bytes.fromhex(k) for k in json.loads(mentions))
            found[str(mid)] = Extra(reply, keys, bool(everyone), bool(edited), bool(deleted))
    return found


def groups_of(cur: Cursor, message_ids: Sequence[str]) -> dict[str, bytes]:
    """``message_id -> group_id`` of the group messages this device holds."""
    found: dict[str, bytes] = {}
    for chunk in _chunks(message_ids):
        cur.execute(
            "SELECT message_id, group_id FROM client_group_messages"
            f" WHERE message_id IN ({_marks(chunk)})",
            tuple(chunk),
        )
        found.update((str(m), bytes(g)) for m, g in cur.fetchall())
    return found


def is_deleted(cur: Cursor, message_id: str) -> bool:
    cur.execute(
        "SELECT deleted FROM client_group_message_extra WHERE message_id = ?", (message_id,)
    )
    row = cur.fetchone()
    return row is not None and bool(row[0])


def set_edited(cur: Cursor, message_id: str, text: str) -> None:
    cur.execute(
        "UPDATE client_group_messages SET text = ? WHERE message_id = ?", (text, message_id)
    )
    cur.execute(
        "INSERT INTO client_group_message_extra (message_id, edited) VALUES (?, 1)"
        " ON CONFLICT (message_id) DO UPDATE SET edited = 1",
        (message_id,),
    )


def set_deleted(cur: Cursor, message_id: str) -> bool:
    """Delete for everyone: the text goes, its pin, its mention of us and its reactions
    too. True if it changed."""
    if is_deleted(cur, message_id):
        return False
    cur.execute(
        "UPDATE client_group_messages SET text = '', pinned = 0, mentions_me = 0"
        " WHERE message_id = ?",
        (message_id,),
    )
    cur.execute(
        "INSERT INTO client_group_message_extra (message_id, deleted) VALUES (?, 1)"
        " ON CONFLICT (message_id) DO UPDATE SET deleted = 1",
        (message_id,),
    )
    cur.execute("DELETE FROM client_group_reactions WHERE message_id = ?", (message_id,))
    return True


def reaction_stats(cur: Cursor, message_id: str, member: bytes, emoji: str) -> ReactionStats:
    cur.execute(
        "SELECT COUNT(DISTINCT emoji), COALESCE(SUM(member = ?), 0),"
        " COALESCE(SUM(emoji = ?), 0), COALESCE(SUM(member = ? AND emoji = ?), 0)"
        " FROM client_group_reactions WHERE message_id = ?",
        (member, emoji, member, emoji, message_id),
    )
    distinct, mine, present, has = cur.fetchone()
    return ReactionStats(bool(has), bool(present), int(distinct), int(mine))


def add_reaction(cur: Cursor, message_id: str, member: bytes, emoji: str) -> bool:
    cur.execute(
        "INSERT OR IGNORE INTO client_group_reactions (message_id, member, emoji) VALUES (?,?,?)",
        (message_id, member, emoji),
    )
    return bool(cur.rowcount)


def remove_reaction(cur: Cursor, message_id: str, member: bytes, emoji: str) -> bool:
    cur.execute(
        "DELETE FROM client_group_reactions WHERE message_id = ? AND member = ? AND emoji = ?",
        (message_id, member, emoji),
    )
    return bool(cur.rowcount)


def reactions_of(cur: Cursor, message_ids: Sequence[str]) -> dict[str, list[tuple[bytes, str]]]:
    """``message_id -> [(member, emoji)]`` in the order they were added."""
    found: dict[str, list[tuple[bytes, str]]] = {}
    for chunk in _chunks(message_ids):
        cur.execute(
            "SELECT message_id, member, emoji FROM client_group_reactions"
            f" WHERE message_id IN ({_marks(chunk)}) ORDER BY rowid",
            tuple(chunk),
        )
        for mid, member, emoji in cur.fetchall():
            found.setdefault(str(mid), []).append((bytes(member), str(emoji)))
    return found


def add_pending(
    cur: Cursor,
    group_id: bytes,
    target: str,
    action: PendingAction,
    *,
    per_group: int,
    in_all: int,
    expire_before_ms: int,
) -> bool:
    """Keep an action whose target has not arrived; False if the table is full.

    Rows older than ``expire_before_ms`` go first (the table needs no timer)."""
    cur.execute(
        "DELETE FROM client_group_action_pending WHERE received_at_ms < ?", (expire_before_ms,)
    )
    in_group, total = pending_counts(cur, group_id)
    if in_group >= per_group or total >= in_all:
        return False
    cur.execute(
        "INSERT INTO client_group_action_pending (group_id, target, sender, admin, body,"
        " received_at_ms) VALUES (?,?,?,?,?,?)",
        (group_id, target, action.sender, int(action.admin), action.body, action.received_at_ms),
    )
    return True


def pending_counts(cur: Cursor, group_id: bytes) -> tuple[int, int]:
    """``(actions waiting in the group, in all)``."""
    cur.execute(
        "SELECT COUNT(*), COALESCE(SUM(group_id = ?), 0) FROM client_group_action_pending",
        (group_id,),
    )
    total, in_group = cur.fetchone()
    return int(in_group), int(total)


def take_pending(cur: Cursor, group_id: bytes, target: str) -> list[PendingAction]:
    """Remove and return the actions that waited for ``target``, oldest first."""
    cur.execute(
        "SELECT id, sender, admin, body, received_at_ms FROM client_group_action_pending"
        " WHERE target = ? AND group_id = ? ORDER BY id",
        (target, group_id),
    )
    rows = cur.fetchall()
    cur.execute(
        "DELETE FROM client_group_action_pending WHERE target = ? AND group_id = ?",
        (target, group_id),
    )
    return [PendingAction(bytes(s), bool(a), bytes(b), int(t)) for _, s, a, b, t in rows]


_CHUNK = 400  # well under SQLite's bound-parameter limit


def _chunks(ids: Sequence[str]) -> list[Sequence[str]]:
    return [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]


def _marks(chunk: Sequence[str]) -> str:
    return ",".join("?" * len(chunk))
