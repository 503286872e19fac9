"""Test doubles for the crypto layer: a sqlite3 database and an account store.

:class:`SqliteDB` has the transaction semantics of ``boxless.storage.userdb``
(``BEGIN IMMEDIATE`` outermost, savepoints when nested, one lock), on a plain
sqlite3 file, so the crypto tests run on a real database before SQLCipher is
wired in. :class:`Device` bundles one device: its Olm account (pickled in the
same database, like identity/ will), its sealing key, and a SessionManager.
"""

from __future__ import annotations

import base64
import dataclasses
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import vodozemac

from boxless.crypto.interfaces import PlainDeviceBundle
from boxless.crypto.olm_sessions import SessionManager, migration_files
from boxless.crypto.sealed import SealingKeyPair


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _statements(script: str) -> list[str]:
    """Split a migration like UserDB does, with SQLite's own tokenizer."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return statements


class SqliteDB:
    """A sqlite3 file with nested ``transaction()`` blocks, like ``UserDB``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA secure_delete = ON")  # as UserDB does
        self._lock = threading.RLock()
        self._depth = 0

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self._lock:
            cur = self.conn.cursor()
            depth = self._depth
            self.conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT sp{depth}")
            self._depth = depth + 1
            try:
                yield cur
            except BaseException:
                if depth == 0:
                    self.conn.execute("ROLLBACK")
                else:
                    self.conn.execute(f"ROLLBACK TO sp{depth}")
                    self.conn.execute(f"RELEASE sp{depth}")
                raise
            else:
                self.conn.execute("COMMIT" if depth == 0 else f"RELEASE sp{depth}")
            finally:
                self._depth = depth
                cur.close()

    def migrate_crypto(self) -> None:
        """Apply the crypto migrations (what ``UserDB.migrate("crypto", ...)`` does)."""
        with self.transaction() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS test_applied (name TEXT PRIMARY KEY)")
            for entry in migration_files():
                cur.execute("SELECT 1 FROM test_applied WHERE name = ?", (entry.name,))
                if cur.fetchone() is None:
                    for statement in _statements(entry.read_text()):
                        cur.execute(statement)
                    cur.execute("INSERT INTO test_applied (name) VALUES (?)", (entry.name,))


class SqliteAccountStore:
    """The device's Olm account, pickled in a one-row table (identity/ will own this)."""

    def __init__(self, db: SqliteDB, pickle_key: bytes) -> None:
        self._key = pickle_key
        with db.transaction() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS test_account (id INTEGER PRIMARY KEY, pickle TEXT)"
            )

    def create(self, db: SqliteDB, account: vodozemac.Account) -> None:
        with db.transaction() as cur:
            self.save_account(cur, account)

    def load_account(self, cur: Any) -> vodozemac.Account:
        cur.execute("SELECT pickle FROM test_account WHERE id = 1")
        return vodozemac.Account.from_pickle(cur.fetchone()[0], self._key)

    def save_account(self, cur: Any, account: vodozemac.Account) -> None:
        cur.execute(
            "INSERT OR REPLACE INTO test_account (id, pickle) VALUES (1, ?)",
            (account.pickle(self._key),),
        )


class Device:
    """One device: database file, account, sealing key, session manager."""

    def __init__(self, path: Path, *, one_time_keys: int = 5) -> None:
        self.path = path
        self.pickle_key = secrets.token_bytes(32)
        self.identity_key = secrets.token_bytes(32)  # stands in for the Ed25519 identity key
        self.sealing = SealingKeyPair.generate()
        self.db = SqliteDB(path)
        self.db.migrate_crypto()
        self.accounts = SqliteAccountStore(self.db, self.pickle_key)
        account = vodozemac.Account()
        account.generate_one_time_keys(one_time_keys)
        account.generate_fallback_key()  # type: ignore[attr-defined]
        self.accounts.create(self.db, account)
        self.manager = SessionManager(self.db, self.accounts, self.pickle_key)
        self._bundle: PlainDeviceBundle | None = None

    @property
    def curve25519(self) -> bytes:
        return self.account().curve25519_key.to_bytes()

    def account(self) -> vodozemac.Account:
        with self.db.transaction() as cur:
            return self.accounts.load_account(cur)

    def bundle(self, *, with_one_time_key: bool = True) -> PlainDeviceBundle:
        """The bundle a contact code carries: one one-time key + the fallback key.

        Published once (vodozemac lists only unpublished keys), then reused as a
        contact's stored copy would be.
        """
        if self._bundle is None:
            with self.db.transaction() as cur:
                account = self.accounts.load_account(cur)
                otks = list(account.one_time_keys.values())
                fallback = list(account.fallback_key.values())  # type: ignore[attr-defined]
                account.mark_keys_as_published()
                self.accounts.save_account(cur, account)
            self._bundle = PlainDeviceBundle(
                identity_key=self.identity_key,
                curve25519=account.curve25519_key.to_bytes(),
                ed25519=_unb64(account.ed25519_key.to_base64()),
                sealing_key=self.sealing.public_bytes,
                one_time_key=otks[0].to_bytes(),
                fallback_key=fallback[0].to_bytes(),
            )
        if with_one_time_key:
            return self._bundle
        return dataclasses.replace(self._bundle, one_time_key=None)

    def reopen(self) -> None:
        """Simulate a restart: drop every in-memory object, reload from the file."""
        self.db.close()
        self.db = SqliteDB(self.path)
        self.accounts = SqliteAccountStore(self.db, self.pickle_key)
        self.manager = SessionManager(self.db, self.accounts, self.pickle_key)
