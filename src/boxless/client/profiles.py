"""Profiles: our status line, region and Moments cover; what we keep about contacts.

Theory of operation
-------------------
The shared part of a profile (name, picture, status, region, cover) travels
in the existing ``ProfileUpdate`` over Olm to accepted contacts only
(:mod:`boxless.client.contacts` sends and receives it; this module stores
the status/region/cover half in :mod:`boxless.client.profile_store`). A
contact's fields are checked like ours (:mod:`boxless.client.profile_rules`)
before they are kept; a bad field keeps the old value.

The local part (alias, tags, note, phone-book fields, star) never leaves
this database. The alias wins wherever a contact is named: the client's
contact list (:meth:`Profiles.with_aliases`, behind ``Client.contacts``),
group member names and search resolve names through :func:`alias_of`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from boxless.client import events as ev
from boxless.client import profile_store as ps
from boxless.client import store as db
from boxless.client.conversations import UnknownContact
from boxless.client.profile_rules import (
    MAX_ALIAS_CHARS,
    MAX_FIELD_CHARS,
    MAX_REGION_CHARS,
    MAX_STATUS_CHARS,
    clean_line,
    clean_note,
    clean_tags,
    cover_mime,
)
from boxless.client.profile_store import alias_of
from boxless.identity.profile import InvalidProfile

if TYPE_CHECKING:
    from boxless.client.contacts import Contacts

__all__ = ["Profiles", "alias_of", "received_details"]

logger = logging.getLogger(__name__)

_UNSET: object = object()


def received_details(
    cur: db.Cursor, sender: bytes, status: str, region: str, cover: bytes, now_ms: int
) -> None:
    """Keep what a contact's ProfileUpdate says of its status, region and cover
    (inside the receive transaction). Each bad field keeps its old value."""
    old = ps.get_details(cur, sender)
    try:
        status = clean_line("status", status, MAX_STATUS_CHARS)
    except InvalidProfile as exc:
        logger.info("a contact's status was ignored: %s", exc)
        status = old.status
    try:
        region = clean_line("region", region, MAX_REGION_CHARS)
    except InvalidProfile as exc:
        logger.info("a contact's region was ignored: %s", exc)
        region = old.region
    kept: bytes | None = None
    if cover:
        try:
            cover_mime(cover)
            kept = cover
        except InvalidProfile as exc:
            logger.info("a contact's cover was ignored: %s", exc)
            kept = old.cover
    ps.put_details(cur, sender, ps.Details(status, region, kept, now_ms))


class Profiles:
    """Our shared profile details and the user's notes about contacts."""

    def __init__(
        self,
        contacts: Contacts,
        *,
        emit: Callable[[ev.Event], None],
        clock: Callable[[], float],
    ) -> None:
        self.contacts = contacts
        self.db = contacts.db
        self.me = contacts.me
        self.emit = emit
        self.clock = clock

    # -- ours -------------------------------------------------------------------------

    def my_details(self) -> ps.Details:
        with self.db.transaction() as cur:
            return ps.get_details(cur, self.me)

    async def set_details(
        self,
        *,
        status: str | None = None,
        region: str | None = None,
        cover: bytes | None = None,
    ) -> ps.Details:
        """Change our status line, region and/or cover (``b""`` removes it); every
        accepted contact is sent our whole profile again.

        Raises :class:`InvalidProfile` (``InvalidAvatar`` for the cover)
        with what to change.
        """
        old = self.my_details()
        new = ps.Details(
            old.status if status is None else clean_line("status", status, MAX_STATUS_CHARS),
            old.region if region is None else clean_line("region", region, MAX_REGION_CHARS),
            old.cover if cover is None else (cover if cover and cover_mime(cover) else None),
            int(self.clock() * 1000),
        )
        with self.db.transaction() as cur:
            ps.put_details(cur, self.me, new)
        self.contacts.announce_profile()
        return new

    # -- theirs, and the user's notes -------------------------------------------------

    def contact(self, identity_key: bytes) -> tuple[db.ContactRow, ps.Details, ps.ContactNotes]:
        """A contact's row (its own name), shared details and the user's notes."""
        with self.db.transaction() as cur:
            row = db.get_contact(cur, identity_key)
            if row is None:
                raise UnknownContact("no such contact: see GET /api/v1/contacts")
            return row, ps.get_details(cur, identity_key), ps.get_notes(cur, identity_key)

    def notes(self) -> dict[bytes, ps.ContactNotes]:
        with self.db.transaction() as cur:
            return ps.all_notes(cur)

    def tags(self) -> dict[str, int]:
        """Every tag in use and how many contacts carry it."""
        with self.db.transaction() as cur:
            return ps.tag_counts(cur)

    def set_notes(
        self,
        identity_key: bytes,
        *,
        alias: str | None = None,
        tags: list[str] | None = None,
        note: str | None = None,
        phone: str | None = None,
        email: str | None = None,
        company: str | None = None,
        birthday: str | None = None,
        starred: bool | None = None,
    ) -> ps.ContactNotes:
        """Change what the user keeps about a contact (``None``: unchanged). Local only."""
        fields: dict[str, Any] = {}
        if alias is not None:
            fields["alias"] = clean_line("alias", alias, MAX_ALIAS_CHARS)
        if tags is not None:
            fields["tags"] = clean_tags(tags)
        if note is not None:
            fields["note"] = clean_note(note)
        for name, value in (
            ("phone", phone),
            ("email", email),
            ("company", company),
            ("birthday", birthday),
        ):
            if value is not None:
                fields[name] = clean_line(name, value, MAX_FIELD_CHARS)
        if starred is not None:
            fields["starred"] = bool(starred)
        with self.db.transaction() as cur:
            row = db.get_contact(cur, identity_key)
            if row is None:
                raise UnknownContact("no such contact: see GET /api/v1/contacts")
            old = ps.get_notes(cur, identity_key)
            notes = replace(old, **fields, updated_at_ms=int(self.clock() * 1000))
            ps.put_notes(cur, identity_key, notes)
        self.emit(ev.ContactChanged(identity_key.hex(), row.state))
        return notes

    # -- the one name resolver ----------------------------------------------------------

    def with_aliases(self, rows: list[db.ContactRow]) -> list[db.ContactRow]:
        """``rows`` with each contact's alias as its display name where it has one,
        sorted starred first, then by that name."""
        notes = self.notes()
        if not any(n.alias or n.starred for n in notes.values()):
            return rows  # nothing to change: the store's own order
        out = []
        for r in rows:
            n = notes.get(r.identity_key)
            out.append(replace(r, display_name=n.alias) if n and n.alias else r)
        starred = {k for k, n in notes.items() if n.starred}
        out.sort(key=lambda r: (r.identity_key not in starred, r.display_name.casefold()))
        return out

    def display_name(self, identity_key: bytes, fallback: str) -> str:
        with self.db.transaction() as cur:
            return alias_of(cur, identity_key) or fallback

    def find(self, who: str) -> db.ContactRow | None:
        """The contact whose alias is ``who`` (case-insensitive), if exactly one."""
        want = who.strip().casefold()
        keys = [k for k, n in self.notes().items() if n.alias and n.alias.casefold() == want]
        if len(keys) != 1:
            return None
        with self.db.transaction() as cur:
            return db.get_contact(cur, keys[0])
