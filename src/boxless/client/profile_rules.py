"""What a profile field may hold: one pure check per field, each raising
:class:`~boxless.identity.profile.InvalidProfile` with what to do.

Used for what the user types (API, CLI) and for what a contact sends: a
contact's status, region and cover are attacker-controlled text and bytes.
"""

from __future__ import annotations

import unicodedata

from boxless.chat import envelope as env
from boxless.client.avatars import InvalidAvatar, avatar_mime
from boxless.identity.profile import InvalidProfile

__all__ = [
    "MAX_ALIAS_CHARS",
    "MAX_NOTE_CHARS",
    "MAX_STATUS_CHARS",
    "MAX_TAGS",
    "MAX_TAG_CHARS",
    "clean_line",
    "clean_note",
    "clean_tags",
    "cover_mime",
]

MAX_ALIAS_CHARS = 64
MAX_STATUS_CHARS = 100
MAX_REGION_CHARS = 64
MAX_FIELD_CHARS = 100  # phone, email, company, birthday
MAX_NOTE_CHARS = 1000
MAX_TAG_CHARS = 32
MAX_TAGS = 20

_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _controls(text: str, allow_newlines: bool = False) -> bool:
    return any(
        (unicodedata.category(ch) == "Cc" and not (allow_newlines and ch == "\n")) or ch in _BIDI
        for ch in text
    )


def clean_line(what: str, text: str, limit: int) -> str:
    """One line of text, NFC, outer spaces stripped, at most ``limit`` characters."""
    clean = unicodedata.normalize("NFC", text).strip()
    if len(clean) > limit:
        raise InvalidProfile(f"the {what} has {len(clean)} characters; the limit is {limit}")
    if _controls(clean):
        raise InvalidProfile(f"the {what} must be one line without control characters")
    return clean


def clean_note(text: str) -> str:
    clean = unicodedata.normalize("NFC", text.replace("\r\n", "\n")).strip()
    if len(clean) > MAX_NOTE_CHARS:
        raise InvalidProfile(f"the note has {len(clean)} characters; the limit is {MAX_NOTE_CHARS}")
    if _controls(clean, allow_newlines=True):
        raise InvalidProfile("the note contains control characters")
    return clean


def clean_tags(tags: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Tags without duplicates (case-insensitively), sorted; empty ones dropped."""
    seen: dict[str, str] = {}
    for tag in tags:
        clean = clean_line("tag", tag, MAX_TAG_CHARS)
        if clean and clean.casefold() not in seen:
            seen[clean.casefold()] = clean
    if len(seen) > MAX_TAGS:
        raise InvalidProfile(f"a contact has at most {MAX_TAGS} tags, not {len(seen)}")
    return tuple(sorted(seen.values(), key=str.casefold))


def cover_mime(data: bytes) -> str:
    """The MIME type of a Moments cover (PNG, JPEG or WebP, at most 12 KiB)."""
    if len(data) > env.MAX_COVER_BYTES:
        raise InvalidAvatar(
            f"the cover photo is {len(data) // 1024} KiB; the limit is "
            f"{env.MAX_COVER_BYTES // 1024} KiB: scale it down (720x270 px as JPEG fits)"
        )
    try:
        return avatar_mime(data)
    except InvalidAvatar as exc:
        raise InvalidAvatar(str(exc).replace("picture", "cover photo")) from None
