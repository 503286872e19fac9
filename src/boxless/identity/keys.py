"""Identity key, device keys, and the signatures that bind them.

Theory of operation
-------------------
An account is one Ed25519 **identity key** (from the recovery phrase, see
:mod:`boxless.identity.seed`). Each device has its own vodozemac Olm
``Account`` (a Curve25519 identity key for Olm plus an Ed25519 signing key).
The identity key signs a :class:`DeviceCertificate` naming the device's keys,
so a contact who trusts the identity key trusts every device it certifies, and
a restored account (same identity, new device) needs no new trust.

A :class:`DeviceBundle` is what a contact needs to open an Olm session while
the device is offline: the certificate, a Curve25519 fallback key (reusable
until rotated) and optionally a one-time key, with a validity window, signed
by the device's own Ed25519 key.

Signatures cover fixed-layout byte strings (``*_signing_bytes``): a domain tag,
then fixed-length fields and big-endian u64 times. Protobuf bytes are not
canonical, so they are never signed. Verification functions take ``now`` as an
argument and raise :class:`InvalidCertificate` / :class:`InvalidBundle`
(peer errors: the bytes came from someone else).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import vodozemac
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.errors import UsageError, ValidationError
from boxless.identity.seed import identity_private_key, phrase_to_seed
from boxless.wire import identity_pb2

KEY_BYTES = 32
SIGNATURE_BYTES = 64
DEVICE_ID_BYTES = 16
RECORD_VERSION = 1
DEFAULT_BUNDLE_VALIDITY = 30 * 86_400
MAX_BUNDLE_VALIDITY = 366 * 86_400
MAX_CLOCK_SKEW = 600

_CERT_TAG = b"boxless device certificate v1\x00"
_BUNDLE_TAG = b"boxless device bundle v1\x00"
_FINGERPRINT_TAG = b"boxless fingerprint v1\x00"


class InvalidCertificate(ValidationError):
    """A device certificate is malformed or its identity signature is wrong."""


class InvalidBundle(ValidationError):
    """A device bundle is malformed, badly signed, or outside its validity window."""


class ExpiredBundle(InvalidBundle):
    """A device bundle's validity window has passed (or not yet begun)."""


# ------------------------------------------------------------------ helpers


def u64(value: int) -> bytes:
    """A time or counter as signed bytes hold it: 8 bytes, big-endian."""
    return value.to_bytes(8, "big")


def _b64(text: str) -> bytes:
    """Decode vodozemac's unpadded standard base64."""
    return base64.b64decode(text + "=" * (-len(text) % 4))


def verify_ed25519(public_key: bytes, data: bytes, signature: bytes) -> bool:
    """True if ``signature`` is ``public_key``'s Ed25519 signature of ``data``."""
    if len(public_key) != KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def require_signature(
    public_key: bytes, data: bytes, signature: bytes, error: type[ValidationError], message: str
) -> None:
    """Raise ``error(message)`` unless ``signature`` is ``public_key``'s signature of ``data``.

    ``data`` is a record's domain-separated signing bytes (its tag, then its fields).
    """
    if not verify_ed25519(public_key, data, signature):
        raise error(message)


def signed_digest(data: bytes, signature: bytes) -> bytes:
    """SHA-256 of a record's signing bytes and signature (what a later signature covers)."""
    return hashlib.sha256(data + signature).digest()


def fingerprint(public_key: bytes) -> str:
    """A short human-comparable fingerprint of an identity key: 8 groups of 4 hex digits."""
    digest = hashlib.sha256(_FINGERPRINT_TAG + public_key).hexdigest()[:32]
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


def _check_len(name: str, value: bytes, size: int, error: type[ValidationError]) -> None:
    if len(value) != size:
        raise error(f"{name} must be {size} bytes, not {len(value)}")


# ----------------------------------------------------------------- identity


class Identity:
    """The account's identity key pair. The private half never leaves this object
    except through :meth:`private_bytes` (for the encrypted keystore only)."""

    __slots__ = ("_private", "_seed", "public_key")

    def __init__(self, private_key: Ed25519PrivateKey, seed: bytes | None = None) -> None:
        self._private = private_key
        self._seed = seed
        self.public_key: bytes = private_key.public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw
        )

    @classmethod
    def from_private_bytes(cls, private: bytes) -> Identity:
        if len(private) != KEY_BYTES:
            raise UsageError(f"an Ed25519 private key has {KEY_BYTES} bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(private))

    @classmethod
    def from_phrase(cls, phrase: str) -> Identity:
        """The identity of a recovery phrase (raises InvalidPhrase if it is not valid)."""
        seed = phrase_to_seed(phrase)
        return cls(Ed25519PrivateKey.from_private_bytes(identity_private_key(seed)), seed)

    def wallet_seed(self) -> bytes | None:
        """The 64-byte BIP-39 seed this identity came from, if known (only right
        after :meth:`from_phrase`, or loaded from the keystore). For deriving the
        wallet keys (:mod:`boxless.payments.hdwallet`) and the encrypted keystore only."""
        return self._seed

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def private_bytes(self) -> bytes:
        """The raw 32-byte private key. Only for the encrypted keystore."""
        return self._private.private_bytes_raw()

    def __repr__(self) -> str:
        return f"Identity(fingerprint={self.fingerprint!r})"


# -------------------------------------------------------------- certificate


@dataclass(frozen=True, slots=True)
class DeviceCertificate:
    """The identity key's statement "this device's Olm keys are mine"."""

    identity_key: bytes
    device_id: bytes
    device_curve25519: bytes
    device_ed25519: bytes
    device_sealing_key: bytes
    created_at: int
    signature: bytes

    def __post_init__(self) -> None:
        _check_len("identity_key", self.identity_key, KEY_BYTES, InvalidCertificate)
        _check_len("device_id", self.device_id, DEVICE_ID_BYTES, InvalidCertificate)
        _check_len("device_curve25519", self.device_curve25519, KEY_BYTES, InvalidCertificate)
        _check_len("device_ed25519", self.device_ed25519, KEY_BYTES, InvalidCertificate)
        _check_len("device_sealing_key", self.device_sealing_key, KEY_BYTES, InvalidCertificate)
        _check_len("signature", self.signature, SIGNATURE_BYTES, InvalidCertificate)
        if not 0 <= self.created_at < 2**63:
            raise InvalidCertificate("created_at is out of range")

    @staticmethod
    def signing_bytes(
        identity_key: bytes,
        device_id: bytes,
        device_curve25519: bytes,
        device_ed25519: bytes,
        device_sealing_key: bytes,
        created_at: int,
    ) -> bytes:
        return (
            _CERT_TAG
            + identity_key
            + device_id
            + device_curve25519
            + device_ed25519
            + device_sealing_key
            + u64(created_at)
        )

    def _signed_bytes(self) -> bytes:
        return self.signing_bytes(
            self.identity_key,
            self.device_id,
            self.device_curve25519,
            self.device_ed25519,
            self.device_sealing_key,
            self.created_at,
        )

    @classmethod
    def issue(
        cls,
        identity: Identity,
        device_id: bytes,
        device_curve25519: bytes,
        device_ed25519: bytes,
        device_sealing_key: bytes,
        created_at: int,
    ) -> DeviceCertificate:
        message = cls.signing_bytes(
            identity.public_key,
            device_id,
            device_curve25519,
            device_ed25519,
            device_sealing_key,
            created_at,
        )
        return cls(
            identity_key=identity.public_key,
            device_id=device_id,
            device_curve25519=device_curve25519,
            device_ed25519=device_ed25519,
            device_sealing_key=device_sealing_key,
            created_at=created_at,
            signature=identity.sign(message),
        )

    @property
    def device_id_hex(self) -> str:
        return self.device_id.hex()

    def verify(self) -> None:
        """Raise InvalidCertificate unless the identity key signed these fields."""
        require_signature(
            self.identity_key,
            self._signed_bytes(),
            self.signature,
            InvalidCertificate,
            "the device certificate's identity signature is invalid",
        )

    def digest(self) -> bytes:
        """SHA-256 of the signed fields and signature (what a bundle signature covers)."""
        return signed_digest(self._signed_bytes(), self.signature)

    def to_proto(self) -> identity_pb2.DeviceCertificate:
        return identity_pb2.DeviceCertificate(
            version=RECORD_VERSION,
            identity_key=self.identity_key,
            device_id=self.device_id,
            device_curve25519=self.device_curve25519,
            device_ed25519=self.device_ed25519,
            device_sealing_key=self.device_sealing_key,
            created_at=self.created_at,
            signature=self.signature,
        )

    @classmethod
    def from_proto(cls, msg: identity_pb2.DeviceCertificate) -> DeviceCertificate:
        """Build from a decoded message; checks shape only (call :meth:`verify`)."""
        if msg.version != RECORD_VERSION:
            raise InvalidCertificate(f"device certificate version {msg.version} is unsupported")
        return cls(
            identity_key=msg.identity_key,
            device_id=msg.device_id,
            device_curve25519=msg.device_curve25519,
            device_ed25519=msg.device_ed25519,
            device_sealing_key=msg.device_sealing_key,
            created_at=msg.created_at,
            signature=msg.signature,
        )


# ------------------------------------------------------------------- bundle


@dataclass(frozen=True, slots=True)
class DeviceBundle:
    """A certified device's keys for starting an Olm session with it offline."""

    certificate: DeviceCertificate
    fallback_key: bytes
    one_time_key: bytes | None
    created_at: int
    expires_at: int
    signature: bytes

    def __post_init__(self) -> None:
        _check_len("fallback_key", self.fallback_key, KEY_BYTES, InvalidBundle)
        if self.one_time_key is not None:
            _check_len("one_time_key", self.one_time_key, KEY_BYTES, InvalidBundle)
        _check_len("signature", self.signature, SIGNATURE_BYTES, InvalidBundle)
        if not 0 <= self.created_at < self.expires_at < 2**63:
            raise InvalidBundle("the bundle's validity window is empty or out of range")
        if self.expires_at - self.created_at > MAX_BUNDLE_VALIDITY:
            raise InvalidBundle("the bundle claims a validity longer than a year")

    @staticmethod
    def signing_bytes(
        certificate: DeviceCertificate,
        fallback_key: bytes,
        one_time_key: bytes | None,
        created_at: int,
        expires_at: int,
    ) -> bytes:
        otk = b"\x01" + one_time_key if one_time_key is not None else b"\x00"
        return (
            _BUNDLE_TAG
            + certificate.digest()
            + fallback_key
            + otk
            + u64(created_at)
            + u64(expires_at)
        )

    # The shape boxless.crypto.interfaces.DeviceBundle expects:

    @property
    def identity_key(self) -> bytes:
        return self.certificate.identity_key

    @property
    def curve25519(self) -> bytes:
        return self.certificate.device_curve25519

    @property
    def ed25519(self) -> bytes:
        return self.certificate.device_ed25519

    @property
    def sealing_key(self) -> bytes:
        return self.certificate.device_sealing_key

    def verify(self, now: float) -> None:
        """Raise InvalidBundle (ExpiredBundle for time) unless the bundle is sound at ``now``."""
        self.certificate.verify()
        message = self.signing_bytes(
            self.certificate, self.fallback_key, self.one_time_key, self.created_at, self.expires_at
        )
        require_signature(
            self.certificate.device_ed25519,
            message,
            self.signature,
            InvalidBundle,
            "the device bundle's device signature is invalid",
        )
        if now >= self.expires_at:
            raise ExpiredBundle(
                "the device bundle expired; ask your contact for a fresh link or QR code"
            )
        if self.created_at > now + MAX_CLOCK_SKEW:
            raise ExpiredBundle(
                "the device bundle was made in the future; check this computer's clock"
            )

    def to_proto(self) -> identity_pb2.DeviceBundle:
        return identity_pb2.DeviceBundle(
            version=RECORD_VERSION,
            certificate=self.certificate.to_proto(),
            fallback_key=self.fallback_key,
            one_time_key=self.one_time_key or b"",
            created_at=self.created_at,
            expires_at=self.expires_at,
            signature=self.signature,
        )

    @classmethod
    def from_proto(cls, msg: identity_pb2.DeviceBundle) -> DeviceBundle:
        """Build from a decoded message; checks shape only (call :meth:`verify`)."""
        if msg.version != RECORD_VERSION:
            raise InvalidBundle(f"device bundle version {msg.version} is unsupported")
        if not msg.HasField("certificate"):
            raise InvalidBundle("the device bundle has no certificate")
        return cls(
            certificate=DeviceCertificate.from_proto(msg.certificate),
            fallback_key=msg.fallback_key,
            one_time_key=msg.one_time_key or None,
            created_at=msg.created_at,
            expires_at=msg.expires_at,
            signature=msg.signature,
        )


_PUBLISHED_INFO = b"boxless published bundle v1"
_NONCE_BYTES = 12


def _published_key(identity_key: bytes, info: bytes = _PUBLISHED_INFO) -> ChaCha20Poly1305:
    hkdf = HKDF(algorithm=SHA256(), length=32, salt=None, info=info)
    return ChaCha20Poly1305(hkdf.derive(identity_key))


def seal_for_identity(identity_key: bytes, info: bytes, plain: bytes) -> bytes:
    """``plain`` sealed under a key derived from ``identity_key`` and ``info`` (a domain tag):
    readable by whoever knows the identity key, by nobody else (a random nonce first)."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return nonce + _published_key(identity_key, info).encrypt(nonce, plain, info)


def open_for_identity(identity_key: bytes, info: bytes, payload: bytes) -> bytes | None:
    """What :func:`seal_for_identity` sealed, or None if ``payload`` was not sealed so."""
    if len(payload) < _NONCE_BYTES + 16:
        return None
    try:
        return _published_key(identity_key, info).decrypt(
            payload[:_NONCE_BYTES], payload[_NONCE_BYTES:], info
        )
    except InvalidTag:
        return None


def encode_published_bundle(bundle: DeviceBundle) -> bytes:
    """The payload a device publishes on its identity's bundle topic.

    The bundle (which names the identity key in its certificate) is encrypted under
    a key derived from the identity key: whoever knows the key -- and so can compute
    the topic -- can read it; a store node or anyone enumerating the archive sees
    neither identity keys nor device keys.
    """
    plain = bundle.to_proto().SerializeToString(deterministic=True)
    return seal_for_identity(bundle.identity_key, _PUBLISHED_INFO, plain)


def decode_published_bundle(payload: bytes, identity_key: bytes, now: float) -> DeviceBundle:
    """A bundle read from ``identity_key``'s bundle topic, fully verified at ``now``.

    Anyone can publish on that topic, so this is untrusted input: raises
    :class:`InvalidBundle` (:class:`ExpiredBundle` for time) unless the payload
    opens under ``identity_key``'s bundle key and holds a well-formed bundle whose
    certificate is signed by ``identity_key`` and whose device signature holds.
    """
    _check_len("identity_key", identity_key, KEY_BYTES, InvalidBundle)
    if len(payload) < _NONCE_BYTES + 16:
        raise InvalidBundle("the published bundle is too short")
    plain = open_for_identity(identity_key, _PUBLISHED_INFO, payload)
    if plain is None:
        raise InvalidBundle("the published bundle was not sealed for this identity")
    bundle = bundle_from_bytes(plain)
    if bundle.identity_key != identity_key:
        raise InvalidBundle("the published bundle belongs to another identity")
    try:
        bundle.verify(now)
    except InvalidCertificate as exc:
        raise InvalidBundle(f"the published bundle's certificate is invalid: {exc}") from None
    return bundle


def bundle_from_bytes(raw: bytes) -> DeviceBundle:
    """A serialized ``DeviceBundle`` back (shape checks only; call ``verify``)."""
    msg = identity_pb2.DeviceBundle()
    try:
        msg.ParseFromString(raw)
        return DeviceBundle.from_proto(msg)
    except (ProtobufDecodeError, InvalidCertificate, ValueError) as exc:
        raise InvalidBundle(f"the bundle does not decode: {exc}") from None


# ------------------------------------------------------------------- device


def account_curve25519(account: vodozemac.Account) -> bytes:
    return account.curve25519_key.to_bytes()


def account_ed25519(account: vodozemac.Account) -> bytes:
    return _b64(account.ed25519_key.to_base64())


def generate_fallback_key(account: vodozemac.Account) -> bytes:
    """Make ``account`` a new fallback key and return its public half.

    vodozemac keeps the new one and the previous one, so sessions started from
    a bundle one rotation old still open.
    """
    acct: Any = account  # the 0.10.0 type stubs omit the fallback-key methods
    acct.generate_fallback_key()
    keys = acct.fallback_key
    if len(keys) != 1:
        raise RuntimeError("vodozemac did not report exactly one unpublished fallback key")
    (key,) = keys.values()
    return bytes(key.to_bytes())


class Device:
    """This device: its Olm account, certificate, fallback key and sealing key.

    ``account`` is the live vodozemac Account; whoever changes it (creating
    sessions, one-time keys) must save it back through the keystore. The
    X25519 sealing key (for sealed-sender envelopes, see
    :mod:`boxless.crypto.sealed`) is separate because vodozemac never exposes
    the Olm Curve25519 secret.
    """

    __slots__ = ("_sealing_private", "account", "certificate", "fallback_key")

    def __init__(
        self,
        account: vodozemac.Account,
        certificate: DeviceCertificate,
        fallback_key: bytes,
        sealing_private_key: bytes,
    ) -> None:
        sealing = X25519PrivateKey.from_private_bytes(sealing_private_key)
        if sealing.public_key().public_bytes_raw() != certificate.device_sealing_key:
            raise UsageError("the sealing key does not match the device certificate")
        if account_curve25519(account) != certificate.device_curve25519:
            raise UsageError("the Olm account does not match the device certificate")
        self.account = account
        self.certificate = certificate
        self.fallback_key = fallback_key
        self._sealing_private = sealing_private_key

    @classmethod
    def create(cls, identity: Identity, now: float) -> Device:
        """A new device with a fresh Olm account and sealing key, certified by ``identity``."""
        account = vodozemac.Account()
        fallback = generate_fallback_key(account)
        sealing = X25519PrivateKey.generate()
        certificate = DeviceCertificate.issue(
            identity,
            device_id=secrets.token_bytes(DEVICE_ID_BYTES),
            device_curve25519=account_curve25519(account),
            device_ed25519=account_ed25519(account),
            device_sealing_key=sealing.public_key().public_bytes_raw(),
            created_at=int(now),
        )
        return cls(account, certificate, fallback, sealing.private_bytes_raw())

    def sealing_private_key(self) -> bytes:
        """The raw X25519 sealing secret (for ``crypto.sealed.SealingKeyPair`` and the keystore)."""
        return self._sealing_private

    @property
    def device_id(self) -> bytes:
        return self.certificate.device_id

    def rotate_fallback_key(self) -> bytes:
        """Replace the fallback key (the previous one keeps working for one rotation)."""
        self.fallback_key = generate_fallback_key(self.account)
        return self.fallback_key

    def bundle(
        self,
        now: float,
        validity: int = DEFAULT_BUNDLE_VALIDITY,
        one_time_key: bytes | None = None,
    ) -> DeviceBundle:
        """A bundle signed by this device's Ed25519 key, valid from ``now`` for ``validity`` s."""
        if not 0 < validity <= MAX_BUNDLE_VALIDITY:
            raise UsageError(f"bundle validity must be 1..{MAX_BUNDLE_VALIDITY} seconds")
        created = int(now)
        expires = created + validity
        message = DeviceBundle.signing_bytes(
            self.certificate, self.fallback_key, one_time_key, created, expires
        )
        signature = _b64(self.account.sign(message).to_base64())
        return DeviceBundle(
            certificate=self.certificate,
            fallback_key=self.fallback_key,
            one_time_key=one_time_key,
            created_at=created,
            expires_at=expires,
            signature=signature,
        )

    def __repr__(self) -> str:
        return f"Device(device_id={self.certificate.device_id_hex!r})"
