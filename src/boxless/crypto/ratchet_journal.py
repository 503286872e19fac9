"""An append-only journal of Olm ratchet steps beside the user database.

Theory of operation
-------------------
A ping-pong turns a session's ratchet on every message, and writing each new
state through a SQLCipher commit costs more than the rest of the message
(``docs/benchmarks.md``). The journal is a cheaper durable point for the steps
of *existing* sessions: each new state is one record appended with ONE
``os.write`` to a file opened ``O_APPEND``. A ``write()`` that returned is in
the kernel's page cache and survives a kill -9 of the process exactly like a
commit of the user database (WAL, ``synchronous = NORMAL``: no fsync at
commit either). :class:`boxless.crypto.olm_sessions.SessionManager` decides
when a step goes here and when it stays in a SQLite transaction (its module
docstring, "The ratchet journal").

A record::

    u32 length (big-endian) of what follows
    ChaCha20-Poly1305(key_epoch, nonce = seq (12 bytes, big-endian),
                      aad = "boxless ratchet journal v1" || seq (8 bytes),
                      plaintext = remote key (32) || version (u64) ||
                                  len(session id) (u16) || session id || pickle)

Nothing but the length is in the clear: not the peer's key, not the session
id. ``seq`` is not stored: record *n* of the file (from 1) must open with
``seq = n``, so records cannot be reordered, dropped from the middle or
repeated. ``key_epoch`` is derived from the database's journal key and the
epoch named in the database (``crypto_olm_journal``), which changes at every
checkpoint, so records of an older epoch -- a journal truncated by a crash
that came too late, or an old copy put back by someone -- never authenticate.
Nonces never repeat under one key: a key serves one epoch, and one epoch's
records are numbered by one writer (the file is locked, below).

Reading (:func:`read_records`): records are opened in order up to the first
one that is torn (a kill during the write), too long, or does not
authenticate; that record and everything after it are dropped -- none was
ever acknowledged to anyone. It never raises on the file's content.

One writer: the file is locked (``flock``, exclusive, non-blocking) while
open. Another process gets :class:`JournalBusy` with what to do; a second
journal for the same file in this process takes the file over (the first is
closed and refuses every later use), which is what reopening an account in a
process does. A child forked while a journal is open shares its file and its
lock but must never number a record of the parent's epoch (nonce reuse): in
the child every open journal is closed at the fork.

The file: a regular file, never followed through a symlink (a checkpoint
cuts the file, so a link would cut its target), mode 0600 like the database
(set again at every open). Open reads it record by record and stops at the
first bad one: a huge file of junk costs no memory.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
import struct
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from boxless.crypto.errors import CryptoStateError
from boxless.errors import DecodeError

log = logging.getLogger(__name__)

SUFFIX: Final = ".ratchets"
"""The journal's file is the database's path plus this suffix."""
EPOCH_BYTES: Final = 16
MAX_RECORD: Final = 256 * 1024
"""A longer length field is a torn or forged tail (a session pickles to ~4 KB)."""
_AAD: Final = b"boxless ratchet journal v1"
_LENGTH = struct.Struct(">I")
_HEAD = struct.Struct(">32sQH")  # remote key, version, session id length
_TAG_BYTES: Final = 16

# The journal open in this process for each file (see "One writer").
_open_journals: weakref.WeakValueDictionary[str, RatchetJournal] = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()


class JournalBusy(CryptoStateError):
    """Another process has this account's ratchet journal open."""


class JournalClosed(CryptoStateError):
    """This journal was closed (or taken over by a newer one in this process)."""


@dataclass(frozen=True, slots=True)
class Step:
    """One session's state after a step: what a record holds."""

    remote_key: bytes
    session_id: str
    version: int
    pickle: str = field(repr=False)


def encode_step(step: Step) -> bytes:
    sid = step.session_id.encode("utf-8")
    return _HEAD.pack(step.remote_key, step.version, len(sid)) + sid + step.pickle.encode("ascii")


def decode_step(data: bytes) -> Step:
    """The inverse of :func:`encode_step`; :class:`DecodeError` on anything else."""
    if len(data) < _HEAD.size:
        raise DecodeError("ratchet journal record too short")
    remote_key, version, sid_len = _HEAD.unpack_from(data)
    end = _HEAD.size + sid_len
    if len(data) < end:
        raise DecodeError("ratchet journal record cut inside its session id")
    try:
        session_id = data[_HEAD.size : end].decode("utf-8")
        pickle = data[end:].decode("ascii")
    except UnicodeDecodeError:
        raise DecodeError("ratchet journal record is not text where it must be") from None
    return Step(remote_key, session_id, version, pickle)


def epoch_key(journal_key: bytes, epoch: bytes) -> ChaCha20Poly1305:
    """The AEAD of one epoch: HKDF-SHA256 of the database's journal key."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"boxless ratchet epoch" + epoch
    )
    return ChaCha20Poly1305(hkdf.derive(journal_key))


def _nonce(seq: int) -> bytes:
    return seq.to_bytes(12, "big")


def seal_record(aead: ChaCha20Poly1305, seq: int, step: Step) -> bytes:
    """Record number ``seq`` (from 1) of an epoch, holding ``step``."""
    return _seal(aead, seq, encode_step(step))


def _seal(aead: ChaCha20Poly1305, seq: int, plain: bytes) -> bytes:
    sealed = aead.encrypt(seq.to_bytes(12, "big"), plain, _AAD + seq.to_bytes(8, "big"))
    return _LENGTH.pack(len(sealed)) + sealed


def read_records(
    aead: ChaCha20Poly1305, data: bytes, *, first_seq: int = 1
) -> tuple[list[Step], int]:
    """The steps of the file's good prefix, and that prefix's length in bytes.

    Stops at the first record that is torn, too long, forged, or out of place
    (see the module docstring); never raises on ``data``. ``first_seq``: the
    number of ``data``'s first record (a part of the file).
    """
    steps: list[Step] = []
    offset = 0
    while offset + _LENGTH.size <= len(data):
        (length,) = _LENGTH.unpack_from(data, offset)
        end = offset + _LENGTH.size + length
        if length < _TAG_BYTES or length > MAX_RECORD or end > len(data):
            break
        seq = len(steps) + first_seq
        try:
            plain = aead.decrypt(
                _nonce(seq), data[offset + _LENGTH.size : end], _AAD + seq.to_bytes(8, "big")
            )
            step = decode_step(plain)
        except (InvalidTag, DecodeError):
            break
        steps.append(step)
        offset = end
    return steps, offset


class RatchetJournal:
    """The journal file of one user database: locked, read once, then appended to."""

    def __init__(self, path: Path, journal_key: bytes) -> None:
        self.path = path
        self._journal_key = journal_key
        self._fd: int | None = None
        self._aead: ChaCha20Poly1305 | None = None
        self._size = 0
        self._closed_why = ""
        # Held while the fd is used or closed: a takeover from another thread
        # cannot close the fd under a write (whose number the new open reuses).
        self._io = threading.RLock()
        self.records = 0
        """Records appended in the current epoch."""

    def __repr__(self) -> str:
        return f"<RatchetJournal {self.path.name} records={self.records}>"

    @property
    def size(self) -> int:
        return self._size

    def open(self, epoch: bytes | None) -> list[Step]:
        """Lock the file and return the steps recorded in ``epoch`` (the database's).

        ``None``: the database names no epoch yet, so nothing in the file counts.
        Raises :class:`JournalBusy` if another process holds the file.
        """
        with _registry_lock:
            older = _open_journals.get(str(self.path))
            if older is not None and older is not self:
                older.close()  # taken over (see "One writer")
            fd = _open_private(self.path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise JournalBusy(
                    f"another Boxless process has this account open ({self.path.name} is "
                    "locked): stop it (or use its local API) and try again"
                ) from None
            self._fd = fd
            self._closed_why = ""
            _open_journals[str(self.path)] = self
        if epoch is None:
            return []
        return self._read_steps(epoch_key(self._journal_key, epoch))

    def restart(self, epoch: bytes) -> None:
        """Start ``epoch`` (already committed to the database) with an empty file."""
        with self._io:
            fd = self._require()
            os.ftruncate(fd, 0)
            self._aead = epoch_key(self._journal_key, epoch)
            self._size = 0
            self.records = 0

    def append(self, steps: list[Step]) -> None:
        """Append one record per step with ONE ``os.write``.

        On a failed or short write the file is cut back to where it was and
        :class:`OSError` is raised: nothing of the call was recorded.
        """
        with self._io:
            aead = self._writable()
            blob = b"".join(
                seal_record(aead, self.records + i, step) for i, step in enumerate(steps, 1)
            )
            self._write(blob, len(steps))

    def append_one(self, remote_key: bytes, session_id: str, version: int, pickle: str) -> None:
        """:meth:`append` of one step, without building a :class:`Step` (the hot path)."""
        sid = session_id.encode("utf-8")
        plain = _HEAD.pack(remote_key, version, len(sid)) + sid + pickle.encode("ascii")
        with self._io:
            aead = self._writable()
            self._write(_seal(aead, self.records + 1, plain), 1)

    def _writable(self) -> ChaCha20Poly1305:
        self._require()
        if self._aead is None:
            raise JournalClosed("the ratchet journal has no epoch: restart() it first")
        return self._aead

    def _write(self, blob: bytes, count: int) -> None:
        """(``_io`` held.)"""
        fd = self._require()
        try:
            written = os.write(fd, blob)
        except OSError:
            self._cut_back(fd)
            raise
        if written != len(blob):
            # Part of a record sealed with nonce ``records + 1`` reached the file:
            # the next record would take that nonce again (with another plaintext),
            # so this epoch takes no more records (a failed write wrote nothing).
            self._cut_back(fd)
            self.close(
                "a short write to the ratchet journal (is the disk full?): free some disk "
                "space and restart Boxless"
            )
            raise OSError(f"short write to the ratchet journal ({written} of {len(blob)} bytes)")
        self._size += written
        self.records += count

    def close(self, why: str = "") -> None:
        """Release the file (and its lock); every later use raises :class:`JournalClosed`
        (saying ``why``, if given)."""
        with self._io:
            self._close_now(why)

    def _close_now(self, why: str) -> None:
        fd, self._fd = self._fd, None
        self._aead = None
        if why:
            self._closed_why = why
        if fd is not None:
            os.close(fd)

    @property
    def closed_why(self) -> str:
        """Why the journal was closed, if not simply closed or taken over."""
        return self._closed_why

    @property
    def closed(self) -> bool:
        return self._fd is None

    def _require(self) -> int:
        if self._fd is None:
            raise JournalClosed(
                self._closed_why
                or "this account's ratchet journal was closed or reopened by another "
                "SessionManager in this process: use that one"
            )
        return self._fd

    def _read_steps(self, aead: ChaCha20Poly1305) -> list[Step]:
        """:func:`read_records` of the file, one record at a time (bounded memory)."""
        fd = self._require()
        steps: list[Step] = []
        offset = 0
        while True:
            head = os.pread(fd, _LENGTH.size, offset)
            if len(head) < _LENGTH.size:
                break
            (length,) = _LENGTH.unpack(head)
            if length < _TAG_BYTES or length > MAX_RECORD:
                break
            record = os.pread(fd, length, offset + _LENGTH.size)
            got, _good = read_records(aead, head + record, first_seq=len(steps) + 1)
            if not got:
                break
            steps.append(got[0])
            offset += _LENGTH.size + length
        return steps

    def _cut_back(self, fd: int) -> None:
        try:
            os.ftruncate(fd, self._size)
        except OSError:  # the file is now suspect: refuse to append more
            log.warning("the ratchet journal could not be cut back after a failed write")
            self.close()


def _open_private(path: Path) -> int:
    """The journal's file, opened for appending: a regular file (never through a
    symlink), mode 0600."""
    flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    refused = CryptoStateError(
        f"{path} is not a regular file (a symlink, a pipe, a folder?): move it away "
        "and open the account again"
    )
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            raise refused from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise refused
        if stat.S_IMODE(info.st_mode) != 0o600:
            os.fchmod(fd, 0o600)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _close_in_forked_child() -> None:
    """A forked child must never append under its parent's epoch key (module
    docstring): its copies of the open journals are closed. Their lock stays
    the parent's (an ``flock`` is released only when every copy is closed)."""
    global _registry_lock
    _registry_lock = threading.Lock()  # another thread may have held it at the fork
    for journal in list(_open_journals.values()):
        journal._io = threading.RLock()  # likewise
        journal._close_now(
            "this process was forked from the one that opened the ratchet journal: "
            "open the account in this process to use it"
        )
    _open_journals.clear()


os.register_at_fork(after_in_child=_close_in_forked_child)


def journal_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + SUFFIX)
