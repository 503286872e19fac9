"""``boxless://<kind>/<payload>`` links: base64url (no padding) of some bytes.

Contact links (``boxless://c/``) and group links (``boxless://g/``) share this
text form; each module keeps its own error type and wording of "what".
"""

from __future__ import annotations

import base64
import binascii
import re

from boxless.errors import UsageError

MAX_LINK_CHARS = 4096
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


def encode_link(prefix: str, raw: bytes) -> str:
    """``prefix`` followed by ``raw`` in unpadded base64url."""
    return prefix + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_link(text: str, prefix: str, what: str, error: type[UsageError]) -> bytes:
    """The bytes inside a ``prefix`` link; ``error`` (saying what to do) if it isn't one.

    Line breaks and spaces from copy and paste are tolerated; ``what`` names the
    link for people ("contact link", "group link").
    """
    if len(text) > MAX_LINK_CHARS:
        raise error(f"this is not a Boxless {what}: it is far too long (links start with {prefix})")
    stripped = "".join(text.split())
    if stripped[: len(prefix)].lower() != prefix:
        raise error(f"this is not a Boxless {what}: it should start with {prefix}")
    payload = stripped[len(prefix) :]
    if not payload or not _B64URL.match(payload) or len(payload) % 4 == 1:
        raise error(
            f"the {what} is damaged (it has characters that do not belong); copy it again in full"
        )
    try:
        return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    except (binascii.Error, ValueError):
        raise error(f"the {what} is damaged; copy it again in full") from None
