"""Linked devices: what the identity key says about each of its devices.

Theory of operation
-------------------
A :class:`~boxless.identity.keys.DeviceCertificate` already binds a device's
keys to the identity. Linking more devices adds three signed records (wire:
``boxless/wire/device.proto``), all signed by the **identity key**:

- :class:`DeviceLink` — "this certified device is called *name*, runs on
  *platform*, was linked at *linked_at*" (covers the certificate's digest);
- :class:`DeviceRevocation` — "this device is no longer mine" (sticky: a
  revoked device key is never active again, whatever a later roster says);
- :class:`DeviceRoster` — every device of the identity and every revocation,
  numbered by ``serial`` (the highest verified serial wins). It is published,
  sealed like a bundle, on the identity's bundle topic
  (:func:`encode_published_roster`), next to each device's own bundle.

Old accounts publish no roster: their one device, certified by the identity,
stays valid as before (:func:`device_allowed` with ``roster=None``).

Signatures cover fixed-layout bytes (a domain tag, fixed-length fields,
length-prefixed strings, big-endian u64), never protobuf bytes. Decoders of
untrusted bytes raise :class:`InvalidDeviceRecord` (a peer error).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.errors import ValidationError
from boxless.identity.keys import (
    DEVICE_ID_BYTES,
    KEY_BYTES,
    SIGNATURE_BYTES,
    DeviceCertificate,
    Identity,
    InvalidCertificate,
    open_for_identity,
    require_signature,
    seal_for_identity,
    signed_digest,
    u64,
)
from boxless.wire import device_pb2

RECORD_VERSION = 1
MAX_DEVICES = 8
"""Active devices per identity (a roster naming more is refused)."""
MAX_REVOKED = 64
MAX_NAME = 64
MAX_PLATFORM = 32
MAX_ROSTER_BYTES = 32 * 1024

_LINK_TAG = b"boxless device link v1\x00"
_REVOKE_TAG = b"boxless device revocation v1\x00"
_ROSTER_TAG = b"boxless device roster v1\x00"
_PUBLISHED_INFO = b"boxless published roster v1"
_NONCE_BYTES = 12


class InvalidDeviceRecord(ValidationError):
    """A device link, revocation or roster is malformed or badly signed."""


def _text(value: str) -> bytes:
    raw = value.encode()
    return len(raw).to_bytes(2, "big") + raw


def _check_len(name: str, value: bytes, size: int) -> None:
    if len(value) != size:
        raise InvalidDeviceRecord(f"{name} must be {size} bytes, not {len(value)}")


def _check_time(name: str, value: int) -> None:
    if not 0 <= value < 2**63:
        raise InvalidDeviceRecord(f"{name} is out of range")


def clean_label(value: str, limit: int, what: str) -> str:
    """A device name or platform: printable, trimmed, at most ``limit`` characters."""
    text = " ".join(value.split())
    if not text:
        raise InvalidDeviceRecord(f"the device {what} is empty")
    if len(text) > limit or not text.isprintable():
        raise InvalidDeviceRecord(f"the device {what} must be at most {limit} printable characters")
    return text


# -------------------------------------------------------------------- link


@dataclass(frozen=True, slots=True)
class DeviceLink:
    """The identity's signed description of one of its devices."""

    certificate: DeviceCertificate
    name: str
    platform: str
    linked_at: int
    signature: bytes

    def __post_init__(self) -> None:
        if self.name != clean_label(self.name, MAX_NAME, "name"):
            raise InvalidDeviceRecord("the device name is not in its clean form")
        if self.platform != clean_label(self.platform, MAX_PLATFORM, "platform"):
            raise InvalidDeviceRecord("the device platform is not in its clean form")
        _check_time("linked_at", self.linked_at)
        _check_len("signature", self.signature, SIGNATURE_BYTES)

    @staticmethod
    def signing_bytes(cert: DeviceCertificate, name: str, platform: str, linked_at: int) -> bytes:
        return _LINK_TAG + cert.digest() + _text(name) + _text(platform) + u64(linked_at)

    @classmethod
    def issue(
        cls,
        identity: Identity,
        certificate: DeviceCertificate,
        name: str,
        platform: str,
        linked_at: int,
    ) -> DeviceLink:
        if certificate.identity_key != identity.public_key:
            raise InvalidDeviceRecord("the certificate names another identity")
        name = clean_label(name, MAX_NAME, "name")
        platform = clean_label(platform, MAX_PLATFORM, "platform")
        sig = identity.sign(cls.signing_bytes(certificate, name, platform, linked_at))
        return cls(certificate, name, platform, linked_at, sig)

    @property
    def identity_key(self) -> bytes:
        return self.certificate.identity_key

    @property
    def curve25519(self) -> bytes:
        return self.certificate.device_curve25519

    def verify(self) -> None:
        """Raise InvalidDeviceRecord unless the identity signed the certificate and this."""
        try:
            self.certificate.verify()
        except InvalidCertificate as exc:
            raise InvalidDeviceRecord(str(exc)) from None
        data = self.signing_bytes(self.certificate, self.name, self.platform, self.linked_at)
        require_signature(
            self.identity_key,
            data,
            self.signature,
            InvalidDeviceRecord,
            "the device link is not signed by its identity",
        )

    def digest(self) -> bytes:
        data = self.signing_bytes(self.certificate, self.name, self.platform, self.linked_at)
        return signed_digest(data, self.signature)

    def to_proto(self) -> device_pb2.DeviceLink:
        return device_pb2.DeviceLink(
            version=RECORD_VERSION,
            certificate=self.certificate.to_proto(),
            name=self.name,
            platform=self.platform,
            linked_at=self.linked_at,
            signature=self.signature,
        )

    @classmethod
    def from_proto(cls, msg: device_pb2.DeviceLink) -> DeviceLink:
        if msg.version != RECORD_VERSION:
            raise InvalidDeviceRecord(f"device link version {msg.version} is unsupported")
        if not msg.HasField("certificate"):
            raise InvalidDeviceRecord("the device link has no certificate")
        try:
            cert = DeviceCertificate.from_proto(msg.certificate)
        except InvalidCertificate as exc:
            raise InvalidDeviceRecord(str(exc)) from None
        return cls(cert, msg.name, msg.platform, msg.linked_at, msg.signature)


# -------------------------------------------------------------- revocation


@dataclass(frozen=True, slots=True)
class DeviceRevocation:
    """The identity's signed statement that a device is no longer its own."""

    identity_key: bytes
    device_id: bytes
    device_curve25519: bytes
    revoked_at: int
    signature: bytes

    def __post_init__(self) -> None:
        _check_len("identity_key", self.identity_key, KEY_BYTES)
        _check_len("device_id", self.device_id, DEVICE_ID_BYTES)
        _check_len("device_curve25519", self.device_curve25519, KEY_BYTES)
        _check_time("revoked_at", self.revoked_at)
        _check_len("signature", self.signature, SIGNATURE_BYTES)

    @staticmethod
    def signing_bytes(identity_key: bytes, device_id: bytes, curve: bytes, at: int) -> bytes:
        return _REVOKE_TAG + identity_key + device_id + curve + u64(at)

    @classmethod
    def issue(cls, identity: Identity, link: DeviceLink, revoked_at: int) -> DeviceRevocation:
        cert = link.certificate
        data = cls.signing_bytes(
            identity.public_key, cert.device_id, cert.device_curve25519, revoked_at
        )
        return cls(
            identity.public_key,
            cert.device_id,
            cert.device_curve25519,
            revoked_at,
            identity.sign(data),
        )

    def verify(self) -> None:
        data = self.signing_bytes(
            self.identity_key, self.device_id, self.device_curve25519, self.revoked_at
        )
        require_signature(
            self.identity_key,
            data,
            self.signature,
            InvalidDeviceRecord,
            "the device revocation is not signed by its identity",
        )

    def digest(self) -> bytes:
        data = self.signing_bytes(
            self.identity_key, self.device_id, self.device_curve25519, self.revoked_at
        )
        return signed_digest(data, self.signature)

    def to_proto(self) -> device_pb2.DeviceRevocation:
        return device_pb2.DeviceRevocation(
            version=RECORD_VERSION,
            identity_key=self.identity_key,
            device_id=self.device_id,
            device_curve25519=self.device_curve25519,
            revoked_at=self.revoked_at,
            signature=self.signature,
        )

    @classmethod
    def from_proto(cls, msg: device_pb2.DeviceRevocation) -> DeviceRevocation:
        if msg.version != RECORD_VERSION:
            raise InvalidDeviceRecord(f"device revocation version {msg.version} is unsupported")
        return cls(
            msg.identity_key,
            msg.device_id,
            msg.device_curve25519,
            msg.revoked_at,
            msg.signature,
        )


# ------------------------------------------------------------------ roster


@dataclass(frozen=True, slots=True)
class DeviceRoster:
    """Every device of one identity (and every revocation), signed by it."""

    identity_key: bytes
    serial: int
    issued_at: int
    devices: tuple[DeviceLink, ...]
    revoked: tuple[DeviceRevocation, ...]
    signature: bytes

    def __post_init__(self) -> None:
        _check_len("identity_key", self.identity_key, KEY_BYTES)
        _check_time("serial", self.serial)
        _check_time("issued_at", self.issued_at)
        _check_len("signature", self.signature, SIGNATURE_BYTES)
        if not 1 <= len(self.devices) <= MAX_DEVICES:
            raise InvalidDeviceRecord(f"a roster lists 1 to {MAX_DEVICES} devices")
        if len(self.revoked) > MAX_REVOKED:
            raise InvalidDeviceRecord(f"a roster lists at most {MAX_REVOKED} revocations")
        keys = [d.curve25519 for d in self.devices]
        if len(set(keys)) != len(keys):
            raise InvalidDeviceRecord("a roster lists a device twice")
        gone = {r.device_curve25519 for r in self.revoked}
        if gone & set(keys):
            raise InvalidDeviceRecord("a roster lists a revoked device as active")
        owners = [d.identity_key for d in self.devices] + [r.identity_key for r in self.revoked]
        for owner in owners:
            if owner != self.identity_key:
                raise InvalidDeviceRecord("a roster lists another identity's device")

    @staticmethod
    def signing_bytes(
        identity_key: bytes,
        serial: int,
        issued_at: int,
        devices: Iterable[DeviceLink],
        revoked: Iterable[DeviceRevocation],
    ) -> bytes:
        devs = list(devices)
        revs = list(revoked)
        return (
            _ROSTER_TAG
            + identity_key
            + u64(serial)
            + u64(issued_at)
            + len(devs).to_bytes(2, "big")
            + b"".join(d.digest() for d in devs)
            + len(revs).to_bytes(2, "big")
            + b"".join(r.digest() for r in revs)
        )

    @classmethod
    def issue(
        cls,
        identity: Identity,
        serial: int,
        issued_at: int,
        devices: Iterable[DeviceLink],
        revoked: Iterable[DeviceRevocation] = (),
    ) -> DeviceRoster:
        devs, revs = tuple(devices), tuple(revoked)
        data = cls.signing_bytes(identity.public_key, serial, issued_at, devs, revs)
        return cls(identity.public_key, serial, issued_at, devs, revs, identity.sign(data))

    def verify(self) -> None:
        """Raise InvalidDeviceRecord unless the identity signed this roster and each entry."""
        data = self.signing_bytes(
            self.identity_key, self.serial, self.issued_at, self.devices, self.revoked
        )
        require_signature(
            self.identity_key,
            data,
            self.signature,
            InvalidDeviceRecord,
            "the device roster is not signed by its identity",
        )
        for link in self.devices:
            link.verify()
        for rev in self.revoked:
            rev.verify()

    def active(self, curve25519: bytes) -> DeviceLink | None:
        """The active device of this key, or None (unknown or revoked)."""
        for link in self.devices:
            if link.curve25519 == curve25519:
                return link
        return None

    def is_revoked(self, curve25519: bytes) -> bool:
        return any(r.device_curve25519 == curve25519 for r in self.revoked)

    def with_device(self, identity: Identity, link: DeviceLink, now: int) -> DeviceRoster:
        """The next roster, with ``link`` added (refused if revoked or over the limit)."""
        if self.is_revoked(link.curve25519):
            raise InvalidDeviceRecord("that device was revoked; link a new one instead")
        devices = [d for d in self.devices if d.curve25519 != link.curve25519] + [link]
        if len(devices) > MAX_DEVICES:
            raise InvalidDeviceRecord(
                f"an account has at most {MAX_DEVICES} devices; revoke one first"
            )
        return DeviceRoster.issue(identity, self.serial + 1, now, devices, self.revoked)

    def without_device(self, identity: Identity, curve25519: bytes, now: int) -> DeviceRoster:
        """The next roster, with the device revoked (its revocation signed now)."""
        link = self.active(curve25519)
        if link is None:
            raise InvalidDeviceRecord("no active device has that key")
        devices = [d for d in self.devices if d.curve25519 != curve25519]
        if not devices:
            raise InvalidDeviceRecord("the last device cannot be revoked")
        revoked = (*self.revoked, DeviceRevocation.issue(identity, link, now))[-MAX_REVOKED:]
        return DeviceRoster.issue(identity, self.serial + 1, now, devices, revoked)

    def renamed(self, identity: Identity, curve25519: bytes, name: str, now: int) -> DeviceRoster:
        link = self.active(curve25519)
        if link is None:
            raise InvalidDeviceRecord("no active device has that key")
        new = DeviceLink.issue(identity, link.certificate, name, link.platform, link.linked_at)
        devices = [new if d.curve25519 == curve25519 else d for d in self.devices]
        return DeviceRoster.issue(identity, self.serial + 1, now, devices, self.revoked)

    def to_proto(self) -> device_pb2.DeviceRoster:
        return device_pb2.DeviceRoster(
            version=RECORD_VERSION,
            identity_key=self.identity_key,
            serial=self.serial,
            issued_at=self.issued_at,
            devices=[d.to_proto() for d in self.devices],
            revoked=[r.to_proto() for r in self.revoked],
            signature=self.signature,
        )

    def to_bytes(self) -> bytes:
        return self.to_proto().SerializeToString(deterministic=True)

    @classmethod
    def from_proto(cls, msg: device_pb2.DeviceRoster) -> DeviceRoster:
        if msg.version != RECORD_VERSION:
            raise InvalidDeviceRecord(f"device roster version {msg.version} is unsupported")
        if len(msg.devices) > MAX_DEVICES or len(msg.revoked) > MAX_REVOKED:
            raise InvalidDeviceRecord("the device roster lists too many devices")
        return cls(
            msg.identity_key,
            msg.serial,
            msg.issued_at,
            tuple(DeviceLink.from_proto(d) for d in msg.devices),
            tuple(DeviceRevocation.from_proto(r) for r in msg.revoked),
            msg.signature,
        )


def first_roster(identity: Identity, link: DeviceLink, now: int) -> DeviceRoster:
    """The roster of an account that had one device until now."""
    return DeviceRoster.issue(identity, 1, now, [link])


def roster_from_bytes(raw: bytes, identity_key: bytes | None = None) -> DeviceRoster:
    """Decode and verify a roster (untrusted bytes); InvalidDeviceRecord if not sound."""
    if len(raw) > MAX_ROSTER_BYTES:
        raise InvalidDeviceRecord("the device roster is too large")
    msg = device_pb2.DeviceRoster()
    try:
        msg.ParseFromString(raw)
        roster = DeviceRoster.from_proto(msg)
    except (ProtobufDecodeError, ValueError, UnicodeError) as exc:
        raise InvalidDeviceRecord(f"the device roster does not decode: {exc}") from None
    if identity_key is not None and roster.identity_key != identity_key:
        raise InvalidDeviceRecord("the device roster belongs to another identity")
    roster.verify()
    return roster


def newer(held: DeviceRoster | None, candidate: DeviceRoster) -> bool:
    """Whether a verified ``candidate`` replaces ``held`` (a higher serial; never a
    roster that re-activates a device ``held`` revoked)."""
    if held is None:
        return True
    if candidate.serial <= held.serial:
        return False
    return not any(candidate.active(r.device_curve25519) for r in held.revoked)


def device_allowed(roster: DeviceRoster | None, cert: DeviceCertificate) -> bool:
    """Whether a device certified by its identity may still write and be written to:
    with no roster (an account that never linked), any certified device; with one,
    only its active devices."""
    if roster is None:
        return True
    return roster.active(cert.device_curve25519) is not None


# ---------------------------------------------------------------- published


def encode_published_roster(roster: DeviceRoster) -> bytes:
    """The payload published on the identity's bundle topic (sealed like a bundle,
    under another key, so an old reader just skips it as an invalid bundle)."""
    return seal_for_identity(roster.identity_key, _PUBLISHED_INFO, roster.to_bytes())


def decode_published_roster(payload: bytes, identity_key: bytes) -> DeviceRoster:
    """A roster read from ``identity_key``'s bundle topic, verified (untrusted input)."""
    _check_len("identity_key", identity_key, KEY_BYTES)
    if not _NONCE_BYTES + 16 <= len(payload) <= MAX_ROSTER_BYTES + 64:
        raise InvalidDeviceRecord("the published roster has a bad size")
    plain = open_for_identity(identity_key, _PUBLISHED_INFO, payload)
    if plain is None:
        raise InvalidDeviceRecord("the payload is no roster sealed for this identity")
    return roster_from_bytes(plain, identity_key)
