"""Moments' shares message: one post key wrapped for many readers, in one Waku message.

Theory of operation
-------------------
A poster gives each reader, once, over Olm, a :class:`~boxless.chat.moment.MomentReader`:
a 32-byte **reader key** ``R`` that only this reader and the poster hold, and
the poster's **feed secret** ``F`` shared by all its readers, which names the
feed topic (:func:`feed_topic`). A post then costs its sender one shares
message on that topic, whatever the audience:

``"BXS1" | salt (16) | count (2, big-endian) | count × record (56) | header``

* ``record`` = ``tag (8) | K xor pad (32)`` for one reader, where
  ``tag | pad`` = ``BLAKE2b-40(key R, salt | SHA-256(header))``: one keyed
  hash per reader on either side, a pad never used twice (a fresh salt per
  message), and a record bound to its header, so a reader of one post can't
  re-use another reader's record under a header of its own.
* ``header`` = ``nonce (12) | ChaCha20-Poly1305(K, MomentKey)``: the post's id,
  key, content address and times, sealed once under the post key ``K``; it
  authenticates the unwrapped ``K`` (a wrong ``K`` does not open it).

A reader computes its one tag and looks for it (trial by tag, no identity on
the wire): no record — the post is not for it; a record whose ``K`` does not
open the header — forged (counted); else the header gives the
:class:`~boxless.chat.moment.MomentKey`, which must name ``K``.
Records are sorted by tag (pseudorandom) and padded with random ones to a multiple of
:data:`PAD_TO`, so the message shows the audience size only roughly and
never who is in it. Only the poster and reader hold ``R``, so a record that
opens proves the poster made it. An audience above :data:`MAX_RECORDS` takes
several messages.

Every byte here comes from the network: :func:`parse` bounds everything and
raises :class:`~boxless.errors.DecodeError`.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.chat.moment import MomentKey
from boxless.chat.topics import APPLICATION, ENCODING, TOPIC_VERSION
from boxless.errors import DecodeError, UsageError
from boxless.waku.sharding import ContentTopic
from boxless.wire import moment_pb2

__all__ = [
    "MAX_RECORDS",
    "PAD_TO",
    "RECORD_BYTES",
    "Shares",
    "build",
    "feed_topic",
    "forget_readers",
    "open_share",
    "parse",
    "reader_tag",
]

MAGIC: Final = b"BXS1"
SALT_BYTES: Final = 16
TAG_BYTES: Final = 8
RECORD_BYTES: Final = TAG_BYTES + 32
MAX_RECORDS: Final = 3000  # 120 KB of records: a Waku message stays under 150 KiB
PAD_TO: Final = 8
MAX_HEADER_BYTES: Final = 2048
_NONCE: Final = 12
_PERSON: Final = b"bx-moment-shr-v1"  # BLAKE2b personalisation (16 bytes)
_FEED_INFO: Final = b"boxless moments feed v1"
_HEADER_AAD: Final = b"boxless moment shares header v1"


def feed_topic(feed_secret: bytes) -> str:
    """A poster's feed topic: derived from its feed secret, so it names no one."""
    if len(feed_secret) != 32:
        raise UsageError("a feed secret is 32 bytes")
    hkdf = HKDF(algorithm=SHA256(), length=16, salt=None, info=_FEED_INFO)
    name = "moments-" + hkdf.derive(feed_secret).hex()
    return str(ContentTopic(APPLICATION, TOPIC_VERSION, name, ENCODING))


def _derive(reader_key: bytes, salt: bytes, header_digest: bytes) -> bytes:
    """Keyed BLAKE2b (a PRF, one pass) of the message's salt and header digest."""
    return hashlib.blake2b(
        salt + header_digest, key=reader_key, digest_size=TAG_BYTES + 32, person=_PERSON
    ).digest()


MAX_KEYED: Final = 4096  # readers' keyed states kept (all dropped when full)
_KEYED: dict[bytes, Any] = {}


def _keyed(reader_key: bytes) -> Any:
    """BLAKE2b keyed with ``reader_key``, nothing hashed yet (copy it before use):
    a poster keeps its readers' in memory, so a post skips absorbing 500 key
    blocks. Bounded, and emptied by :func:`forget_readers` when a reader goes;
    never what decides who gets a record."""
    h = _KEYED.get(reader_key)
    if h is None:
        if len(_KEYED) >= MAX_KEYED:
            _KEYED.clear()
        h = _KEYED[reader_key] = hashlib.blake2b(
            key=reader_key, digest_size=TAG_BYTES + 32, person=_PERSON
        )
    return h


def forget_readers() -> None:
    """Drop every kept keyed state (a reader was removed: the feed rotates)."""
    _KEYED.clear()


def reader_tag(reader_key: bytes, salt: bytes, header_digest: bytes) -> bytes:
    """The 8 bytes a reader looks for in a shares message (its salt and header)."""
    return _derive(reader_key, salt, header_digest)[:TAG_BYTES]


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


@dataclass(frozen=True, slots=True)
class Shares:
    """A parsed shares message (nothing opened yet)."""

    salt: bytes
    records: dict[bytes, bytes]  # tag -> wrapped key (a repeated tag keeps the first)
    header: bytes

    def header_digest(self) -> bytes:
        return hashlib.sha256(self.header).digest()


def build(share: MomentKey, reader_keys: Sequence[bytes]) -> list[bytes]:
    """The shares messages' payloads giving ``share`` (its key ``K``) to each reader.

    ``share`` carries no reader (reader keys travel over Olm only).
    """
    if share.reader is not None:
        raise UsageError("a reader key never travels in a shares message")
    header_plain = share.to_proto().SerializeToString()
    out = []
    keys = list(reader_keys)
    for start in range(0, max(len(keys), 1), MAX_RECORDS):
        chunk = keys[start : start + MAX_RECORDS]
        salt = os.urandom(SALT_BYTES)
        nonce = os.urandom(_NONCE)
        header = nonce + ChaCha20Poly1305(share.key).encrypt(nonce, header_plain, _HEADER_AAD)
        digest = hashlib.sha256(header).digest()
        # One keyed BLAKE2b per reader (its key block absorbed once and kept:
        # _keyed) gives tag ‖ pad; a record is that XOR (zeros ‖ K). Sorting the
        # 40-byte outputs sorts the records by tag, so all of them, random
        # padding included, are XORed with the mask at once, as one integer.
        msg = salt + digest
        derived = []
        kept = _KEYED.get
        for r in chunk:
            h = (kept(r) or _keyed(r)).copy()
            h.update(msg)
            derived.append(h.digest())
        pad = min(-len(derived) % PAD_TO, MAX_RECORDS - len(derived))
        derived += [os.urandom(RECORD_BYTES) for _ in range(pad)]
        derived.sort()  # by tag: pseudorandom, so the order tells nothing of who
        mask = (bytes(TAG_BYTES) + share.key) * len(derived)
        records = _xor(b"".join(derived), mask)
        out.append(MAGIC + salt + struct.pack(">H", len(derived)) + records + header)
    return out


def parse(payload: bytes) -> Shares:
    """Split a shares message; :class:`DecodeError` says what is wrong with it."""
    head = len(MAGIC) + SALT_BYTES + 2
    if len(payload) < head or payload[: len(MAGIC)] != MAGIC:
        raise DecodeError("not a moments shares message")
    salt = payload[len(MAGIC) : len(MAGIC) + SALT_BYTES]
    (count,) = struct.unpack(">H", payload[head - 2 : head])
    if count > MAX_RECORDS:
        raise DecodeError(f"a shares message holds at most {MAX_RECORDS} records, not {count}")
    end = head + count * RECORD_BYTES
    header = payload[end:]
    if len(payload) < end or not _NONCE + 16 <= len(header) <= MAX_HEADER_BYTES:
        raise DecodeError("a shares message of the wrong length")
    records: dict[bytes, bytes] = {}
    for i in range(head, end, RECORD_BYTES):
        records.setdefault(payload[i : i + TAG_BYTES], payload[i + TAG_BYTES : i + RECORD_BYTES])
    return Shares(salt, records, header)


def open_share(shares: Shares, reader_key: bytes) -> MomentKey | None:
    """Our share of a parsed shares message: ``None`` if it holds none for us;
    :class:`DecodeError` if our record or its header is forged or malformed."""
    d = _derive(reader_key, shares.salt, shares.header_digest())
    wrapped = shares.records.get(d[:TAG_BYTES])
    if wrapped is None:
        return None
    key = _xor(wrapped, d[TAG_BYTES : TAG_BYTES + 32])
    try:
        plain = ChaCha20Poly1305(key).decrypt(
            shares.header[:_NONCE], shares.header[_NONCE:], _HEADER_AAD
        )
    except InvalidTag:
        raise DecodeError("a forged moments share") from None
    pb = moment_pb2.MomentKey()
    try:
        pb.ParseFromString(plain)
        share = MomentKey.from_proto(pb)
    except (ProtobufDecodeError, UsageError) as exc:
        raise DecodeError(f"a moments share header: {exc}") from None
    if share.key != key or share.reader is not None:
        raise DecodeError("a moments share header that does not match its record")
    return share
