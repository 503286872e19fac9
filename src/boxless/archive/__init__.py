"""The message archive behind the store protocol: one interface, SQLite and PostgreSQL.

Open one with :func:`open_archive` (``sqlite:///abs/path.db``,
``sqlite:///:memory:`` or ``postgresql://user@host:port/db``); the backends are
imported lazily so SQLite users never load psycopg.
"""

from boxless.archive.base import (
    Archive,
    ArchivePage,
    ArchiveQuery,
    ArchiveRow,
    CursorNotFoundError,
)
from boxless.archive.factory import open_archive
from boxless.archive.migrate import SchemaVersionError, latest_version

__all__ = [
    "Archive",
    "ArchivePage",
    "ArchiveQuery",
    "ArchiveRow",
    "CursorNotFoundError",
    "SchemaVersionError",
    "latest_version",
    "open_archive",
]
