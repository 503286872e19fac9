"""The profile-picture check: a picture's magic bytes and size, and nothing else
escapes it but its own error (contacts' pictures are untrusted bytes)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxless.chat.envelope import MAX_AVATAR_BYTES
from boxless.client.core import InvalidAvatar, avatar_mime
from boxless.errors import UsageError

PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff"
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 "


@given(st.binary(max_size=MAX_AVATAR_BYTES + 64))
def test_any_bytes_give_a_type_or_invalid_avatar(data: bytes) -> None:
    try:
        mime = avatar_mime(data)
    except InvalidAvatar as exc:
        assert str(exc)
    else:
        assert mime in ("image/png", "image/jpeg", "image/webp")
        assert len(data) <= MAX_AVATAR_BYTES


@given(st.sampled_from([PNG, JPEG, WEBP]), st.binary(max_size=256))
def test_pictures_are_known_by_their_magic_bytes(magic: bytes, rest: bytes) -> None:
    assert avatar_mime(magic + rest).startswith("image/")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"GIF89a....", "PNG, JPEG or WebP"),
        (b"RIFF\x00\x00\x00\x00WAVE", "PNG, JPEG or WebP"),
        (JPEG + bytes(MAX_AVATAR_BYTES), "scale it down"),
    ],
)
def test_refusals_say_what_to_do(data: bytes, words: str) -> None:
    with pytest.raises(InvalidAvatar, match=words) as info:
        avatar_mime(data)
    assert isinstance(info.value, UsageError)  # the user's mistake: a 400 from the API


def test_the_limit_is_inclusive() -> None:
    assert avatar_mime(JPEG + bytes(MAX_AVATAR_BYTES - len(JPEG))) == "image/jpeg"
