"""Back up a whole account to one encrypted file, and restore it on a fresh home.

Theory of operation
-------------------
A backup is a logical copy of the user database (every table's schema and
rows, in one read transaction, so it is consistent) plus, optionally, the
attachment cache (``<home>/blobs``: ciphertext blocks and their index),
written in the format of :mod:`boxless.client.backup_format` with a key from
the recovery phrase's BIP-39 seed. The seed is stored in the account
(``wallet_seed``), so making a backup needs no phrase; restoring needs it.

What is *not* copied is this device: its identity/device rows (keys, Olm
account), its Olm sessions, and the right to continue its outbound Megolm
sessions. A restore makes a **new device** of the same identity (certified by
the identity key re-derived from the phrase) and:

- keeps the old ``local_secret``, so every stored pickle (Megolm inbound
  sessions, history exports) still opens;
- starts no Olm session: contacts re-establish them from the new device's
  published bundle (a restored ratchet would be rewound if the old device still
  runs: reused message keys, messages the other side refuses as replays);
- retires our outbound Megolm sessions (pickle dropped, ``current = 0``), so
  the first group message makes a fresh one and no message index is reused;
  their ``origin_pickle`` stays, so our own old group messages still read.

Restore writes into ``<home>/.restore-*`` and moves the result into place only
after the whole file authenticated and its end record matched; any error
removes the directory: nothing written. An existing account is refused unless
``replace=True``, and then it is moved aside (``<home>/replaced-<ms>/``), not
deleted.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import secrets
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from boxless import __version__
from boxless.client.backup_format import (
    BackupDamaged,
    BackupError,
    BackupReader,
    BackupWriter,
    Record,
    RecordKind,
    WrongPhrase,
)
from boxless.errors import UsageError
from boxless.identity.account import USER_DB_NAME, account_exists, user_db_path
from boxless.identity.keys import Device, Identity
from boxless.identity.keystore import Keystore
from boxless.storage.userdb import (
    DEFAULT_KDF,
    KdfParams,
    UserDB,
    create_user_db,
    header_path,
)

__all__ = [
    "BackupDamaged",
    "BackupError",
    "BackupStats",
    "WrongPhrase",
    "create_backup",
    "read_manifest",
    "restore_backup",
]

log = logging.getLogger(__name__)

#: Tables that belong to this device, not the account: their rows are never copied.
DEVICE_TABLES = frozenset(
    {
        "identity",
        "device",
        "wallet_seed",
        "crypto_olm_sessions",
        "crypto_olm_known_sessions",
        "schema_version",  # copied as its own step (see _restore_versions)
    }
)
#: Tables a fresh database already has; their rows replace the fresh ones.
_FRESH_REPLACED = frozenset({"local_secret", "profile"})
ROWS_PER_RECORD = 500
FILE_PIECE = 1024 * 1024
FILES_DIR = "blobs"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_CREATE = re.compile(
    r"^\s*CREATE\s+(UNIQUE\s+INDEX|INDEX|TABLE|VIRTUAL\s+TABLE|TRIGGER)\s", re.IGNORECASE
)

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class BackupStats:
    """What one backup or restore moved."""

    path: Path
    tables: int
    rows: int
    files: int
    bytes: int
    seconds: float


def _q(name: str) -> str:
    if not _NAME.match(name):
        raise BackupDamaged(f"the backup names a table {name[:40]!r} that is not a valid name")
    return '"' + name + '"'


# ---------------------------------------------------------------- create


def _schema(cur: Any) -> tuple[list[tuple[str, str, str, str]], set[str], set[str]]:
    """(type, name, table, sql) of what to copy, tables first; and the virtual
    tables whose rows are data (fts5: the others are derived)."""
    cur.execute("PRAGMA table_list")
    listed = [row for row in cur.fetchall() if row[0] == "main"]
    kinds = {row[1]: row[2] for row in listed}
    without_rowid = {row[1] for row in listed if row[4]}
    cur.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
    )
    items = [(t, n, tb, s) for t, n, tb, s in cur.fetchall() if not n.startswith("sqlite_")]
    tables = [
        i
        for i in items
        if i[0] == "table" and kinds.get(i[1]) == "table" and i[1] != "schema_version"
    ]
    virtual = [i for i in items if i[0] == "table" and kinds.get(i[1]) == "virtual"]
    others = [i for i in items if i[0] in ("index", "trigger") and i[2] != "schema_version"]
    fts = {i[1] for i in virtual if re.search(r"USING\s+fts5\s*\(", i[3], re.IGNORECASE)}
    return tables + virtual + others, fts, without_rowid


def _rows(cur: Any, table: str, columns: list[str]) -> Iterator[list[list[Any]]]:
    cols = ", ".join(_q(c) for c in columns)
    cur.execute(f"SELECT {cols} FROM {_q(table)}")  # noqa: S608 - names checked by _q
    while batch := cur.fetchmany(ROWS_PER_RECORD):
        yield [list(r) for r in batch]


def _columns(cur: Any, table: str, with_rowid: bool) -> list[str]:
    """Stored columns (no hidden or generated ones); the rowid too where there is
    one, so rowids that other rows refer to survive."""
    cur.execute(f"PRAGMA table_xinfo({_q(table)})")
    cols = [r[1] for r in cur.fetchall() if r[6] == 0]
    return ["rowid", *cols] if with_rowid and "rowid" not in cols else cols


def _count_rows(cur: Any, names: list[str]) -> int:
    total = 0
    for name in names:
        cur.execute(f"SELECT count(*) FROM {_q(name)}")  # noqa: S608
        total += int(cur.fetchone()[0])
    return total


def _files(root: Path | None) -> list[Path]:
    if root is None or not root.is_dir():
        return []
    return sorted(
        p for p in root.rglob("*") if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    )


def create_backup(
    db: UserDB,
    out: Path,
    *,
    files_root: Path | None = None,
    progress: Progress | None = None,
    now: float | None = None,
) -> BackupStats:
    """Write a backup of the account in ``db`` to ``out`` (via ``out``.part, renamed
    at the end, so a crash never leaves a half file under the name).

    ``files_root``: also copy the attachment cache (``<home>/blobs``).
    ``progress(done, total)`` is called as rows and file bytes are written.
    """
    started = time.perf_counter()
    part = out.with_name(out.name + ".part")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(part, "wb") as fh:
            writer, tables, files = write_backup(
                db, fh, files_root=files_root, progress=progress, now=now
            )
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(part, out)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return BackupStats(
        out, tables, writer.rows, files, out.stat().st_size, time.perf_counter() - started
    )


def write_backup(
    db: UserDB,
    fh: Any,
    *,
    rows_of: Callable[[str], bool] = lambda name: True,
    files_root: Path | None = None,
    progress: Progress | None = None,
    now: float | None = None,
    kind: str = "boxless-backup",
) -> tuple[BackupWriter, int, int]:
    """Write the backup format to the binary file object ``fh``: the schema of every
    table, the rows of those ``rows_of(name)`` accepts (never a device table's).
    Returns the writer (its counts and plaintext digest), the tables and files copied."""
    seed = Keystore(db).load_wallet_seed()
    identity = Keystore(db).load_identity()
    files = _files(files_root)
    writer = BackupWriter(seed)
    with db.transaction() as cur:
        items, fts, without_rowid = _schema(cur)
        data_tables = [
            n
            for t, n, _, _ in items
            if t == "table"
            and n not in DEVICE_TABLES
            and (n in fts or n not in _virtual(items))
            and rows_of(n)
        ]
        total = _count_rows(cur, data_tables) + sum(p.stat().st_size for p in files)
        cur.execute("SELECT component, MAX(version) FROM schema_version GROUP BY component")
        versions = {c: int(v) for c, v in cur.fetchall()}
        manifest = {
            "format": kind,
            "created_at_ms": int((time.time() if now is None else now) * 1000),
            "identity": identity.public_key.hex(),
            "app_version": __version__,
            "schema": versions,
            "tables": len(data_tables),
            "files": len(files),
        }
        fh.write(writer.start(manifest))
        done = 0
        for typ, name, table, sql in items:
            fh.write(writer.write(Record(RecordKind.SCHEMA, [typ, name, table, sql])))
            if name not in data_tables:
                continue
            columns = _columns(cur, name, name not in without_rowid)
            for batch in _rows(cur, name, columns):
                fh.write(writer.write(Record(RecordKind.ROWS, [name, columns, batch])))
                done += len(batch)
                if progress:
                    progress(done, total)
        cur.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")
        if cur.fetchone():
            cur.execute("SELECT name, seq FROM sqlite_sequence")
            seqs = [list(r) for r in cur.fetchall() if rows_of(r[0])]
            if seqs:
                rec = Record(RecordKind.ROWS, ["sqlite_sequence", ["name", "seq"], seqs])
                fh.write(writer.write(rec))
    for path in files:
        assert files_root is not None
        done = _put_file(fh, writer, files_root, path, done, total, progress)
    fh.write(writer.finish())
    return writer, len(data_tables), len(files)


def _virtual(items: list[tuple[str, str, str, str]]) -> set[str]:
    return {
        n
        for t, n, _, s in items
        if t == "table" and s.upper().lstrip().startswith("CREATE VIRTUAL")
    }


def _put_file(
    fh: Any,
    writer: BackupWriter,
    root: Path,
    path: Path,
    done: int,
    total: int,
    progress: Progress | None,
) -> int:
    rel = FILES_DIR + "/" + path.relative_to(root).as_posix()
    with _stable_copy(path) as src, open(src, "rb") as f:
        offset = 0
        while piece := f.read(FILE_PIECE):
            fh.write(writer.write(Record(RecordKind.FILE, [rel, offset, piece])))
            offset += len(piece)
            done += len(piece)
            if progress:
                progress(done, total)
        if offset == 0:
            fh.write(writer.write(Record(RecordKind.FILE, [rel, 0, b""])))
    return done


class _stable_copy:
    """A SQLite file is copied through SQLite's backup API (consistent while in
    use); any other file is read as it is."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp: str | None = None

    def __enter__(self) -> Path:
        if self.path.suffix != ".db":
            return self.path
        fd, self._tmp = tempfile.mkstemp(suffix=".db")
        os.close(fd)
        src, dst = sqlite3.connect(self.path), sqlite3.connect(self._tmp)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
        return Path(self._tmp)

    def __exit__(self, *exc: object) -> None:
        if self._tmp:
            os.unlink(self._tmp)


# ---------------------------------------------------------------- restore


def read_manifest(path: Path, phrase_identity: Identity) -> dict[str, Any]:
    """The manifest of a backup (checks the phrase; reads only the first chunk)."""
    seed = _seed(phrase_identity)
    reader = BackupReader(seed)
    with open(path, "rb") as fh:
        while chunk := fh.read(128 * 1024):
            for record in reader.feed(chunk):
                return dict(record.value)
    raise BackupDamaged("the file is too short to be a Boxless backup")


def _seed(identity: Identity) -> bytes:
    seed = identity.wallet_seed()
    if seed is None:
        raise UsageError("a backup opens only with an identity made from its recovery phrase")
    return seed


class _Restorer:
    """Applies records to a fresh database inside one transaction."""

    def __init__(self, db: UserDB, cur: Any, identity: Identity, files_dir: Path) -> None:
        self.db, self.cur, self.identity, self.files_dir = db, cur, identity, files_dir
        cur.execute("SELECT name FROM sqlite_master")
        self.fresh = {r[0] for r in cur.fetchall()}
        cur.execute("SELECT component, MAX(version) FROM schema_version GROUP BY component")
        self.fresh_versions = {c: int(v) for c, v in cur.fetchall()}
        self.created: set[str] = set()
        self.tables: set[str] = set()
        self.files = 0
        self._file_sizes: dict[str, int] = {}

    def apply(self, record: Record) -> int:
        if record.kind == RecordKind.MANIFEST:
            return self._manifest(record.value)
        if record.kind == RecordKind.SCHEMA:
            self._schema(record.value)
        elif record.kind == RecordKind.ROWS:
            return self._rows(*record.value)
        elif record.kind == RecordKind.FILE:
            return self._file(record.value)
        return 0

    def _manifest(self, m: dict[str, Any]) -> int:
        if m.get("format") not in ("boxless-backup", "boxless-account-state"):
            raise BackupDamaged("the backup's manifest is not a Boxless backup manifest")
        if m.get("identity") != self.identity.public_key.hex():
            raise WrongPhrase("this backup belongs to another account; nothing was restored")
        schema = m.get("schema")
        if not isinstance(schema, dict):
            raise BackupDamaged("the backup's manifest lists no schema versions")
        for component, version in schema.items():
            if not isinstance(component, str) or not isinstance(version, int):
                raise BackupDamaged("the backup's manifest has a bad schema version")
            fresh = self.fresh_versions.get(component)
            if fresh is not None and version > fresh:
                raise BackupError(
                    f"this backup was made by a newer Boxless ({m.get('app_version')}); "
                    "update Boxless, then restore it"
                )
            if fresh is None:
                self.cur.executemany(
                    "INSERT INTO schema_version (component, version, name, applied_at)"
                    " VALUES (?, ?, 'restored', ?)",
                    [(component, v, int(time.time())) for v in range(1, version + 1)],
                )
        return 0

    def _schema(self, value: Any) -> None:
        if not (
            isinstance(value, list) and len(value) == 4 and all(isinstance(v, str) for v in value)
        ):
            raise BackupDamaged("a backup schema record is malformed")
        kind, name, table, sql = value
        _q(name), _q(table)
        match = _CREATE.match(sql)
        if kind not in ("table", "index", "trigger") or match is None:
            raise BackupDamaged(f"the backup's schema for {name} is not a CREATE statement")
        if name in self.fresh:  # device tables are made empty: their rows are not copied
            return
        # one statement only: the driver refuses a second one (an error caught below)
        try:
            self.cur.execute(sql)
        except sqlcipher_errors() as exc:
            raise BackupDamaged(f"the backup's schema for {name} does not apply: {exc}") from None
        self.created.add(name)

    def _rows(self, table: str, columns: list[str], rows: list[list[Any]]) -> int:
        if table == "sqlite_sequence":
            for name, seq in rows:
                self.cur.execute("DELETE FROM sqlite_sequence WHERE name = ?", (name,))
                self.cur.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (name, seq)
                )
            return len(rows)
        if table in DEVICE_TABLES:
            return 0
        if table not in self.created and table not in _FRESH_REPLACED:
            raise BackupDamaged(f"the backup has rows for {table!r} before its schema")
        self.tables.add(table)
        if table == "crypto_megolm_outbound":
            rows = _retire_outbound(columns, rows)
        cols = ", ".join(_q(c) for c in columns)
        marks = ", ".join("?" for _ in columns)
        verb = "INSERT OR REPLACE" if table in _FRESH_REPLACED else "INSERT"
        try:
            self.cur.executemany(
                f"{verb} INTO {_q(table)} ({cols}) VALUES ({marks})",  # noqa: S608
                [tuple(r) for r in rows],
            )
        except sqlcipher_errors() as exc:
            raise BackupDamaged(f"the backup's rows of {table} do not apply: {exc}") from None
        return len(rows)

    def _file(self, value: Any) -> int:
        if not (
            isinstance(value, list)
            and len(value) == 3
            and isinstance(value[0], str)
            and isinstance(value[1], int)
            and isinstance(value[2], bytes)
        ):
            raise BackupDamaged("a backup file record is malformed")
        rel, offset, data = value
        parts = PurePosixPath(rel).parts
        if (
            len(parts) < 2
            or parts[0] != FILES_DIR
            or PurePosixPath(rel).is_absolute()
            or any(p in ("", ".", "..") for p in parts)
            or "\\" in rel
        ):
            raise BackupDamaged(f"the backup names a file outside its folder: {rel[:80]!r}")
        if self._file_sizes.get(rel, 0) != offset:
            raise BackupDamaged(f"the backup's pieces of {rel[:80]!r} are out of order")
        target = self.files_dir.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        if offset == 0:
            self.files += 1
        with open(target, "ab" if offset else "wb") as fh:
            fh.write(data)
        self._file_sizes[rel] = offset + len(data)
        return len(data)

    def finish(self, now: float) -> None:
        """The new device of the restored identity (after local_secret was replaced)."""
        keystore = Keystore(self.db)
        keystore.save_identity(self.identity, now)
        device = Device.create(self.identity, now)
        keystore.save_device(device, now)
        if "devices_rosters" in self.created:
            self._join_roster(device, now)

    def _join_roster(self, device: Device, now: float) -> None:
        """An account with linked devices lists the restored device in its next
        roster (signed here: the phrase gave us the identity key), so contacts
        certify it; the old devices stay listed until revoked."""
        from boxless.client import devices_store
        from boxless.identity.device_certs import DeviceLink

        held = devices_store.get_roster(self.cur, self.identity.public_key)
        if held is None:
            return
        link = DeviceLink.issue(
            self.identity, device.certificate, "Restored device", platform.system(), int(now)
        )
        roster = held.with_device(self.identity, link, int(now))
        devices_store.put_roster(self.cur, roster, int(now * 1000))


def sqlcipher_errors() -> tuple[type[BaseException], ...]:
    import sqlcipher3

    return (sqlcipher3.Error, sqlcipher3.Warning)


def _retire_outbound(columns: list[str], rows: list[list[Any]]) -> list[list[Any]]:
    try:
        ip, ic = columns.index("pickle"), columns.index("current")
    except ValueError:
        return rows
    out = []
    for row in rows:
        row = list(row)
        row[ip], row[ic] = None, 0
        out.append(row)
    return out


def restore_backup(
    path: Path,
    home: Path,
    identity: Identity,
    passphrase: str,
    *,
    replace: bool = False,
    kdf: KdfParams = DEFAULT_KDF,
    progress: Progress | None = None,
    max_total: int | None = None,
    now: float | None = None,
) -> BackupStats:
    """Restore the backup at ``path`` into ``home`` as a new device of ``identity``
    (made from the recovery phrase), with a new database ``passphrase``.

    Raises WrongPhrase, BackupDamaged or BackupError and then writes nothing.
    """
    started = time.perf_counter()
    if account_exists(home) and not replace:
        raise BackupError(
            f"{home} already has an account; restore into a new --home, or pass --replace "
            "to move that account aside and restore over it"
        )
    if not path.is_file():
        raise BackupError(f"there is no backup file at {path}; check the path")
    seed = _seed(identity)
    reader = BackupReader(seed) if max_total is None else BackupReader(seed, max_total=max_total)
    total = path.stat().st_size
    home.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".restore-", dir=home))
    db: UserDB | None = None
    try:
        db = create_user_db(work / USER_DB_NAME, passphrase, kdf=kdf)
        Keystore(db)  # the identity tables, to be filled once the backup checked out
        rows = 0
        with db.transaction() as cur, open(path, "rb") as fh:
            restorer = _Restorer(db, cur, identity, work)
            cur.execute("PRAGMA defer_foreign_keys = ON")
            done = 0
            while chunk := fh.read(256 * 1024):
                for record in reader.feed(chunk):
                    moved = restorer.apply(record)
                    rows += moved if record.kind == RecordKind.ROWS else 0
                done += len(chunk)
                if progress:
                    progress(done, total)
            for record in reader.finish():
                moved = restorer.apply(record)
                rows += moved if record.kind == RecordKind.ROWS else 0
            restorer.finish(time.time() if now is None else now)
        db.close()
        db = None
        _move_into_place(work, home, replace)
    except BaseException:
        if db is not None:
            db.close()
        shutil.rmtree(work, ignore_errors=True)
        raise
    shutil.rmtree(work, ignore_errors=True)
    return BackupStats(
        user_db_path(home),
        len(restorer.tables),
        rows,
        restorer.files,
        total,
        time.perf_counter() - started,
    )


def _move_into_place(work: Path, home: Path, replace: bool) -> None:
    target = user_db_path(home)
    if account_exists(home):
        if not replace:
            raise BackupError(f"{home} got an account while restoring; nothing was restored")
        aside = home / f"replaced-{int(time.time() * 1000)}-{secrets.token_hex(2)}"
        aside.mkdir()
        for p in (target, header_path(target), home / FILES_DIR):
            if p.exists():
                os.replace(p, aside / p.name)
        for side in ("-wal", "-shm"):
            p = target.with_name(target.name + side)
            if p.exists():
                os.replace(p, aside / p.name)
        log.info("the previous account was moved to %s", aside)
    if (work / FILES_DIR).exists():
        if (home / FILES_DIR).exists():
            shutil.rmtree(home / FILES_DIR)
        os.replace(work / FILES_DIR, home / FILES_DIR)
    src = work / USER_DB_NAME
    os.replace(header_path(src), header_path(target))
    os.replace(src, target)
    for side in ("-wal", "-shm"):
        p = src.with_name(src.name + side)
        if p.exists():
            os.replace(p, target.with_name(target.name + side))


def describe(stats: BackupStats) -> str:
    return json.dumps(
        {
            "path": str(stats.path),
            "tables": stats.tables,
            "rows": stats.rows,
            "files": stats.files,
            "bytes": stats.bytes,
            "seconds": round(stats.seconds, 3),
        }
    )
