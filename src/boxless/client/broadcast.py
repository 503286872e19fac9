"""Broadcast lists: one text to up to 200 contacts, each as an ordinary 1:1 message.

Theory of operation
-------------------
A broadcast list is a name and an ordered set of accepted contacts (rows of
``client_broadcast_lists`` / ``client_broadcast_members``). Sending to a list
queues one 1:1 message per recipient
(:meth:`boxless.client.conversations.Conversations.queue_in`), so each recipient gets a
normal Olm-encrypted ``Text`` in their conversation with us: nothing on the
wire or in their database names the other recipients, and their replies come
back into the 1:1 chat. Nothing new is encrypted or sent here.

What we keep is the record: the broadcast (text, time) and, per recipient,
the id of the 1:1 message it became (``client_broadcasts`` /
``client_broadcast_messages``). Its sent/delivered/read counts are read from
those messages' delivery states, which the core already keeps up to date from
receipts; a recipient whose contact row was deleted since no longer counts.

The broadcast row, every recipient's queued message and its record row are
written in one transaction: a crash leaves the whole broadcast queued or none
of it. The SQL is in :mod:`boxless.client.broadcast_store`.

Members are checked when a list is created or changed (accepted contacts only,
at most :data:`MAX_MEMBERS`); at send time a member who is no longer an
accepted contact (blocked since, say) is skipped, and the API says who.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable

from boxless.chat import envelope as env
from boxless.chat.requests import ContactState
from boxless.client import broadcast_store as bs
from boxless.client import events as ev
from boxless.client import store as db
from boxless.client.broadcast_store import BroadcastList, SentBroadcast, UnknownBroadcastList
from boxless.client.conversations import Conversations
from boxless.errors import UsageError

MAX_MEMBERS = 200
MAX_NAME = 64

Cursor = db.Cursor
__all__ = ["BroadcastList", "BroadcastManager", "SentBroadcast", "UnknownBroadcastList"]
Emit = Callable[[ev.Event], None]


class BroadcastManager:
    """The user's broadcast lists, sent through the 1:1 conversations."""

    def __init__(
        self,
        conversations: Conversations,
        *,
        emit: Emit,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = conversations.db
        self.conversations = conversations
        self.emit = emit
        self.clock = clock

    # -- lists ----------------------------------------------------------------------

    def lists(self) -> list[BroadcastList]:
        with self.db.transaction() as cur:
            return [bs.get_list(cur, lid) for lid in bs.list_ids(cur)]

    def get(self, list_id: bytes) -> BroadcastList:
        with self.db.transaction() as cur:
            return bs.get_list(cur, list_id)

    def create(self, name: str, members: Iterable[bytes]) -> BroadcastList:
        """A new list of accepted contacts (raises UsageError saying what to fix)."""
        name = _check_name(name)
        now_ms = self._now_ms()
        list_id = secrets.token_bytes(16)
        with self.db.transaction() as cur:
            keys = _check_members(cur, members)
            bs.insert_list(cur, list_id, name, now_ms)
            bs.set_members(cur, list_id, keys)
            found = bs.get_list(cur, list_id)
        self._changed(list_id)
        return found

    def update(
        self, list_id: bytes, *, name: str | None = None, members: Iterable[bytes] | None = None
    ) -> BroadcastList:
        """Rename the list and/or replace its members (checked as for :meth:`create`)."""
        with self.db.transaction() as cur:
            bs.get_list(cur, list_id)
            if name is not None:
                bs.rename_list(cur, list_id, _check_name(name))
            if members is not None:
                bs.set_members(cur, list_id, _check_members(cur, members))
            bs.touch_list(cur, list_id, self._now_ms())
            found = bs.get_list(cur, list_id)
        self._changed(list_id)
        return found

    def delete(self, list_id: bytes) -> None:
        """Forget the list and its record of broadcasts (the 1:1 messages stay)."""
        with self.db.transaction() as cur:
            bs.get_list(cur, list_id)
            bs.delete_list(cur, list_id)
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
            blist = bs.get_list(cur, list_id)
            recipients = [c for k in blist.members if (c := _accepted(cur, k)) is not None]
            if not recipients:
                raise UsageError(
                    f"no one in {blist.name!r} is an accepted contact any more:"
                    " add contacts to the list first"
                )
            broadcast_id = secrets.token_bytes(16)
            bs.insert_broadcast(cur, broadcast_id, list_id, text, self._now_ms())
            for contact in recipients:  # all queued with the record, or none
                message_id = self.conversations.queue_in(cur, contact, env.Text(text))
                bs.add_recipient(cur, broadcast_id, message_id, contact.identity_key)
            found = bs.get_broadcast(cur, broadcast_id)
        for contact, message_id in zip(recipients, found.message_ids, strict=True):
            self.emit(ev.MessageChanged(message_id.hex(), contact.identity_key.hex()))
        self._changed(list_id)
        return found

    def sent(
        self, list_id: bytes, limit: int = 50, before_ms: int | None = None
    ) -> list[SentBroadcast]:
        """The newest ``limit`` broadcasts to the list (sent before ``before_ms``), oldest first."""
        with self.db.transaction() as cur:
            bs.get_list(cur, list_id)
            return [
                bs.get_broadcast(cur, b) for b in bs.broadcast_ids(cur, list_id, limit, before_ms)
            ]

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


def _accepted(cur: Cursor, key: bytes) -> db.ContactRow | None:
    contact = db.get_contact(cur, key)
    return contact if contact is not None and contact.state == ContactState.ACCEPTED.value else None
