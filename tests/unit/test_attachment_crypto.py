"""Attachment encryption (STREAM over ChaCha20-Poly1305): round trips and every tamper."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.crypto.attachments import (
    HEADER_SIZE,
    TAG_SIZE,
    AttachmentDecryptError,
    AttachmentDecryptor,
    AttachmentEncryptor,
    ciphertext_size,
    decrypt_chunks,
    encrypt_chunks,
    new_key,
)
from boxless.crypto.errors import CryptoUsageError

CHUNK = 1024  # the smallest chunk: many segments from small inputs


def _encrypt(key: bytes, data: bytes, pieces: int = 1) -> bytes:
    step = max(1, len(data) // pieces)
    parts = [data[i : i + step] for i in range(0, len(data), step)] or [b""]
    return b"".join(encrypt_chunks(key, parts, chunk_size=CHUNK))


def _decrypt(key: bytes, blob: bytes, step: int = 777) -> bytes:
    parts = [blob[i : i + step] for i in range(0, len(blob), step)]
    return b"".join(decrypt_chunks(key, parts))


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=5 * CHUNK), pieces=st.integers(1, 7), step=st.integers(1, 3000))
def test_round_trip_any_split(data: bytes, pieces: int, step: int) -> None:
    key = new_key()
    enc = AttachmentEncryptor(key, chunk_size=CHUNK)
    blob = b"".join(
        [enc.feed(data[: len(data) // 2]), enc.feed(data[len(data) // 2 :]), enc.finish()]
    )
    assert len(blob) == ciphertext_size(len(data), CHUNK) == enc.ciphertext_size
    assert enc.plaintext_sha256 == hashlib.sha256(data).digest()
    assert enc.ciphertext_sha256 == hashlib.sha256(blob).digest()
    assert _encrypt(key, data, pieces) != blob  # a fresh nonce prefix each time
    dec = AttachmentDecryptor(key)
    parts = [dec.feed(blob[i : i + step]) for i in range(0, len(blob), step)]
    assert b"".join(parts) + dec.finish() == data
    assert dec.plaintext_sha256 == enc.plaintext_sha256
    assert dec.ciphertext_sha256 == enc.ciphertext_sha256


def test_empty_file_and_exact_chunk_multiple() -> None:
    key = new_key()
    for size in (0, CHUNK, 3 * CHUNK):
        blob = _encrypt(key, b"x" * size)
        assert len(blob) == HEADER_SIZE + size + max(1, -(-size // CHUNK)) * TAG_SIZE
        assert _decrypt(key, blob) == b"x" * size


@settings(max_examples=80, deadline=None)
@given(data=st.binary(min_size=1, max_size=4 * CHUNK), where=st.integers(0), bit=st.integers(0, 7))
def test_any_flipped_bit_fails(data: bytes, where: int, bit: int) -> None:
    key = new_key()
    blob = bytearray(_encrypt(key, data))
    blob[where % len(blob)] ^= 1 << bit
    with pytest.raises(AttachmentDecryptError):
        _decrypt(key, bytes(blob))


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=4 * CHUNK), cut=st.integers(0))
def test_any_truncation_fails(data: bytes, cut: int) -> None:
    key = new_key()
    blob = _encrypt(key, data)
    with pytest.raises(AttachmentDecryptError):
        _decrypt(key, blob[: cut % len(blob)])


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=3 * CHUNK), extra=st.binary(min_size=1, max_size=2 * CHUNK))
def test_any_extension_fails(data: bytes, extra: bytes) -> None:
    key = new_key()
    with pytest.raises(AttachmentDecryptError):
        _decrypt(key, _encrypt(key, data) + extra)


def test_segments_reordered_swapped_or_dropped_fail() -> None:
    key = new_key()
    blob = _encrypt(key, bytes(range(256)) * 16)  # 4 KiB: 4 full segments, the 4th flagged last
    head, body = blob[:HEADER_SIZE], blob[HEADER_SIZE:]
    seg = CHUNK + TAG_SIZE
    segs = [body[i : i + seg] for i in range(0, len(body), seg)]
    assert len(segs) == 4 and len(segs[-1]) == seg
    swapped = [segs[1], segs[0], *segs[2:]]
    dropped_last = segs[:-1]  # ends on a full segment sealed as "not last"
    dropped_mid = [segs[0], *segs[2:]]
    for variant in (swapped, dropped_last, dropped_mid):
        with pytest.raises(AttachmentDecryptError):
            _decrypt(key, head + b"".join(variant))
    # a segment spliced in from another file under the same key fails too
    other = _encrypt(key, b"y" * 4096)[HEADER_SIZE:]
    with pytest.raises(AttachmentDecryptError):
        _decrypt(key, head + other)


def test_wrong_key_and_bad_headers() -> None:
    key = new_key()
    blob = _encrypt(key, b"secret" * 100)
    with pytest.raises(AttachmentDecryptError, match="send it again"):
        _decrypt(new_key(), blob)
    for head in (b"XXA", b"BXA\x02", b"BXA\x01\x1f", b"BXA\x01\x09"):
        with pytest.raises(AttachmentDecryptError):
            _decrypt(key, head + blob[len(head) :])


def test_decryptor_is_poisoned_after_a_failure_and_bounded() -> None:
    key = new_key()
    blob = bytearray(_encrypt(key, b"z" * (3 * CHUNK)))
    blob[HEADER_SIZE + 3] ^= 1
    dec = AttachmentDecryptor(key)
    with pytest.raises(AttachmentDecryptError):
        dec.feed(bytes(blob))
    with pytest.raises(AttachmentDecryptError):
        dec.feed(b"")
    # a size lie: more plaintext than the descriptor allows
    dec = AttachmentDecryptor(key, max_plaintext=CHUNK)
    with pytest.raises(AttachmentDecryptError, match="larger"):
        dec.feed(_encrypt(key, b"z" * (3 * CHUNK)))
    with pytest.raises(CryptoUsageError):
        AttachmentEncryptor(b"short")
    with pytest.raises(CryptoUsageError):
        AttachmentEncryptor(key, chunk_size=3000)


@settings(max_examples=200, deadline=None)
@given(junk=st.binary(max_size=4 * CHUNK), step=st.integers(1, 2000))
def test_fuzz_decoder_only_raises_decrypt_errors(junk: bytes, step: int) -> None:
    """Arbitrary bytes (with and without a valid header) never crash the decoder."""
    key = new_key()
    for blob in (junk, b"BXA\x01\x0a" + junk):
        with pytest.raises(AttachmentDecryptError):
            _decrypt(key, blob, step)
