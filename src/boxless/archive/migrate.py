"""Numbered schema migrations for the archive, one directory per dialect.

Theory of operation
-------------------
Migrations are the package data files ``migrations/<dialect>/NNNN_name.sql``,
numbered from 0001 without gaps. A ``schema_version`` table records each
applied number. :func:`migrate_sqlite` and :func:`migrate_postgres` open one
transaction, take the database's write lock (``BEGIN IMMEDIATE`` /
an advisory transaction lock), read the current version *inside* that lock,
apply every pending file in order and record it, then commit. So two
processes starting at once cannot both apply a file, and a failing file leaves
the database exactly as it was. A database whose version is newer than the
newest file this code ships is refused with :class:`SchemaVersionError`:
running old code on it could corrupt data it does not understand.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Literal

from boxless.errors import StorageError

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

log = logging.getLogger(__name__)

Dialect = Literal["sqlite", "postgres"]

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_PG_LOCK_KEY = 0x626F786C657373  # "boxless": serialises migrations across processes


class SchemaVersionError(StorageError):
    """The database schema is newer than this code, or the files are malformed."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file: its number, name and SQL text."""

    version: int
    name: str
    sql: str


def load_migrations(dialect: Dialect) -> tuple[Migration, ...]:
    """Return the dialect's migrations in order, checking they number 1..N."""
    folder = resources.files("boxless.archive").joinpath("migrations", dialect)
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    expected = list(range(1, len(found) + 1))
    if [m.version for m in found] != expected:
        raise SchemaVersionError(
            f"{dialect} migrations must be numbered 0001..{len(found):04d} without gaps, "
            f"found {[m.version for m in found]}"
        )
    return tuple(found)


def latest_version(dialect: Dialect) -> int:
    """Return the schema version this code brings a database up to."""
    return len(load_migrations(dialect))


def _pending(migrations: tuple[Migration, ...], current: int, where: str) -> list[Migration]:
    newest = len(migrations)
    if current > newest:
        raise SchemaVersionError(
            f"the archive at {where} has schema version {current}, newer than this "
            f"Boxless understands ({newest}); upgrade Boxless, or point it at another database"
        )
    return [m for m in migrations if m.version > current]


def _sqlite_statements(script: str) -> list[str]:
    """Split a script into statements with SQLite's own tokenizer."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not _only_comments(buffer):
        raise SchemaVersionError(f"incomplete SQL statement at end of migration: {buffer!r}")
    return statements


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())


def migrate_sqlite(conn: sqlite3.Connection, where: str = "sqlite") -> int:
    """Bring a SQLite database up to date; return its schema version.

    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    migrations = load_migrations("sqlite")
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )
        row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
        for migration in _pending(migrations, int(row[0]), where):
            log.info("applying archive migration %04d_%s", migration.version, migration.name)
            for statement in _sqlite_statements(migration.sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (migration.version,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return len(migrations)


def migrate_postgres(conn: psycopg.Connection[TupleRow], where: str = "postgres") -> int:
    """Bring a PostgreSQL database up to date; return its schema version."""
    migrations = load_migrations("postgres")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
        assert row is not None  # an aggregate always returns one row
        for migration in _pending(migrations, int(row[0]), where):
            log.info("applying archive migration %04d_%s", migration.version, migration.name)
            conn.execute(migration.sql.encode("utf-8"))
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (migration.version,))
    return len(migrations)
