"""The backup file format: a versioned header, then records in STREAM-encrypted chunks. Sans-IO.

Theory of operation
-------------------
A backup file is::

    header  = b"BXBK" || version (1) || salt (16) || key check (16)
    body    = an attachment-format STREAM (crypto/attachments.py): its own
              12-byte header, then ChaCha20-Poly1305 segments of 64 KiB

The key is ``HKDF-SHA256(ikm=BIP-39 seed, salt=salt, info="boxless backup v1")``:
the seed of the recovery phrase (the database passphrase plays no part), a fresh
random salt per file, so every file has its own key. ``key check`` is
``HMAC-SHA256(key, "boxless backup key check")[:16]``: a wrong phrase is told
apart from a damaged file before anything is decrypted. Tampering with the salt
changes the key (the check fails); with anything after the header, a segment's
tag fails; truncation and extension fail as in the STREAM construction.

The plaintext is a sequence of records, each ``kind (1) || length (4, big
endian) || payload``. Payloads are values in a small tagged encoding (null,
64-bit int, double, UTF-8 text, bytes, list), the same one for every kind:

- ``MANIFEST`` (first, once): a JSON object (format, created_at_ms, identity
  key hex, counts);
- ``SCHEMA``: [type, name, table, sql] of a table, index, trigger or virtual table;
- ``ROWS``: [table, [columns], [row, row, ...]] (a batch of rows);
- ``FILE``: [relative path, offset, bytes] (a piece of an optional cached file);
- ``END`` (last, once): [record count, row count], checked against what was read.

Bounds: one record is at most :data:`MAX_RECORD` bytes, a list at most
:data:`MAX_ITEMS` items and nesting :data:`MAX_DEPTH` deep, so a crafted file
cannot make the decoder allocate without limit or recurse forever; the reader
takes a limit on the total plaintext too (a "looping" archive that never ends
stops there), and anything after ``END`` is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from boxless.crypto.attachments import (
    AttachmentDecryptError,
    AttachmentDecryptor,
    AttachmentEncryptor,
)
from boxless.errors import UsageError

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "BackupDamaged",
    "BackupError",
    "BackupReader",
    "BackupWriter",
    "Record",
    "RecordKind",
    "WrongPhrase",
    "backup_key",
    "decode_value",
    "encode_value",
]

MAGIC = b"BXBK"
FORMAT_VERSION = 1
SALT_SIZE = 16
CHECK_SIZE = 16
HEADER_SIZE = len(MAGIC) + 1 + SALT_SIZE + CHECK_SIZE  # 37
KEY_INFO = b"boxless backup v1"
CHECK_LABEL = b"boxless backup key check"
CHUNK_SIZE = 64 * 1024

MAX_RECORD = 16 * 1024 * 1024
MAX_ITEMS = 1_000_000
MAX_DEPTH = 4
#: The default limit on a backup's plaintext (64 GiB); the caller may pass less.
MAX_TOTAL = 64 * 1024**3


class RecordKind:
    MANIFEST = 1
    SCHEMA = 2
    ROWS = 3
    FILE = 4
    END = 5


_KINDS = frozenset(range(1, 6))


class BackupError(UsageError):
    """A backup could not be read; nothing was restored."""


class WrongPhrase(BackupError):
    """The recovery phrase does not open this backup."""


class BackupDamaged(BackupError):
    """The backup file is truncated, altered, or not a backup at all."""


def backup_key(seed: bytes, salt: bytes) -> bytes:
    """The 32-byte key of one backup file from the 64-byte BIP-39 seed and its salt."""
    if len(seed) != 64:
        raise UsageError(f"a BIP-39 seed has 64 bytes, not {len(seed)}")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=KEY_INFO).derive(seed)


def _check(key: bytes) -> bytes:
    return hmac.new(key, CHECK_LABEL, hashlib.sha256).digest()[:CHECK_SIZE]


# ---------------------------------------------------------------- values

_NULL, _INT, _FLOAT, _TEXT, _BYTES, _LIST = range(6)


def encode_value(value: Any) -> bytes:
    """Encode null/int/float/str/bytes/list (of those) in the tagged encoding."""
    parts: list[bytes] = []
    _encode(value, parts)
    return b"".join(parts)


def _encode(value: Any, out: list[bytes]) -> None:
    if value is None:
        out.append(bytes((_NULL,)))
    elif isinstance(value, bool):
        out.append(bytes((_INT,)) + struct.pack(">q", int(value)))
    elif isinstance(value, int):
        out.append(bytes((_INT,)) + struct.pack(">q", value))
    elif isinstance(value, float):
        out.append(bytes((_FLOAT,)) + struct.pack(">d", value))
    elif isinstance(value, str):
        raw = value.encode("utf-8", "surrogatepass")
        out.append(bytes((_TEXT,)) + struct.pack(">I", len(raw)) + raw)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        out.append(bytes((_BYTES,)) + struct.pack(">I", len(raw)) + raw)
    elif isinstance(value, (list, tuple)):
        out.append(bytes((_LIST,)) + struct.pack(">I", len(value)))
        for item in value:
            _encode(item, out)
    else:
        raise UsageError(f"cannot back up a value of type {type(value).__name__}")


def decode_value(data: bytes) -> Any:
    """Decode one value that fills ``data`` exactly (raises BackupDamaged)."""
    value, end = _decode(memoryview(data), 0, 0)
    if end != len(data):
        raise BackupDamaged("a backup record has bytes after its value")
    return value


def _take(data: memoryview, pos: int, n: int) -> bytes:
    if n < 0 or pos + n > len(data):
        raise BackupDamaged("a backup record ends inside a value")
    return bytes(data[pos : pos + n])


def _decode(data: memoryview, pos: int, depth: int) -> tuple[Any, int]:
    tag = _take(data, pos, 1)[0]
    pos += 1
    if tag == _NULL:
        return None, pos
    if tag == _INT:
        return struct.unpack(">q", _take(data, pos, 8))[0], pos + 8
    if tag == _FLOAT:
        return struct.unpack(">d", _take(data, pos, 8))[0], pos + 8
    if tag in (_TEXT, _BYTES, _LIST):
        (n,) = struct.unpack(">I", _take(data, pos, 4))
        pos += 4
        if tag == _TEXT:
            try:
                return _take(data, pos, n).decode("utf-8", "surrogatepass"), pos + n
            except UnicodeDecodeError:
                raise BackupDamaged("a backup record holds text that is not UTF-8") from None
        if tag == _BYTES:
            return _take(data, pos, n), pos + n
        if depth >= MAX_DEPTH:
            raise BackupDamaged("a backup record nests lists too deeply")
        if n > MAX_ITEMS or n > len(data) - pos:  # every item takes at least one byte
            raise BackupDamaged("a backup record holds a list longer than its bytes allow")
        items = []
        for _ in range(n):
            item, pos = _decode(data, pos, depth + 1)
            items.append(item)
        return items, pos
    raise BackupDamaged(f"a backup record holds an unknown value tag {tag}")


# ---------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Record:
    kind: int
    value: Any

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise BackupDamaged(f"unknown backup record kind {self.kind}")


def encode_record(record: Record) -> bytes:
    payload = (
        json.dumps(record.value).encode()
        if record.kind == RecordKind.MANIFEST
        else encode_value(record.value)
    )
    if len(payload) > MAX_RECORD:
        raise UsageError(f"a backup record of {len(payload)} bytes is over {MAX_RECORD}")
    return struct.pack(">BI", record.kind, len(payload)) + payload


class BackupWriter:
    """Turns records into the bytes of a backup file: ``start()``, ``write()``, ``finish()``."""

    def __init__(self, seed: bytes, *, salt: bytes | None = None) -> None:
        self.salt = os.urandom(SALT_SIZE) if salt is None else salt
        key = backup_key(seed, self.salt)
        self._enc = AttachmentEncryptor(key, chunk_size=CHUNK_SIZE)
        self._header = MAGIC + bytes((FORMAT_VERSION,)) + self.salt + _check(key)
        self.records = 0
        self.rows = 0
        self._started = self._ended = False
        #: SHA-256 of every record but the manifest (whose time changes): equal
        #: digests mean equal contents, whatever the salt.
        self.digest = hashlib.sha256()

    def start(self, manifest: dict[str, Any]) -> bytes:
        if self._started:
            raise UsageError("the backup was already started")
        self._started = True
        return self._header + self.write(Record(RecordKind.MANIFEST, manifest))  # + STREAM header

    def write(self, record: Record) -> bytes:
        if not self._started or self._ended:
            raise UsageError("write a backup record between start() and finish()")
        if record.kind == RecordKind.ROWS:
            self.rows += len(record.value[2])
        self.records += 1
        raw = encode_record(record)
        if record.kind != RecordKind.MANIFEST:
            self.digest.update(raw)
        return self._enc.feed(raw)

    def finish(self) -> bytes:
        end = encode_record(Record(RecordKind.END, [self.records + 1, self.rows]))
        self._ended = True
        return self._enc.feed(end) + self._enc.finish()


class BackupReader:
    """Turns the bytes of a backup file back into records, checking everything.

    ``feed(data)`` returns the records now complete; ``finish()`` raises unless
    the file ended exactly after its ``END`` record. Nothing a reader returns
    should be kept until ``finish()`` returned: a truncated or altered file is
    only known for certain at its end.
    """

    def __init__(self, seed: bytes, *, max_total: int = MAX_TOTAL) -> None:
        self._seed = seed
        self._max_total = max_total
        self._head = b""
        self._dec: AttachmentDecryptor | None = None
        self._buf = bytearray()
        self.total = 0
        self.records = 0
        self.rows = 0
        self.ended = False

    def feed(self, data: bytes) -> list[Record]:
        if self._dec is None:
            self._head += data
            if len(self._head) < HEADER_SIZE:
                return []
            data, self._head = self._head[HEADER_SIZE:], self._head[:HEADER_SIZE]
            self._open_header(self._head)
        assert self._dec is not None
        try:
            plain = self._dec.feed(data)
        except AttachmentDecryptError:
            raise BackupDamaged(
                "the backup file is damaged or was altered (a chunk does not authenticate); "
                "nothing was restored — use another copy of the backup"
            ) from None
        return self._take(plain)

    def finish(self) -> list[Record]:
        """The records of the last chunk, once the file is known complete."""
        if self._dec is None:
            raise BackupDamaged("the file is too short to be a Boxless backup")
        try:
            rest = self._dec.finish()
        except AttachmentDecryptError:
            raise BackupDamaged(
                "the backup file is truncated or was altered; nothing was restored — "
                "use a complete copy of the backup"
            ) from None
        records = self._take(rest)
        if not self.ended or self._buf:
            raise BackupDamaged("the backup file ends before its last record; it is truncated")
        return records

    def _open_header(self, head: bytes) -> None:
        if head[:4] != MAGIC:
            raise BackupDamaged("this file is not a Boxless backup (its first bytes differ)")
        if head[4] != FORMAT_VERSION:
            raise BackupDamaged(
                f"this backup has format version {head[4]}; this Boxless reads version "
                f"{FORMAT_VERSION} — update Boxless to restore it"
            )
        salt, check = head[5 : 5 + SALT_SIZE], head[5 + SALT_SIZE :]
        key = backup_key(self._seed, salt)
        if not hmac.compare_digest(_check(key), check):
            raise WrongPhrase(
                "this recovery phrase does not open the backup: it belongs to another "
                "account, or a word is wrong; nothing was restored"
            )
        self._dec = AttachmentDecryptor(key, max_plaintext=2**62)  # bounded in _take

    def _take(self, plain: bytes) -> list[Record]:
        self.total += len(plain)
        if self.total > self._max_total:
            raise BackupDamaged(
                f"the backup holds more than {self._max_total} bytes, over the limit; "
                "nothing was restored"
            )
        self._buf += plain
        return list(self._records())

    def _records(self) -> Iterator[Record]:
        while len(self._buf) >= 5:
            kind, length = struct.unpack(">BI", self._buf[:5])
            if length > MAX_RECORD:
                raise BackupDamaged(f"a backup record claims {length} bytes, over the limit")
            if len(self._buf) < 5 + length:
                return
            payload = bytes(self._buf[5 : 5 + length])
            del self._buf[: 5 + length]
            yield self._record(kind, payload)

    def _record(self, kind: int, payload: bytes) -> Record:
        if self.ended:
            raise BackupDamaged("the backup has records after its end")
        if kind not in _KINDS:
            raise BackupDamaged(f"unknown backup record kind {kind}")
        if (kind == RecordKind.MANIFEST) != (self.records == 0):
            raise BackupDamaged("the backup's manifest is not its first record")
        if kind == RecordKind.MANIFEST:
            try:
                value: Any = json.loads(payload)
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise BackupDamaged("the backup's manifest is not JSON") from None
            if not isinstance(value, dict):
                raise BackupDamaged("the backup's manifest is not an object")
        else:
            value = decode_value(payload)
        self.records += 1
        if kind == RecordKind.ROWS:
            _check_rows(value)
            self.rows += len(value[2])
        elif kind == RecordKind.END:
            if value != [self.records, self.rows]:
                raise BackupDamaged("the backup's end record does not match what it holds")
            self.ended = True
        return Record(kind, value)


def _check_rows(value: Any) -> None:
    ok = (
        isinstance(value, list)
        and len(value) == 3
        and isinstance(value[0], str)
        and isinstance(value[1], list)
        and all(isinstance(c, str) for c in value[1])
        and isinstance(value[2], list)
        and all(isinstance(r, list) and len(r) == len(value[1]) for r in value[2])
    )
    if not ok:
        raise BackupDamaged("a backup record of rows is malformed")
