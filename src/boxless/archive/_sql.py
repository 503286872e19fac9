"""SQL text shared by the SQLite and PostgreSQL archives.

Both engines understand row-value comparisons, window functions and the same
``LIMIT``/``UNION ALL`` forms, so one builder serves both; only the parameter
placeholder differs (``?`` for sqlite3, ``%s`` for psycopg).

Theory of operation for :func:`select_page`: a page is keyset pagination on
``(timestamp, message_hash)``. We fetch ``limit + 1`` rows in traversal order
(ascending for forward, descending for backward); the extra row only tells us
whether another page exists. A query for several content topics becomes one
``UNION ALL`` branch per topic, each walking the
``(pubsub_topic, content_topic, timestamp, message_hash)`` index in order and
stopping after ``limit + 1`` rows, merged by an outer ``ORDER BY ... LIMIT``:
this keeps a page's cost proportional to the page size, where a plain
``content_topic IN (...)`` would make the engine sort every matching row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from boxless.archive.base import ArchivePage, ArchiveQuery, ArchiveRow

INSERT_COLUMNS = "message_hash, pubsub_topic, content_topic, timestamp, received_at, size, message"
_DATA_COLUMNS = "message_hash, pubsub_topic, content_topic, timestamp, received_at"


@dataclass(frozen=True, slots=True)
class Statement:
    """SQL text and its positional parameters."""

    sql: str
    params: tuple[object, ...]


def insert_params(rows: Sequence[ArchiveRow]) -> list[tuple[object, ...]]:
    """Parameters for INSERT, sorted by hash so concurrent batches lock in one order."""
    ordered = sorted(rows, key=lambda r: r.message_hash)
    return [
        (
            r.message_hash,
            r.pubsub_topic,
            r.content_topic,
            r.timestamp,
            r.received_at,
            len(r.message),
            r.message,
        )
        for r in ordered
    ]


def cursor_lookup(ph: str, cursor: bytes) -> Statement:
    """Find the cursor's timestamp (the other half of the keyset position)."""
    return Statement(f"SELECT timestamp FROM messages WHERE message_hash = {ph}", (cursor,))


def select_page(ph: str, q: ArchiveQuery, cursor_ts: int | None) -> Statement:
    """Build the SELECT for one page of ``q`` (``limit + 1`` rows, traversal order)."""
    direction = "ASC" if q.forward else "DESC"
    order = f"ORDER BY timestamp {direction}, message_hash {direction}"
    columns = _DATA_COLUMNS + (", message" if q.include_data else ", NULL AS message")
    topics = tuple(dict.fromkeys(q.content_topics))
    fetch = q.limit + 1
    if len(topics) <= 1:
        where, params = _where(ph, q, cursor_ts, topics[0] if topics else None)
        sql = f"SELECT {columns} FROM messages{where} {order} LIMIT {ph}"
        return Statement(sql, (*params, fetch))
    branches: list[str] = []
    all_params: list[object] = []
    for i, topic in enumerate(topics):
        where, params = _where(ph, q, cursor_ts, topic)
        branches.append(
            f"SELECT * FROM (SELECT {columns} FROM messages{where} {order} LIMIT {ph}) AS t{i}"
        )
        all_params.extend((*params, fetch))
    sql = " UNION ALL ".join(branches) + f" {order} LIMIT {ph}"
    return Statement(sql, (*all_params, fetch))


def _where(
    ph: str, q: ArchiveQuery, cursor_ts: int | None, content_topic: str | None
) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if q.pubsub_topic is not None:
        clauses.append(f"pubsub_topic = {ph}")
        params.append(q.pubsub_topic)
    if content_topic is not None:
        clauses.append(f"content_topic = {ph}")
        params.append(content_topic)
    if q.message_hashes:
        marks = ", ".join([ph] * len(q.message_hashes))
        clauses.append(f"message_hash IN ({marks})")
        params.extend(q.message_hashes)
    # A time bound on the same side as the cursor is implied by the cursor once
    # the cursor lies inside the window; leaving it out lets SQLite seek the
    # index straight to the cursor instead of scanning from the bound to it.
    start_implied = q.forward and _within(cursor_ts, q.time_start, above=True)
    end_implied = not q.forward and _within(cursor_ts, q.time_end, above=False)
    if q.time_start is not None and not start_implied:
        clauses.append(f"timestamp >= {ph}")
        params.append(q.time_start)
    if q.time_end is not None and not end_implied:
        clauses.append(f"timestamp <= {ph}")
        params.append(q.time_end)
    if cursor_ts is not None:
        assert q.cursor is not None
        op = ">" if q.forward else "<"
        clauses.append(f"(timestamp, message_hash) {op} ({ph}, {ph})")
        params.extend((cursor_ts, q.cursor))
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    return where, params


def _within(cursor_ts: int | None, bound: int | None, *, above: bool) -> bool:
    """Whether the cursor sits on the inner side of ``bound`` (making it redundant)."""
    if cursor_ts is None or bound is None:
        return False
    return cursor_ts >= bound if above else cursor_ts <= bound


def make_page(q: ArchiveQuery, fetched: Sequence[Sequence[object]]) -> ArchivePage:
    """Turn ``limit + 1`` fetched rows (traversal order) into an ascending page."""
    rows = [_row(r) for r in fetched[: q.limit]]
    next_cursor = rows[-1].message_hash if len(fetched) > q.limit else None
    if not q.forward:
        rows.reverse()
    return ArchivePage(rows=tuple(rows), next_cursor=next_cursor)


def _row(r: Sequence[object]) -> ArchiveRow:
    message_hash, pubsub_topic, content_topic, timestamp, received_at, message = r
    return ArchiveRow(
        message_hash=bytes(message_hash),  # type: ignore[call-overload]
        pubsub_topic=str(pubsub_topic),
        content_topic=str(content_topic),
        timestamp=int(timestamp),  # type: ignore[call-overload]
        received_at=int(received_at),  # type: ignore[call-overload]
        message=b"" if message is None else bytes(message),  # type: ignore[call-overload]
    )


# --- retention -----------------------------------------------------------------

_NEWEST_FIRST = "ORDER BY received_at DESC, message_hash DESC"


def delete_older_than(ph: str, cutoff_ns: int) -> Statement:
    """Delete rows received before ``cutoff_ns``."""
    return Statement(f"DELETE FROM messages WHERE received_at < {ph}", (cutoff_ns,))


def newest_beyond_count(ph: str, max_count: int) -> Statement:
    """Select (received_at, hash) of the newest row outside the newest ``max_count``."""
    sql = f"SELECT received_at, message_hash FROM messages {_NEWEST_FIRST} LIMIT 1 OFFSET {ph}"
    return Statement(sql, (max_count,))


def newest_beyond_bytes(ph: str, max_bytes: int) -> Statement:
    """Select (received_at, hash) of the newest row that overflows ``max_bytes``."""
    sql = (
        "SELECT received_at, message_hash FROM ("
        " SELECT received_at, message_hash,"
        f" SUM(size) OVER ({_NEWEST_FIRST} ROWS UNBOUNDED PRECEDING) AS running"
        " FROM messages) AS r"
        f" WHERE running > {ph} {_NEWEST_FIRST} LIMIT 1"
    )
    return Statement(sql, (max_bytes,))


def delete_up_to(ph: str, received_at: int, message_hash: bytes) -> Statement:
    """Delete the given row and every row received before it."""
    sql = f"DELETE FROM messages WHERE (received_at, message_hash) <= ({ph}, {ph})"
    return Statement(sql, (received_at, message_hash))


def run_retention(
    execute: Callable[[Statement], Any],
    ph: str,
    now_ns: int,
    max_age_ns: int | None,
    max_count: int | None,
    max_bytes: int | None,
) -> int:
    """Apply the three retention limits through ``execute`` (a backend's
    statement runner, inside its write transaction); return rows deleted."""

    def delete_beyond(boundary: Statement) -> int:
        found = execute(boundary).fetchone()
        if found is None:
            return 0
        return int(execute(delete_up_to(ph, int(found[0]), bytes(found[1]))).rowcount)

    deleted = 0
    if max_age_ns is not None:
        deleted += int(execute(delete_older_than(ph, now_ns - max_age_ns)).rowcount)
    if max_count is not None:
        deleted += delete_beyond(newest_beyond_count(ph, max_count))
    if max_bytes is not None:
        deleted += delete_beyond(newest_beyond_bytes(ph, max_bytes))
    return deleted
