"""Olm 1:1 sessions with remote devices, pickled in the user's database.

Theory of operation
-------------------
Each remote device (named by its Curve25519 identity key) has a short list
of Olm sessions, newest first by ``last_used`` (bumped when a session is
created or decrypts a message). :meth:`SessionManager.encrypt` uses the
newest session that is not retired; with none, it opens an outbound session
from the device's bundle: its one-time key if this device has not used that
key yet, else its fallback key. Until the peer answers, every message on a
new outbound session is a pre-key message, so any of them can start the
session on the other side, in any order.

:meth:`SessionManager.decrypt` routes by message type:

* a pre-key message names its session: an existing session with that id
  decrypts it (a second copy finds its message key gone: :class:`DuplicateMessage`);
  an id we held once and pruned is a replay (:class:`DuplicateMessage`: a
  fallback key is reusable, so without this check a replay would start the
  session again and decrypt twice); otherwise the account creates an inbound
  session, which consumes the one-time key, and the account is saved in the
  same transaction.
* a normal message goes to the session named by its ``session_id`` hint
  (the sealed envelope carries it), or without a hint to each session of that
  device, newest first. vodozemac keeps skipped message keys (up to a gap of
  2000 per chain), so out-of-order delivery just works; a key already used is
  :class:`DuplicateMessage`, a failed MAC :class:`TamperedMessage`, no
  session :class:`UnknownSession`. A failed decrypt changes nothing.

At most :data:`MAX_SESSIONS_PER_DEVICE` sessions are kept per device; the
least recently used go first. Every session id ever held is remembered (a
tiny row) to refuse replays as above.

Persistence and transactions
----------------------------
The database is the only state that counts (with a journal: the database
and its ratchet journal, see "The ratchet journal" below): every call reads the rows it
needs and writes each new pickle back through the cursor of one
``db.transaction()`` block, before it returns (a deferred decrypt, below,
writes at the caller's :meth:`SessionManager.flush`). To commit a decrypt together
with the caller's own "processed" marker, nest it in the caller's
transaction::

    with manager.transaction() as cur:          # = db.transaction()
        plaintext = manager.decrypt(sender_key, ciphertext)  # a savepoint inside
        cur.execute("INSERT INTO processed ...")
    # both committed, or (on any exception in the block) neither: the message
    # will decrypt again when it is re-delivered.

In the caller's transaction: a caller that already holds the transaction's
cursor passes it (``encrypt(..., cur=cur)``, ``decrypt(..., cur=cur)``) and
the step is written through it with no savepoint of its own -- a savepoint
and its release cost a quarter of a commit. That is safe because every
failure of a step (duplicate, forged, unknown session, malformed, unusable
bundle, unreadable pickle) is raised before the step's first write: a caller
that catches it and carries on commits nothing of the failed step.

A kill -9 at any instant therefore leaves each session either before the step
or after it *together with* whatever the caller wrote in that transaction
(``bench/kill9_olm.py`` and ``tests/integration/test_olm_kill9.py`` kill a
ping-pong at random points to check it). How durable a commit is against a
power cut is the database's setting: see :mod:`boxless.storage.userdb`.

Cache: unpickling a session costs about as much as an Olm step, so the
manager keeps the unpickled ``vodozemac.Session`` objects it used last (up to
:data:`MAX_CACHED_SESSIONS`), each next to the exact pickle text it was
loaded from or last saved as. The row read in every call says which pickle is
current; the cached object is used only if its pickle text is *equal* to the
row's, else the row is unpickled. So a rolled-back transaction (the caller's
block failed after a decrypt, or a savepoint was undone) simply leaves a cache
entry that no longer matches its row, and memory can never run ahead of disk.
A step that raises evicts its entry (vodozemac changes nothing on a failed
decrypt, but nothing here depends on that).

Deferred writes (a batch of messages in one transaction): ``decrypt(...,
cur=cur, defer=True)`` keeps the stepped session in memory instead of
pickling and writing it; :meth:`SessionManager.flush` writes every deferred
session through the same cursor, and the caller must call it before the
transaction commits (``client/channel.py``'s receive batch does, so 100
messages of one conversation cost one pickle and one UPDATE instead of 100);
on a rollback the caller calls :meth:`SessionManager.discard`. Each deferred
session remembers the row's pickle it started from and the messages it
decrypted since, so a failed step on it (vodozemac may change a session even
when a decrypt fails) rebuilds it from that pickle by decrypting those
messages again. Only a step that needs no other write is deferred (the
session is already the device's newest); a deferred session used with
another cursor is a :class:`~boxless.crypto.errors.CryptoUsageError` (a
transaction that neither flushed nor discarded), never silently stale.

The ratchet journal
-------------------
With ``SessionManager.journaled(...)`` (what the client uses) a step of an
*existing* session is written to :mod:`boxless.crypto.ratchet_journal`, not to
the table: one record appended with one ``os.write``, as durable against a
kill -9 as a commit (neither fsyncs). The rules, each tested
(``tests/unit/test_olm_journal.py``, ``tests/integration/test_olm_kill9.py``):

* **Sender**: an encrypt's new state is journaled *before* ``encrypt``
  returns, so before the message can leave. If the caller's transaction then
  rolls back, the message key is simply never used (the peer sees a gap).
* **Receiver**: a deferred decrypt's state (``flush``) is journaled only
  *after* the batch's transaction committed, and lazily: it stays in memory
  until the session's next step -- an encrypt (a reply: its own record
  supersedes it), a decrypt (written first) -- a checkpoint or ``close``. A
  kill before that leaves the older state with the message already marked
  processed: Olm derives the same message keys again from it and redoes a lost
  ratchet turn with the same keys, so it still decrypts the peer's later
  messages (its skipped keys include the processed ones; a re-delivered copy
  is stopped by the "seen" mark, as any replay is).
* **Everything else stays in SQLite transactions**: creating a session (with
  the one-time key it consumes), retiring, pruning, a non-deferred decrypt,
  and any step of a session this transaction already wrote or flushed.
  ``version`` (per row and per record) makes the two stores commute: replay
  applies a record only over an older version, so nothing is resurrected and
  no newer table row is rolled back; a record for a row that is gone applies
  to nothing.
* **Open** (in the constructor, outside any transaction): lock the file,
  read the records of the database's current epoch up to the first torn or
  forged one, write the newest state per session into the table and a new
  epoch in one transaction, then cut the file. The same checkpoint runs after
  :data:`CHECKPOINT_RECORDS` records or :data:`CHECKPOINT_BYTES`. A
  checkpoint that fails after committing its epoch closes the journal (every
  later step raises ``JournalClosed`` saying why): a record under the old
  epoch's key would never open again, so a kill would reuse its message key.
* **One writer**: another process gets ``JournalBusy``; a second journaled
  manager of the same file in this process takes it over (the first raises
  ``JournalClosed`` from then on). Nothing else reads the Olm tables'
  pickles (backups and device links leave them out; ``wipe_keys`` deletes the
  rows, which a temp trigger reports here).

Rows cache (journal mode): the device's rows are read once and trusted while
``PRAGMA data_version`` (another connection committed), the database's
rollback count and a temp trigger on ``crypto_olm_sessions`` (this
connection wrote it) are unchanged; the hot path then runs no SELECT.

Threads: each call takes ``db.transaction()`` first, then the manager's one
lock, always in that order (the database's own lock is outermost, so a caller
already inside a transaction cannot deadlock against another thread).

Recovering an unknown session
-----------------------------
When :meth:`decrypt` raises :class:`UnknownSession`, nothing was decrypted
and nothing is marked processed. The chat layer of the *recipient* then:

1. calls :meth:`SessionManager.reset` for that device, which retires its
   sessions for sending (they still decrypt late messages) so that
2. the next :meth:`encrypt` to that device opens a fresh outbound session
   from its bundle (fetch a fresh bundle if the one-time key was used), and
3. sends on it a ``session_reset`` control message: a pre-key message, so
   the sender can read it whatever state it is in.

The sender, on that control, treats every message not yet acknowledged as
undelivered and re-sends it; its next :meth:`encrypt` already uses the new
inbound session, the newest one it has. Since anyone can seal an envelope
claiming to be any device, an unknown-session error is not proof of a
problem: the chat layer rate-limits resets per contact; a reset costs a
session, never a message.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, Final, NamedTuple, Protocol

import vodozemac

from boxless.crypto.errors import (
    CryptoStateError,
    CryptoUsageError,
    DuplicateMessage,
    TamperedMessage,
    UnknownSession,
)
from boxless.crypto.interfaces import (
    AccountStore,
    Cursor,
    DeviceBundle,
    TransactionalDB,
    check_key,
)
from boxless.crypto.ratchet_journal import (
    EPOCH_BYTES,
    JournalClosed,
    RatchetJournal,
    Step,
    journal_path,
)
from boxless.errors import DecodeError

log = logging.getLogger(__name__)

PREKEY_MESSAGE: Final = 0
NORMAL_MESSAGE: Final = 1
MAX_SESSIONS_PER_DEVICE: Final = 5
MAX_CACHED_SESSIONS: Final = 256
MAX_DEFERRED_STEPS: Final = 256
"""Steps one deferred session may take before it is written anyway (bounds a rebuild)."""
PICKLE_KEY_BYTES: Final = 32
MIGRATIONS_COMPONENT: Final = "crypto"
CHECKPOINT_RECORDS: Final = 1000
CHECKPOINT_BYTES: Final = 4 * 1024 * 1024
"""The journal is checkpointed into the table after this many records or bytes."""
JOURNAL_KEY_LABEL: Final = "olm ratchet journal v1"

# vodozemac 0.10.0 reports these failures only through the exception text.
# The version is pinned; test_olm_sessions.py fails loudly if the texts change.
_MISSING_KEY_TEXT: Final = "can't be created"  # message key already used, or too old
_GAP_TEXT: Final = "gap was too big"
_PREKEY_UNDECRYPTABLE_TEXT: Final = "couldn't be decrypted"


@dataclass(frozen=True, slots=True)
class OlmCiphertext:
    """One Olm message: its type (0 pre-key, 1 normal), body and session id hint."""

    type: int
    body: bytes = field(repr=False)
    session_id: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.type not in (PREKEY_MESSAGE, NORMAL_MESSAGE):
            raise CryptoUsageError("an Olm message type is 0 (pre-key) or 1 (normal)")
        if not self.body:
            raise CryptoUsageError("an Olm message body is never empty")

    @property
    def is_prekey(self) -> bool:
        return self.type == PREKEY_MESSAGE


def migration_files() -> list[Traversable]:
    """The crypto component's migration files, for ``db.migrate("crypto", files)``."""
    folder = resources.files("boxless.crypto").joinpath("migrations")
    return sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )


def device_tag(key: bytes) -> str:
    """A short, non-reversible name for a device key, for log lines."""
    return hashlib.sha256(b"boxless log tag\x00" + key).hexdigest()[:8]


class JournalDB(TransactionalDB, Protocol):
    """What the ratchet journal needs of the database: :class:`~boxless.storage.userdb.UserDB`."""

    path: Path
    conn: Any
    serial: int
    rollbacks: int

    def on_commit(self, callback: Any) -> None: ...

    def derive_key(self, label: str) -> bytes: ...


class _Row(NamedTuple):
    session_id: str
    pickle: str
    retired: bool
    last_used: int
    version: int

    def __repr__(self) -> str:
        return f"_Row(session_id=..., retired={self.retired}, last_used={self.last_used})"


@dataclass(slots=True, eq=False)
class _Deferred:
    """A session stepped in an open transaction whose write waits for :meth:`flush`."""

    cur: Cursor  # the transaction it belongs to (kept alive, compared by identity)
    session: vodozemac.Session
    base: str  # the row's pickle: the database's state of this session
    replay: list[vodozemac.AnyOlmMessage]  # decrypted since ``base``, in order
    base_version: int = 0  # the stored version ``base`` has


@dataclass(slots=True, eq=False)
class _Pending:
    """A flushed step waiting for its transaction's commit to be journaled."""

    serial: int  # the outermost transaction it belongs to
    rollbacks: int  # the database's rollback count when it was flushed
    version: int
    session: vodozemac.Session


class SessionManager:
    """This device's Olm sessions with every remote device. See the module docstring."""

    def __init__(
        self,
        db: TransactionalDB,
        accounts: AccountStore,
        pickle_key: bytes,
        *,
        journal: RatchetJournal | None = None,
    ) -> None:
        """``journal``: write existing sessions' steps there (see "The ratchet
        journal"); ``db`` must then be a :class:`JournalDB` and no transaction open.
        The journal is opened, replayed into the table and restarted here."""
        if not isinstance(pickle_key, bytes) or len(pickle_key) != PICKLE_KEY_BYTES:
            raise CryptoUsageError(f"the pickle key must be {PICKLE_KEY_BYTES} bytes")
        self._db = db
        self._accounts = accounts
        self._pickle_key = pickle_key
        self._lock = threading.Lock()
        # (remote key, session id) -> (pickle text, the session it unpickles to),
        # least recently saved first. See "Cache" in the module docstring.
        self._cache: OrderedDict[tuple[bytes, str], tuple[str, vodozemac.Session]] = OrderedDict()
        # (remote key, session id) -> a step not yet written: see "Deferred writes".
        self._deferred: dict[tuple[bytes, str], _Deferred] = {}
        # The ratchet journal's state (see "The ratchet journal"):
        self._journal = journal
        self._jdb: JournalDB | None = None
        # (remote key, session id) -> (version, pickle) journaled since the checkpoint
        self._latest: dict[tuple[bytes, str], tuple[int, str]] = {}
        # flushed steps waiting for their transaction's commit
        self._pending: dict[tuple[bytes, str], _Pending] = {}
        # received steps committed but not yet journaled: (version, session)
        self._unjournaled: dict[tuple[bytes, str], tuple[int, vodozemac.Session]] = {}
        # sessions written to the table in the open transaction (serial, keys)
        self._touched: tuple[int, set[tuple[bytes, str]]] = (-1, set())
        self._hooked = -1  # the transaction _after_commit is registered with
        self._hooked_delete = -1  # the transaction _after_delete is registered with
        # remote key -> its rows, trusted while _rows_stamp holds (see "Rows cache")
        self._rows_cache: dict[bytes, list[_Row]] = {}
        self._rows_stamp: tuple[int, int, int] | None = None
        self._table_writes = 0  # bumped by a temp trigger on crypto_olm_sessions
        if journal is not None:
            self._open_journal(db)  # type: ignore[arg-type]

    @classmethod
    def journaled(cls, db: JournalDB, accounts: AccountStore, pickle_key: bytes) -> SessionManager:
        """A manager with its ratchet journal beside ``db``'s file (what the client uses)."""
        journal = RatchetJournal(journal_path(db.path), db.derive_key(JOURNAL_KEY_LABEL))
        return cls(db, accounts, pickle_key, journal=journal)

    def __repr__(self) -> str:
        return f"<SessionManager at {id(self):#x}>"

    # -- public API

    def transaction(self) -> AbstractContextManager[Cursor]:
        """The database's transaction: wrap a :meth:`decrypt` and your own writes in it."""
        return self._db.transaction()

    def encrypt(
        self, remote: DeviceBundle, plaintext: bytes, *, cur: Cursor | None = None
    ) -> OlmCiphertext:
        """Encrypt ``plaintext`` for ``remote``, opening a session from its bundle if needed.

        ``cur``: the cursor of the caller's open transaction, to write the step
        through it with no savepoint of its own (see "In the caller's
        transaction" in the module docstring); without it, a transaction of its own.
        """
        remote_key = check_key("remote device key", remote.curve25519)
        if cur is not None:
            with self._lock:
                return self._encrypt(cur, remote, remote_key, plaintext)
        # The two hot paths take the transaction and lock inline (see _locked).
        with self._db.transaction() as own, self._lock:
            return self._encrypt(own, remote, remote_key, plaintext)

    def decrypt(
        self,
        sender_key: bytes,
        ciphertext: OlmCiphertext,
        *,
        cur: Cursor | None = None,
        defer: bool = False,
    ) -> bytes:
        """Decrypt a message from the device whose Curve25519 key is ``sender_key``.

        Raises :class:`DuplicateMessage`, :class:`TamperedMessage`,
        :class:`UnknownSession` or :class:`~boxless.errors.DecodeError`; after
        any of them the stored state is as it was (nothing was written). ``cur``:
        as for :meth:`encrypt`. ``defer`` (with ``cur``): the step may wait for
        :meth:`flush` (see "Deferred writes" in the module docstring).
        """
        remote_key = check_key("sender device key", sender_key)
        if cur is not None:
            with self._lock:
                return self._decrypt(cur, remote_key, ciphertext, defer)
        if defer:
            raise CryptoUsageError("a deferred decrypt needs the caller's transaction cursor")
        with self._db.transaction() as own, self._lock:
            return self._decrypt(own, remote_key, ciphertext, False)

    def flush(self, cur: Cursor) -> None:
        """Write every deferred step through ``cur``; call it before the transaction commits.

        With a journal the steps are journaled once the transaction committed
        (see "The ratchet journal"); until then this transaction sees them.
        """
        with self._lock:
            deferred, self._deferred = self._deferred, {}
            for (remote_key, session_id), entry in deferred.items():
                if entry.cur is not cur:
                    raise CryptoUsageError("deferred Olm steps of another transaction")
                version = entry.base_version + 1
                if self._jdb is not None:
                    self._pending[(remote_key, session_id)] = _Pending(
                        self._jdb.serial, self._jdb.rollbacks, version, entry.session
                    )
                    self._hook_commit()
                    continue
                pickle = entry.session.pickle(self._pickle_key)
                cur.execute(
                    "UPDATE crypto_olm_sessions SET pickle = ?, version = ?"
                    " WHERE remote_key = ? AND session_id = ?",
                    (pickle, version, remote_key, session_id),
                )
                self._checkin(remote_key, entry.session, pickle)

    def discard(self) -> None:
        """Forget every deferred step: their transaction rolled back."""
        with self._lock:
            self._deferred.clear()
            self._pending.clear()

    def close(self) -> None:
        """Journal the received steps still in memory and release the journal (its
        file stays: the next open replays it)."""
        if self._journal is not None and not self._journal.closed:
            with self._lock:
                self._write_unjournaled(list(self._unjournaled))
            self._journal.close()

    def reset(self, remote_key: bytes) -> None:
        """Stop sending on every session with this device; the next encrypt opens a new one.

        The retired sessions still decrypt messages already in flight until
        they are pruned, so a reset never loses a message.
        """
        check_key("remote device key", remote_key)
        with self._locked() as cur:
            cur.execute(
                "UPDATE crypto_olm_sessions SET retired = 1 WHERE remote_key = ?", (remote_key,)
            )
        log.info("olm sessions with device %s reset", device_tag(remote_key))

    def has_session(self, remote_key: bytes) -> bool:
        """True if :meth:`encrypt` to this device would reuse a session (no bundle needed)."""
        check_key("remote device key", remote_key)
        with self._locked() as cur:
            return any(not row.retired for row in self._rows(cur, remote_key))

    def session_ids(self, remote_key: bytes) -> list[str]:
        """Ids of the sessions kept with this device, newest first (retired included)."""
        check_key("remote device key", remote_key)
        with self._locked() as cur:
            return [row.session_id for row in self._rows(cur, remote_key)]

    # -- the steps (each raises before its first write, or not at all)

    def _encrypt(
        self, cur: Cursor, remote: DeviceBundle, remote_key: bytes, plaintext: bytes
    ) -> OlmCiphertext:
        rows = self._rows(cur, remote_key)
        if self._jdb is not None and rows and not rows[0].retired:
            fast = self._encrypt_journaled(remote_key, rows[0], plaintext)
            if fast is not None:
                return fast
        live = [row for row in rows if not row.retired]
        if live:
            session = self._checkout(cur, remote_key, live[0], encrypt=True)
            message = session.encrypt(plaintext)
            self._save(cur, remote_key, session, rows, touch=False, journal=True)
        else:
            session = self._create_outbound(cur, remote)
            message = session.encrypt(plaintext)
            self._insert(cur, remote_key, session, rows)
        msg_type, body = message.to_parts()
        return OlmCiphertext(msg_type, body, session.session_id)

    def _encrypt_journaled(
        self, remote_key: bytes, row: _Row, plaintext: bytes
    ) -> OlmCiphertext | None:
        """The steady state's encrypt, inline: the newest session, no other step of
        it in this transaction, its step journaled before the message exists for
        the caller. ``None``: not that case (the general path takes it)."""
        key = (remote_key, row.session_id)
        if key in self._deferred or key in self._pending:
            return None
        serial, touched = self._touched
        if key in touched and serial == self._jdb.serial:  # type: ignore[union-attr]
            return None
        unjournaled = self._unjournaled.pop(key, None)
        if unjournaled is not None:
            version, session = unjournaled
        else:
            version, _pickle, session = self._durable(key, row)
        message = session.encrypt(plaintext)
        pickle = session.pickle(self._pickle_key)
        version += 1
        try:
            self._journal.append_one(remote_key, row.session_id, version, pickle)  # type: ignore[union-attr]
        except OSError as exc:  # the session stays out of memory: its older state counts
            raise CryptoStateError(
                f"the ratchet journal could not be written ({exc.strerror or exc}): "
                "free some disk space; nothing was sent"
            ) from None
        self._latest[key] = (version, pickle)
        self._checkin(remote_key, session, pickle)
        if self._checkpoint_due():
            self._hook_commit()
        msg_type, body = message.to_parts()
        return OlmCiphertext(msg_type, body, row.session_id)

    def _durable(self, key: tuple[bytes, str], row: _Row) -> tuple[int, str, vodozemac.Session]:
        """The durable state of ``row``'s session (its row, or newer in the journal)
        as (version, pickle, session): the cached object if it is that state (it
        leaves the cache), else unpickled."""
        version, pickle = row.version, row.pickle
        latest = self._latest.get(key)
        if latest is not None and latest[0] > version:
            version, pickle = latest
        cached = self._cache.pop(key, None)
        if cached is not None and cached[0] == pickle:
            return version, pickle, cached[1]
        return version, pickle, self._unpickle(pickle)

    def _decrypt(
        self, cur: Cursor, remote_key: bytes, ciphertext: OlmCiphertext, defer: bool
    ) -> bytes:
        if ciphertext.is_prekey:
            return self._decrypt_prekey(cur, remote_key, ciphertext.body)
        if defer and self._jdb is not None and ciphertext.session_id:
            fast = self._decrypt_journaled(cur, remote_key, ciphertext)
            if fast is not None:
                return fast
        return self._decrypt_normal(cur, remote_key, ciphertext, defer)

    def _decrypt_journaled(
        self, cur: Cursor, remote_key: bytes, ciphertext: OlmCiphertext
    ) -> bytes | None:
        """The steady state's deferred decrypt, inline: the message names the
        device's newest session, which holds no other step in memory. ``None``:
        not that case (the general path takes it). A failure leaves nothing in
        memory (the session is out of the cache), so nothing can run ahead."""
        rows = self._rows(cur, remote_key)
        if not rows or rows[0].session_id != ciphertext.session_id:
            return None
        row = rows[0]
        key = (remote_key, row.session_id)
        if key in self._deferred or key in self._pending or key in self._unjournaled:
            return None
        serial, touched = self._touched
        if key in touched and serial == self._jdb.serial:  # type: ignore[union-attr]
            return None
        try:
            message = vodozemac.AnyOlmMessage.from_parts(NORMAL_MESSAGE, ciphertext.body)
        except vodozemac.DecodeException:
            raise DecodeError("malformed Olm message") from None
        version, pickle, session = self._durable(key, row)
        plaintext = self._session_decrypt(session, message)
        self._deferred[key] = _Deferred(cur, session, pickle, [message], version)
        return plaintext

    def _decrypt_prekey(self, cur: Cursor, remote_key: bytes, body: bytes) -> bytes:
        try:
            message = vodozemac.AnyOlmMessage.from_parts(PREKEY_MESSAGE, body).to_pre_key()
        except vodozemac.DecodeException:
            raise DecodeError("malformed Olm pre-key message") from None
        if message is None:  # pragma: no cover - from_parts(0, ...) is always pre-key
            raise DecodeError("malformed Olm pre-key message")
        session_id = message.session_id()
        rows = self._rows(cur, remote_key)
        row = _find(rows, session_id)
        if row is not None:
            session = self._checkout(cur, remote_key, row)
            if not session.session_matches(message):
                raise TamperedMessage("pre-key message does not match the session it names")
            plaintext = self._step(remote_key, session, message.to_any())
            self._save(cur, remote_key, session, rows)
            return plaintext
        if self._known(cur, remote_key, session_id):
            raise DuplicateMessage("pre-key message for a session already used and pruned")
        account = self._accounts.load_account(cur)
        try:
            session, plaintext = account.create_inbound_session(
                vodozemac.Curve25519PublicKey.from_bytes(remote_key), message
            )
        except vodozemac.SessionCreationException as exc:
            if _PREKEY_UNDECRYPTABLE_TEXT in str(exc):
                raise TamperedMessage("pre-key message failed authentication") from None
            raise UnknownSession(
                "pre-key message cannot start a session here: its one-time key is "
                "unknown or already used, or it is not from the device it claims"
            ) from None
        self._insert(cur, remote_key, session, rows)
        self._accounts.save_account(cur, account)
        log.debug("inbound olm session from device %s", device_tag(remote_key))
        return plaintext

    def _decrypt_normal(
        self, cur: Cursor, remote_key: bytes, ciphertext: OlmCiphertext, defer: bool
    ) -> bytes:
        try:
            message = vodozemac.AnyOlmMessage.from_parts(NORMAL_MESSAGE, ciphertext.body)
        except vodozemac.DecodeException:
            raise DecodeError("malformed Olm message") from None
        rows = self._rows(cur, remote_key)
        if ciphertext.session_id:
            row = _find(rows, ciphertext.session_id)
            if row is None:
                raise UnknownSession("message for an Olm session this device does not have")
            candidates = [row]
        else:
            candidates = rows
            if not candidates:
                raise UnknownSession("message from a device this device has no session with")
        duplicate = False
        for row in candidates:
            session = self._checkout(cur, remote_key, row)
            try:
                plaintext = self._step(remote_key, session, message)
            except DuplicateMessage:
                duplicate = True
                continue
            except (TamperedMessage, UnknownSession):
                if ciphertext.session_id:
                    raise
                continue  # without a hint, a failure may just mean "not this session"
            if (
                defer
                and rows[0].session_id == row.session_id
                and self._pending_here((remote_key, row.session_id)) is None
            ):
                self._defer(cur, remote_key, session, row, message)
            else:
                self._save(cur, remote_key, session, rows)
            return plaintext
        if duplicate:
            raise DuplicateMessage("Olm message already decrypted")
        raise UnknownSession("no Olm session with this device can decrypt the message")

    def _step(
        self, remote_key: bytes, session: vodozemac.Session, message: vodozemac.AnyOlmMessage
    ) -> bytes:
        """Decrypt with ``session``; if it fails on a deferred session, rebuild that
        session (a failed decrypt may have changed it) before raising."""
        try:
            return self._session_decrypt(session, message)
        except (DuplicateMessage, TamperedMessage, UnknownSession, DecodeError):
            key = (remote_key, session.session_id)
            entry = self._deferred.get(key)
            if entry is not None and entry.session is session:
                entry.session = self._rebuild(entry)
            raise

    def _rebuild(self, entry: _Deferred) -> vodozemac.Session:
        """The deferred session as it was before its failed step: its row's pickle
        and the messages it decrypted since (they decrypt again: same keys)."""
        session = self._unpickle(entry.base)
        for message in entry.replay:
            session.decrypt(message)
        return session

    def _defer(
        self,
        cur: Cursor,
        remote_key: bytes,
        session: vodozemac.Session,
        row: _Row,
        message: vodozemac.AnyOlmMessage,
    ) -> None:
        """Keep a decrypt's step for :meth:`flush` (written now past MAX_DEFERRED_STEPS)."""
        key = (remote_key, row.session_id)
        entry = self._deferred.get(key)
        if entry is None:
            version, pickle = self._stored(remote_key, row)
            entry = self._deferred[key] = _Deferred(cur, session, pickle, [], version)
        entry.replay.append(message)
        if len(entry.replay) >= MAX_DEFERRED_STEPS:
            del self._deferred[key]
            self._save(cur, remote_key, session, [row])

    @staticmethod
    def _session_decrypt(session: vodozemac.Session, message: vodozemac.AnyOlmMessage) -> bytes:
        try:
            return session.decrypt(message)
        except vodozemac.OlmDecryptionException as exc:
            text = str(exc)
        except vodozemac.DecodeException:
            raise DecodeError("malformed Olm message") from None
        if _MISSING_KEY_TEXT in text:
            raise DuplicateMessage("Olm message already decrypted") from None
        if _GAP_TEXT in text:
            raise UnknownSession(
                "Olm message is more than 2000 messages ahead of the last one received"
            ) from None
        raise TamperedMessage(
            "Olm message failed authentication (altered, forged, or from a chain "
            "too old to remember)"
        ) from None

    # -- outbound

    def _create_outbound(self, cur: Cursor, remote: DeviceBundle) -> vodozemac.Session:
        """A new outbound session; the one-time key is marked used only once the
        session exists (every failure raises before the first write)."""
        remote_key = remote.curve25519
        prekey: bytes | None = None
        fresh_otk = False
        if remote.one_time_key is not None:
            otk = check_key("one-time key", remote.one_time_key)
            cur.execute(
                "SELECT 1 FROM crypto_olm_used_one_time_keys"
                " WHERE remote_key = ? AND one_time_key = ?",
                (remote_key, otk),
            )
            if cur.fetchone() is None:
                prekey, fresh_otk = otk, True
        if prekey is None and remote.fallback_key is not None:
            prekey = check_key("fallback key", remote.fallback_key)
        if prekey is None:
            raise CryptoUsageError(
                "the bundle's one-time key was already used and it has no fallback key: "
                "fetch a fresh bundle for this device"
            )
        account = self._accounts.load_account(cur)
        try:
            session = account.create_outbound_session(
                vodozemac.Curve25519PublicKey.from_bytes(remote_key),
                vodozemac.Curve25519PublicKey.from_bytes(prekey),
            )
        except vodozemac.KeyException:
            raise CryptoUsageError("the device bundle holds an unusable Curve25519 key") from None
        if fresh_otk:
            cur.execute(
                "INSERT INTO crypto_olm_used_one_time_keys (remote_key, one_time_key)"
                " VALUES (?, ?)",
                (remote_key, prekey),
            )
        log.debug("outbound olm session to device %s", device_tag(remote_key))
        return session

    # -- the ratchet journal (see "The ratchet journal" in the module docstring)

    def _open_journal(self, db: JournalDB) -> None:
        """Lock and replay the journal into the table, then start a new epoch."""
        assert self._journal is not None
        if db.conn.in_transaction:
            raise CryptoUsageError("open a journaled SessionManager outside a transaction")
        with db.transaction() as cur:
            cur.execute("SELECT epoch FROM crypto_olm_journal WHERE id = 1")
            row = cur.fetchone()
        steps = self._journal.open(None if row is None else bytes(row[0]))
        self._jdb = db
        for step in steps:  # the last record of each session wins (versions only grow)
            self._latest[(step.remote_key, step.session_id)] = (step.version, step.pickle)
        conn = db.conn
        conn.create_function("boxless_olm_rows_written", 1, self._rows_written)
        for verb in ("INSERT", "UPDATE", "DELETE"):
            conn.execute(
                f"CREATE TEMP TRIGGER IF NOT EXISTS boxless_olm_rows_{verb.lower()}"
                f" AFTER {verb} ON main.crypto_olm_sessions"
                f" BEGIN SELECT boxless_olm_rows_written({int(verb == 'DELETE')}); END"
            )
        with self._lock:
            self._checkpoint()
        if steps:
            log.info("ratchet journal: %d steps replayed into the table", len(steps))

    def _rows_written(self, deleted: int) -> None:
        """The temp trigger: some code of this connection wrote crypto_olm_sessions.

        A deleted row (pruned, or every key wiped from a revoked device) makes
        the journal checkpointed once the transaction commits, so the file keeps
        no state of a session the table no longer has."""
        self._table_writes += 1
        if self._table_writes % 2**30 == 0:  # keep it a small int
            self._table_writes = 1
        if deleted and self._jdb is not None and self._hooked_delete != self._jdb.serial:
            self._hooked_delete = self._jdb.serial
            self._jdb.on_commit(self._after_delete)

    def _after_delete(self) -> None:
        with self._lock:
            if self._journal is not None and not self._journal.closed:
                self._checkpoint_logged()

    def _checkpoint(self) -> None:
        """Write every journaled state into the table and start a new epoch, in a
        transaction of its own (no other statement may share it: the journal is
        cut after its commit). Lock held; no transaction open."""
        assert self._jdb is not None and self._journal is not None
        epoch = os.urandom(EPOCH_BYTES)
        for key, (version, session) in self._unjournaled.items():  # committed states
            pickle = session.pickle(self._pickle_key)
            self._latest[key] = (version, pickle)
            self._checkin(key[0], session, pickle)
        self._unjournaled.clear()
        with self._jdb.transaction() as cur:
            cur.executemany(
                "UPDATE crypto_olm_sessions SET pickle = ?, version = ?"
                " WHERE remote_key = ? AND session_id = ? AND version < ?",
                [
                    (pickle, version, remote_key, session_id, version)
                    for (remote_key, session_id), (version, pickle) in self._latest.items()
                ],
            )
            cur.execute(
                "INSERT INTO crypto_olm_journal (id, epoch) VALUES (1, ?)"
                " ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch",
                (epoch,),
            )
        # Committed: the file's records are now older than the table (and their
        # epoch is gone, so they never apply again). Make the commit reach the
        # disk before the records go (a power cut must not lose both), then cut.
        # If that fails the journal must not go on under the old epoch's key:
        # its records would never open again (the database names the new
        # epoch), so a step written there would be lost at a kill and its
        # message key used twice. It refuses every later step instead.
        try:
            _fsync_file(Path(str(self._jdb.path) + "-wal"))
            self._journal.restart(epoch)
        except OSError as exc:
            why = (
                f"the ratchet journal could not be checkpointed ({exc.strerror or exc}): "
                "nothing more can be sent or received safely; check the disk and restart "
                "Boxless"
            )
            self._journal.close(why)
            raise JournalClosed(why) from None
        self._latest.clear()

    def _stored(self, remote_key: bytes, row: _Row) -> tuple[int, str]:
        """The session's durable state: its row, or a newer journaled state."""
        latest = self._latest.get((remote_key, row.session_id))
        if latest is not None and latest[0] > row.version:
            return latest
        return row.version, row.pickle

    def _next_version(self, remote_key: bytes, row: _Row) -> int:
        key = (remote_key, row.session_id)
        version = self._stored(remote_key, row)[0]
        pending = self._pending_here(key)
        if pending is not None:
            version = max(version, pending.version)
        unjournaled = self._unjournaled.get(key)
        if unjournaled is not None:
            version = max(version, unjournaled[0])
        return version + 1

    def _pending_here(self, key: tuple[bytes, str]) -> _Pending | None:
        """The step of ``key`` flushed in the open transaction, if any."""
        pending = self._pending.get(key)
        if pending is None or self._jdb is None or pending.serial != self._jdb.serial:
            return None
        return pending

    def _touch(self, key: tuple[bytes, str]) -> None:
        """``key``'s row was written in the open transaction."""
        if self._jdb is None:
            return
        serial, keys = self._touched
        if serial != self._jdb.serial:
            self._touched = (self._jdb.serial, {key})
        else:
            keys.add(key)

    def _touched_here(self, key: tuple[bytes, str]) -> bool:
        assert self._jdb is not None or not self._touched[1]
        return (
            self._jdb is not None
            and self._touched[0] == self._jdb.serial
            and (key in self._touched[1])
        )

    def _hook_commit(self) -> None:
        assert self._jdb is not None
        if self._hooked != self._jdb.serial:
            self._hooked = self._jdb.serial
            self._jdb.on_commit(self._after_commit)

    def _append_now(self, step: Step, session: vodozemac.Session) -> None:
        """An encrypt's step, journaled before its message can leave."""
        assert self._journal is not None
        key = (step.remote_key, step.session_id)
        self._unjournaled.pop(key, None)  # superseded (or, on failure, dropped: older state)
        try:
            self._journal.append([step])
        except OSError as exc:
            raise CryptoStateError(
                f"the ratchet journal could not be written ({exc.strerror or exc}): "
                "free some disk space; nothing was sent"
            ) from None
        self._latest[key] = (step.version, step.pickle)
        self._checkin(step.remote_key, session, step.pickle)
        if self._checkpoint_due():
            self._hook_commit()  # the checkpoint, once this transaction ends

    def _after_commit(self) -> None:
        """Journal the steps the committed transaction flushed; checkpoint if due.

        A kill before the append leaves each session at its older state, which
        still decrypts the peer's later messages (module docstring); so does a
        failed append, which only logs."""
        assert self._jdb is not None and self._journal is not None
        with self._lock:
            serial = self._jdb.serial
            mine = [(k, p) for k, p in self._pending.items() if p.serial == serial]
            for key, _pending in mine:
                del self._pending[key]
            for key, pending in mine:
                # a savepoint rolled back after the flush may have undone what the
                # step must commit with: keep the older state then
                if pending.rollbacks == self._jdb.rollbacks:
                    self._unjournaled[key] = (pending.version, pending.session)
            if len(self._unjournaled) > MAX_CACHED_SESSIONS:
                self._write_unjournaled(list(self._unjournaled))
            if self._checkpoint_due():
                self._checkpoint_logged()

    def _checkpoint_logged(self) -> None:
        """:meth:`_checkpoint` from a commit callback, which must not raise (the
        transaction committed; later callbacks must run): a failure is logged,
        and a journal it closed refuses every later step with the reason."""
        try:
            self._checkpoint()
        except Exception as exc:  # see above; a database error included
            log.error("ratchet journal checkpoint failed: %s", exc)

    def _write_unjournaled(self, keys: list[tuple[bytes, str]]) -> None:
        """Journal these committed received steps now (lock held). On failure they
        are forgotten: the sessions fall back to their older, journaled states."""
        assert self._journal is not None
        taken = [(key, self._unjournaled.pop(key)) for key in keys]
        if not taken:
            return
        pickles = [session.pickle(self._pickle_key) for _key, (_v, session) in taken]
        steps = [
            Step(key[0], key[1], version, pickle)
            for (key, (version, _s)), pickle in zip(taken, pickles, strict=True)
        ]
        try:
            self._journal.append(steps)
        except (OSError, JournalClosed) as exc:
            log.warning("ratchet journal append failed (older states kept): %s", exc)
            for key, _entry in taken:
                self._cache.pop(key, None)
            return
        for step, (_key, (_version, session)) in zip(steps, taken, strict=True):
            self._latest[_key] = (step.version, step.pickle)
            self._checkin(step.remote_key, session, step.pickle)

    def _checkpoint_due(self) -> bool:
        journal = self._journal
        assert journal is not None
        return not journal.closed and (
            journal.records >= CHECKPOINT_RECORDS or journal.size >= CHECKPOINT_BYTES
        )

    # -- storage

    @contextmanager
    def _locked(self) -> Iterator[Cursor]:
        # Database transaction first, then the lock: see "Threads" above.
        with self._db.transaction() as cur, self._lock:
            yield cur

    def _checkout(
        self, cur: Cursor, remote_key: bytes, row: _Row, *, encrypt: bool = False
    ) -> vodozemac.Session:
        """The session stored in ``row``: its deferred step of this transaction, or
        the cached object if it matches the row, else unpickled.

        The entry leaves the cache: only :meth:`_save`, :meth:`_insert` and
        :meth:`flush` put a session back, after its new pickle is written. A
        step that raises on the way leaves nothing behind that could run ahead
        of the database. A deferred session stays deferred until it is saved
        (:meth:`_save` drops the entry) or flushed.
        """
        key = (remote_key, row.session_id)
        unjournaled = self._unjournaled.get(key)
        if unjournaled is not None:
            if encrypt:  # its step will supersede the received one
                return unjournaled[1]
            self._write_unjournaled([key])  # a decrypt starts from a journaled state
        _version, pickle = self._stored(remote_key, row)
        entry = self._deferred.get(key)
        if entry is not None:
            if entry.cur is not cur or entry.base != pickle:
                raise CryptoUsageError(
                    "an Olm session has a deferred step of another transaction: "
                    "flush() before its commit or discard() after its rollback"
                )
            return entry.session
        pending = self._pending_here(key)
        if pending is not None:
            return pending.session  # flushed in this transaction, not yet journaled
        cached = self._cache.pop(key, None)
        if cached is not None and cached[0] == pickle:
            return cached[1]
        return self._unpickle(pickle)

    def _unpickle(self, pickle: str) -> vodozemac.Session:
        try:
            return vodozemac.Session.from_pickle(pickle, self._pickle_key)
        except vodozemac.PickleException:
            raise CryptoStateError(
                "a stored Olm session cannot be unpickled (wrong pickle key or corrupted row)"
            ) from None

    def _checkin(self, remote_key: bytes, session: vodozemac.Session, pickle: str) -> None:
        self._cache[(remote_key, session.session_id)] = (pickle, session)
        while len(self._cache) > MAX_CACHED_SESSIONS:
            del self._cache[next(iter(self._cache))]  # the least recently saved

    def _rows(self, cur: Cursor, remote_key: bytes) -> list[_Row]:
        """Every session row with this device, newest first (at most a handful).

        With a journal, from the rows cache while it can be trusted ("Rows cache").
        """
        if self._jdb is not None:
            if self._journal is None or self._journal.closed:
                raise JournalClosed(
                    (self._journal and self._journal.closed_why)
                    or "this SessionManager's ratchet journal was closed or taken over by "
                    "a newer SessionManager of the same account: use that one"
                )
            cur.execute("PRAGMA data_version")
            stamp = (int(cur.fetchone()[0]), self._jdb.rollbacks, self._table_writes)
            if stamp != self._rows_stamp:
                self._rows_cache.clear()
                self._rows_stamp = stamp
            else:
                hit = self._rows_cache.get(remote_key)
                if hit is not None:
                    return hit
        cur.execute(
            "SELECT session_id, pickle, retired, last_used, version FROM crypto_olm_sessions"
            " WHERE remote_key = ? ORDER BY last_used DESC",
            (remote_key,),
        )
        rows = [
            _Row(sid, pickle, bool(retired), used, version)
            for sid, pickle, retired, used, version in cur
        ]
        if self._jdb is not None:
            if len(self._rows_cache) >= MAX_CACHED_SESSIONS:
                self._rows_cache.clear()
            self._rows_cache[remote_key] = rows
        return rows

    def _known(self, cur: Cursor, remote_key: bytes, session_id: str) -> bool:
        cur.execute(
            "SELECT 1 FROM crypto_olm_known_sessions WHERE remote_key = ? AND session_id = ?",
            (remote_key, session_id),
        )
        return cur.fetchone() is not None

    def _insert(
        self, cur: Cursor, remote_key: bytes, session: vodozemac.Session, rows: list[_Row]
    ) -> None:
        """Store a new session as the newest of this device's (``rows``: the current ones)."""
        session_id = session.session_id
        pickle = session.pickle(self._pickle_key)
        cur.execute(
            "INSERT INTO crypto_olm_sessions (remote_key, session_id, pickle, last_used, version)"
            " VALUES (?, ?, ?, ?, 1)",
            (remote_key, session_id, pickle, _next_use(rows)),
        )
        self._touch((remote_key, session_id))
        cur.execute(
            "INSERT OR IGNORE INTO crypto_olm_known_sessions (remote_key, session_id)"
            " VALUES (?, ?)",
            (remote_key, session_id),
        )
        self._prune(cur, remote_key)
        self._checkin(remote_key, session, pickle)

    def _save(
        self,
        cur: Cursor,
        remote_key: bytes,
        session: vodozemac.Session,
        rows: list[_Row],
        *,
        touch: bool = True,
        journal: bool = False,
    ) -> None:
        """Write a stepped session back; with ``touch`` (it decrypted) it becomes the newest.

        ``rows`` are this device's rows as read in this call, newest first:
        ``last_used`` only orders sessions of one device, so it changes only
        when another session was newer (never in a steady conversation).
        ``journal`` (an encrypt): the step may go to the journal at once, if
        this transaction holds no other step of the session ("The ratchet journal").
        """
        session_id = session.session_id
        key = (remote_key, session_id)
        row = _find(rows, session_id)
        assert row is not None  # a saved session is one of the rows read for it
        version = self._next_version(remote_key, row)
        in_transaction = (
            key in self._deferred or self._pending_here(key) is not None or self._touched_here(key)
        )
        self._deferred.pop(key, None)
        pickle = session.pickle(self._pickle_key)
        if journal and self._jdb is not None and not in_transaction:
            self._append_now(Step(remote_key, session_id, version, pickle), session)
            return
        self._pending.pop(key, None)  # written here with it, in this transaction
        self._unjournaled.pop(key, None)
        if not touch or rows[0].session_id == session_id:
            cur.execute(
                "UPDATE crypto_olm_sessions SET pickle = ?, version = ?"
                " WHERE remote_key = ? AND session_id = ?",
                (pickle, version, remote_key, session_id),
            )
        else:
            cur.execute(
                "UPDATE crypto_olm_sessions SET pickle = ?, version = ?, last_used = ?"
                " WHERE remote_key = ? AND session_id = ?",
                (pickle, version, _next_use(rows), remote_key, session_id),
            )
        self._touch(key)
        self._checkin(remote_key, session, pickle)

    @staticmethod
    def _prune(cur: Cursor, remote_key: bytes) -> None:
        cur.execute(
            "DELETE FROM crypto_olm_sessions WHERE remote_key = ? AND session_id NOT IN ("
            " SELECT session_id FROM crypto_olm_sessions WHERE remote_key = ?"
            " ORDER BY last_used DESC LIMIT ?)",
            (remote_key, remote_key, MAX_SESSIONS_PER_DEVICE),
        )


def _fsync_file(path: Path) -> None:
    """fsync a file by name (SQLite's WAL: its fd is SQLite's own)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:  # not in WAL mode (a test double): nothing pending
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _find(rows: list[_Row], session_id: str) -> _Row | None:
    for row in rows:
        if row.session_id == session_id:
            return row
    return None


def _next_use(rows: list[_Row]) -> int:
    """A ``last_used`` above every row of this device (``rows`` is newest first)."""
    return rows[0].last_used + 1 if rows else 1
