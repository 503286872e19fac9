"""Group links: a ``boxless://g/...`` link (or its QR code) that lets someone join a group.

Format (version 1)::

    boxless://g/<base64url, no padding, of: version byte 0x01 || GroupLink protobuf>

``GroupLink`` (``wire/group.proto``) holds the group's name, an
:class:`~boxless.groups.ops.InviteToken` signed by an admin (group id, expiry,
optionally the one identity it is for, and the admin's DAG heads), and one of
that admin's :class:`~boxless.identity.keys.DeviceBundle` with a display name,
so the joiner can open an Olm session to the admin while the admin is
offline. The admin signs the whole link over
``"boxless group link v1\\0" || SHA-256(token) || SHA-256(bundle) || lp(name) || lp(admin name)``.

Joining: the joiner builds a Join op with :func:`join_op` (its parents are
the token's heads: the joiner cannot read the log yet) and sends it to the
admin over Olm. The admin checks it with :func:`check_token_fresh` against a
real clock, publishes it on the group topic and shares the group's keys;
every member's :class:`~boxless.groups.membership.GroupLog` then validates the
Join by the same rules.

Short links (version 2, what the UI shows; ~60 characters)::

    boxless://g/<base64url of: 0x02 || link secret (16) || commitment (16) || check (2)>

The version-1 link above is published, sealed (ChaCha20-Poly1305) under a key
derived from the random link secret, on a topic derived from it
(:func:`seal_group_link`); a service node sees ciphertext on a random
``bundle-`` shaped topic. The commitment is
``SHA-256(tag || group id || admin identity key)[:16]``: whoever holds the link
can publish on its topic, but what :func:`open_group_link` accepts must be
signed by that admin for that group (and be unexpired), so neither a member
who is no admin nor a stranger can swap in their own invite.

Decoding is for untrusted input (a pasted link, a scanned image): every
failure is an :class:`InvalidGroupLink` saying which of "not a Boxless group
link", "damaged", "signature invalid", "expired" it is; nothing else escapes
(``tests/unit/test_group_invites.py`` and ``test_short_links.py`` fuzz this).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.errors import UsageError
from boxless.groups.membership import GroupLog
from boxless.groups.ops import (
    SIGNATURE_BYTES,
    GroupOp,
    InviteToken,
    Join,
    sign_op,
    validate_group_name,
)
from boxless.identity.contact_code import card_content_topic, link_check
from boxless.identity.keys import (
    MAX_BUNDLE_VALIDITY,
    Device,
    DeviceBundle,
    ExpiredBundle,
    Identity,
    InvalidBundle,
    InvalidCertificate,
    verify_ed25519,
)
from boxless.identity.profile import validate_display_name
from boxless.wire import group_pb2
from boxless.wire.links import decode_link, encode_link

__all__ = [
    "DEFAULT_LINK_VALIDITY",
    "LINK_PREFIX",
    "GroupLink",
    "InvalidGroupLink",
    "ShortGroupLink",
    "check_token_fresh",
    "decode_any_group_link",
    "decode_group_link",
    "join_op",
    "make_group_link",
    "new_short_group_link",
    "open_group_link",
    "seal_group_link",
]

LINK_PREFIX = "boxless://g/"
LINK_VERSION = 1
SHORT_VERSION = 2
SECRET_BYTES = 16
COMMIT_BYTES = 16
NONCE_BYTES = 12
MAX_SEALED_BYTES = 8192
DEFAULT_LINK_VALIDITY = 7 * 86_400

_TAG = b"boxless group link v1\x00"
_FORGED = "the group link's signature is invalid: it was altered or forged; ask for the link again"


class InvalidGroupLink(UsageError):
    """A group link or QR code cannot be used (the message says why)."""


def _lp(value: str) -> bytes:
    raw = value.encode("utf-8")
    return len(raw).to_bytes(4, "big") + raw


def _bundle_digest(bundle: DeviceBundle) -> bytes:
    signed = DeviceBundle.signing_bytes(
        bundle.certificate,
        bundle.fallback_key,
        bundle.one_time_key,
        bundle.created_at,
        bundle.expires_at,
    )
    return hashlib.sha256(signed + bundle.signature).digest()


@dataclass(frozen=True, slots=True)
class GroupLink:
    """A decoded, verified group link."""

    name: str
    token: InviteToken
    admin_bundle: DeviceBundle
    admin_name: str
    signature: bytes

    @property
    def group_id(self) -> bytes:
        return self.token.group_id

    @property
    def admin_key(self) -> bytes:
        return self.token.issuer

    @property
    def expires_at(self) -> float:
        return self.token.expires_at_ms / 1000

    @staticmethod
    def signing_bytes(
        name: str, token: InviteToken, admin_bundle: DeviceBundle, admin_name: str
    ) -> bytes:
        token_digest = hashlib.sha256(token.signed_bytes() + token.signature).digest()
        return _TAG + token_digest + _bundle_digest(admin_bundle) + _lp(name) + _lp(admin_name)

    def to_bytes(self) -> bytes:
        """Version byte followed by the ``GroupLink`` protobuf."""
        msg = group_pb2.GroupLink(
            name=self.name,
            token=self.token.to_proto(),
            admin_bundle=self.admin_bundle.to_proto(),
            admin_name=self.admin_name,
            signature=self.signature,
        )
        return bytes([LINK_VERSION]) + msg.SerializeToString()

    @property
    def link(self) -> str:
        return encode_link(LINK_PREFIX, self.to_bytes())

    def __repr__(self) -> str:
        return f"GroupLink(group={self.group_id.hex()[:8]}, expires_at={self.expires_at})"


def make_group_link(
    identity: Identity,
    device: Device,
    group: GroupLog,
    admin_name: str,
    now: float,
    validity: int = DEFAULT_LINK_VALIDITY,
    invitee: bytes | None = None,
) -> GroupLink:
    """A link to join ``group``, made by admin ``identity`` on ``device``, valid for ``validity`` s.

    Raises UsageError if ``identity`` is not an admin of the group.
    """
    if device.certificate.identity_key != identity.public_key:
        raise UsageError("this device is not certified by this identity")
    if not 0 < validity <= MAX_BUNDLE_VALIDITY:
        raise UsageError(f"a group link is valid for 1..{MAX_BUNDLE_VALIDITY} seconds")
    admin = validate_display_name(admin_name)
    token = group.issue_token(identity, int((now + validity) * 1000), invitee=invitee)
    bundle = device.bundle(now, validity=validity)
    name = group.state.name
    signature = identity.sign(GroupLink.signing_bytes(name, token, bundle, admin))
    return GroupLink(name, token, bundle, admin, signature)


def _payload_bytes(text: str) -> bytes:
    return decode_link(text, LINK_PREFIX, "group link", InvalidGroupLink)


def _parse(raw: bytes) -> GroupLink:
    msg = group_pb2.GroupLink()
    try:
        msg.ParseFromString(raw)
        if not msg.HasField("token") or not msg.HasField("admin_bundle"):
            raise UsageError("missing token or admin bundle")
        token = InviteToken.from_proto(msg.token)
        bundle = DeviceBundle.from_proto(msg.admin_bundle)
        validate_group_name(msg.name)
        if validate_display_name(msg.admin_name) != msg.admin_name:
            raise UsageError("non-canonical admin name")
        if len(msg.signature) != SIGNATURE_BYTES:
            raise UsageError("bad signature length")
    except (ProtobufDecodeError, RecursionError, UsageError, InvalidBundle, InvalidCertificate):
        raise InvalidGroupLink(
            "the group link is damaged (its contents do not decode); copy it again in full"
        ) from None
    return GroupLink(msg.name, token, bundle, msg.admin_name, msg.signature)


def decode_group_link(text: str, now: float) -> GroupLink:
    """Decode and verify a ``boxless://g/`` link at time ``now``.

    Raises :class:`InvalidGroupLink` (only) for anything wrong with it.
    """
    raw = _payload_bytes(text)
    if raw[0] == SHORT_VERSION:
        raise InvalidGroupLink(
            "this is a short group link: the invite it names is fetched from the network"
        )
    if raw[0] != LINK_VERSION:
        raise InvalidGroupLink(
            f"the group link has format version {raw[0]}, which this Boxless does not know; "
            "if it was made by a newer Boxless, upgrade"
        )
    link = _parse(raw[1:])
    if link.admin_bundle.identity_key != link.token.issuer or not link.token.is_signed():
        raise InvalidGroupLink(_FORGED)
    signed = GroupLink.signing_bytes(link.name, link.token, link.admin_bundle, link.admin_name)
    if not verify_ed25519(link.token.issuer, signed, link.signature):
        raise InvalidGroupLink(_FORGED)
    try:
        link.admin_bundle.verify(now)
    except ExpiredBundle as exc:
        raise InvalidGroupLink(f"the group link has expired: {exc}") from None
    except (InvalidBundle, InvalidCertificate):
        raise InvalidGroupLink(_FORGED) from None
    check_token_fresh(link.token, now)
    return link


def check_token_fresh(token: InviteToken, now: float) -> None:
    """Raise :class:`InvalidGroupLink` if ``token`` has expired at ``now`` (Unix seconds).

    An admin relaying a Join calls this with its real clock: the group log
    itself can only compare with the joiner's claimed time.
    """
    if now * 1000 > token.expires_at_ms:
        raise InvalidGroupLink("the group link has expired; ask an admin for a new one")


def join_op(identity: Identity, token: InviteToken, created_at_ms: int) -> GroupOp:
    """The Join op for ``identity`` using ``token``, built on the token's heads."""
    if token.invitee is not None and token.invitee != identity.public_key:
        raise InvalidGroupLink("this group link was made for someone else")
    if created_at_ms > token.expires_at_ms:
        raise InvalidGroupLink("the group link has expired; ask an admin for a new one")
    return sign_op(
        identity, token.group_id, Join(token), token.heads, token.lamport + 1, created_at_ms
    )


# ---------------------------------------------------------------------- short links


def _hkdf(secret: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=SHA256(), length=length, salt=None, info=info).derive(secret)


def _commitment(group_id: bytes, admin_key: bytes) -> bytes:
    return hashlib.sha256(b"boxless group link commit v1\x00" + group_id + admin_key).digest()[
        :COMMIT_BYTES
    ]


_SEAL_AAD = b"boxless sealed group link v1"


@dataclass(frozen=True, slots=True)
class ShortGroupLink:
    """A decoded short group link: the secret that finds the invite, and whose it must be."""

    secret: bytes
    commitment: bytes

    @property
    def link(self) -> str:
        body = bytes([SHORT_VERSION]) + self.secret + self.commitment
        return encode_link(LINK_PREFIX, body + link_check(body))

    @property
    def topic(self) -> str:
        """Where the sealed invite is published (random: it says nothing of the group)."""
        return card_content_topic(_hkdf(self.secret, b"boxless group link topic v1", 16))

    def _aead(self) -> ChaCha20Poly1305:
        return ChaCha20Poly1305(_hkdf(self.secret, b"boxless group link key v1"))

    def names(self, link: GroupLink) -> bool:
        """True if ``link`` is for the group and admin this short link commits to."""
        return secrets.compare_digest(_commitment(link.group_id, link.admin_key), self.commitment)


def new_short_group_link(link: GroupLink) -> ShortGroupLink:
    """A fresh short link (a new random secret) for ``link``."""
    return ShortGroupLink(
        secrets.token_bytes(SECRET_BYTES), _commitment(link.group_id, link.admin_key)
    )


def seal_group_link(link: GroupLink, short: ShortGroupLink) -> bytes:
    """The payload published on ``short.topic``."""
    if not short.names(link):
        raise UsageError("a group link is sealed only under a short link made for it")
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + short._aead().encrypt(nonce, link.to_bytes(), _SEAL_AAD)


def open_group_link(payload: bytes, short: ShortGroupLink, now: float) -> GroupLink:
    """An invite read from ``short.topic`` (untrusted: anyone with the link may publish
    there), verified as a long link at ``now`` and checked to be for the group and
    admin ``short`` commits to. Raises :class:`InvalidGroupLink` for anything wrong."""
    if not NONCE_BYTES + 16 < len(payload) <= MAX_SEALED_BYTES:
        raise InvalidGroupLink("a published group invite has an impossible size")
    try:
        raw = short._aead().decrypt(payload[:NONCE_BYTES], payload[NONCE_BYTES:], _SEAL_AAD)
    except InvalidTag:
        raise InvalidGroupLink("a published group invite was not sealed for this link") from None
    if not raw or raw[0] != LINK_VERSION:
        raise InvalidGroupLink("a published group invite has an unknown format")
    link = decode_group_link(encode_link(LINK_PREFIX, raw), now)
    if not short.names(link):
        raise InvalidGroupLink(
            "a published group invite is for another group or admin than the link names: "
            "ask an admin for the link again"
        )
    return link


def decode_any_group_link(text: str, now: float) -> GroupLink | ShortGroupLink:
    """A long link decoded and verified (as :func:`decode_group_link`), or a short one
    decoded (its invite is then fetched). Raises :class:`InvalidGroupLink` only."""
    raw = _payload_bytes(text)
    if raw[0] != SHORT_VERSION:
        return decode_group_link(text, now)
    if len(raw) != 1 + SECRET_BYTES + COMMIT_BYTES + 2 or link_check(raw[:-2]) != raw[-2:]:
        raise InvalidGroupLink(
            "the group link is damaged (a character is missing or mistyped); copy it again"
        )
    return ShortGroupLink(raw[1 : 1 + SECRET_BYTES], raw[1 + SECRET_BYTES : -2])
