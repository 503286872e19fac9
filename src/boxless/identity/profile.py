"""The user's profile: display name and avatar, shared with contacts only.

The profile is stored in the encrypted user database (table ``profile`` of the
``identity`` migrations) and travels to contacts as a protobuf ``Profile``
inside end-to-end encrypted messages, never in a public record. The contact
code carries only the display name.

Validation is the same for our own profile (a :class:`InvalidProfile`, the
user's mistake) and a contact's (:func:`decode_profile` raises
:class:`~boxless.errors.DecodeError`, the peer's): a name of 1..64 characters
without control or bidi-override characters; an avatar that really is a PNG or
JPEG image (checked by Pillow), at most 256 KiB and 4096 px a side.
"""

from __future__ import annotations

import io
import struct
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import DecodeError as ProtobufDecodeError
from PIL import Image, UnidentifiedImageError

from boxless.errors import DecodeError, UsageError
from boxless.storage.userdb import UserDB
from boxless.wire import identity_pb2

MAX_NAME_CHARS = 64
MAX_AVATAR_BYTES = 256 * 1024
MAX_AVATAR_SIDE = 4096
PROFILE_VERSION = 1

_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n", "PNG"),
    "image/jpeg": (b"\xff\xd8\xff", "JPEG"),
}
# Characters that reorder or hide text: a name must not impersonate another.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


class InvalidProfile(UsageError):
    """A display name or avatar breaks the rules."""


def validate_display_name(name: str) -> str:
    """Return the name normalised (NFC, outer whitespace stripped), or raise InvalidProfile."""
    clean = unicodedata.normalize("NFC", name).strip()
    if not clean:
        raise InvalidProfile("the display name is empty; choose a name your contacts will see")
    if len(clean) > MAX_NAME_CHARS:
        raise InvalidProfile(
            f"the display name has {len(clean)} characters; the limit is {MAX_NAME_CHARS}"
        )
    if any(unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS for ch in clean):
        raise InvalidProfile("the display name contains control characters")
    return clean


def sniff_avatar_type(data: bytes) -> str:
    """``image/png`` or ``image/jpeg`` from the magic bytes, or raise InvalidProfile."""
    for mime, (magic, _) in _MAGIC.items():
        if data.startswith(magic):
            return mime
    raise InvalidProfile("the avatar must be a PNG or JPEG image")


def validate_avatar(data: bytes) -> str:
    """Check ``data`` is a sane PNG/JPEG avatar; return its MIME type."""
    if len(data) > MAX_AVATAR_BYTES:
        raise InvalidProfile(
            f"the avatar is {len(data) // 1024} KiB; the limit is {MAX_AVATAR_BYTES // 1024} KiB "
            "(resize or recompress it)"
        )
    mime = sniff_avatar_type(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[_MAGIC[mime][1]]) as image:
                width, height = image.size
                image.verify()
    # Pillow reports damaged images through all of these.
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        struct.error,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ):
        raise InvalidProfile("the avatar image is damaged or not really a PNG/JPEG") from None
    if not (0 < width <= MAX_AVATAR_SIDE and 0 < height <= MAX_AVATAR_SIDE):
        raise InvalidProfile(
            f"the avatar is {width}x{height} px; each side must be at most {MAX_AVATAR_SIDE}"
        )
    return mime


@dataclass(frozen=True, slots=True)
class Profile:
    """A validated profile. ``avatar_type`` is set exactly when ``avatar`` is."""

    display_name: str
    avatar: bytes | None = None
    avatar_type: str | None = None
    updated_at: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "display_name", validate_display_name(self.display_name))
        if self.avatar is None:
            if self.avatar_type is not None:
                raise InvalidProfile("avatar_type given without an avatar")
            return
        mime = validate_avatar(self.avatar)
        if self.avatar_type not in (None, mime):
            raise InvalidProfile(f"the avatar is {mime}, not {self.avatar_type}")
        object.__setattr__(self, "avatar_type", mime)

    def __repr__(self) -> str:
        size = "none" if self.avatar is None else f"{len(self.avatar)} bytes"
        return f"Profile(display_name={self.display_name!r}, avatar={size})"

    def encode(self) -> bytes:
        """The protobuf ``Profile`` bytes to send to contacts (inside E2EE only)."""
        return identity_pb2.Profile(
            version=PROFILE_VERSION,
            display_name=self.display_name,
            avatar=self.avatar or b"",
            avatar_type=self.avatar_type or "",
            updated_at=self.updated_at,
        ).SerializeToString()


def decode_profile(data: bytes) -> Profile:
    """Decode a contact's profile; raise DecodeError for anything invalid."""
    if len(data) > MAX_AVATAR_BYTES + 4096:
        raise DecodeError("the profile is too large")
    msg = identity_pb2.Profile()
    try:
        msg.ParseFromString(data)
    except ProtobufDecodeError:
        raise DecodeError("the profile is not a valid protobuf") from None
    if msg.version != PROFILE_VERSION:
        raise DecodeError(f"profile version {msg.version} is unsupported")
    try:
        return Profile(
            display_name=msg.display_name,
            avatar=msg.avatar or None,
            avatar_type=msg.avatar_type or None,
            updated_at=msg.updated_at,
        )
    except InvalidProfile as exc:
        raise DecodeError(f"the contact's profile is invalid: {exc}") from None


def read_avatar_file(path: Path) -> bytes:
    """Read and validate an avatar file (raises InvalidProfile)."""
    try:
        size = path.stat().st_size
        if size > MAX_AVATAR_BYTES:
            raise InvalidProfile(
                f"{path} is {size // 1024} KiB; the avatar limit is {MAX_AVATAR_BYTES // 1024} KiB"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidProfile(f"cannot read the avatar {path}: {exc.strerror}") from None
    validate_avatar(data)
    return data


def save_profile(db: UserDB, profile: Profile) -> None:
    """Store our own profile (needs the ``identity`` migrations applied)."""
    with db.transaction() as cur:
        cur.execute(
            "INSERT INTO profile (id, display_name, avatar, avatar_type, updated_at)"
            " VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " display_name = excluded.display_name, avatar = excluded.avatar,"
            " avatar_type = excluded.avatar_type, updated_at = excluded.updated_at",
            (profile.display_name, profile.avatar, profile.avatar_type, profile.updated_at),
        )


def load_profile(db: UserDB) -> Profile | None:
    """Our own profile, or None if none was saved."""
    with db.transaction() as cur:
        cur.execute("SELECT display_name, avatar, avatar_type, updated_at FROM profile")
        row = cur.fetchone()
    if row is None:
        return None
    name, avatar, avatar_type, updated_at = row
    return Profile(
        display_name=name,
        avatar=bytes(avatar) if avatar is not None else None,
        avatar_type=avatar_type,
        updated_at=int(updated_at),
    )
