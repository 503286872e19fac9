"""The encrypted user database: encryption at rest, passphrases, migrations, transactions."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlcipher3

from boxless.errors import UsageError
from boxless.storage import (
    KdfParams,
    UserDB,
    UserDBExists,
    UserDBNotFound,
    UserDBSchemaError,
    WeakPassphrase,
    WrongPassphrase,
    create_user_db,
    header_path,
    open_user_db,
)

# Cheap Argon2id for speed; one test below uses the real default parameters.
FAST = KdfParams(memory_kib=1024, time_cost=1, parallelism=1)
PASS = "correct horse battery staple"
MARKER = "PLAINTEXT-MARKER-boxless-7f3a9c"


def _new(tmp_path: Path, passphrase: str = PASS) -> UserDB:
    return create_user_db(tmp_path / "user.db", passphrase, kdf=FAST)


def _raw_bytes(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(tmp_path.iterdir()) if p.is_file())


def _write_marker(db: UserDB) -> None:
    with db.transaction() as cur:
        cur.execute("CREATE TABLE notes (body TEXT, blob BLOB)")
        for _ in range(50):
            cur.execute("INSERT INTO notes VALUES (?, ?)", (MARKER, MARKER.encode("utf-16-le")))


def test_no_plaintext_on_disk_while_open_and_after_close(tmp_path: Path) -> None:
    db = _new(tmp_path)
    _write_marker(db)
    needles = (MARKER.encode(), MARKER.encode("utf-16-le"), b"CREATE TABLE", b"SQLite format 3")
    raw = _raw_bytes(tmp_path)  # database, -wal and -shm files, header
    assert len(raw) > 4096
    assert not any(needle in raw for needle in needles)
    db.close()
    raw = _raw_bytes(tmp_path)
    assert not any(needle in raw for needle in needles)
    with open_user_db(tmp_path / "user.db", PASS) as again, again.transaction() as cur:
        cur.execute("SELECT count(*) FROM notes WHERE body = ?", (MARKER,))
        assert cur.fetchone()[0] == 50


def test_header_holds_no_key_material(tmp_path: Path) -> None:
    _new(tmp_path).close()
    header = header_path(tmp_path / "user.db").read_text()
    assert PASS not in header
    assert '"kdf": "argon2id"' in header
    assert (tmp_path / "user.db").stat().st_mode & 0o077 == 0


def test_wrong_passphrase_cannot_open(tmp_path: Path) -> None:
    _new(tmp_path).close()
    with pytest.raises(WrongPassphrase, match="passphrase does not open") as info:
        open_user_db(tmp_path / "user.db", PASS + "!")
    assert isinstance(info.value, UsageError)
    assert PASS not in str(info.value)


def test_default_kdf_parameters_roundtrip(tmp_path: Path) -> None:
    db = create_user_db(tmp_path / "user.db", PASS)  # 64 MiB, t=3, p=1
    db.close()
    assert '"memory_kib": 65536' in header_path(tmp_path / "user.db").read_text()
    open_user_db(tmp_path / "user.db", PASS).close()
    with pytest.raises(WrongPassphrase):
        open_user_db(tmp_path / "user.db", "correct horse battery stapler")


def test_create_refuses_existing_and_open_refuses_missing(tmp_path: Path) -> None:
    _new(tmp_path).close()
    with pytest.raises(UserDBExists):
        _new(tmp_path)
    with pytest.raises(UserDBNotFound, match="boxless init"):
        open_user_db(tmp_path / "other.db", PASS)


def test_weak_passphrase_refused(tmp_path: Path) -> None:
    with pytest.raises(WeakPassphrase):
        _new(tmp_path, "short")
    assert not (tmp_path / "user.db").exists()


def test_change_passphrase(tmp_path: Path) -> None:
    db = _new(tmp_path)
    _write_marker(db)
    key_before = db.derive_key("olm pickle v1")
    with pytest.raises(WrongPassphrase):
        db.change_passphrase("not the passphrase", "a brand new passphrase")
    db.change_passphrase(PASS, "a brand new passphrase")
    db.close()
    with pytest.raises(WrongPassphrase):
        open_user_db(tmp_path / "user.db", PASS)
    with open_user_db(tmp_path / "user.db", "a brand new passphrase") as again:
        assert again.derive_key("olm pickle v1") == key_before  # pickles stay readable
        with again.transaction() as cur:
            cur.execute("SELECT count(*) FROM notes")
            assert cur.fetchone()[0] == 50
    assert MARKER.encode() not in _raw_bytes(tmp_path)


def test_interrupted_passphrase_change_still_opens(tmp_path: Path) -> None:
    """Crash after the rekey but before the new header replaced the old one."""
    db = _new(tmp_path)
    hdr = header_path(tmp_path / "user.db")
    old_header = hdr.read_text()
    db.change_passphrase(PASS, "a brand new passphrase", kdf=FAST)
    db.close()
    pending = hdr.with_name(hdr.name + ".new")
    pending.write_text(hdr.read_text())
    hdr.write_text(old_header)
    open_user_db(tmp_path / "user.db", "a brand new passphrase").close()
    assert not pending.exists()
    open_user_db(tmp_path / "user.db", "a brand new passphrase").close()


def test_derive_key_is_labelled_and_stable(tmp_path: Path) -> None:
    db = _new(tmp_path)
    a, b = db.derive_key("a"), db.derive_key("b")
    assert len(a) == 32 and a != b and db.derive_key("a") == a
    assert repr(db) == f"UserDB(path={str(tmp_path / 'user.db')!r})"
    db.close()


def _migrations(tmp_path: Path, files: dict[str, str]) -> list[Path]:
    folder = tmp_path / "mig"
    folder.mkdir(exist_ok=True)
    for name, sql in files.items():
        (folder / name).write_text(sql)
    return sorted(folder.iterdir())


def test_component_migrations(tmp_path: Path) -> None:
    db = _new(tmp_path)
    one = {"0001_init.sql": "-- comment\nCREATE TABLE t (x INTEGER);\nCREATE INDEX tx ON t (x);\n"}
    assert db.migrate("crypto", _migrations(tmp_path, one)) == 1
    assert db.migrate("crypto", _migrations(tmp_path, one)) == 1  # idempotent
    two = {**one, "0002_more.sql": "ALTER TABLE t ADD COLUMN y TEXT;"}
    assert db.migrate("crypto", _migrations(tmp_path, two)) == 2
    assert db.schema_version("crypto") == 2
    assert db.schema_version("core") == 1
    assert db.schema_version("nothing") == 0
    db.close()


def test_failing_migration_changes_nothing(tmp_path: Path) -> None:
    db = _new(tmp_path)
    bad = {"0001_init.sql": "CREATE TABLE good (x);\nCREATE TABLE oops (;\n"}
    with pytest.raises(sqlcipher3.OperationalError, match="syntax"):
        db.migrate("crypto", _migrations(tmp_path, bad))
    with db.transaction() as cur:
        cur.execute("SELECT count(*) FROM sqlite_master WHERE name = 'good'")
        assert cur.fetchone()[0] == 0
    assert db.schema_version("crypto") == 0
    db.close()


def test_migrations_must_be_contiguous_and_not_newer(tmp_path: Path) -> None:
    db = _new(tmp_path)
    gap = {"0001_a.sql": "CREATE TABLE a (x);", "0003_c.sql": "CREATE TABLE c (x);"}
    with pytest.raises(UserDBSchemaError, match="without gaps"):
        db.migrate("x", _migrations(tmp_path, gap))
    db.close()
    db = _new(tmp_path / "two")
    db.migrate("y", _migrations(tmp_path / "two", {"0001_a.sql": "CREATE TABLE a (x);"}))
    with db.transaction() as cur:
        cur.execute("INSERT INTO schema_version VALUES ('y', 2, 'future', 0)")
    with pytest.raises(UserDBSchemaError, match="newer"):
        db.migrate("y", [tmp_path / "two" / "mig" / "0001_a.sql"])
    db.close()


def test_transactions_roll_back_and_nest(tmp_path: Path) -> None:
    db = _new(tmp_path)
    with db.transaction() as cur:
        cur.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(RuntimeError), db.transaction() as cur:
        cur.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("boom")
    with db.transaction() as cur:
        cur.execute("INSERT INTO t VALUES (2)")
        with pytest.raises(RuntimeError), db.transaction() as inner:
            inner.execute("INSERT INTO t VALUES (3)")
            raise RuntimeError("inner only")
        cur.execute("INSERT INTO t VALUES (4)")
    with db.transaction() as cur:
        cur.execute("SELECT x FROM t ORDER BY x")
        assert [r[0] for r in cur.fetchall()] == [2, 4]
    db.close()


def test_transactions_are_thread_safe(tmp_path: Path) -> None:
    db = _new(tmp_path)
    with db.transaction() as cur:
        cur.execute("CREATE TABLE counter (n INTEGER)")
        cur.execute("INSERT INTO counter VALUES (0)")

    def bump() -> None:
        for _ in range(50):
            with db.transaction() as cur:
                cur.execute("SELECT n FROM counter")
                n = cur.fetchone()[0]
                cur.execute("UPDATE counter SET n = ?", (n + 1,))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.transaction() as cur:
        cur.execute("SELECT n FROM counter")
        assert cur.fetchone()[0] == 200
    db.close()


def test_wal_with_synchronous_normal_on_create_and_open(tmp_path: Path) -> None:
    """The durability choice (see "Durability" in userdb.py): WAL, no fsync per
    commit; a commit survives kill -9 (tests/integration/test_olm_kill9.py)."""
    _new(tmp_path).close()
    for db in (_new(tmp_path / "second"), open_user_db(tmp_path / "user.db", PASS)):
        with db:
            assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
