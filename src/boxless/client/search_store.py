"""All the SQL of search and favourites (tables: ``client/migrations_search``).

The full-text index is kept by triggers on the message tables (so every writer,
whichever feature, keeps it current). While a catch-up runs (:func:`set_deferred`),
the insert triggers only queue new texts; :func:`index_pending` indexes the queue
afterwards (``migrations_search/0005``). Favourites are copies: a saved message
survives its deletion.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from boxless.client.search_query import Query, like, quote
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
    "index_pending",
    "list_favourites",
    "pending_count",
    "search_messages",
    "set_deferred",
]

DIRECT, GROUP = 0, 1
MAX_TERM_TRIGRAMS = 200  # a short term starting more trigrams than this is searched by LIKE


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
    matches = [q.match] if q.match is not None else []
    for term in q.short:
        trigrams = _trigrams_from(cur, term)
        if not trigrams:
            return []  # no indexed text has it
        if len(trigrams) > MAX_TERM_TRIGRAMS:
            where.append("f.text LIKE ? ESCAPE '\\'")
            args.append(like(term))
        else:
            matches.append("(" + " OR ".join(quote(t) for t in trigrams) + ")")
    if matches:
        where.append("client_search_fts MATCH ?")
        args.append(" AND ".join(matches))
    if kind is not None and chat is not None:
        where.append("d.kind = ? AND d.chat = ?")
        args += [kind, chat]
    cur.execute(
        "SELECT d.kind, d.chat, d.message_id, COALESCE(m.text, g.text, ''),"
        " COALESCE(m.sent_at_ms, g.sent_at_ms, 0),"
        " CASE WHEN d.kind = 0 THEN CASE WHEN m.outgoing THEN NULL ELSE m.contact END"
        "      ELSE CASE WHEN g.outgoing THEN NULL ELSE g.sender END END"
        # CROSS JOIN: the index walk stays the outer loop (SQLite does not reorder it);
        # driven from the chat's docs instead, each row would re-run the MATCH.
        " FROM client_search_fts f CROSS JOIN client_search_docs d ON d.doc = f.rowid"
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


def _fold(term: str) -> str:
    """``term`` as the trigram tokenizer folds text (lower case, no diacritics)."""
    decomposed = unicodedata.normalize("NFD", term.lower())
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c))
    )


def _trigrams_from(cur: Cursor, term: str) -> list[str]:
    """The index's trigrams that start with ``term`` (at most one more than the cap)."""
    folded = _fold(term)
    cur.execute(
        "SELECT term FROM client_search_terms WHERE term >= ? AND term < ? LIMIT ?",
        (folded, folded + "\U0010ffff", MAX_TERM_TRIGRAMS + 1),
    )
    return [str(r[0]) for r in cur.fetchall()]


# -- deferred indexing (a catch-up) ----------------------------------------------------------


def set_deferred(cur: Cursor, active: bool) -> None:
    """From now on, new texts are queued for :func:`index_pending` (``active``) or
    indexed as they are stored."""
    cur.execute("UPDATE client_search_defer SET active = ? WHERE id = 1", (int(active),))


def pending_count(cur: Cursor) -> int:
    """How many stored texts wait to be indexed."""
    cur.execute("SELECT count(*) FROM client_search_pending")
    return int(cur.fetchone()[0])


def index_pending(cur: Cursor, limit: int) -> int:
    """Index up to ``limit`` queued texts, oldest queued first; return how many queue
    entries were taken (0: the queue is empty).

    A queued text edited since was indexed by the update trigger, one deleted since
    (or blanked) is not indexed: only texts with no index row yet get one.
    """
    cur.execute(
        "SELECT max(rowid) FROM (SELECT rowid FROM client_search_pending ORDER BY rowid LIMIT ?)",
        (limit,),
    )
    upto = cur.fetchone()[0]
    if upto is None:
        return 0
    cur.execute("SELECT COALESCE(max(doc), 0) FROM client_search_docs")
    before = int(cur.fetchone()[0])  # AUTOINCREMENT: every new doc is above it
    cur.execute(
        "INSERT OR IGNORE INTO client_search_docs (kind, message_id, chat)"
        " SELECT p.kind, p.message_id, COALESCE(m.contact, g.group_id)"
        " FROM client_search_pending p"
        " LEFT JOIN client_messages m ON p.kind = 0 AND m.message_id = p.message_id"
        "   AND m.deleted = 0 AND m.text != ''"
        " LEFT JOIN client_group_messages g ON p.kind = 1 AND g.message_id = p.message_id"
        "   AND g.kind = 'text' AND g.text != ''"
        " WHERE p.rowid <= ? AND COALESCE(m.contact, g.group_id) IS NOT NULL"
        " ORDER BY COALESCE(m.sent_at_ms, g.sent_at_ms), p.rowid",
        (upto,),
    )
    cur.execute(
        "INSERT INTO client_search_fts (rowid, text)"
        " SELECT d.doc, COALESCE(m.text, g.text) || '  ' FROM client_search_docs d"
        " LEFT JOIN client_messages m ON d.kind = 0 AND m.message_id = d.message_id"
        " LEFT JOIN client_group_messages g ON d.kind = 1 AND g.message_id = d.message_id"
        " WHERE d.doc > ?",
        (before,),
    )
    cur.execute("DELETE FROM client_search_pending WHERE rowid <= ?", (upto,))
    return int(cur.rowcount)


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
        where.append("(text LIKE ? ESCAPE '\\' OR sender_name LIKE ? ESCAPE '\\')")
        args += [like(term)] * 2
    cur.execute(
        f"SELECT {_FAV_COLS} FROM client_favourites"
        f" {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY id DESC LIMIT ?",
        (*args, limit),
    )
    return [Favourite(*r) for r in cur.fetchall()]


def delete_favourite(cur: Cursor, fav_id: int) -> bool:
    cur.execute("DELETE FROM client_favourites WHERE id = ?", (fav_id,))
    return bool(cur.rowcount)
