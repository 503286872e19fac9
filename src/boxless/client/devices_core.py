"""Linking a device, sans-IO: the offer, the checks, the encrypted transfer.

Theory of operation
-------------------
1. The **new device** makes a :class:`PendingDevice` (a fresh Olm account,
   sealing key, fallback key) and shows its :class:`PairingOffer` as a link /
   QR code (``boxless://d/…``): its public keys, its name and platform, a
   one-time 32-byte pairing secret and an expiry. Both screens show the same
   :func:`short_code` (from the secret and the keys) for a person to compare:
   a swapped QR code shows another code.
2. The **existing device** checks the offer (:func:`check_offer`: not expired,
   secret never used before), certifies the new device key with the identity
   key and builds the transfer (:func:`build_transfer`): a snapshot of the
   account, compressed, cut in chunks of :data:`CHUNK_BYTES`, each sealed
   with ChaCha20-Poly1305 under a random transfer key (nonce = chunk index,
   associated data = transfer id, index, count). The transfer key, the
   pairing secret, the snapshot's SHA-256, the device link, the roster and
   the identity key travel in a :class:`PairingHeader` Olm-encrypted to the new
   device (a pre-key message to its offer's Curve25519 and fallback keys).
   Every frame goes on the pairing topic (derived from the secret), so no
   shared LAN is needed and nothing but the new device can read it.
3. The new device's :class:`PairingReceiver` takes frames in any order: it
   accepts the first header that opens with its Olm account and carries its
   secret, its own certificate signed by the identity, and sizes within
   limits; it ignores chunks of other transfers, refuses everything after the
   offer expired, and everything after it finished (a replayed pairing
   message changes nothing).

Errors: :class:`PairingRefused` (a usage or peer error, with what to do).
"""

from __future__ import annotations

import hashlib
import secrets
import zlib
from dataclasses import dataclass, field

import vodozemac
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.errors import UsageError, ValidationError
from boxless.identity.device_certs import (
    MAX_NAME,
    MAX_PLATFORM,
    DeviceLink,
    DeviceRoster,
    InvalidDeviceRecord,
    clean_label,
)
from boxless.identity.keys import (
    DEVICE_ID_BYTES,
    KEY_BYTES,
    Device,
    DeviceCertificate,
    Identity,
    account_curve25519,
    account_ed25519,
    generate_fallback_key,
)
from boxless.wire import device_pb2
from boxless.wire.links import decode_link, encode_link

LINK_PREFIX = "boxless://d/"
OFFER_TTL_S = 600
CHUNK_BYTES = 48 * 1024
MAX_TRANSFER_BYTES = 64 * 1024 * 1024
"""Compressed snapshot bytes a new device accepts (more is refused)."""
MAX_CHUNKS = MAX_TRANSFER_BYTES // CHUNK_BYTES + 1
MAX_SNAPSHOT_BYTES = 512 * 1024 * 1024
"""Uncompressed: a zip bomb stops here."""
MAX_FRAME_BYTES = CHUNK_BYTES + 4096
PREKEY = 0
SECRET_BYTES = 32
_VERSION = 1
_CODE_TAG = b"boxless pairing code v1\x00"
_TOPIC_TAG = b"boxless pairing topic v1\x00"


class PairingRefused(ValidationError):
    """A pairing link, frame or transfer is refused (expired, used, forged, too big)."""


# ------------------------------------------------------------------ the offer


@dataclass(frozen=True, slots=True)
class PairingOffer:
    device_id: bytes
    curve25519: bytes
    ed25519: bytes
    sealing_key: bytes
    fallback_key: bytes
    name: str
    platform: str
    secret: bytes
    expires_at: int

    def __post_init__(self) -> None:
        if len(self.device_id) != DEVICE_ID_BYTES or len(self.secret) != SECRET_BYTES:
            raise PairingRefused("the device link is damaged; show a new one on the new device")
        for key in (self.curve25519, self.ed25519, self.sealing_key, self.fallback_key):
            if len(key) != KEY_BYTES:
                raise PairingRefused("the device link is damaged; show a new one on the new device")
        try:
            clean_label(self.name, MAX_NAME, "name")
            clean_label(self.platform, MAX_PLATFORM, "platform")
        except InvalidDeviceRecord as exc:
            raise PairingRefused(str(exc)) from None
        if not 0 < self.expires_at < 2**63:
            raise PairingRefused("the device link has no valid expiry")

    def to_bytes(self) -> bytes:
        return device_pb2.PairingOffer(
            version=_VERSION,
            device_id=self.device_id,
            curve25519=self.curve25519,
            ed25519=self.ed25519,
            sealing_key=self.sealing_key,
            fallback_key=self.fallback_key,
            name=self.name,
            platform=self.platform,
            secret=self.secret,
            expires_at=self.expires_at,
        ).SerializeToString(deterministic=True)

    @property
    def link(self) -> str:
        return encode_link(LINK_PREFIX, self.to_bytes())

    @property
    def topic(self) -> str:
        return pairing_topic(self.secret)

    @property
    def code(self) -> str:
        return short_code(self)


def offer_from_link(text: str) -> PairingOffer:
    """Decode a device link (untrusted: PairingRefused / UsageError saying what to do)."""
    try:
        raw = decode_link(text, LINK_PREFIX, "device link", UsageError)
    except UsageError as exc:
        raise PairingRefused(str(exc)) from None
    msg = device_pb2.PairingOffer()
    try:
        msg.ParseFromString(raw)
    except (ProtobufDecodeError, ValueError):
        raise PairingRefused("the device link is damaged; copy it again in full") from None
    if msg.version != _VERSION:
        raise PairingRefused("this device link is from another Boxless version; update both")
    return PairingOffer(
        msg.device_id,
        msg.curve25519,
        msg.ed25519,
        msg.sealing_key,
        msg.fallback_key,
        msg.name,
        msg.platform,
        msg.secret,
        msg.expires_at,
    )


def short_code(offer: PairingOffer) -> str:
    """Six digits both screens show (secret and keys in): compare them before confirming."""
    digest = hashlib.sha256(
        _CODE_TAG + offer.secret + offer.curve25519 + offer.ed25519 + offer.sealing_key
    ).digest()
    number = int.from_bytes(digest[:8], "big") % 1_000_000
    return f"{number // 1000:03d} {number % 1000:03d}"


def pairing_topic(secret: bytes) -> str:
    tag = hashlib.sha256(_TOPIC_TAG + secret).hexdigest()[:32]
    return f"/boxless/1/pair-{tag}/proto"


@dataclass(slots=True)
class PendingDevice:
    """The new device's keys while it waits to be linked (kept in memory only)."""

    account: vodozemac.Account
    sealing_private: bytes
    offer: PairingOffer

    @classmethod
    def create(cls, name: str, platform: str, now: float, ttl: int = OFFER_TTL_S) -> PendingDevice:
        account = vodozemac.Account()
        fallback = generate_fallback_key(account)
        sealing = X25519PrivateKey.generate()
        offer = PairingOffer(
            device_id=secrets.token_bytes(DEVICE_ID_BYTES),
            curve25519=account_curve25519(account),
            ed25519=account_ed25519(account),
            sealing_key=sealing.public_key().public_bytes_raw(),
            fallback_key=fallback,
            name=clean_label(name, MAX_NAME, "name"),
            platform=clean_label(platform, MAX_PLATFORM, "platform"),
            secret=secrets.token_bytes(SECRET_BYTES),
            expires_at=int(now) + ttl,
        )
        return cls(account, sealing.private_bytes_raw(), offer)

    def device(self, certificate: DeviceCertificate) -> Device:
        """This device, now certified."""
        return Device(self.account, certificate, self.offer.fallback_key, self.sealing_private)


# ---------------------------------------------------------- the existing side


def check_offer(offer: PairingOffer, now: float, used: bool) -> None:
    """Whether an existing device may take this offer (raise PairingRefused if not)."""
    if now >= offer.expires_at:
        raise PairingRefused("this device link has expired; show a new one on the new device")
    if offer.expires_at > now + 2 * OFFER_TTL_S:
        raise PairingRefused("this device link claims to last too long; show a new one")
    if used:
        raise PairingRefused("this device link was used already; show a new one on the new device")


def certify(
    identity: Identity, offer: PairingOffer, now: float
) -> tuple[DeviceCertificate, DeviceLink]:
    cert = DeviceCertificate.issue(
        identity,
        device_id=offer.device_id,
        device_curve25519=offer.curve25519,
        device_ed25519=offer.ed25519,
        device_sealing_key=offer.sealing_key,
        created_at=int(now),
    )
    return cert, DeviceLink.issue(identity, cert, offer.name, offer.platform, int(now))


def _aead_nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def _aad(transfer_id: bytes, index: int, count: int) -> bytes:
    return transfer_id + index.to_bytes(4, "big") + count.to_bytes(4, "big")


def build_transfer(
    account: vodozemac.Account,
    identity: Identity,
    offer: PairingOffer,
    link: DeviceLink,
    roster: DeviceRoster,
    snapshot: bytes,
    account_name: str,
) -> list[bytes]:
    """Every frame of the transfer (header first), ready for the pairing topic."""
    packed = zlib.compress(snapshot, 6)
    if len(packed) > MAX_TRANSFER_BYTES:
        raise UsageError("the history to hand over is too large; link with fewer days of history")
    chunks = [packed[i : i + CHUNK_BYTES] for i in range(0, len(packed), CHUNK_BYTES)] or [b""]
    transfer_id, key = secrets.token_bytes(16), secrets.token_bytes(32)
    header = device_pb2.PairingHeader(
        version=_VERSION,
        secret=offer.secret,
        transfer_key=key,
        chunks=len(chunks),
        total_bytes=len(packed),
        sha256=hashlib.sha256(packed).digest(),
        link=link.to_proto(),
        roster=roster.to_proto(),
        identity_private_key=identity.private_bytes(),
        account_name=account_name,
    ).SerializeToString(deterministic=True)
    session = account.create_outbound_session(
        vodozemac.Curve25519PublicKey.from_bytes(offer.curve25519),
        vodozemac.Curve25519PublicKey.from_bytes(offer.fallback_key),
    )
    olm_type, olm_body = session.encrypt(header).to_parts()
    sender = account_curve25519(account)
    frames = [
        device_pb2.PairingFrame(
            version=_VERSION,
            transfer_id=transfer_id,
            sender_curve25519=sender,
            olm_type=olm_type + 1,  # 0 means "a chunk" on the wire
            olm_body=olm_body,
        ).SerializeToString()
    ]
    aead = ChaCha20Poly1305(key)
    for i, chunk in enumerate(chunks):
        sealed = aead.encrypt(_aead_nonce(i), chunk, _aad(transfer_id, i, len(chunks)))
        frames.append(
            device_pb2.PairingFrame(
                version=_VERSION, transfer_id=transfer_id, index=i, chunk=sealed
            ).SerializeToString()
        )
    return frames


# --------------------------------------------------------------- the new side


@dataclass(frozen=True, slots=True)
class Linked:
    """What a finished transfer gives the new device."""

    identity: Identity
    device: Device
    link: DeviceLink
    roster: DeviceRoster
    account_name: str
    snapshot: bytes


@dataclass(frozen=True, slots=True)
class Progress:
    done: int
    total: int


@dataclass(slots=True)
class _Header:
    transfer_id: bytes
    key: bytes
    count: int
    total_bytes: int
    sha256: bytes
    link: DeviceLink
    roster: DeviceRoster
    identity: Identity
    account_name: str


@dataclass(slots=True)
class PairingReceiver:
    """The new device's side: frames in (any order), :class:`Linked` out once."""

    pending: PendingDevice
    header: _Header | None = None
    chunks: dict[int, bytes] = field(default_factory=dict)
    early: dict[bytes, dict[int, bytes]] = field(default_factory=dict)
    finished: bool = False

    def receive(self, raw: bytes, now: float) -> Progress | Linked | None:
        """Take one frame: progress, the finished link, or None (ignored: another
        transfer's chunk, a duplicate). Raises PairingRefused for a bad header."""
        if self.finished:
            return None  # a replay after the end changes nothing
        if now >= self.pending.offer.expires_at:
            raise PairingRefused("the pairing expired; show a new link on this device")
        frame = _parse_frame(raw)
        if frame.olm_type:
            if self.header is not None:
                return None  # one transfer per offer: a second header is ignored
            self.header = self._open_header(frame)
            self.chunks = {
                i: c
                for i, c in self.early.pop(frame.transfer_id, {}).items()
                if i < self.header.count
            }
            self.early.clear()
        elif self.header is None:
            bucket = self.early.setdefault(frame.transfer_id, {})
            if len(self.early) <= 4 and len(bucket) < MAX_CHUNKS:
                bucket[frame.index] = frame.chunk
            return None
        elif frame.transfer_id == self.header.transfer_id and frame.index < self.header.count:
            self.chunks[frame.index] = frame.chunk
        else:
            return None
        return self._progress()

    def _progress(self) -> Progress | Linked:
        header = self.header
        assert header is not None
        if len(self.chunks) < header.count:
            return Progress(len(self.chunks), header.count)
        aead = ChaCha20Poly1305(header.key)
        parts = []
        for i in range(header.count):
            try:
                parts.append(
                    aead.decrypt(
                        _aead_nonce(i), self.chunks[i], _aad(header.transfer_id, i, header.count)
                    )
                )
            except InvalidTag:
                del self.chunks[i]  # a forged chunk: wait for the real one
                return Progress(len(self.chunks), header.count)
        packed = b"".join(parts)
        if len(packed) != header.total_bytes or hashlib.sha256(packed).digest() != header.sha256:
            raise PairingRefused("the transfer arrived damaged; link again")
        snapshot = _inflate(packed)
        self.finished = True
        device = self.pending.device(header.link.certificate)
        return Linked(
            header.identity, device, header.link, header.roster, header.account_name, snapshot
        )

    def _open_header(self, frame: device_pb2.PairingFrame) -> _Header:
        offer = self.pending.offer
        if frame.olm_type - 1 != PREKEY or len(frame.sender_curve25519) != KEY_BYTES:
            raise PairingRefused("a pairing message that is not for this device")
        try:
            message = vodozemac.AnyOlmMessage.from_parts(PREKEY, frame.olm_body).to_pre_key()
            assert message is not None
            _session, plain = self.pending.account.create_inbound_session(
                vodozemac.Curve25519PublicKey.from_bytes(frame.sender_curve25519), message
            )
        except (
            vodozemac.DecodeException,
            vodozemac.SessionCreationException,
            vodozemac.KeyException,
        ):
            raise PairingRefused("a pairing message that does not open for this device") from None
        msg = device_pb2.PairingHeader()
        try:
            msg.ParseFromString(plain)
        except (ProtobufDecodeError, ValueError):
            raise PairingRefused("a pairing message that does not decode") from None
        if not secrets.compare_digest(msg.secret, offer.secret):
            raise PairingRefused("a pairing message without this link's secret")
        if not 0 < msg.chunks <= MAX_CHUNKS or msg.total_bytes > MAX_TRANSFER_BYTES:
            raise PairingRefused("the transfer is too large; link with fewer days of history")
        try:
            link = DeviceLink.from_proto(msg.link)
            link.verify()
            roster = DeviceRoster.from_proto(msg.roster)
            roster.verify()
            identity = Identity.from_private_bytes(msg.identity_private_key)
        except (InvalidDeviceRecord, UsageError, ValueError) as exc:
            raise PairingRefused(f"the pairing's certificate is not valid: {exc}") from None
        cert = link.certificate
        if (
            identity.public_key != cert.identity_key
            or roster.identity_key != cert.identity_key
            or roster.active(offer.curve25519) != link
            or cert.device_curve25519 != offer.curve25519
            or cert.device_sealing_key != offer.sealing_key
            or cert.device_ed25519 != offer.ed25519
            or cert.device_id != offer.device_id
        ):
            raise PairingRefused("the pairing certifies another device than this one")
        if len(msg.transfer_key) != 32 or len(msg.sha256) != 32:
            raise PairingRefused("a pairing message that does not decode")
        return _Header(
            frame.transfer_id,
            msg.transfer_key,
            msg.chunks,
            msg.total_bytes,
            msg.sha256,
            link,
            roster,
            identity,
            msg.account_name[:MAX_NAME],
        )


def _parse_frame(raw: bytes) -> device_pb2.PairingFrame:
    if len(raw) > MAX_FRAME_BYTES:
        raise PairingRefused("a pairing message that is too large")
    frame = device_pb2.PairingFrame()
    try:
        frame.ParseFromString(raw)
    except (ProtobufDecodeError, ValueError):
        raise PairingRefused("a pairing message that does not decode") from None
    if frame.version != _VERSION or len(frame.transfer_id) != 16 or frame.index >= MAX_CHUNKS:
        raise PairingRefused("a pairing message that does not decode")
    return frame


def _inflate(packed: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(packed, MAX_SNAPSHOT_BYTES)
    except zlib.error:
        raise PairingRefused("the transfer arrived damaged; link again") from None
    if inflater.unconsumed_tail:
        raise PairingRefused("the transfer unpacks too large; link with fewer days of history")
    return out
