"""Pytest fixtures for archive tests: a session-wide throwaway PostgreSQL.

Wire them in with ``pytest_plugins = ["tests.archive_fixtures"]`` in the root
conftest. ``pg_server`` starts one server per session and ``pg_url`` (also
session-scoped) is the URL of its default database; ``fresh_pg_url`` gives a
test its own empty database on that server, dropped afterwards. Without PostgreSQL binaries the fixtures
skip with the reason, except when ``CI=true``: CI must run the PostgreSQL
tests, so there a missing server fails the test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.pgserver import PgServer, PgUnavailable


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the whole test session."""
    try:
        server = PgServer.start()
    except PgUnavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but PostgreSQL is unavailable: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_url(pg_server: PgServer) -> str:
    """URL of the session server's default database (shared by all tests)."""
    return pg_server.url


@pytest.fixture
def fresh_pg_url(pg_server: PgServer) -> Iterator[str]:
    """URL of a fresh, empty database, dropped after the test."""
    with pg_server.fresh_database() as url:
        yield url
