"""Per-chat settings of the chat list: pin, mute, mark unread, drafts, delete for me.

Theory of operation
-------------------
A chat is named ``contact:<identity key hex>`` or ``group:<group id hex>``
(:func:`parse_chat`). Only the user changes these settings, and only for a
chat that exists (a contact row or a group row): a stranger's requests or
group traffic never create a row here, so the table is bounded by the chats
the user has. A draft is capped at :data:`MAX_DRAFT` characters and lives in
the encrypted user database, like the messages it will become.

A group's mute is the group feature's own flag (``PUT /groups/{gid}/mute``
and this module both go through :meth:`GroupManager.set_muted`), so the two
can never disagree; a 1:1 chat's mute is a column here.

Deleting a chat for me removes its messages from this device (the contact or
the group stays) and remembers when (``cleared_at_ms``): the chat list hides
such a chat while it has no messages, so the next message brings it back.
Dedup marks stay, so removed messages never return from store history.

Every change is published as :class:`~boxless.client.events.ChatSettingsChanged`
(the chat's name only: never a draft's text).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from boxless.client import chat_settings_store as cs
from boxless.client import events as ev
from boxless.client import group_store as gs
from boxless.client import store as db
from boxless.client.groups import GroupManager
from boxless.errors import UsageError
from boxless.storage.userdb import UserDB

__all__ = [
    "MAX_DRAFT",
    "ChatSetting",
    "ChatSettings",
    "InvalidChatName",
    "UnknownChat",
    "parse_chat",
]

MAX_DRAFT = 60_000  # characters: as long as the longest message a draft may become
_CHAT = re.compile(r"(contact|group):([0-9a-f]{64})")


class InvalidChatName(UsageError):
    """Not ``contact:<64 hex>`` or ``group:<64 hex>``."""


class UnknownChat(UsageError):
    """The name is well formed but no such contact or group exists here."""


def parse_chat(name: str) -> tuple[str, bytes]:
    """``("contact" | "group", key)`` of a chat name; InvalidChatName otherwise."""
    found = _CHAT.fullmatch(name)
    if found is None:
        raise InvalidChatName(
            "a chat is named contact:<identity key, 64 hex> or group:<group id, 64 hex>"
        )
    return found[1], bytes.fromhex(found[2])


@dataclass(frozen=True, slots=True)
class ChatSetting:
    """One chat's settings as the API shows them."""

    chat: str
    pinned: bool
    muted: bool
    marked_unread: bool
    draft: str
    cleared_at_ms: int | None


def _public(row: cs.ChatSettingRow, muted: bool) -> ChatSetting:
    return ChatSetting(row.chat, row.pinned, muted, row.marked_unread, row.draft, row.cleared_at_ms)


class ChatSettings:
    """The chat-list settings of one client."""

    def __init__(
        self,
        database: UserDB,
        groups: GroupManager,
        *,
        emit: Callable[[ev.Event], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = database
        self.groups = groups
        self.emit = emit
        self.clock = clock

    # -- queries --------------------------------------------------------------------

    def all(self) -> dict[str, ChatSetting]:
        """Every chat with a setting (and every muted group), by name."""
        with self.db.transaction() as cur:
            rows = {r.chat: r for r in cs.all_settings(cur)}
            muted_groups = {f"group:{g.hex()}" for g in gs.group_ids(cur) if gs.meta(cur, g).muted}
        out: dict[str, ChatSetting] = {}
        for name in sorted(set(rows) | muted_groups):
            row = rows.get(name, cs.ChatSettingRow(name))
            muted = name in muted_groups if name.startswith("group:") else row.muted
            out[name] = _public(row, muted)
        return out

    def get(self, chat: str) -> ChatSetting:
        with self.db.transaction() as cur:
            kind, key = self._existing(cur, chat)
            row = cs.get_setting(cur, chat)
            muted = gs.meta(cur, key).muted if kind == "group" else row.muted
        return _public(row, muted)

    # -- changes --------------------------------------------------------------------

    def update(
        self,
        chat: str,
        *,
        pinned: bool | None = None,
        muted: bool | None = None,
        marked_unread: bool | None = None,
    ) -> ChatSetting:
        """Change the given flags (None: leave as is)."""
        with self.db.transaction() as cur:
            kind, key = self._existing(cur, chat)
            row = cs.get_setting(cur, chat)
            cs.put_setting(
                cur,
                dataclasses.replace(
                    row,
                    pinned=row.pinned if pinned is None else pinned,
                    marked_unread=row.marked_unread if marked_unread is None else marked_unread,
                    muted=row.muted if muted is None or kind == "group" else muted,
                    updated_at_ms=self._now_ms(),
                ),
            )
        if muted is not None and kind == "group":
            self.groups.set_muted(key, muted)  # the group's own flag (emits its change)
        self.emit(ev.ChatSettingsChanged(chat, "settings"))
        return self.get(chat)

    def set_draft(self, chat: str, text: str) -> ChatSetting:
        """Keep ``text`` as the chat's draft ("" clears it)."""
        if len(text) > MAX_DRAFT:
            raise UsageError(f"a draft is at most {MAX_DRAFT:,} characters: shorten it")
        with self.db.transaction() as cur:
            self._existing(cur, chat)
            row = cs.get_setting(cur, chat)
            changed = row.draft != text
            if changed:
                cs.put_setting(
                    cur, dataclasses.replace(row, draft=text, updated_at_ms=self._now_ms())
                )
        if changed:
            self.emit(ev.ChatSettingsChanged(chat, "draft"))
        return self.get(chat)

    def delete_chat(self, chat: str) -> int:
        """Delete the chat for me: its messages leave this device; how many did.

        The contact (or the group, and my membership) stays; the chat is unpinned,
        its draft and unread mark cleared, and the list hides it until a new message.
        """
        with self.db.transaction() as cur:
            kind, key = self._existing(cur, chat)
            if kind == "contact":
                removed = cs.delete_contact_messages(cur, key)
            else:
                removed = cs.delete_group_messages(cur, key)
            now = self._now_ms()
            row = cs.get_setting(cur, chat)
            cs.put_setting(
                cur,
                dataclasses.replace(
                    row,
                    pinned=False,
                    marked_unread=False,
                    draft="",
                    cleared_at_ms=now,
                    updated_at_ms=now,
                ),
            )
        self.emit(ev.ChatSettingsChanged(chat, "deleted"))
        return removed

    # -- inside ---------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    @staticmethod
    def _existing(cur: db.Cursor, chat: str) -> tuple[str, bytes]:
        kind, key = parse_chat(chat)
        exists = (
            db.get_contact(cur, key) is not None if kind == "contact" else gs.has_group(cur, key)
        )
        if not exists:
            raise UnknownChat(f"no such {kind} here: {chat}")
        return kind, key
