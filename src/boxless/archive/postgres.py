"""The archive on PostgreSQL, for service nodes that outgrow one machine's SQLite.

Theory of operation
-------------------
A ``psycopg_pool.ConnectionPool`` (synchronous) hands each call its own
connection, so any number of threads may call the archive at once. Each method
runs one transaction (``conn.transaction()``); the pool's connections stay in
autocommit between calls so nothing is left open. Semantics match
:mod:`boxless.archive.sqlite` exactly: the same SQL from :mod:`._sql`, bytea
hashes (compared bytewise, as the spec's "natural order" asks), ``ON CONFLICT
DO NOTHING`` for idempotent inserts. Insert batches are sorted by hash so two
concurrent batches that share hashes take their row locks in the same order
and cannot deadlock.

The connection URL may carry a password: it is never logged nor put into an
error message; errors name the host and database only.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool, PoolTimeout

from boxless.archive import _sql
from boxless.archive.base import (
    Archive,
    ArchivePage,
    ArchiveQuery,
    ArchiveRow,
    CursorNotFoundError,
    check_retention_limits,
)
from boxless.archive.migrate import migrate_postgres
from boxless.errors import ConfigError, StorageError, UsageError

log = logging.getLogger(__name__)

_PH = "%s"
Conn = psycopg.Connection[TupleRow]


class PostgresArchive(Archive):
    """An :class:`Archive` in a PostgreSQL database."""

    def __init__(
        self, url: str, *, min_size: int = 1, max_size: int = 10, timeout_s: float = 30.0
    ) -> None:
        self._where = _describe(url)
        self._closed = False
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout_s,
            kwargs={"autocommit": True},
            open=False,
            name="boxless-archive",
        )
        try:
            self._pool.open(wait=True, timeout=timeout_s)
            with self._connection() as conn:
                migrate_postgres(conn, where=self._where)
        except PoolTimeout as exc:
            self._pool.close()
            raise StorageError(
                f"cannot connect to the PostgreSQL archive at {self._where} within "
                f"{timeout_s:g}s; check that the server runs and the URL is right"
            ) from exc
        except BaseException:
            self._pool.close()
            raise

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Conn]:
        """Borrow a pooled connection, mapping database errors to StorageError."""
        if self._closed:
            raise UsageError(f"the PostgreSQL archive at {self._where} is closed")
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise StorageError(f"PostgreSQL archive {self._where}: no free connection") from exc
        except psycopg.Error as exc:
            raise StorageError(f"PostgreSQL archive {self._where}: {exc}") from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Conn]:
        with self._connection() as conn, conn.transaction():
            yield conn

    def insert(self, rows: Sequence[ArchiveRow]) -> int:
        if not rows:
            return 0
        params = _sql.insert_params(rows)
        columns = list(zip(*params, strict=True))
        sql = (
            f"INSERT INTO messages ({_sql.INSERT_COLUMNS})"
            " SELECT * FROM unnest(%s::bytea[], %s::text[], %s::text[],"
            " %s::bigint[], %s::bigint[], %s::integer[], %s::bytea[])"
            " ON CONFLICT (message_hash) DO NOTHING"
        )
        with self._transaction() as conn:
            cur = conn.execute(sql, [list(col) for col in columns])
            return max(cur.rowcount, 0)

    def query(self, q: ArchiveQuery) -> ArchivePage:
        with self._transaction() as conn:
            cursor_ts = None
            if q.cursor is not None:
                found = _execute(conn, _sql.cursor_lookup(_PH, q.cursor)).fetchone()
                if found is None:
                    raise CursorNotFoundError(f"cursor {q.cursor.hex()} is not in the archive")
                cursor_ts = int(found[0])
            fetched = _execute(conn, _sql.select_page(_PH, q, cursor_ts)).fetchall()
        return _sql.make_page(q, fetched)

    def count(self) -> int:
        with self._connection() as conn:
            row = conn.execute("SELECT COUNT(*) FROM messages").fetchone()
        assert row is not None  # an aggregate always returns one row
        return int(row[0])

    def apply_retention(
        self,
        now_ns: int,
        *,
        max_age_ns: int | None,
        max_count: int | None,
        max_bytes: int | None,
    ) -> int:
        check_retention_limits(max_age_ns, max_count, max_bytes)
        with self._transaction() as conn:
            deleted = _sql.run_retention(
                lambda stmt: _execute(conn, stmt), _PH, now_ns, max_age_ns, max_count, max_bytes
            )
        if deleted:
            log.info("archive retention deleted %d messages", deleted)
        return deleted

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.close()


def _execute(conn: Conn, stmt: _sql.Statement) -> psycopg.Cursor[TupleRow]:
    return conn.execute(stmt.sql.encode("utf-8"), stmt.params)


def _describe(url: str) -> str:
    """``host:port/dbname`` for messages, without user or password."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(
            "malformed PostgreSQL archive URL; use postgresql://user[:password]@host[:port]/dbname"
        ) from exc
    host = info.get("host", "localhost")
    port = info.get("port", "5432")
    return f"{host}:{port}/{info.get('dbname', '')}"
