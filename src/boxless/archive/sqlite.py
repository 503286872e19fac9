"""The embedded archive on stdlib sqlite3.

Theory of operation
-------------------
The database runs in WAL mode with ``synchronous=NORMAL``: readers never block
the writer nor each other, and a commit costs no fsync (a power cut may lose
the last commits, never corrupt the file). SQLite allows one writer at a time,
so there is exactly one *writer connection*, used under ``_write_lock``; every
write is one explicit ``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction.
Reads use a small pool of *reader connections*: a thread takes one (or opens a
new one), runs its query in one read transaction, and hands it back, so each
connection is used by one thread at a time and pages see a consistent
snapshot. The pool grows to the number of threads that read at once (trio's
thread limiter caps that) and is closed by :meth:`SqliteArchive.close`.

``:memory:`` databases exist per connection, so there the writer connection
serves reads too, under the same lock.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence

from boxless.archive import _sql
from boxless.archive.base import (
    Archive,
    ArchivePage,
    ArchiveQuery,
    ArchiveRow,
    CursorNotFoundError,
    check_retention_limits,
)
from boxless.archive.migrate import migrate_sqlite
from boxless.errors import StorageError, UsageError

log = logging.getLogger(__name__)

_PH = "?"
_BUSY_TIMEOUT_MS = 10_000


class SqliteArchive(Archive):
    """An :class:`Archive` in one SQLite file (or ``":memory:"``)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._memory = path == ":memory:"
        self._write_lock = threading.Lock()
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._writer = self._connect()
        try:
            if not self._memory:
                mode = self._writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode != "wal":
                    raise StorageError(f"{path}: could not enable WAL (journal_mode={mode})")
            migrate_sqlite(self._writer, where=path)
        except BaseException:
            self._writer.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self._path,
                isolation_level=None,
                check_same_thread=False,
                timeout=_BUSY_TIMEOUT_MS / 1000,
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open SQLite archive {self._path}: {exc}") from exc
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        return conn

    # --- connection handling -------------------------------------------------

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """Run one write transaction on the writer connection."""
        self._check_open()
        with self._write_lock, _storage_errors(self._path):
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """Run one read transaction on a pooled reader (the writer for :memory:)."""
        self._check_open()
        if self._memory:
            with self._write_lock, _storage_errors(self._path):
                yield self._writer
            return
        conn = self._take_reader()
        try:
            with _storage_errors(self._path):
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    conn.execute("COMMIT")
        finally:
            self._readers.put(conn)

    def _take_reader(self) -> sqlite3.Connection:
        try:
            return self._readers.get_nowait()
        except queue.Empty:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            with self._readers_lock:
                self._all_readers.append(conn)
            return conn

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError(f"the SQLite archive {self._path} is closed")

    # --- Archive -----------------------------------------------------------------

    def insert(self, rows: Sequence[ArchiveRow]) -> int:
        if not rows:
            return 0
        sql = f"INSERT OR IGNORE INTO messages ({_sql.INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        with self._writing() as conn:
            before = conn.total_changes
            conn.executemany(sql, _sql.insert_params(rows))
            return conn.total_changes - before

    def query(self, q: ArchiveQuery) -> ArchivePage:
        with self._reading() as conn:
            cursor_ts = None
            if q.cursor is not None:
                found = _execute(conn, _sql.cursor_lookup(_PH, q.cursor)).fetchone()
                if found is None:
                    raise CursorNotFoundError(f"cursor {q.cursor.hex()} is not in the archive")
                cursor_ts = int(found[0])
            fetched = _execute(conn, _sql.select_page(_PH, q, cursor_ts)).fetchall()
        return _sql.make_page(q, fetched)

    def count(self) -> int:
        with self._reading() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0])

    def apply_retention(
        self,
        now_ns: int,
        *,
        max_age_ns: int | None,
        max_count: int | None,
        max_bytes: int | None,
    ) -> int:
        check_retention_limits(max_age_ns, max_count, max_bytes)
        with self._writing() as conn:
            deleted = _sql.run_retention(
                lambda stmt: _execute(conn, stmt), _PH, now_ns, max_age_ns, max_count, max_bytes
            )
        if deleted:
            log.info("archive retention deleted %d messages", deleted)
        return deleted

    def close(self) -> None:
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            self._writer.close()
        with self._readers_lock:
            for conn in self._all_readers:
                conn.close()
            self._all_readers.clear()


def _execute(conn: sqlite3.Connection, stmt: _sql.Statement) -> sqlite3.Cursor:
    return conn.execute(stmt.sql, stmt.params)


@contextlib.contextmanager
def _storage_errors(path: str) -> Iterator[None]:
    """Re-raise sqlite3 errors as StorageError naming the database."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StorageError(f"SQLite archive {path}: {exc}") from exc
