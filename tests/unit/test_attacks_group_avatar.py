"""Group pictures played as the attacker (W7): an admin's picture reference whose
thumbnail every member's browser decodes.

Before the fix the API handed any thumbnail bytes to the page as a data: URL: a
1 KB JPEG whose header claims 60,000 x 60,000 px (a decompression bomb: about
14 GB once decoded) or 4,000 x 4,000 px went to every member. Now only a JPEG,
PNG or WebP of at most 256 px a side is shown; otherwise the page shows the
picture itself, which the client checks as an image with the bomb caps. The
reference's other fields (size, MIME, kind, peers, blurhash) are checked by its
decoder (tests/unit/test_group_avatar_ref.py, with a property test).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from boxless.api.group_avatar_json import avatar_fields
from boxless.chat.avatar_ref import MAX_PICTURE_BYTES, encode_avatar_ref
from boxless.client.group_avatars import PictureUnavailable, judge_picture
from boxless.groups import SetAvatar
from boxless.media.images import ImageRejected, prepare_avatar, probe_image
from tests.unit.test_group_avatar_ref import _ref
from tests.unit.test_group_membership import ALICE, T0, _fork


def _jpeg(size: tuple[int, int], claim: tuple[int, int] | None = None) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buf, "JPEG", quality=30)
    data = buf.getvalue()
    if claim is None:
        return data
    sof = data.index(b"\xff\xc0")  # baseline frame header: length, precision, height, width
    return data[: sof + 5] + struct.pack(">HH", claim[1], claim[0]) + data[sof + 9 :]


_GROUP = _fork()
_GROUP.next_op(ALICE, SetAvatar(encode_avatar_ref(_ref())), T0 + 5)  # an admin's picture op


def _fields(thumbnail: bytes) -> dict[str, object]:
    """The group's JSON once its picture's reference carries ``thumbnail``."""
    raw = encode_avatar_ref(_ref(thumbnail=thumbnail))
    return avatar_fields(dataclasses.replace(_GROUP.state, avatar=raw))


def test_a_bomb_thumbnail_is_not_shown_but_the_picture_is() -> None:
    for claim in ((60_000, 60_000), (4_000, 4_000), (96, 60_000)):
        forged = _jpeg((8, 8), claim)
        assert len(forged) < 1000
        got = _fields(forged)
        assert got["avatar"] is None, claim
        assert str(got["avatar_url"]).startswith("/api/v1/groups/")  # the picture still shows
    for junk in (b"\xff\xd8\xff" + bytes(700), b"<svg onload=alert(1)>", b"GIF89a" + bytes(40)):
        assert _fields(junk)["avatar"] is None


def test_an_honest_thumbnail_is_shown() -> None:
    thumb = _jpeg((96, 96))
    assert _fields(thumb)["avatar"] == base64.b64encode(thumb).decode()


@given(st.binary(max_size=1200))
@settings(max_examples=100, deadline=None)
def test_any_thumbnail_bytes_give_sane_json(thumb: bytes) -> None:
    got = _fields(thumb)
    if got["avatar"] is not None:
        size = Image.open(io.BytesIO(thumb)).size
        assert max(size) <= 256


@given(
    st.one_of(
        st.binary(max_size=600),
        st.sampled_from(
            [b"P1", b"P6\n", b"BM", b"\x89PNG\r\n\x1a\n", b"RIFF", b"\xff\xd8\xff"]
        ).flatmap(lambda head: st.binary(max_size=300).map(lambda tail: head + tail)),
    )
)
@settings(max_examples=300, deadline=None)
def test_the_image_probe_takes_any_bytes(data: bytes) -> None:
    """``probe_image`` reads a peer's bytes (a thumbnail, a fetched group picture): it
    answers or raises ImageRejected, never another error (b"P1" raised ValueError:
    a 500 from the API)."""
    try:
        mime, width, height = probe_image(data)
    except ImageRejected:
        return
    assert mime.startswith("image/") and width * height <= 50_000_000


def test_a_picture_that_decodes_to_hundreds_of_megabytes_is_refused() -> None:
    """An admin's picture within 256 KiB but 7,000 x 7,000 px (one colour compresses
    to almost nothing; ~200 MB in every member's page once decoded): refused before
    it is served; the 512 px pictures we make pass."""
    buf = io.BytesIO()
    Image.new("1", (7000, 7000)).save(buf, "PNG")
    bomb = buf.getvalue()
    assert len(bomb) <= MAX_PICTURE_BYTES and probe_image(bomb)[1:] == (7000, 7000)
    with pytest.raises(PictureUnavailable, match="at most 1024 a side"):
        judge_picture(bomb, _ref(mime="image/png"))
    ours = prepare_avatar(_jpeg((900, 700)))
    assert judge_picture(ours.data, _ref(mime=ours.mime)) == ours.mime
    with pytest.raises(PictureUnavailable, match="not the image/png it claims"):
        judge_picture(ours.data, _ref(mime="image/png"))
