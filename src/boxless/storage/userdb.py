"""The user's local database: SQLCipher, keyed from a passphrase with Argon2id.

Theory of operation
-------------------
Two files live side by side: ``user.db`` (SQLCipher 4: every page AES-256
encrypted and HMAC'd, journal/WAL included) and ``user.db.kdf``, a small JSON
header with the Argon2id parameters and the per-install random salt. The
header holds nothing secret; it only lets the same passphrase give the same
key again.

Opening: ``key = Argon2id(NFKC(passphrase), salt, m=64 MiB, t=3, p=1) -> 32
bytes``, handed to SQLCipher as a raw key (``PRAGMA key = "x'<64 hex>'"``, so
SQLCipher does not run its own PBKDF2 on top), then a read of
``sqlite_master`` proves the key: SQLCipher reports a wrong key as "file is not
a database", which becomes :class:`WrongPassphrase`. The key is not kept in
memory after the connection is keyed.

Sub-keys: migration ``core/0001`` stores a random 32-byte ``local_secret``
inside the encrypted pages. :meth:`UserDB.derive_key` derives labelled keys
from it with HKDF-SHA256 (for example the vodozemac pickle keys). Deriving them
from the passphrase instead would turn every stored pickle into garbage on
:meth:`UserDB.change_passphrase`.

Changing the passphrase: the new header is written to ``user.db.kdf.new``,
then ``PRAGMA rekey`` re-encrypts the file, then the new header replaces the
old one. If the process dies between the last two steps, :func:`open_user_db`
finds the ``.new`` header and tries it too, so no crash can lock the user out.

Migrations: each component (``core``, ``identity``, ``crypto``, ...) owns a
numbered set of ``NNNN_name.sql`` files and calls :meth:`UserDB.migrate`; the
``schema_version`` table records ``(component, version)``. Each call runs in
one ``BEGIN IMMEDIATE`` transaction, so a failing file changes nothing.

Durability: WAL with ``synchronous = NORMAL`` (:data:`SYNCHRONOUS`). A
commit has been written to the WAL file (the OS page cache) when
:meth:`UserDB.transaction` returns, so a killed process (kill -9, a crash, an
OOM kill) loses nothing that committed; what is not promised is surviving a
power cut or kernel crash before the next checkpoint fsyncs the WAL (SQLite
then rolls back to an older, consistent commit; never a corrupt file). The
price of ``FULL`` is one fsync per commit, 0.4-6 ms each on our shared test
machine, against ~0.75 ms of CPU for all the rest of an encrypted message's
path (``bench/bench_olm_path.py`` measures both settings), and every message
sent or received commits at least once. What a power cut can cost: the last
few seconds of messages, which the store node serves again (the receive
side's sync point and "processed" marks roll back with them), and, for a
message sent just before the cut, its Olm message key may be used a second
time by the next message (the recipient refuses that one as a duplicate; the
chat outbox sends it again).
Olm ratchet steps are appended to a journal beside the file
(``user.db.ratchets``, :mod:`boxless.crypto.ratchet_journal`); what a power
cut can do to the pair: ``docs/protocols.md``, "The ratchet journal".

Threads: one connection, shared; an ``RLock`` serialises
:meth:`UserDB.transaction` blocks. Nested blocks in the same thread become
savepoints, so an inner failure rolls back only the inner block.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

import sqlcipher3
from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from boxless.errors import StorageError, UsageError

log = logging.getLogger(__name__)

#: A DB-API connection from ``sqlcipher3`` (the package ships no type stubs).
Connection = Any
Cursor = Any

HEADER_SUFFIX = ".kdf"
PENDING_SUFFIX = ".new"
HEADER_FORMAT = "boxless-userdb"
HEADER_VERSION = 1
KEY_BYTES = 32
SALT_BYTES = 16
MIN_PASSPHRASE_CHARS = 8
CORE_COMPONENT = "core"
#: ``PRAGMA synchronous`` for every connection; see "Durability" above.
SYNCHRONOUS = "NORMAL"

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_COMPONENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class WrongPassphrase(UsageError):
    """The passphrase does not open this database."""


class UserDBNotFound(UsageError):
    """There is no user database at the given path."""


class UserDBExists(UsageError):
    """A user database already exists where a new one was to be created."""


class WeakPassphrase(UsageError):
    """A new passphrase is too short to protect the database."""


class UserDBSchemaError(StorageError):
    """Migrations are malformed, or the database is newer than this code."""


@dataclass(frozen=True, slots=True)
class KdfParams:
    """Argon2id cost parameters; the defaults are the ones every install uses.

    Tests pass cheaper ones; the header records whatever was used, so a
    database always opens with the parameters it was created with.
    """

    memory_kib: int = 64 * 1024
    time_cost: int = 3
    parallelism: int = 1

    def __post_init__(self) -> None:
        if self.memory_kib < 8 * self.parallelism or self.time_cost < 1 or self.parallelism < 1:
            raise UsageError(f"invalid Argon2id parameters: {self}")


DEFAULT_KDF = KdfParams()


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file of one component."""

    version: int
    name: str
    sql: str


# ---------------------------------------------------------------- header & key


@dataclass(frozen=True, slots=True)
class _Header:
    salt: bytes
    kdf: KdfParams

    def dumps(self) -> str:
        return json.dumps(
            {
                "format": HEADER_FORMAT,
                "version": HEADER_VERSION,
                "kdf": "argon2id",
                "salt": self.salt.hex(),
                "memory_kib": self.kdf.memory_kib,
                "time_cost": self.kdf.time_cost,
                "parallelism": self.kdf.parallelism,
            },
            indent=2,
        )

    @classmethod
    def load(cls, path: Path) -> _Header:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("format") != HEADER_FORMAT or raw.get("kdf") != "argon2id":
                raise ValueError("not a Boxless key header")
            if raw.get("version") != HEADER_VERSION:
                raise ValueError(f"header version {raw.get('version')} is not supported")
            salt = bytes.fromhex(raw["salt"])
            if len(salt) < SALT_BYTES:
                raise ValueError("salt too short")
            kdf = KdfParams(
                memory_kib=int(raw["memory_kib"]),
                time_cost=int(raw["time_cost"]),
                parallelism=int(raw["parallelism"]),
            )
        except (OSError, ValueError, KeyError, TypeError, UsageError) as exc:
            raise StorageError(f"cannot read the key header {path}: {exc}") from None
        return cls(salt=salt, kdf=kdf)


def header_path(db_path: Path) -> Path:
    """Where the key header of the database at ``db_path`` lives."""
    return db_path.with_name(db_path.name + HEADER_SUFFIX)


def _derive_db_key(passphrase: str, header: _Header) -> bytes:
    secret = unicodedata.normalize("NFKC", passphrase).encode("utf-8")
    return hash_secret_raw(
        secret=secret,
        salt=header.salt,
        time_cost=header.kdf.time_cost,
        memory_cost=header.kdf.memory_kib,
        parallelism=header.kdf.parallelism,
        hash_len=KEY_BYTES,
        type=Type.ID,
    )


def _key_pragma(verb: str, key: bytes) -> str:
    # A raw key: SQLCipher uses it as is (no PBKDF2 of its own). Never logged.
    return f"PRAGMA {verb} = \"x'{key.hex()}'\""


def check_new_passphrase(passphrase: str) -> None:
    """Raise WeakPassphrase if ``passphrase`` is too weak to protect a database."""
    if len(passphrase.strip()) < MIN_PASSPHRASE_CHARS:
        raise WeakPassphrase(
            f"the passphrase must have at least {MIN_PASSPHRASE_CHARS} characters; "
            "a few unrelated words make a good one"
        )


def _connect(path: Path, key: bytes) -> Connection:
    """Open and key a connection; raise WrongPassphrase if the key does not fit."""
    conn = sqlcipher3.connect(str(path), isolation_level=None, check_same_thread=False)
    try:
        # SQLCipher prints its own lines to stderr on a wrong key; our error says it all.
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute(_key_pragma("key", key))
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher3.DatabaseError:
        conn.close()
        raise WrongPassphrase(
            f"the passphrase does not open {path}. Check it and try again (it is "
            "case-sensitive). If it is lost, the database cannot be opened: restore "
            "your account from its recovery phrase into a new home directory."
        ) from None
    return conn


def _configure(conn: Connection) -> None:
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
    conn.execute("PRAGMA secure_delete = ON")


# ----------------------------------------------------------------- migrations


def migration_files(package: str, folder: str = "migrations") -> list[Traversable]:
    """The ``NNNN_name.sql`` files in ``package``'s ``folder`` (package data)."""
    root = resources.files(package).joinpath(folder)
    return [entry for entry in root.iterdir() if _MIGRATION_NAME.match(entry.name)]


def _load(files: Iterable[Traversable], component: str) -> list[Migration]:
    found = []
    for entry in files:
        match = _MIGRATION_NAME.match(entry.name)
        if match is None:
            raise UserDBSchemaError(f"{component}: {entry.name!r} is not NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise UserDBSchemaError(
            f"{component} migrations must be numbered 0001..{len(found):04d} without gaps, "
            f"found {[m.version for m in found]}"
        )
    return found


def _statements(script: str) -> list[str]:
    """Split a script into statements with SQLite's own tokenizer."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlcipher3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    leftover = [ln for ln in buffer.splitlines() if ln.strip() and not ln.strip().startswith("--")]
    if leftover:
        raise UserDBSchemaError(f"incomplete SQL statement at the end of a migration: {buffer!r}")
    return statements


# ---------------------------------------------------------------------- UserDB


class UserDB:
    """An open user database. Use :meth:`transaction` for every read and write.

    ``conn`` is the underlying DB-API connection (autocommit mode; transactions
    are explicit). Prefer :meth:`transaction`, which takes the lock.
    """

    def __init__(self, conn: Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0
        self._local_secret: bytes | None = None
        self._on_commit: list[Callable[[], None]] = []
        #: Counts rollbacks (outermost and savepoints): a cache of rows read in a
        #: transaction is stale once this moved. ``serial`` names the outermost
        #: transaction open now (or the last one).
        self.rollbacks = 0
        self.serial = 0

    def __repr__(self) -> str:
        return f"UserDB(path={str(self.path)!r})"

    # -- lifecycle

    def close(self) -> None:
        """Close the connection. The object is unusable afterwards."""
        with self._lock:
            self.conn.close()
            self._local_secret = None

    def __enter__(self) -> UserDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """Run a block in one transaction; commit on success, roll back on error.

        Thread-safe: blocks from different threads run one after another. A
        block nested in another (same thread) is a savepoint inside it.
        """
        with self._lock:
            cur = self.conn.cursor()
            depth = self._depth
            savepoint = f"sp{depth}"
            self.conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {savepoint}")
            self._depth = depth + 1
            if depth == 0:
                self.serial += 1
                self._on_commit = []
            try:
                yield cur
            except BaseException:
                self.rollbacks += 1
                if depth == 0:
                    self._on_commit = []
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                else:
                    self.conn.execute(f"ROLLBACK TO {savepoint}")
                    self.conn.execute(f"RELEASE {savepoint}")
                raise
            else:
                self.conn.execute("COMMIT" if depth == 0 else f"RELEASE {savepoint}")
            finally:
                self._depth = depth
                cur.close()
            if depth == 0:
                callbacks, self._on_commit = self._on_commit, []
                for callback in callbacks:
                    callback()

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the open outermost transaction commits (still under
        the lock, outside any transaction); forgotten if it rolls back."""
        if self._depth == 0:
            raise UsageError("on_commit needs an open transaction")
        self._on_commit.append(callback)

    # -- migrations

    def migrate(self, component: str, files: Iterable[Traversable]) -> int:
        """Apply ``component``'s pending migration files; return its schema version.

        ``files`` are ``NNNN_name.sql`` files numbered 0001..N without gaps
        (see :func:`migration_files`). A database already at a version newer
        than N is refused: this code does not understand its tables.
        """
        if not _COMPONENT_NAME.match(component):
            raise UsageError(f"invalid migration component name {component!r}")
        migrations = _load(files, component)
        with self.transaction() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " component TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,"
                " applied_at INTEGER NOT NULL, PRIMARY KEY (component, version))"
            )
            cur.execute(
                "SELECT COALESCE(MAX(version), 0) FROM schema_version WHERE component = ?",
                (component,),
            )
            current = int(cur.fetchone()[0])
            if current > len(migrations):
                raise UserDBSchemaError(
                    f"the {component} tables in {self.path} are at schema version {current}, "
                    f"newer than this Boxless understands ({len(migrations)}); upgrade Boxless"
                )
            for migration in migrations[current:]:
                log.info(
                    "applying %s migration %04d_%s", component, migration.version, migration.name
                )
                for statement in _statements(migration.sql):
                    cur.execute(statement)
                cur.execute(
                    "INSERT INTO schema_version (component, version, name, applied_at)"
                    " VALUES (?, ?, ?, ?)",
                    (component, migration.version, migration.name, int(time.time())),
                )
        return len(migrations)

    def schema_version(self, component: str) -> int:
        """The applied schema version of ``component`` (0 if none)."""
        with self.transaction() as cur:
            cur.execute(
                "SELECT COALESCE(MAX(version), 0) FROM schema_version WHERE component = ?",
                (component,),
            )
            return int(cur.fetchone()[0])

    # -- keys

    def derive_key(self, label: str, length: int = KEY_BYTES) -> bytes:
        """A key for ``label`` (e.g. ``"olm pickle v1"``), stable for this database.

        HKDF-SHA256 of the database's random ``local_secret`` with info
        ``b"boxless userdb key: " + label``. Unchanged by a passphrase change.
        """
        with self._lock:
            if self._local_secret is None:
                with self.transaction() as cur:
                    cur.execute("SELECT secret FROM local_secret WHERE id = 1")
                    row = cur.fetchone()
                if row is None:
                    raise StorageError(f"{self.path} has no local secret; it is damaged")
                self._local_secret = bytes(row[0])
            secret = self._local_secret
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=length,
            salt=None,
            info=b"boxless userdb key: " + label.encode("utf-8"),
        )
        return hkdf.derive(secret)

    def change_passphrase(self, old: str, new: str, kdf: KdfParams = DEFAULT_KDF) -> None:
        """Re-encrypt the database under ``new``; ``old`` must be the current one."""
        check_new_passphrase(new)
        hdr_path = header_path(self.path)
        old_key = _derive_db_key(old, _Header.load(hdr_path))
        _connect(self.path, old_key).close()  # raises WrongPassphrase
        new_header = _Header(salt=secrets.token_bytes(SALT_BYTES), kdf=kdf)
        new_key = _derive_db_key(new, new_header)
        pending = hdr_path.with_name(hdr_path.name + PENDING_SUFFIX)
        _write_private(pending, new_header.dumps())
        with self._lock:
            self.conn.execute(_key_pragma("rekey", new_key))
            self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        os.replace(pending, hdr_path)
        log.info("re-encrypted %s under a new passphrase", self.path)


def _write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _core_migrations() -> list[Traversable]:
    return migration_files("boxless.storage")


def create_user_db(path: Path | str, passphrase: str, kdf: KdfParams = DEFAULT_KDF) -> UserDB:
    """Create a new encrypted database at ``path`` (and its key header) and open it."""
    path = Path(path)
    hdr_path = header_path(path)
    if path.exists() or hdr_path.exists():
        raise UserDBExists(
            f"a Boxless database already exists at {path}; open it, or choose another home"
        )
    check_new_passphrase(passphrase)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    header = _Header(salt=secrets.token_bytes(SALT_BYTES), kdf=kdf)
    key = _derive_db_key(passphrase, header)
    _write_private(hdr_path, header.dumps())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    db: UserDB | None = None
    try:
        conn = _connect(path, key)
        db = UserDB(conn, path)
        _configure(conn)
        db.migrate(CORE_COMPONENT, _core_migrations())
        with db.transaction() as cur:
            cur.execute(
                "INSERT INTO local_secret (id, secret) VALUES (1, ?)",
                (secrets.token_bytes(KEY_BYTES),),
            )
    except BaseException:
        if db is not None:
            db.close()
        remove_user_db(path)
        raise
    log.info("created encrypted user database %s", path)
    return db


def open_user_db(path: Path | str, passphrase: str) -> UserDB:
    """Open the encrypted database at ``path``; raise WrongPassphrase if it doesn't fit."""
    path = Path(path)
    hdr_path = header_path(path)
    if not path.is_file() or not hdr_path.is_file():
        raise UserDBNotFound(
            f"no Boxless database at {path}: run `boxless init` first (or pass the right --home)"
        )
    pending = hdr_path.with_name(hdr_path.name + PENDING_SUFFIX)
    try:
        conn = _connect(path, _derive_db_key(passphrase, _Header.load(hdr_path)))
    except WrongPassphrase:
        if not pending.is_file():
            raise
        # A passphrase change was interrupted after the rekey: the new header fits.
        conn = _connect(path, _derive_db_key(passphrase, _Header.load(pending)))
        os.replace(pending, hdr_path)
    else:
        # A passphrase change that never reached its rekey left a stale header.
        pending.unlink(missing_ok=True)
    _configure(conn)
    db = UserDB(conn, path)
    db.migrate(CORE_COMPONENT, _core_migrations())
    return db


def remove_user_db(path: Path | str) -> None:
    """Delete the database and its side files (used to undo a failed creation)."""
    path = Path(path)
    hdr = header_path(path)
    for victim in (
        path,
        path.with_name(path.name + "-wal"),
        path.with_name(path.name + "-shm"),
        path.with_name(path.name + "-journal"),
        hdr,
        hdr.with_name(hdr.name + PENDING_SUFFIX),
    ):
        victim.unlink(missing_ok=True)
