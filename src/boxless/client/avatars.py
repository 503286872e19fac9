"""Profile pictures as contacts share them: which bytes we accept and show."""

from __future__ import annotations

from boxless.chat import envelope as env
from boxless.identity.profile import InvalidProfile


class InvalidAvatar(InvalidProfile):
    """A picture that is not one we share: not PNG/JPEG/WebP, or too large."""


def avatar_mime(data: bytes) -> str:
    """The MIME type of a profile picture from its magic bytes; raise InvalidAvatar.

    Pictures travel in one :class:`~boxless.chat.envelope.ProfileUpdate`, so at
    most ``MAX_AVATAR_BYTES`` (48 KiB). Only the header is checked: the web UI
    shows the picture in an ``<img>``, whose decoder is the browser's.
    """
    if not data:
        raise InvalidAvatar("the picture is empty: choose an image file")
    if len(data) > env.MAX_AVATAR_BYTES:
        raise InvalidAvatar(
            f"the picture is {len(data) // 1024} KiB; the limit is "
            f"{env.MAX_AVATAR_BYTES // 1024} KiB: scale it down (256x256 px as JPEG fits)"
        )
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise InvalidAvatar("the picture must be a PNG, JPEG or WebP image: save it as one")
