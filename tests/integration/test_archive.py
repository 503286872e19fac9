"""The archive contract, run against every backend (SQLite file and PostgreSQL).

PostgreSQL cases use the ``fresh_pg_url`` fixture from tests/archive_fixtures.py.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from boxless.archive import (
    Archive,
    ArchiveQuery,
    ArchiveRow,
    CursorNotFoundError,
    SchemaVersionError,
    latest_version,
    open_archive,
)
from boxless.errors import ConfigError, UsageError

PUBSUB = "/waku/2/rs/1/0"
OTHER_PUBSUB = "/waku/2/rs/1/1"
TOPICS = ("/app/1/a/proto", "/app/1/b/proto", "/app/1/c/proto")
T0 = 1_700_000_000_000_000_000


def make_row(
    i: int,
    *,
    ts: int | None = None,
    topic: str = TOPICS[0],
    pubsub: str = PUBSUB,
    size: int = 16,
    received_at: int | None = None,
) -> ArchiveRow:
    digest = hashlib.sha256(f"msg-{i}".encode()).digest()
    return ArchiveRow(
        message_hash=digest,
        pubsub_topic=pubsub,
        content_topic=topic,
        timestamp=T0 + i if ts is None else ts,
        message=bytes([i % 256]) * size,
        received_at=T0 + i if received_at is None else received_at,
    )


def order_key(row: ArchiveRow) -> tuple[int, bytes]:
    return (row.timestamp, row.message_hash)


@pytest.fixture(params=["sqlite", "postgres"])
def archive_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'archive.db'}"
    url: str = request.getfixturevalue("fresh_pg_url")
    return url


@pytest.fixture
def archive(archive_url: str) -> Iterator[Archive]:
    with open_archive(archive_url) as opened:
        yield opened


def walk(
    archive: Archive,
    query: ArchiveQuery,
    next_cursor: Callable[[ArchiveQuery, list[ArchiveRow], bytes | None], bytes | None],
) -> list[list[ArchiveRow]]:
    """Page through ``query`` until ``next_cursor`` says stop; return the pages."""
    pages: list[list[ArchiveRow]] = []
    q = query
    while True:
        page = archive.query(q)
        rows = list(page.rows)
        cursor = next_cursor(q, rows, page.next_cursor)
        if rows:
            pages.append(rows)
        if cursor is None:
            return pages
        assert len(pages) < 10_000, "pagination does not terminate"
        q = ArchiveQuery(**{**_fields(q), "cursor": cursor})


def _fields(q: ArchiveQuery) -> dict[str, object]:
    return {name: getattr(q, name) for name in ArchiveQuery.__slots__}


def own_cursor(_q: ArchiveQuery, _rows: list[ArchiveRow], cursor: bytes | None) -> bytes | None:
    """Follow the service's pagination_cursor (spec 13)."""
    return cursor


def js_waku_cursor(q: ArchiveQuery, rows: list[ArchiveRow], _cursor: bytes | None) -> bytes | None:
    """js-waku: ignore the response cursor; last row forward, first row backward; stop on empty."""
    if not rows:
        return None
    return rows[-1].message_hash if q.forward else rows[0].message_hash


# --- insert ----------------------------------------------------------------------


def test_insert_is_idempotent(archive: Archive) -> None:
    rows = [make_row(i) for i in range(10)]
    assert archive.insert(rows) == 10
    assert archive.insert(rows) == 0
    assert archive.insert([*rows[:3], make_row(10), make_row(10)]) == 1
    assert archive.insert([]) == 0
    assert archive.count() == 11


def test_rows_round_trip(archive: Archive) -> None:
    row = make_row(1, size=1024)
    archive.insert([row])
    page = archive.query(ArchiveQuery(include_data=True))
    assert page.rows == (row,)
    hashes_only = archive.query(ArchiveQuery(include_data=False))
    assert [r.message_hash for r in hashes_only.rows] == [row.message_hash]


# --- filters -----------------------------------------------------------------------


def test_content_topic_and_time_range(archive: Archive) -> None:
    rows = [make_row(i, topic=TOPICS[i % 3]) for i in range(30)]
    rows.append(make_row(99, topic=TOPICS[0], pubsub=OTHER_PUBSUB, ts=T0 + 5))
    archive.insert(rows)
    q = ArchiveQuery(
        pubsub_topic=PUBSUB,
        content_topics=(TOPICS[0], TOPICS[1]),
        time_start=T0 + 3,
        time_end=T0 + 12,  # both ends inclusive
        forward=True,
        limit=100,
    )
    got = archive.query(q)
    expected = sorted(
        (
            r
            for r in rows
            if r.pubsub_topic == PUBSUB
            and r.content_topic in q.content_topics
            and T0 + 3 <= r.timestamp <= T0 + 12
        ),
        key=order_key,
    )
    assert [r.message_hash for r in got.rows] == [r.message_hash for r in expected]
    assert got.rows[0].timestamp == T0 + 3 and got.rows[-1].timestamp == T0 + 12
    assert got.next_cursor is None


def test_ties_on_timestamp_are_ordered_by_hash(archive: Archive) -> None:
    rows = [make_row(i, ts=T0) for i in range(12)]
    archive.insert(rows)
    forward = archive.query(ArchiveQuery(forward=True, limit=50)).rows
    backward = archive.query(ArchiveQuery(forward=False, limit=50)).rows
    expected = sorted(r.message_hash for r in rows)
    assert [r.message_hash for r in forward] == expected
    assert [r.message_hash for r in backward] == expected


def test_hash_lookup(archive: Archive) -> None:
    rows = [make_row(i) for i in range(20)]
    archive.insert(rows)
    wanted = (rows[15].message_hash, rows[2].message_hash, b"\x00" * 32)
    page = archive.query(ArchiveQuery(message_hashes=wanted, include_data=True, limit=10))
    assert [r.message_hash for r in page.rows] == [rows[2].message_hash, rows[15].message_hash]
    narrowed = archive.query(ArchiveQuery(pubsub_topic=OTHER_PUBSUB, message_hashes=wanted))
    assert narrowed.rows == ()


def test_unknown_cursor_is_an_error(archive: Archive) -> None:
    archive.insert([make_row(1)])
    with pytest.raises(CursorNotFoundError):
        archive.query(ArchiveQuery(cursor=b"\x01" * 32))


def test_page_limits_and_cursor(archive: Archive) -> None:
    rows = [make_row(i) for i in range(5)]
    archive.insert(rows)
    first = archive.query(ArchiveQuery(forward=True, limit=2, include_data=True))
    assert first.rows == tuple(rows[:2]) and first.next_cursor == rows[1].message_hash
    last = archive.query(
        ArchiveQuery(forward=True, limit=2, cursor=rows[2].message_hash, include_data=True)
    )
    assert last.rows == tuple(rows[3:]) and last.next_cursor is None
    back = archive.query(ArchiveQuery(forward=False, limit=2, include_data=True))
    assert back.rows == tuple(rows[3:]) and back.next_cursor == rows[3].message_hash


# --- pagination over many rows ---------------------------------------------------------


@pytest.mark.parametrize("forward", [True, False], ids=["forward", "backward"])
@pytest.mark.parametrize("follow", [own_cursor, js_waku_cursor], ids=["spec", "js-waku"])
def test_pagination_returns_each_row_once_in_order(
    archive: Archive,
    forward: bool,
    follow: Callable[[ArchiveQuery, list[ArchiveRow], bytes | None], bytes | None],
) -> None:
    rng = random.Random(7)
    # 1,200 rows, many sharing timestamps, spread over three topics.
    rows = [make_row(i, ts=T0 + rng.randrange(300), topic=TOPICS[i % 3]) for i in range(1200)]
    archive.insert(rows)
    for topics in [(TOPICS[0],), TOPICS[:2]]:
        q = ArchiveQuery(
            pubsub_topic=PUBSUB,
            content_topics=topics,
            time_start=T0 + 10,
            time_end=T0 + 280,
            forward=forward,
            limit=20,
        )
        pages = walk(archive, q, follow)
        expected = sorted(
            (r for r in rows if r.content_topic in topics and T0 + 10 <= r.timestamp <= T0 + 280),
            key=order_key,
        )
        for page in pages:
            assert page == sorted(page, key=order_key), "each page is ascending"
        flat = [r for page in (pages if forward else reversed(pages)) for r in page]
        assert [r.message_hash for r in flat] == [r.message_hash for r in expected]


# --- retention ---------------------------------------------------------------------------


def test_retention_by_age(archive: Archive) -> None:
    archive.insert([make_row(i, received_at=T0 + i * 1000) for i in range(10)])
    # Keep rows received at or after now - max_age = T0 + 4000.
    deleted = archive.apply_retention(T0 + 9000, max_age_ns=5000, max_count=None, max_bytes=None)
    assert deleted == 4 and archive.count() == 6


def test_retention_uses_receive_time_not_sender_time(archive: Archive) -> None:
    future = make_row(1, ts=T0 + 10**18, received_at=T0)
    fresh = make_row(2, ts=T0, received_at=T0 + 10**9)
    archive.insert([future, fresh])
    archive.apply_retention(T0 + 10**9, max_age_ns=10, max_count=None, max_bytes=None)
    assert [r.message_hash for r in archive.query(ArchiveQuery()).rows] == [fresh.message_hash]


def test_retention_by_count(archive: Archive) -> None:
    rows = [make_row(i) for i in range(10)]
    archive.insert(rows)
    assert archive.apply_retention(0, max_age_ns=None, max_count=3, max_bytes=None) == 7
    kept = archive.query(ArchiveQuery(forward=True, include_data=True)).rows
    assert kept == tuple(rows[7:])
    assert archive.apply_retention(0, max_age_ns=None, max_count=3, max_bytes=None) == 0
    assert archive.apply_retention(0, max_age_ns=None, max_count=0, max_bytes=None) == 3


def test_retention_by_size(archive: Archive) -> None:
    rows = [make_row(i, size=100) for i in range(10)]
    archive.insert(rows)
    assert archive.apply_retention(0, max_age_ns=None, max_count=None, max_bytes=350) == 7
    assert archive.query(ArchiveQuery(forward=True, include_data=True)).rows == tuple(rows[7:])
    assert archive.apply_retention(0, max_age_ns=None, max_count=None, max_bytes=300) == 0


def test_retention_rejects_negative_limits(archive: Archive) -> None:
    with pytest.raises(UsageError):
        archive.apply_retention(0, max_age_ns=None, max_count=-1, max_bytes=None)


# --- migrations ------------------------------------------------------------------------


def test_reopen_reruns_migrations_idempotently(archive_url: str) -> None:
    with open_archive(archive_url) as first:
        first.insert([make_row(1)])
    with open_archive(archive_url) as again:
        assert again.count() == 1
    assert _schema_versions(archive_url) == list(range(1, latest_version("sqlite") + 1))


def test_newer_schema_is_refused(archive_url: str) -> None:
    open_archive(archive_url).close()
    _execute(archive_url, "INSERT INTO schema_version (version) VALUES (9999)")
    with pytest.raises(SchemaVersionError, match="newer than this Boxless"):
        open_archive(archive_url)


def _schema_versions(url: str) -> list[int]:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite://")) as conn:
            rows = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    else:
        with psycopg.connect(url) as pg:
            rows = pg.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    return [int(r[0]) for r in rows]


def _execute(url: str, sql: str) -> None:
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite://"))
        with conn:
            conn.execute(sql)
        conn.close()
    else:
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute(sql.encode())


# --- concurrency -------------------------------------------------------------------------


def test_concurrent_inserts_and_queries(archive: Archive) -> None:
    rows = [make_row(i, topic=TOPICS[i % 3]) for i in range(800)]
    errors: list[BaseException] = []
    inserted: list[int] = []
    lock = threading.Lock()

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        mine = rows[:]
        rng.shuffle(mine)  # overlapping batches in different orders
        try:
            for start in range(0, len(mine), 50):
                n = archive.insert(mine[start : start + 50])
                with lock:
                    inserted.append(n)
                archive.query(ArchiveQuery(pubsub_topic=PUBSUB, content_topics=TOPICS[:1]))
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sum(inserted) == len(rows)
    assert archive.count() == len(rows)


# --- URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["mysql://x@y/z", "sqlite://relative.db", "sqlite:///", "/tmp/a.db", ""]
)
def test_bad_urls_say_what_is_accepted(url: str) -> None:
    with pytest.raises(ConfigError, match="sqlite:///"):
        open_archive(url)


def test_memory_sqlite_works() -> None:
    with open_archive("sqlite:///:memory:") as mem:
        assert mem.insert([make_row(1), make_row(2)]) == 2
        assert mem.count() == 2


def test_closed_archive_refuses_use(tmp_path: Path) -> None:
    archive = open_archive(f"sqlite:///{tmp_path / 'a.db'}")
    archive.close()
    archive.close()
    with pytest.raises(UsageError):
        archive.count()
