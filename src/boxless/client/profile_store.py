"""All the SQL of profiles (:mod:`boxless.client.profiles`).

Two kinds of rows. *Details* (status line, region, Moments cover) are shared:
ours are sent to contacts in every ``ProfileUpdate``, a contact's are what
their last one said. *Notes* (alias, note, phone-book fields, star) and
*tags* are the user's own about a contact and never leave this database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from boxless.client.store import Cursor

__all__ = [
    "ContactNotes",
    "Details",
    "alias_of",
    "all_notes",
    "all_tags",
    "get_details",
    "get_notes",
    "put_details",
    "put_notes",
    "tag_counts",
]


@dataclass(frozen=True, slots=True)
class Details:
    """A person's shared profile details (empty: not set)."""

    status: str = ""
    region: str = ""
    cover: bytes | None = field(default=None, repr=False)
    updated_at_ms: int = 0


@dataclass(frozen=True, slots=True)
class ContactNotes:
    """What the user keeps about one contact, for themselves only."""

    alias: str = ""
    note: str = field(default="", repr=False)
    phone: str = field(default="", repr=False)
    email: str = field(default="", repr=False)
    company: str = field(default="", repr=False)
    birthday: str = field(default="", repr=False)
    starred: bool = False
    tags: tuple[str, ...] = ()
    updated_at_ms: int = 0


_NOTE_COLS = "alias, note, phone, email, company, birthday, starred, updated_at_ms"


def alias_of(cur: Cursor, identity_key: bytes) -> str:
    """The user's alias for a contact ("" when none): the one name resolver's input."""
    cur.execute("SELECT alias FROM client_contact_notes WHERE identity_key = ?", (identity_key,))
    r = cur.fetchone()
    return str(r[0]) if r else ""


def get_details(cur: Cursor, identity_key: bytes) -> Details:
    cur.execute(
        "SELECT status, region, cover, updated_at_ms FROM client_profile_details "
        "WHERE identity_key = ?",
        (identity_key,),
    )
    r = cur.fetchone()
    if r is None:
        return Details()
    return Details(str(r[0]), str(r[1]), bytes(r[2]) if r[2] else None, int(r[3]))


def put_details(cur: Cursor, identity_key: bytes, d: Details) -> None:
    cur.execute(
        "INSERT INTO client_profile_details (identity_key, status, region, cover, updated_at_ms) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT(identity_key) DO UPDATE SET status=excluded.status, "
        "region=excluded.region, cover=excluded.cover, updated_at_ms=excluded.updated_at_ms",
        (identity_key, d.status, d.region, d.cover or None, d.updated_at_ms),
    )


def _tags_of(cur: Cursor, identity_key: bytes) -> tuple[str, ...]:
    cur.execute(
        "SELECT tag FROM client_contact_tags WHERE identity_key = ? ORDER BY tag", (identity_key,)
    )
    return tuple(str(r[0]) for r in cur.fetchall())


def _notes(r: tuple[Any, ...], tags: tuple[str, ...]) -> ContactNotes:
    return ContactNotes(
        str(r[0]),
        str(r[1]),
        str(r[2]),
        str(r[3]),
        str(r[4]),
        str(r[5]),
        bool(r[6]),
        tags,
        int(r[7]),
    )


def get_notes(cur: Cursor, identity_key: bytes) -> ContactNotes:
    cur.execute(
        f"SELECT {_NOTE_COLS} FROM client_contact_notes WHERE identity_key = ?", (identity_key,)
    )
    r = cur.fetchone()
    tags = _tags_of(cur, identity_key)
    return ContactNotes(tags=tags) if r is None else _notes(r, tags)


def all_notes(cur: Cursor) -> dict[bytes, ContactNotes]:
    """Every contact's notes and tags (contacts with none are absent)."""
    tags: dict[bytes, list[str]] = {}
    cur.execute("SELECT identity_key, tag FROM client_contact_tags ORDER BY tag")
    for key, tag in cur.fetchall():
        tags.setdefault(bytes(key), []).append(str(tag))
    cur.execute(f"SELECT identity_key, {_NOTE_COLS} FROM client_contact_notes")
    out = {bytes(r[0]): _notes(r[1:], tuple(tags.get(bytes(r[0]), ()))) for r in cur.fetchall()}
    for key, ts in tags.items():
        if key not in out:
            out[key] = ContactNotes(tags=tuple(ts))
    return out


def put_notes(cur: Cursor, identity_key: bytes, n: ContactNotes) -> None:
    cur.execute(
        f"INSERT INTO client_contact_notes (identity_key, {_NOTE_COLS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(identity_key) DO UPDATE SET "
        "alias=excluded.alias, note=excluded.note, phone=excluded.phone, email=excluded.email, "
        "company=excluded.company, birthday=excluded.birthday, starred=excluded.starred, "
        "updated_at_ms=excluded.updated_at_ms",
        (
            identity_key,
            n.alias,
            n.note,
            n.phone,
            n.email,
            n.company,
            n.birthday,
            int(n.starred),
            n.updated_at_ms,
        ),
    )
    cur.execute("DELETE FROM client_contact_tags WHERE identity_key = ?", (identity_key,))
    for tag in n.tags:
        cur.execute(
            "INSERT INTO client_contact_tags (identity_key, tag) VALUES (?, ?)", (identity_key, tag)
        )


def all_tags(cur: Cursor) -> list[str]:
    cur.execute("SELECT DISTINCT tag FROM client_contact_tags ORDER BY tag")
    return [str(r[0]) for r in cur.fetchall()]


def tag_counts(cur: Cursor) -> dict[str, int]:
    cur.execute("SELECT tag, COUNT(*) FROM client_contact_tags GROUP BY tag ORDER BY tag")
    return {str(r[0]): int(r[1]) for r in cur.fetchall()}
