"""Broadcast lists: one text to up to 200 contacts, each as an ordinary 1:1 message.

Theory of operation
-------------------
A broadcast list is a name and an ordered set of accepted contacts (rows of
``client_broadcast_lists`` / ``client_broadcast_members``). Sending to a list
calls the client core's 1:1 send path once per recipient
(:meth:`boxless.client.core.Client.send_text`), so each recipient gets a
normal Olm-encrypted ``Text`` in their conversation with us: nothing on the
wire or in their database names the other recipients, and their replies come
back into the 1:1 chat. Nothing new is encrypted or sent here.

What we keep is the record: the broadcast (text, time) and, per recipient,
the id of the 1:1 message it became (``client_broadcasts`` /
``client_broadcast_messages``). Its sent/delivered/read counts are read from
those messages' delivery states, which the core already keeps up to date from
receipts; a recipient whose contact row was deleted since no longer counts.

The broadcast row is written before the first message is queued and each
recipient's row right after its message, so the record never misses a
message that went out (a crash part-way leaves a broadcast to fewer people).

Members are checked when a list is created or changed (accepted contacts only,
at most :data:`MAX_MEMBERS`); at send time a member who is no longer an
accepted contact (blocked since, say) is skipped, and the API says who.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from boxless.chat.requests import ContactState
from boxless.client import events as ev
from boxless.client import store as db
from boxless.errors import UsageError
from boxless.storage.userdb import UserDB

MAX_MEMBERS = 200
MAX_NAME = 64

Cursor = Any
SendText = Callable[[bytes, str], Awaitable[bytes]]
"""``send_text(identity_key, text) -> message_id``: the core's 1:1 send path."""
Emit = Callable[[ev.Event], None]


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


class BroadcastManager:
    """The user's broadcast lists; ``send_text`` is the client core's 1:1 send."""

    def __init__(
        self,
        database: UserDB,
        *,
        send_text: SendText,
        emit: Emit,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = database
        self.send_text = send_text
        self.emit = emit
        self.clock = clock

    # -- lists ----------------------------------------------------------------------

    def lists(self) -> list[BroadcastList]:
        with self.db.transaction() as cur:
            return [_get_list(cur, lid) for lid in _list_ids(cur)]

    def get(self, list_id: bytes) -> BroadcastList:
        with self.db.transaction() as cur:
            return _get_list(cur, list_id)

    def create(self, name: str, members: Iterable[bytes]) -> BroadcastList:
        """A new list of accepted contacts (raises UsageError saying what to fix)."""
        name = _check_name(name)
        now_ms = self._now_ms()
        list_id = secrets.token_bytes(16)
        with self.db.transaction() as cur:
            keys = _check_members(cur, members)
            cur.execute(
                "INSERT INTO client_broadcast_lists (list_id, name, created_at_ms, updated_at_ms)"
                " VALUES (?, ?, ?, ?)",
                (list_id, name, now_ms, now_ms),
            )
            _set_members(cur, list_id, keys)
            found = _get_list(cur, list_id)
        self._changed(list_id)
        return found

    def update(
        self, list_id: bytes, *, name: str | None = None, members: Iterable[bytes] | None = None
    ) -> BroadcastList:
        """Rename the list and/or replace its members (checked as for :meth:`create`)."""
        with self.db.transaction() as cur:
            _get_list(cur, list_id)
            if name is not None:
                cur.execute(
                    "UPDATE client_broadcast_lists SET name = ? WHERE list_id = ?",
                    (_check_name(name), list_id),
                )
            if members is not None:
                _set_members(cur, list_id, _check_members(cur, members))
            cur.execute(
                "UPDATE client_broadcast_lists SET updated_at_ms = ? WHERE list_id = ?",
                (self._now_ms(), list_id),
            )
            found = _get_list(cur, list_id)
        self._changed(list_id)
        return found

    def delete(self, list_id: bytes) -> None:
        """Forget the list and its record of broadcasts (the 1:1 messages stay)."""
        with self.db.transaction() as cur:
            _get_list(cur, list_id)
            cur.execute("DELETE FROM client_broadcast_lists WHERE list_id = ?", (list_id,))
        self._changed(list_id)

    # -- sending --------------------------------------------------------------------

    async def send(self, list_id: bytes, text: str) -> SentBroadcast:
        """Queue ``text`` as one 1:1 message to each member who is an accepted contact.

        Cancellation: the messages queued so far stay queued (and recorded); the
        rest are not sent.
        """
        if not text.strip():
            raise UsageError("the message is empty: write something to broadcast")
        with self.db.transaction() as cur:
            blist = _get_list(cur, list_id)
            recipients = [k for k in blist.members if _is_accepted(cur, k)]
            if not recipients:
                raise UsageError(
                    f"no one in {blist.name!r} is an accepted contact any more:"
                    " add contacts to the list first"
                )
            broadcast_id = secrets.token_bytes(16)
            cur.execute(
                "INSERT INTO client_broadcasts (broadcast_id, list_id, text, sent_at_ms)"
                " VALUES (?, ?, ?, ?)",
                (broadcast_id, list_id, text, self._now_ms()),
            )
        for key in recipients:
            message_id = await self.send_text(key, text)
            with self.db.transaction() as cur:
                cur.execute(
                    "INSERT INTO client_broadcast_messages (broadcast_id, message_id, recipient)"
                    " VALUES (?, ?, ?)",
                    (broadcast_id, message_id, key),
                )
        self._changed(list_id)
        with self.db.transaction() as cur:
            return _get_broadcast(cur, broadcast_id)

    def sent(
        self, list_id: bytes, limit: int = 50, before_ms: int | None = None
    ) -> list[SentBroadcast]:
        """The newest ``limit`` broadcasts to the list (sent before ``before_ms``), oldest first."""
        with self.db.transaction() as cur:
            _get_list(cur, list_id)
            cur.execute(
                "SELECT broadcast_id FROM client_broadcasts WHERE list_id = ? AND sent_at_ms < ?"
                " ORDER BY sent_at_ms DESC, broadcast_id DESC LIMIT ?",
                (list_id, before_ms if before_ms is not None else 2**62, limit),
            )
            ids = [r[0] for r in cur.fetchall()]
            return [_get_broadcast(cur, b) for b in reversed(ids)]

    def _changed(self, list_id: bytes) -> None:
        self.emit(ev.BroadcastChanged(list_id.hex()))

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)


# -- checks -------------------------------------------------------------------------


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise UsageError("a broadcast list needs a name")
    if len(name) > MAX_NAME:
        raise UsageError(f"a broadcast list's name is at most {MAX_NAME} characters")
    return name


def _check_members(cur: Cursor, members: Iterable[bytes]) -> tuple[bytes, ...]:
    keys = tuple(dict.fromkeys(members))
    if not keys:
        raise UsageError("a broadcast list needs at least one member: add accepted contacts")
    if len(keys) > MAX_MEMBERS:
        raise UsageError(
            f"a broadcast list holds at most {MAX_MEMBERS} contacts (this one has {len(keys)}):"
            " split them into several lists"
        )
    problems = []
    for key in keys:
        contact = db.get_contact(cur, key)
        if contact is None:
            problems.append(f"{key.hex()[:8]}… is not a contact")
        elif contact.state != ContactState.ACCEPTED.value:
            state = contact.state.replace("_", " ")
            problems.append(f"{contact.display_name} is not an accepted contact ({state})")
    if problems:
        raise UsageError(
            "broadcast lists hold only your accepted contacts: "
            + "; ".join(problems)
            + ". Leave them out, or add them as contacts and wait until they accept"
        )
    return keys


def _is_accepted(cur: Cursor, key: bytes) -> bool:
    contact = db.get_contact(cur, key)
    return contact is not None and contact.state == ContactState.ACCEPTED.value


# -- storage --------------------------------------------------------------------------


def _list_ids(cur: Cursor) -> list[bytes]:
    cur.execute("SELECT list_id FROM client_broadcast_lists ORDER BY name, created_at_ms")
    return [r[0] for r in cur.fetchall()]


def _get_list(cur: Cursor, list_id: bytes) -> BroadcastList:
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


def _set_members(cur: Cursor, list_id: bytes, keys: tuple[bytes, ...]) -> None:
    cur.execute("DELETE FROM client_broadcast_members WHERE list_id = ?", (list_id,))
    cur.executemany(
        "INSERT INTO client_broadcast_members (list_id, identity_key, position) VALUES (?, ?, ?)",
        [(list_id, key, i) for i, key in enumerate(keys)],
    )


def _get_broadcast(cur: Cursor, broadcast_id: bytes) -> SentBroadcast:
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
