"""Opening an archive by URL: the one place that knows every backend.

Kept apart from :mod:`boxless.archive.base` so the interface never imports
its own implementations (the backends import the interface, not the other way
round). Backends are imported when asked for, so SQLite users never load
psycopg.
"""

from __future__ import annotations

from boxless.archive.base import Archive
from boxless.errors import ConfigError

__all__ = ["open_archive"]

_ACCEPTED_URLS = (
    "sqlite:///absolute/path/to/archive.db, sqlite:///:memory:, "
    "or postgresql://user[:password]@host[:port]/dbname"
)


def open_archive(url: str) -> Archive:
    """Open (creating and migrating if needed) the archive at ``url``.

    Accepted forms: ``sqlite:///abs/path.db``, ``sqlite:///:memory:`` and
    ``postgresql://user@host:port/db`` (``postgres://`` too).
    Raises :class:`boxless.errors.ConfigError` for any other form.
    """
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        if path == "/:memory:":
            path = ":memory:"
        elif not path.startswith("/") or path == "/":
            raise ConfigError(
                f"bad archive URL {url!r}: give an absolute path; use {_ACCEPTED_URLS}"
            )
        from boxless.archive.sqlite import SqliteArchive

        return SqliteArchive(path)
    if url.startswith(("postgresql://", "postgres://")):
        from boxless.archive.postgres import PostgresArchive

        return PostgresArchive(url)
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise ConfigError(f"unsupported archive URL scheme {scheme!r}; use {_ACCEPTED_URLS}")
