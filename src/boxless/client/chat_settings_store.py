"""All the SQL of per-chat settings (:mod:`boxless.client.chat_settings`).

One row per chat the user changed something of, keyed by the chat's name
(``contact:<hex>`` or ``group:<hex>``). A group's mute is not here: it stays
in the group's own row (:func:`boxless.client.group_store.set_muted`), so the
group feature and this one never disagree.

"Delete a chat for me" removes the chat's messages from this device: the one
place where this module writes another feature's tables (1:1 messages, group
messages and the group texts' extras), in the caller's transaction. Dedup
marks stay, so the removed messages never come back from store history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from boxless.client.store import Cursor

__all__ = [
    "ChatSettingRow",
    "all_settings",
    "delete_contact_messages",
    "delete_group_messages",
    "get_setting",
    "put_setting",
]


@dataclass(frozen=True, slots=True)
class ChatSettingRow:
    chat: str
    pinned: bool = False
    muted: bool = False
    marked_unread: bool = False
    draft: str = ""
    cleared_at_ms: int | None = None
    updated_at_ms: int = 0


_COLS = "chat, pinned, muted, marked_unread, draft, cleared_at_ms, updated_at_ms"


def _row(r: tuple[Any, ...]) -> ChatSettingRow:
    return ChatSettingRow(
        str(r[0]),
        bool(r[1]),
        bool(r[2]),
        bool(r[3]),
        str(r[4]),
        None if r[5] is None else int(r[5]),
        int(r[6]),
    )


def get_setting(cur: Cursor, chat: str) -> ChatSettingRow:
    """The chat's settings (defaults when it has no row)."""
    cur.execute(f"SELECT {_COLS} FROM client_chat_settings WHERE chat = ?", (chat,))
    found = cur.fetchone()
    return ChatSettingRow(chat) if found is None else _row(found)


def all_settings(cur: Cursor) -> list[ChatSettingRow]:
    cur.execute(f"SELECT {_COLS} FROM client_chat_settings ORDER BY chat")
    return [_row(r) for r in cur.fetchall()]


def put_setting(cur: Cursor, s: ChatSettingRow) -> None:
    cur.execute(
        f"INSERT OR REPLACE INTO client_chat_settings ({_COLS}) VALUES (?,?,?,?,?,?,?)",
        (
            s.chat,
            int(s.pinned),
            int(s.muted),
            int(s.marked_unread),
            s.draft,
            s.cleared_at_ms,
            s.updated_at_ms,
        ),
    )


def delete_contact_messages(cur: Cursor, contact: bytes) -> int:
    """Remove every 1:1 message with ``contact`` from this device; how many."""
    cur.execute("DELETE FROM client_messages WHERE contact = ?", (contact,))
    return int(cur.rowcount)


def delete_group_messages(cur: Cursor, group_id: bytes) -> int:
    """Remove every message of the group (texts, events, their extras and reactions)."""
    inner = "SELECT message_id FROM client_group_messages WHERE group_id = ?"
    cur.execute(f"DELETE FROM client_group_reactions WHERE message_id IN ({inner})", (group_id,))
    cur.execute(
        f"DELETE FROM client_group_message_extra WHERE message_id IN ({inner})", (group_id,)
    )
    cur.execute("DELETE FROM client_group_messages WHERE group_id = ?", (group_id,))
    return int(cur.rowcount)
