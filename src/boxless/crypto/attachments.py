"""Attachment encryption: a fresh key per file, ChaCha20-Poly1305 in chunks, sans-IO.

Theory of operation
-------------------
A file is encrypted *before* it becomes a UnixFS DAG, so the blob layer, the
service nodes that pin it and any IPFS node that serves it see only
ciphertext. The format is the STREAM construction (Hoang, Reyhanitabar,
Rogaway, Vizár 2015) over ChaCha20-Poly1305, as in age and Tink:

    header  = b"BXA" || version (1) || log2(chunk size) (1) || nonce prefix (7)
    segment = ChaCha20-Poly1305(key, nonce_i, plaintext chunk i, aad=header)
    nonce_i = nonce prefix (7) || i as 4 bytes big-endian || last flag (1)

Every plaintext chunk is exactly ``chunk_size`` bytes except the last, which
has 1..chunk_size bytes (0 only for an empty file) and the last flag 1. So:

- reordering or swapping segments fails (the counter is in the nonce);
- truncation at a segment boundary fails (the new final segment was sealed
  with flag 0), and inside a segment fails its tag;
- extension fails (bytes after the flagged segment are refused);
- a changed header fails every tag (it is the associated data).

The key is 32 fresh random bytes per file and travels only inside the E2EE
message (the attachment descriptor). The nonce prefix is random too, so a
caller that wrongly reused a key would still not reuse a nonce.

Memory is bounded: the encryptor holds less than one chunk, the decryptor
less than one segment, plus whatever one ``feed`` is given. Both compute the
SHA-256 of the plaintext and of the ciphertext as the bytes pass.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from boxless.crypto.errors import CryptoPeerError, CryptoUsageError

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "HEADER_SIZE",
    "KEY_SIZE",
    "TAG_SIZE",
    "AttachmentDecryptError",
    "AttachmentDecryptor",
    "AttachmentEncryptor",
    "ciphertext_size",
    "decrypt_chunks",
    "encrypt_chunks",
    "new_key",
    "segment_span",
]

MAGIC = b"BXA"
VERSION = 1
KEY_SIZE = 32
TAG_SIZE = 16
PREFIX_SIZE = 7
HEADER_SIZE = len(MAGIC) + 1 + 1 + PREFIX_SIZE  # 12
DEFAULT_CHUNK_SIZE = 64 * 1024
MIN_CHUNK_LOG2 = 10  # 1 KiB
MAX_CHUNK_LOG2 = 20  # 1 MiB: the most a decryptor buffers for a peer's file
MAX_CHUNKS = 2**32


class AttachmentDecryptError(CryptoPeerError):
    """An attachment did not decrypt: altered, truncated, extended or the wrong key.

    Nothing of it is kept; ask the sender to send the file again.
    """


def new_key() -> bytes:
    """A fresh 32-byte attachment key (one per file, never reused)."""
    return os.urandom(KEY_SIZE)


def ciphertext_size(plaintext_size: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    """The exact encrypted size of a ``plaintext_size``-byte file."""
    if plaintext_size < 0:
        raise CryptoUsageError("a size cannot be negative")
    segments = max(1, -(-plaintext_size // chunk_size))  # only an empty file has an empty one
    return HEADER_SIZE + plaintext_size + segments * TAG_SIZE


def segment_span(
    first: int, last: int, size: int, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> tuple[int, int, int, bool]:
    """Where the plaintext bytes ``first..last`` of a ``size``-byte file are encrypted.

    Returns ``(segment, ciphertext_start, ciphertext_end, final)``: the first
    segment holding them, the ciphertext bytes ``[start, end)`` of the whole
    segments that cover them, and whether the last of those is the file's last
    segment. Segments are independent (a counter in each nonce), so a reader
    decrypts from ``segment`` with :meth:`AttachmentDecryptor.seek` -- no need to
    read the file from its start.
    """
    if not 0 <= first <= last < size:
        raise CryptoUsageError(f"bytes {first}-{last} are not within a {size}-byte file")
    seg = chunk_size + TAG_SIZE
    s0, s1 = first // chunk_size, last // chunk_size
    final = s1 == max(1, -(-size // chunk_size)) - 1
    end = ciphertext_size(size, chunk_size) if final else HEADER_SIZE + (s1 + 1) * seg
    return s0, HEADER_SIZE + s0 * seg, end, final


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def _check_key(key: bytes) -> ChaCha20Poly1305:
    if len(key) != KEY_SIZE:
        raise CryptoUsageError(f"an attachment key is {KEY_SIZE} bytes, not {len(key)}")
    return ChaCha20Poly1305(key)


class AttachmentEncryptor:
    """Encrypts one file as it arrives: ``feed`` pieces, then ``finish`` once."""

    def __init__(
        self,
        key: bytes,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        nonce_prefix: bytes | None = None,
    ) -> None:
        log2 = chunk_size.bit_length() - 1
        if chunk_size != 1 << log2 or not MIN_CHUNK_LOG2 <= log2 <= MAX_CHUNK_LOG2:
            raise CryptoUsageError("the chunk size must be a power of two from 1 KiB to 1 MiB")
        prefix = os.urandom(PREFIX_SIZE) if nonce_prefix is None else nonce_prefix
        if len(prefix) != PREFIX_SIZE:
            raise CryptoUsageError(f"the nonce prefix is {PREFIX_SIZE} bytes")
        self._aead = _check_key(key)
        self._prefix = prefix
        self.chunk_size = chunk_size
        self.header = MAGIC + bytes((VERSION, log2)) + prefix
        self._buf = bytearray()
        self._counter = 0
        self._header_sent = False
        self._finished = False
        self._plain_hash = hashlib.sha256()
        self._cipher_hash = hashlib.sha256()
        self.plaintext_size = 0
        self.ciphertext_size = 0

    def _seal(self, chunk: bytes | memoryview, last: bool) -> bytes:
        if self._counter >= MAX_CHUNKS:
            raise CryptoUsageError("the file is too large for one attachment")
        nonce = _nonce(self._prefix, self._counter, last)
        self._counter += 1
        return self._aead.encrypt(nonce, chunk, self.header)

    def _emit(self, parts: list[bytes]) -> bytes:
        out = b"".join(parts)
        self._cipher_hash.update(out)
        self.ciphertext_size += len(out)
        return out

    def feed(self, data: bytes) -> bytes:
        """Encrypt ``data``; returns the ciphertext ready so far (maybe empty)."""
        if self._finished:
            raise CryptoUsageError("feed after finish")
        self._plain_hash.update(data)
        self.plaintext_size += len(data)
        parts: list[bytes] = []
        if not self._header_sent:
            parts.append(self.header)
            self._header_sent = True
        self._buf += data
        # Keep at least one byte back: only ``finish`` knows which chunk is last.
        n = self.chunk_size
        full = (len(self._buf) - 1) // n
        if full > 0:
            with memoryview(self._buf) as view:
                parts += [self._seal(view[i * n : (i + 1) * n], last=False) for i in range(full)]
            del self._buf[: full * n]
        return self._emit(parts)

    def finish(self) -> bytes:
        """Seal the last chunk; returns the remaining ciphertext."""
        if self._finished:
            raise CryptoUsageError("finish called twice")
        parts = [] if self._header_sent else [self.header]
        self._header_sent = True
        parts.append(self._seal(bytes(self._buf), last=True))
        self._buf.clear()
        self._finished = True
        return self._emit(parts)

    @property
    def plaintext_sha256(self) -> bytes:
        """SHA-256 of every byte fed so far."""
        return self._plain_hash.digest()

    @property
    def ciphertext_sha256(self) -> bytes:
        """SHA-256 of the ciphertext (header included); final after ``finish``."""
        return self._cipher_hash.digest()


class AttachmentDecryptor:
    """Decrypts one file as its ciphertext arrives; verified plaintext only.

    ``max_plaintext`` bounds what a lying peer can make us write. After any
    error the decryptor refuses further use: a caller cannot skip a bad segment.
    """

    def __init__(self, key: bytes, *, max_plaintext: int = 2**31) -> None:
        self._aead = _check_key(key)
        self._max_plaintext = max_plaintext
        self._buf = bytearray()
        self._header: bytes | None = None
        self._prefix = b""
        self._segment = 0
        self._counter = 0
        self._done = False
        self._failed = False
        self._plain_hash = hashlib.sha256()
        self._cipher_hash = hashlib.sha256()
        self.plaintext_size = 0
        self.ciphertext_size = 0

    @classmethod
    def seek(
        cls, key: bytes, header: bytes, segment: int, *, max_plaintext: int = 2**31
    ) -> AttachmentDecryptor:
        """A decryptor fed from the start of ``segment`` (see :func:`segment_span`).

        ``header`` is the file's first :data:`HEADER_SIZE` bytes (checked here;
        every segment's tag checks it again). Digests then cover only what is
        fed; a range that stops before the file's last segment ends with
        :meth:`end_range`, one that reaches it with :meth:`finish`.
        """
        if not 0 <= segment < MAX_CHUNKS:
            raise CryptoUsageError("no such segment")
        dec = cls(key, max_plaintext=max_plaintext)
        if len(header) != HEADER_SIZE:
            raise dec._fail("is truncated (no complete header)")
        dec._buf += header
        dec._read_header()
        dec._counter = segment
        return dec

    @property
    def chunk_size(self) -> int:
        """Plaintext bytes per segment (known once the header is read)."""
        return self._segment - TAG_SIZE

    def end_range(self) -> bytes:
        """The end of a range that stops before the last segment: open the one
        buffered full segment (not flagged last); raises if it is incomplete."""
        if self._failed:
            raise AttachmentDecryptError("this attachment already failed to decrypt")
        if self._header is None:
            raise self._fail("is truncated (no complete header)")
        if not self._buf:
            return b""
        if len(self._buf) != self._segment:
            raise self._fail("is truncated")
        plain = self._open(bytes(self._buf), last=False)
        self._buf.clear()
        return plain

    def _fail(self, why: str) -> AttachmentDecryptError:
        self._failed = True
        self._buf = bytearray()  # rebound, not cleared: a view of the old one may be open
        return AttachmentDecryptError(f"the attachment {why}; ask the sender to send it again")

    def _open(self, segment: bytes | memoryview, last: bool) -> bytes:
        assert self._header is not None
        if self._counter >= MAX_CHUNKS:
            raise self._fail("has too many chunks")
        try:
            plain = self._aead.decrypt(
                _nonce(self._prefix, self._counter, last), segment, self._header
            )
        except InvalidTag:
            raise self._fail(
                "failed authentication (altered, truncated or the wrong key)"
            ) from None
        self._counter += 1
        self.plaintext_size += len(plain)
        if self.plaintext_size > self._max_plaintext:
            raise self._fail("is larger than its descriptor says")
        self._plain_hash.update(plain)
        return plain

    def _read_header(self) -> None:
        head = bytes(self._buf[:HEADER_SIZE])
        if head[:3] != MAGIC:
            raise self._fail("is not in the Boxless attachment format")
        if head[3] != VERSION:
            raise self._fail(f"uses format version {head[3]}, which this version cannot read")
        log2 = head[4]
        if not MIN_CHUNK_LOG2 <= log2 <= MAX_CHUNK_LOG2:
            raise self._fail("declares a chunk size out of range")
        self._header = head
        self._prefix = head[5:]
        self._segment = (1 << log2) + TAG_SIZE
        del self._buf[:HEADER_SIZE]

    def feed(self, data: bytes) -> bytes:
        """Take more ciphertext; returns the plaintext verified so far."""
        if self._failed:
            raise AttachmentDecryptError("this attachment already failed to decrypt")
        if self._done:
            if data:
                raise self._fail("has bytes after its last chunk")
            return b""
        self._cipher_hash.update(data)
        self.ciphertext_size += len(data)
        self._buf += data
        if self._header is None:
            if len(self._buf) < HEADER_SIZE:
                return b""
            self._read_header()
        # A full segment followed by at least one more byte is not the last one.
        seg = self._segment
        full = (len(self._buf) - 1) // seg
        if full <= 0:
            return b""
        with memoryview(self._buf) as view:
            parts = [self._open(view[i * seg : (i + 1) * seg], last=False) for i in range(full)]
        del self._buf[: full * seg]
        return b"".join(parts)

    def finish(self) -> bytes:
        """The end of the ciphertext: open the last segment; raises if truncated."""
        if self._failed:
            raise AttachmentDecryptError("this attachment already failed to decrypt")
        if self._done:
            raise CryptoUsageError("finish called twice")
        if self._header is None:
            raise self._fail("is truncated (no complete header)")
        if len(self._buf) < TAG_SIZE:
            raise self._fail("is truncated")
        plain = self._open(bytes(self._buf), last=True)
        self._buf.clear()
        self._done = True
        return plain

    @property
    def plaintext_sha256(self) -> bytes:
        return self._plain_hash.digest()

    @property
    def ciphertext_sha256(self) -> bytes:
        return self._cipher_hash.digest()


def encrypt_chunks(
    key: bytes, chunks: Iterable[bytes], *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[bytes]:
    """Encrypt a stream of byte pieces; yields ciphertext pieces (some may be empty)."""
    enc = AttachmentEncryptor(key, chunk_size=chunk_size)
    for piece in chunks:
        out = enc.feed(piece)
        if out:
            yield out
    yield enc.finish()


def decrypt_chunks(
    key: bytes, chunks: Iterable[bytes], *, max_plaintext: int = 2**31
) -> Iterator[bytes]:
    """Decrypt a stream of ciphertext pieces; yields only verified plaintext."""
    dec = AttachmentDecryptor(key, max_plaintext=max_plaintext)
    for piece in chunks:
        out = dec.feed(piece)
        if out:
            yield out
    yield dec.finish()
