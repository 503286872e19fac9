"""Contact codes: a ``boxless://c/...`` link (or its QR code) that lets anyone message you.

Format (version 1)::

    boxless://c/<base64url, no padding, of: version byte 0x01 || ContactCode protobuf>

``ContactCode`` (``wire/identity.proto``) holds a :class:`DeviceBundle` (the
identity-certified device keys plus a fallback key, signed by the device) and
the display name, and is signed by the identity key over
``"boxless contact code v1\\0" || SHA-256(bundle) || UTF-8(name)``. That is
enough for a contact to verify who made the code and open an Olm session while
we are offline.

Short links (version 2, what the UI shows; ~80 characters, a QR code a phone
reads from a screen)::

    boxless://c/<base64url of: 0x02 || identity key (32) || link secret (16) || check (2)>

The bulky, signed part -- the version-1 ``ContactCode`` above -- is published
by the account on a *card topic* derived from the identity key and the link
secret, sealed (ChaCha20-Poly1305) under a key derived from both
(:func:`seal_card`). Whoever holds the link fetches it from a store node,
opens it (:func:`open_card`) and checks it exactly as a long link, plus that
it names the identity the short link names: anyone who has the link can
publish on the topic, but nobody can sign a card for that identity. A store
node sees an opaque ``bundle-`` shaped topic and ciphertext. The secret is
derived from the identity's private key, so a restored account publishes on
the same topic and old short links keep working. The 2-byte check makes a
mistyped link fail offline with "damaged".

Decoding is for untrusted input (a pasted link, a scanned image): every failure
is an :class:`InvalidContactCode` saying which of "not a Boxless link",
"damaged", "signature invalid", "expired" it is; nothing else escapes
(``tests/unit/test_contact_code.py`` and ``test_short_links.py`` fuzz this).
"""

from __future__ import annotations

import hashlib
import io
import secrets
from dataclasses import dataclass
from pathlib import Path

import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.errors import UsageError
from boxless.identity.keys import (
    DEFAULT_BUNDLE_VALIDITY,
    KEY_BYTES,
    SIGNATURE_BYTES,
    Device,
    DeviceBundle,
    ExpiredBundle,
    Identity,
    InvalidBundle,
    InvalidCertificate,
    fingerprint,
    verify_ed25519,
)
from boxless.identity.profile import InvalidProfile, validate_display_name
from boxless.wire import identity_pb2
from boxless.wire.links import decode_link, encode_link

LINK_PREFIX = "boxless://c/"
CODE_VERSION = 1
SHORT_VERSION = 2
SECRET_BYTES = 16
CHECK_BYTES = 2
NONCE_BYTES = 12
MAX_CARD_BYTES = 8192

_TAG = b"boxless contact code v1\x00"


class InvalidContactCode(UsageError):
    """A contact link or QR code cannot be used (the message says why)."""


@dataclass(frozen=True, slots=True)
class ContactCode:
    """A decoded, verified contact code."""

    bundle: DeviceBundle
    display_name: str
    signature: bytes

    @property
    def identity_key(self) -> bytes:
        return self.bundle.identity_key

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.identity_key)

    @property
    def device_id(self) -> bytes:
        return self.bundle.certificate.device_id

    @staticmethod
    def signing_bytes(bundle: DeviceBundle, display_name: str) -> bytes:
        bundle_digest = hashlib.sha256(
            DeviceBundle.signing_bytes(
                bundle.certificate,
                bundle.fallback_key,
                bundle.one_time_key,
                bundle.created_at,
                bundle.expires_at,
            )
            + bundle.signature
        ).digest()
        return _TAG + bundle_digest + display_name.encode("utf-8")

    def to_bytes(self) -> bytes:
        """Version byte followed by the ``ContactCode`` protobuf."""
        msg = identity_pb2.ContactCode(
            bundle=self.bundle.to_proto(),
            display_name=self.display_name,
            signature=self.signature,
        )
        return bytes([CODE_VERSION]) + msg.SerializeToString()

    @property
    def link(self) -> str:
        return encode_link(LINK_PREFIX, self.to_bytes())


def make_contact_code(
    identity: Identity,
    device: Device,
    display_name: str,
    now: float,
    validity: int = DEFAULT_BUNDLE_VALIDITY,
) -> ContactCode:
    """A contact code for this device, valid from ``now`` for ``validity`` seconds."""
    if device.certificate.identity_key != identity.public_key:
        raise UsageError("this device is not certified by this identity")
    name = validate_display_name(display_name)
    bundle = device.bundle(now, validity=validity)
    signature = identity.sign(ContactCode.signing_bytes(bundle, name))
    return ContactCode(bundle=bundle, display_name=name, signature=signature)


def _payload_bytes(text: str) -> bytes:
    return decode_link(text, LINK_PREFIX, "contact link", InvalidContactCode)


# ---------------------------------------------------------------------- short links


def _hkdf(material: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=SHA256(), length=length, salt=None, info=info).derive(material)


def link_check(body: bytes) -> bytes:
    """The 2-byte check a short link ends with (a typo fails offline, not on the network)."""
    return hashlib.sha256(b"boxless link check v1\x00" + body).digest()[:CHECK_BYTES]


def card_content_topic(tag: bytes) -> str:
    """A ``bundle-<32 hex>`` topic for ``tag``: to a service node it looks like any
    bundle topic (one crowd), and without the link it is an opaque hash."""
    return "/boxless/1/bundle-" + tag[:16].hex() + "/proto"


@dataclass(frozen=True, slots=True)
class ShortContactLink:
    """A decoded short contact link: whose it is, and the secret that finds their card."""

    identity_key: bytes
    secret: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.identity_key)

    @property
    def link(self) -> str:
        body = bytes([SHORT_VERSION]) + self.identity_key + self.secret
        return encode_link(LINK_PREFIX, body + link_check(body))

    @property
    def topic(self) -> str:
        """The card topic: where the identity publishes its sealed contact card."""
        return card_content_topic(
            _hkdf(self.identity_key + self.secret, b"boxless contact card topic v1", 16)
        )

    def _aead(self) -> ChaCha20Poly1305:
        return ChaCha20Poly1305(
            _hkdf(self.identity_key + self.secret, b"boxless contact card key v1")
        )


def short_contact_link(identity: Identity) -> ShortContactLink:
    """This identity's short link (the same on every device and after a restore)."""
    secret = _hkdf(identity.private_bytes(), b"boxless contact link secret v1", SECRET_BYTES)
    return ShortContactLink(identity.public_key, secret)


_CARD_AAD = b"boxless contact card v1"


def seal_card(code: ContactCode, short: ShortContactLink) -> bytes:
    """The payload published on ``short.topic``: ``code`` sealed for link holders."""
    if code.identity_key != short.identity_key:
        raise UsageError("a contact card is sealed only under its own identity's link")
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + short._aead().encrypt(nonce, code.to_bytes(), _CARD_AAD)


def open_card(payload: bytes, short: ShortContactLink, now: float) -> ContactCode:
    """A card read from ``short.topic`` (untrusted: anyone with the link may publish
    there), verified at ``now`` and checked to be ``short``'s identity's.

    Raises :class:`InvalidContactCode` for anything wrong.
    """
    if not NONCE_BYTES + 16 < len(payload) <= MAX_CARD_BYTES:
        raise InvalidContactCode("a published contact card has an impossible size")
    try:
        raw = short._aead().decrypt(payload[:NONCE_BYTES], payload[NONCE_BYTES:], _CARD_AAD)
    except InvalidTag:
        raise InvalidContactCode("a published contact card was not sealed for this link") from None
    if not raw or raw[0] != CODE_VERSION:
        raise InvalidContactCode("a published contact card has an unknown format")
    code = decode_contact_code(encode_link(LINK_PREFIX, raw), now)
    if code.identity_key != short.identity_key:
        raise InvalidContactCode(
            "a published contact card belongs to someone else than the link names"
        )
    return code


def decode_contact_link(
    text: str, now: float, *, allow_expired: bool = False
) -> ContactCode | ShortContactLink:
    """A long link decoded and verified (as :func:`decode_contact_code`), or a short
    one decoded (its card is then fetched: see ``boxless.client.links``).

    Raises :class:`InvalidContactCode` (only) for anything wrong with it.
    """
    raw = _payload_bytes(text)
    if raw[0] != SHORT_VERSION:
        return decode_contact_code(text, now, allow_expired=allow_expired)
    return _decode_short(raw)


def _decode_short(raw: bytes) -> ShortContactLink:
    size = 1 + KEY_BYTES + SECRET_BYTES + CHECK_BYTES
    if len(raw) != size or link_check(raw[:-CHECK_BYTES]) != raw[-CHECK_BYTES:]:
        raise InvalidContactCode(
            "the contact link is damaged (a character is missing or mistyped); copy it again"
        )
    return ShortContactLink(raw[1 : 1 + KEY_BYTES], raw[1 + KEY_BYTES : -CHECK_BYTES])


def decode_contact_code(text: str, now: float, *, allow_expired: bool = False) -> ContactCode:
    """Decode and verify a ``boxless://c/`` link at time ``now``.

    Raises :class:`InvalidContactCode` (only) for anything wrong with it. With
    ``allow_expired`` an expired (but authentic) link is returned: its identity
    and name still hold, and its device may have published a fresher bundle.
    """
    raw = _payload_bytes(text)
    if raw[0] == SHORT_VERSION:
        raise InvalidContactCode(
            "this is a short contact link: its keys are fetched from the network "
            "(add it as a contact rather than decoding it offline)"
        )
    if raw[0] != CODE_VERSION:
        raise InvalidContactCode(
            f"the contact link has format version {raw[0]}, which this Boxless does not know; "
            "if your contact uses a newer Boxless, upgrade"
        )
    msg = identity_pb2.ContactCode()
    try:
        msg.ParseFromString(raw[1:])
        if not msg.HasField("bundle"):
            raise InvalidBundle("no device bundle")
        bundle = DeviceBundle.from_proto(msg.bundle)
        name = validate_display_name(msg.display_name)
        if name != msg.display_name or len(msg.signature) != SIGNATURE_BYTES:
            raise InvalidBundle("non-canonical name or bad signature length")
    except (ProtobufDecodeError, InvalidBundle, InvalidCertificate, InvalidProfile):
        raise InvalidContactCode(
            "the contact link is damaged (its contents do not decode); copy it again in full"
        ) from None
    try:
        bundle.verify(min(now, bundle.expires_at - 1) if allow_expired else now)
    except ExpiredBundle as exc:
        raise InvalidContactCode(f"the contact link has expired: {exc}") from None
    except (InvalidBundle, InvalidCertificate):
        raise InvalidContactCode(
            "the contact link's signature is invalid: it was altered or forged; "
            "ask your contact for it again"
        ) from None
    signed = ContactCode.signing_bytes(bundle, name)
    if not verify_ed25519(bundle.identity_key, signed, msg.signature):
        raise InvalidContactCode(
            "the contact link's signature is invalid: it was altered or forged; "
            "ask your contact for it again"
        )
    return ContactCode(bundle=bundle, display_name=name, signature=msg.signature)


# ---------------------------------------------------------------------- QR


SHORT_LINK_CHARS = 120


def _qr(link: str) -> segno.QRCode:
    # A short link (<= 120 characters) gets error level M (a phone camera reading a
    # screen: glare, moire) at version 5-7, 37-45 modules. An old long link keeps
    # level L: ~540 characters at version 16 (81 modules) fits an 85-column terminal.
    # segno raises the level when that costs no extra modules.
    error = "m" if len(link) <= SHORT_LINK_CHARS else "l"
    return segno.make_qr(link, error=error, boost_error=True)


def qr_terminal(link: str) -> str:
    """The QR code of ``link`` as text for a terminal (half-block characters)."""
    out = io.StringIO()
    _qr(link).terminal(out=out, compact=True, border=2)
    return out.getvalue()


def save_qr_png(link: str, path: Path, scale: int = 6) -> None:
    """Write the QR code of ``link`` to ``path`` as a PNG image."""
    try:
        _qr(link).save(str(path), kind="png", scale=scale, border=4)
    except OSError as exc:
        raise UsageError(f"cannot write the QR image {path}: {exc.strerror}") from None


MAX_QR_IMAGE_PIXELS = 16_000_000
"""A 12-megapixel photo fits; a few-KiB PNG claiming 30,000 x 30,000 pixels is refused unread."""
MAX_QR_FILE_BYTES = 32 << 20


def decode_qr_image(path: Path) -> str:
    """Read the first QR code in an image file and return its text (a link to decode).

    Uses zxing-cpp with Pillow; raises InvalidContactCode if the file is not an
    image or holds no readable QR code.
    """
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    try:
        if path.stat().st_size > MAX_QR_FILE_BYTES:
            raise InvalidContactCode(
                f"{path} is larger than {MAX_QR_FILE_BYTES // (1 << 20)} MiB: "
                "send a smaller picture of the QR code"
            )
        data = path.read_bytes()
        # From memory, not the file: Pillow reads a PNG chunk's remainder with one
        # read() of its claimed length, which a file object allocates in full (4 GiB).
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size  # from the header: check before decoding any pixel
            if width * height > MAX_QR_IMAGE_PIXELS:
                raise InvalidContactCode(
                    f"{path} is {width}x{height} pixels, more than Boxless reads "
                    f"({MAX_QR_IMAGE_PIXELS // 1_000_000} megapixels): crop it to the QR code"
                )
            image.load()
            gray = image.convert("L")
        results = zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormats(zxingcpp.QRCode))
    except FileNotFoundError:
        raise InvalidContactCode(f"there is no image file {path}") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError):
        raise InvalidContactCode(f"{path} is not an image Boxless can read") from None
    if not results:
        raise InvalidContactCode(f"no QR code found in {path}; try a sharper, larger picture")
    return str(results[0].text)
