"""Search every chat (1:1 and group texts) and contacts and groups by name.

The index is SQLite FTS5 (trigram) inside the encrypted user database, kept by
triggers (``client/migrations_search``); the query language is never exposed
(:mod:`boxless.client.search_query`). A result names its chat and message id,
enough to open the message in context (``#/chat/<key>/m/<id>``,
``#/group/<gid>/m/<id>``). :meth:`Search.source` is the one place that reads a
message of either kind by ``(chat, id)``; favourites and forwarding use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from boxless.client import search_store as ss
from boxless.client.contacts import Contacts
from boxless.client.conversations import Conversations
from boxless.client.groups import GroupManager
from boxless.client.profile_store import alias_of
from boxless.client.search_query import ChatRef, parse_chat, parse_query, snippet
from boxless.errors import UsageError
from boxless.identity.account import LocalAccount
from boxless.storage.userdb import UserDB

__all__ = ["MAX_LIMIT", "MessageHit", "NameHit", "Results", "Search", "Source"]

MAX_LIMIT = 200
NAME_HITS = 20


@dataclass(frozen=True)
class MessageHit:
    chat: str
    chat_name: str
    id: str
    sender: str  # identity key hex (mine for my own messages)
    sender_name: str
    outgoing: bool
    text: str
    snippet: str
    sent_at_ms: int


@dataclass(frozen=True)
class NameHit:
    chat: str
    key: str
    name: str


@dataclass(frozen=True)
class Results:
    terms: tuple[str, ...]
    messages: list[MessageHit]
    contacts: list[NameHit]
    groups: list[NameHit]


@dataclass(frozen=True)
class Source:
    """A message read for saving or forwarding."""

    chat: ChatRef
    id: str
    text: str
    sender: bytes
    sender_name: str
    sent_at_ms: int


class Search:
    """Search over one client's database (reads only)."""

    def __init__(
        self,
        database: UserDB,
        account: LocalAccount,
        contacts: Contacts,
        conversations: Conversations,
        groups: GroupManager,
    ) -> None:
        self.db = database
        self.account = account
        self.me = account.identity.public_key
        self.contacts = contacts
        self.conversations = conversations
        self.groups = groups

    def _my_name(self) -> str:
        return self.account.profile.display_name

    def search(self, text: str, chat: str | None = None, limit: int = 50) -> Results:
        """Messages (newest first), contacts and groups matching ``text``; with ``chat``,
        only that chat's messages. Raises InvalidQuery / UsageError with what to do."""
        q = parse_query(text)
        limit = min(max(limit, 1), MAX_LIMIT)
        ref = parse_chat(chat) if chat else None
        kind = None if ref is None else (ss.GROUP if ref.is_group else ss.DIRECT)
        with self.db.transaction() as cur:
            hits = ss.search_messages(cur, q, limit, kind, ref.key if ref else None)
        rows = self.contacts.contacts()
        with self.db.transaction() as cur:  # the user's alias names a contact (profiles)
            people = {c.identity_key: alias_of(cur, c.identity_key) or c.display_name for c in rows}
        their = {c.identity_key: c.display_name for c in rows}
        groups = {g.group_id: g.name for g in self.groups.groups()}
        messages = [self._hit(h, q.terms, people, groups) for h in hits]
        if ref is not None:
            return Results(q.terms, messages, [], [])

        def named(name: str) -> bool:
            low = name.lower()
            return all(t in low for t in q.terms)

        contacts = [
            NameHit(f"contact:{k.hex()}", k.hex(), n)
            for k, n in people.items()
            if named(n) or named(their[k])
        ]
        found_groups = [
            NameHit(f"group:{k.hex()}", k.hex(), n) for k, n in groups.items() if named(n)
        ]
        return Results(q.terms, messages, contacts[:NAME_HITS], found_groups[:NAME_HITS])

    def _hit(
        self,
        h: ss.Hit,
        terms: tuple[str, ...],
        people: dict[bytes, str],
        groups: dict[bytes, str],
    ) -> MessageHit:
        sender = h.sender if h.sender is not None else self.me
        if h.kind == ss.GROUP:
            chat, chat_name, mid = (
                f"group:{h.chat.hex()}",
                groups.get(h.chat, "group"),
                str(h.message_id),
            )
            name = self._my_name() if h.sender is None else self.groups.member_name(h.chat, sender)
        else:
            chat, chat_name = f"contact:{h.chat.hex()}", people.get(h.chat, h.chat.hex()[:8])
            mid = (
                bytes(h.message_id).hex() if isinstance(h.message_id, bytes) else str(h.message_id)
            )
            name = self._my_name() if h.sender is None else chat_name
        return MessageHit(
            chat,
            chat_name,
            mid,
            sender.hex(),
            name,
            h.sender is None,
            h.text,
            snippet(h.text, terms),
            h.sent_at_ms,
        )

    def source(self, chat: str, message_id: str) -> Source:
        """The message ``message_id`` of ``chat`` as it is now; a UsageError if there is
        no such message in that chat or nothing is left of it (deleted)."""
        ref = parse_chat(chat)
        if ref.is_group:
            try:
                _, row = self.groups.message(message_id)
            except UsageError:
                row = None
            if row is None or row.group_id != ref.key or row.kind != "text":
                raise UsageError(f"no message {message_id[:80]!r} in that group")
            if row.deleted or not row.text:
                raise UsageError("that message was deleted")
            name = self._my_name() if row.outgoing else self.groups.member_name(ref.key, row.sender)
            sender = self.me if row.outgoing else row.sender
            return Source(ref, message_id, row.text, sender, name, row.sent_at_ms)
        try:
            mid = bytes.fromhex(message_id)
        except ValueError:
            mid = b""
        m = self.conversations.message(mid) if len(mid) == 16 else None
        if m is None or m.contact != ref.key:
            raise UsageError(f"no message {message_id[:80]!r} in that chat")
        if m.deleted or not m.text:
            raise UsageError("that message was deleted")
        if m.outgoing:
            sender, name = self.me, self._my_name()
        else:
            found = [c for c in self.contacts.contacts() if c.identity_key == m.contact]
            with self.db.transaction() as cur:
                alias = alias_of(cur, m.contact)
            name = alias or (found[0].display_name if found else m.contact.hex()[:8])
            sender = m.contact
        return Source(ref, message_id, m.text, sender, name, m.sent_at_ms)
