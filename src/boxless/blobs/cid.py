"""Content identifiers (CIDs): the subset Bitswap/UnixFS blobs need.

A CID names a block by its codec and the SHA2-256 of its bytes. We make CIDv1
(``raw`` 0x55 for file bytes, ``dag-pb`` 0x70 for UnixFS nodes), and also read
CIDv0 (base58 ``Qm…``, always dag-pb), which older IPFS peers put in links.
Other hash functions are refused: every CID we accept can be verified here.

The codec comes from the CID, never from the bytes: a block is decoded as
dag-pb only if the CID that named it says dag-pb (issue 12, "wrong bytes").
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import base58

from boxless.errors import DecodeError

RAW = 0x55
DAG_PB = 0x70
SHA2_256 = 0x12
_DIGEST_LEN = 32
CODECS = {RAW: "raw", DAG_PB: "dag-pb"}


def encode_uvarint(value: int) -> bytes:
    """Unsigned LEB128, as multiformats and protobuf use."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    """Read a uvarint at ``pos``; return (value, next position). At most 9 bytes."""
    value = shift = 0
    for i in range(9):
        if pos + i >= len(data):
            raise DecodeError("truncated varint")
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos + i + 1
        shift += 7
    raise DecodeError("varint longer than 9 bytes")


@dataclass(frozen=True, slots=True)
class Cid:
    """A verified-shape CID: version 0 or 1, codec raw or dag-pb, SHA2-256."""

    version: int
    codec: int
    digest: bytes

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise DecodeError(f"unsupported CID codec 0x{self.codec:x} (only raw and dag-pb)")
        if len(self.digest) != _DIGEST_LEN:
            raise DecodeError("CID digest must be 32 bytes of SHA2-256")
        if self.version not in (0, 1) or (self.version == 0 and self.codec != DAG_PB):
            raise DecodeError("CIDv0 is dag-pb only; other versions are unsupported")

    @classmethod
    def of(cls, codec: int, data: bytes) -> Cid:
        """The CIDv1 of ``data`` under ``codec``."""
        return cls(1, codec, hashlib.sha256(data).digest())

    @classmethod
    def decode(cls, raw: bytes) -> Cid:
        """Parse binary CID bytes (untrusted): exact length, known codec and hash."""
        if len(raw) == 34 and raw[0] == SHA2_256 and raw[1] == _DIGEST_LEN:
            return cls(0, DAG_PB, bytes(raw[2:]))
        version, pos = decode_uvarint(raw, 0)
        if version != 1:
            raise DecodeError(f"unsupported CID version {version}")
        codec, pos = decode_uvarint(raw, pos)
        mh, pos = decode_uvarint(raw, pos)
        length, pos = decode_uvarint(raw, pos)
        if mh != SHA2_256 or length != _DIGEST_LEN:
            raise DecodeError("unsupported multihash (only sha2-256)")
        if len(raw) != pos + length:
            raise DecodeError("CID has trailing or missing bytes")
        return cls(1, codec, bytes(raw[pos:]))

    @classmethod
    def parse(cls, text: str) -> Cid:
        """Parse a CID string: base32 ``b…`` (v1) or base58 ``Qm…`` (v0)."""
        text = text.strip()
        try:
            if text.startswith("Qm") and len(text) == 46:
                return cls.decode(base58.b58decode(text))
            if text.startswith("b"):
                body = text[1:].upper()
                return cls.decode(base64.b32decode(body + "=" * (-len(body) % 8)))
        except ValueError as exc:
            raise DecodeError(f"not a CID: {text!r} ({exc})") from exc
        raise DecodeError(f"not a CID: {text!r} (expected base32 'b…' or 'Qm…')")

    def __bytes__(self) -> bytes:
        mh = bytes((SHA2_256, _DIGEST_LEN)) + self.digest
        if self.version == 0:
            return mh
        return b"\x01" + encode_uvarint(self.codec) + mh

    def __str__(self) -> str:
        if self.version == 0:
            return str(base58.b58encode(bytes(self)).decode())
        return "b" + base64.b32encode(bytes(self)).decode().lower().rstrip("=")

    def prefix(self) -> bytes:
        """The Bitswap 1.1 block prefix: version, codec, hash function, length."""
        return bytes((self.version,)) + encode_uvarint(self.codec) + bytes((SHA2_256, 32))

    def key(self) -> bytes:
        """Identity of a block *as this codec*: codec byte + digest (v0 and v1 of
        dag-pb share it; the same bytes named as raw do not)."""
        return bytes((self.codec & 0xFF,)) + self.digest

    def matches(self, data: bytes) -> bool:
        """Whether ``data`` hashes to this CID."""
        return hashlib.sha256(data).digest() == self.digest


def cid_from_prefix(prefix: bytes, data: bytes) -> Cid:
    """The CID a Bitswap block claims: its prefix (untrusted) plus the hash of ``data``."""
    version, pos = decode_uvarint(prefix, 0)
    codec, pos = decode_uvarint(prefix, pos)
    mh, pos = decode_uvarint(prefix, pos)
    length, pos = decode_uvarint(prefix, pos)
    if mh != SHA2_256 or length != _DIGEST_LEN or pos != len(prefix):
        raise DecodeError("block prefix names an unsupported hash")
    if version == 0:
        codec = DAG_PB
    return Cid(version, codec, hashlib.sha256(data).digest())
