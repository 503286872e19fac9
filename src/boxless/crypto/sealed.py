"""Sealed-sender envelopes: relays and stores see a topic, a timestamp and opaque bytes.

Theory of operation
-------------------
An Olm message names its sender's device key in the clear (pre-key messages
carry it outright), and the envelope around it would otherwise have to say
who sent it. So the Olm message, the sender's identity key and device key,
the Olm message type and the session id hint go into a
:class:`~boxless.wire.envelope_pb2.SealedContent`, padded, and encrypted to the
recipient device's *sealing key*; the outer
:class:`~boxless.wire.envelope_pb2.SealedEnvelope` holds only a version, an
ephemeral public key and the ciphertext.

Encryption is HPKE (RFC 9180) base mode, single shot, with
DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and ChaCha20-Poly1305, and
``info = b"boxless sealed sender v1"`` (so the version is authenticated).
This is the libsodium ``crypto_box_seal`` construction -- a fresh ephemeral
X25519 key per message, ECDH with the recipient's static key, a key derived
from the shared secret *and both public keys*, an AEAD -- in its standardised
form (``crypto_box_seal`` derives a nonce with BLAKE2b and uses
XSalsa20-Poly1305). vodozemac's ``PkEncryption`` does not fit: it is libolm's
key-backup scheme (AES-CBC + HMAC, with the MAC famously not covering the
ciphertext as the Matrix spec notes), which vodozemac keeps for reading old
backups and lists creating new ones as unsupported.

The sealing key is a separate X25519 key pair per device, published in the
signed device bundle next to the Olm keys: vodozemac never exposes the Olm
account's Curve25519 secret, so the envelope cannot be encrypted to it.

Length hiding: the serialised content gets ISO/IEC 7816-4 padding (one
``0x80`` byte, then zeros) up to the next bucket of :data:`BUCKETS` (256 B,
1 KiB, 4 KiB, 16 KiB, 64 KiB, 256 KiB), so an observer learns only the bucket.

What opening proves: nothing yet about the sender. Anyone can seal to a
public key. The claimed device key is proven by the Olm decryption that
follows (a session is bound to the device key it was made with); that the
device belongs to the claimed identity key is identity/'s device
certificate, checked by the chat layer.

Version 2 (:mod:`boxless.crypto.pairwise`) seals the same content under a
key two devices share, for conversations whose topic already names the pair;
this module opens v1 only and gives v2 the content codec and padding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.crypto.errors import CryptoUsageError, TamperedMessage
from boxless.crypto.interfaces import KEY_BYTES, check_key
from boxless.crypto.olm_sessions import OlmCiphertext
from boxless.errors import DecodeError
from boxless.wire import envelope_pb2

ENVELOPE_VERSION: Final = 1
BUCKETS: Final = (256, 1024, 4096, 16384, 65536, 262144)
MAX_CONTENT_BYTES: Final = BUCKETS[-1] - 1  # at least one padding byte
AEAD_TAG_BYTES: Final = 16
_INFO: Final = b"boxless sealed sender v%d" % ENVELOPE_VERSION
_SUITE: Final = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
_CIPHERTEXT_SIZES: Final = frozenset(bucket + AEAD_TAG_BYTES for bucket in BUCKETS)
# A bound checked before parsing: the largest bucket plus generous protobuf framing.
MAX_ENVELOPE_BYTES: Final = BUCKETS[-1] + AEAD_TAG_BYTES + KEY_BYTES + 64


class SealingKeyPair:
    """A device's X25519 sealing key pair. ``repr`` never shows the secret."""

    __slots__ = ("_private", "public_bytes")

    def __init__(self, private: X25519PrivateKey) -> None:
        self._private = private
        self.public_bytes: bytes = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @classmethod
    def generate(cls) -> SealingKeyPair:
        return cls(X25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, private: bytes) -> SealingKeyPair:
        """Restore from :meth:`private_bytes` (as stored, encrypted, by identity/)."""
        check_key("sealing private key", private)
        return cls(X25519PrivateKey.from_private_bytes(private))

    def exchange(self, peer: X25519PublicKey) -> bytes:
        """X25519 with a peer's public key (v2 pair keys; ValueError on a low-order point)."""
        return self._private.exchange(peer)

    def private_bytes(self) -> bytes:
        """The raw 32-byte secret, for the encrypted keystore only."""
        return self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def __repr__(self) -> str:
        return "<SealingKeyPair>"


@dataclass(frozen=True, slots=True)
class OpenedEnvelope:
    """A sealed envelope's content: who claims to have sent it, and the Olm message."""

    sender_identity_key: bytes = field(repr=False)
    sender_device_key: bytes = field(repr=False)
    ciphertext: OlmCiphertext


def bucket_size(length: int, buckets: tuple[int, ...] = BUCKETS) -> int:
    """The padded size for ``length`` content bytes (at least one byte of padding)."""
    for bucket in buckets:
        if length < bucket:
            return bucket
    raise CryptoUsageError(f"sealed content is limited to {buckets[-1] - 1} bytes")


def pad(content: bytes, buckets: tuple[int, ...] = BUCKETS) -> bytes:
    """ISO/IEC 7816-4 padding up to the content's bucket."""
    size = bucket_size(len(content), buckets)
    return content + b"\x80" + bytes(size - len(content) - 1)


def unpad(padded: bytes) -> bytes:
    """Undo :func:`pad`; :class:`DecodeError` if the padding is malformed."""
    stripped = padded.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80:
        raise DecodeError("sealed content has malformed padding")
    return stripped[:-1]


def seal(
    recipient_sealing_key: bytes,
    *,
    sender_identity_key: bytes,
    sender_device_key: bytes,
    ciphertext: OlmCiphertext,
) -> bytes:
    """Wrap an Olm message for the device whose sealing key is ``recipient_sealing_key``."""
    check_key("recipient sealing key", recipient_sealing_key)
    content = content_bytes(sender_identity_key, sender_device_key, ciphertext)
    recipient = X25519PublicKey.from_public_bytes(recipient_sealing_key)
    sealed = _SUITE.encrypt(pad(content), recipient, info=_INFO)
    return envelope_pb2.SealedEnvelope(
        version=ENVELOPE_VERSION,
        ephemeral_key=sealed[:KEY_BYTES],
        ciphertext=sealed[KEY_BYTES:],
    ).SerializeToString()


def open_envelope(keys: SealingKeyPair, data: bytes) -> OpenedEnvelope:
    """Open a sealed envelope addressed to ``keys``.

    Raises :class:`~boxless.errors.DecodeError` for malformed bytes and
    :class:`TamperedMessage` when authentication fails (altered, or sealed to
    another device); nothing else for any input.
    """
    envelope = _parse_envelope(data)
    try:
        padded = _SUITE.decrypt(
            envelope.ephemeral_key + envelope.ciphertext, keys._private, info=_INFO
        )
    except (InvalidTag, ValueError):
        raise TamperedMessage(
            "sealed envelope failed authentication (altered, or not addressed to this device)"
        ) from None
    return parse_content(unpad(padded))


def content_bytes(
    sender_identity_key: bytes, sender_device_key: bytes, ciphertext: OlmCiphertext
) -> bytes:
    """The serialised :class:`~boxless.wire.envelope_pb2.SealedContent` (before padding)."""
    return envelope_pb2.SealedContent(
        sender_identity_key=check_key("sender identity key", sender_identity_key),
        sender_device_key=check_key("sender device key", sender_device_key),
        olm_type=ciphertext.type,
        olm_body=ciphertext.body,
        session_id=ciphertext.session_id,
    ).SerializeToString()


def _parse_envelope(data: bytes) -> envelope_pb2.SealedEnvelope:
    if len(data) > MAX_ENVELOPE_BYTES:
        raise DecodeError("sealed envelope is larger than the largest bucket")
    envelope = envelope_pb2.SealedEnvelope()
    try:
        envelope.ParseFromString(data)
    except ProtobufDecodeError:
        raise DecodeError("sealed envelope is not valid protobuf") from None
    if envelope.version != ENVELOPE_VERSION:
        raise DecodeError(
            "not a v1 sealed envelope (v2 opens with boxless.crypto.pairwise; "
            "other versions are unknown)"
        )
    if len(envelope.ephemeral_key) != KEY_BYTES:
        raise DecodeError("sealed envelope has a malformed ephemeral key")
    if len(envelope.ciphertext) not in _CIPHERTEXT_SIZES:
        raise DecodeError("sealed envelope ciphertext is not a padding bucket")
    return envelope


def parse_content(plain: bytes) -> OpenedEnvelope:
    """Decode an unpadded SealedContent (:class:`DecodeError` if malformed)."""
    content = envelope_pb2.SealedContent()
    try:
        content.ParseFromString(plain)
    except ProtobufDecodeError:
        raise DecodeError("sealed content is not valid protobuf") from None
    if len(content.sender_identity_key) != KEY_BYTES:
        raise DecodeError("sealed content has a malformed sender identity key")
    if len(content.sender_device_key) != KEY_BYTES:
        raise DecodeError("sealed content has a malformed sender device key")
    if content.olm_type not in (0, 1) or not content.olm_body:
        raise DecodeError("sealed content has a malformed Olm message")
    return OpenedEnvelope(
        sender_identity_key=content.sender_identity_key,
        sender_device_key=content.sender_device_key,
        ciphertext=OlmCiphertext(content.olm_type, content.olm_body, content.session_id),
    )
