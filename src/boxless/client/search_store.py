"""All the SQL of search and favourites (tables: ``client/migrations_search``).

The full-text index is kept by triggers on the message tables (so every writer,
whichever feature, keeps it current); this module only reads it. Favourites are
copies: a saved message survives its deletion.
"""

from __future__ import annotations

from dataclasses import dataclass

from boxless.client.search_query import Query
from boxless.client.store import Cursor

__all__ = [
    "DIRECT",
    "GROUP",
    "Favourite",
    "Hit",
    "add_favourite",
    "count_favourites",
    "delete_favourite",
    "get_favourite",
    "list_favourites",
    "search_messages",
]

DIRECT, GROUP = 0, 1


@dataclass(frozen=True)
class Hit:
    """A message that matched: which table (``kind``), its chat key and id, who sent it
    (None: me), when, and its current text."""

    kind: int
    chat: bytes
    message_id: bytes | str
    sender: bytes | None
    sent_at_ms: int
    text: str


def search_messages(
    cur: Cursor, q: Query, limit: int, kind: int | None = None, chat: bytes | None = None
) -> list[Hit]:
    """The ``limit`` most recently indexed texts matching ``q`` (newest sent first), in one chat if
    ``kind`` and ``chat`` are given."""
    where: list[str] = []
    args: list[object] = []
    if q.match is not None:
        where.append("client_search_fts MATCH ?")
        args.append(q.match)
    for pattern in q.likes:
        where.append("f.text LIKE ? ESCAPE '\\'")
        args.append(pattern)
    if kind is not None and chat is not None:
        where.append("d.kind = ? AND d.chat = ?")
        args += [kind, chat]
    cur.execute(
        "SELECT d.kind, d.chat, d.message_id, f.text,"
        " COALESCE(m.sent_at_ms, g.sent_at_ms, 0),"
        " CASE WHEN d.kind = 0 THEN CASE WHEN m.outgoing THEN NULL ELSE m.contact END"
        "      ELSE CASE WHEN g.outgoing THEN NULL ELSE g.sender END END"
        " FROM client_search_fts f JOIN client_search_docs d ON d.doc = f.rowid"
        " LEFT JOIN client_messages m ON d.kind = 0 AND m.message_id = d.message_id"
        " LEFT JOIN client_group_messages g ON d.kind = 1 AND g.message_id = d.message_id"
        f" WHERE {' AND '.join(where)} ORDER BY f.rowid DESC LIMIT ?",
        (*args, limit),
    )
    hits = [Hit(k, c, mid, sender, sent, text) for k, c, mid, text, sent, sender in cur.fetchall()]
    # The index walks newest-indexed first (fast: it stops at ``limit``); show them by
    # when they were sent (a text that arrived late still sorts by its time).
    hits.sort(key=lambda h: h.sent_at_ms, reverse=True)
    return hits


# -- favourites ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Favourite:
    id: int
    chat: str
    message_id: str
    text: str
    sender: str
    sender_name: str
    sent_at_ms: int
    saved_at_ms: int


_FAV_COLS = "id, chat, message_id, text, sender, sender_name, sent_at_ms, saved_at_ms"


def add_favourite(cur: Cursor, f: Favourite) -> Favourite:
    """Save ``f`` (its ``id`` is ignored); the one already saved if that message is."""
    cur.execute(
        "INSERT OR IGNORE INTO client_favourites"
        " (chat, message_id, text, sender, sender_name, sent_at_ms, saved_at_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (f.chat, f.message_id, f.text, f.sender, f.sender_name, f.sent_at_ms, f.saved_at_ms),
    )
    cur.execute(
        f"SELECT {_FAV_COLS} FROM client_favourites WHERE chat = ? AND message_id = ?",
        (f.chat, f.message_id),
    )
    return Favourite(*cur.fetchone())


def get_favourite(cur: Cursor, fav_id: int) -> Favourite | None:
    cur.execute(f"SELECT {_FAV_COLS} FROM client_favourites WHERE id = ?", (fav_id,))
    row = cur.fetchone()
    return Favourite(*row) if row else None


def count_favourites(cur: Cursor) -> int:
    cur.execute("SELECT COUNT(*) FROM client_favourites")
    return int(cur.fetchone()[0])


def list_favourites(cur: Cursor, q: Query | None, limit: int) -> list[Favourite]:
    """Newest saved first; with ``q``, those whose text or sender's name has every term."""
    where, args = [], []
    for term in q.terms if q is not None else ():
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append("(text LIKE ? ESCAPE '\\' OR sender_name LIKE ? ESCAPE '\\')")
        args += [f"%{escaped}%"] * 2
    cur.execute(
        f"SELECT {_FAV_COLS} FROM client_favourites"
        f" {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY id DESC LIMIT ?",
        (*args, limit),
    )
    return [Favourite(*r) for r in cur.fetchall()]


def delete_favourite(cur: Cursor, fav_id: int) -> bool:
    cur.execute("DELETE FROM client_favourites WHERE id = ?", (fav_id,))
    return bool(cur.rowcount)
