"""Group pictures as attachments: the reference a SetAvatar op carries, its rules,
the picture's preparation, and a non-admin's op (the attacker) refused by the log."""

from __future__ import annotations

import dataclasses
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from boxless.blobs.cid import RAW, Cid
from boxless.chat.attachment import AttachmentKind, AttachmentRef
from boxless.chat.avatar_ref import (
    MAGIC,
    MAX_PICTURE_BYTES,
    MAX_REF_BYTES,
    decode_avatar_ref,
    encode_avatar_ref,
    is_avatar_ref,
)
from boxless.errors import DecodeError, UsageError
from boxless.groups import AddResult, OpStatus, SetAvatar, sign_op
from boxless.groups.ops import MAX_AVATAR_BYTES
from boxless.media.images import ImageRejected, avatar_thumbnail, prepare_avatar
from tests.unit.test_group_membership import ALICE, BASE, CAROL, T0, _fork

PEER = "/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"


def _ref(**kw: object) -> AttachmentRef:
    fields: dict[str, object] = dict(
        cid=bytes(Cid.of(RAW, b"picture")),
        key=bytes(range(32)),
        plaintext_sha256=bytes(32),
        ciphertext_sha256=bytes(32),
        size=40_000,
        mime="image/jpeg",
        name="group-picture.jpeg",
        kind=AttachmentKind.IMAGE,
        width=512,
        height=512,
        blurhash="LEHV6nWB2yk8pyo0adR*.7kCMdnj",
        peers=(PEER, PEER.replace("10.0.0.1", "10.0.0.2"), PEER.replace("10.0.0.1", "10.0.0.3")),
        thumbnail=b"\xff\xd8\xff" + bytes(700),
    )
    fields.update(kw)
    return AttachmentRef(**fields)  # type: ignore[arg-type]


def test_round_trip_and_fits_an_op() -> None:
    assert MAX_REF_BYTES == MAX_AVATAR_BYTES
    ref = _ref()
    raw = encode_avatar_ref(ref)
    assert is_avatar_ref(raw) and len(raw) <= MAX_AVATAR_BYTES
    assert decode_avatar_ref(raw) == ref
    SetAvatar(raw)  # an op accepts it
    # an old inline picture (or none) is not a reference
    assert decode_avatar_ref(b"\x89PNG\r\n\x1a\n...") is None and decode_avatar_ref(b"") is None


@pytest.mark.parametrize(
    "change,reason",
    [
        (dict(size=MAX_PICTURE_BYTES + 1), "at most 256 KiB"),
        (dict(mime="image/svg+xml"), "JPEG, PNG or WebP"),
        (dict(mime="text/html"), "JPEG, PNG or WebP"),
        (dict(kind=AttachmentKind.FILE), "image attachment"),
        (dict(peers=(PEER,) * 4), "at most 3 peers"),
        (dict(thumbnail=bytes(1400)), "holds 1536"),
    ],
)
def test_a_bad_reference_is_refused_both_ways(change: dict[str, object], reason: str) -> None:
    with pytest.raises(UsageError, match=reason):
        encode_avatar_ref(_ref(**change))
    # the same reference forged by hand (as a hostile admin's client would) does not decode
    forged = MAGIC + _ref(**change).to_proto().SerializeToString()
    if len(forged) <= MAX_REF_BYTES:
        with pytest.raises(DecodeError, match=reason):
            decode_avatar_ref(forged)
    else:
        with pytest.raises(DecodeError, match="at most 1536 bytes"):
            decode_avatar_ref(forged)


@given(st.binary(max_size=2000))
@settings(max_examples=300, deadline=None)
def test_decoder_fuzz(tail: bytes) -> None:
    try:
        ref = decode_avatar_ref(MAGIC + tail)
    except DecodeError:
        return
    assert ref is not None and ref.size <= MAX_PICTURE_BYTES and ref.kind is AttachmentKind.IMAGE


def test_a_members_picture_op_is_ignored_by_everyone_else() -> None:
    """The attacker: Carol (a member, not an admin) signs a SetAvatar pointing at her
    own file and sends it; every other member's log refuses it (the state keeps the
    admin's picture), and her own client refuses to make it."""
    group = _fork()
    admins = encode_avatar_ref(_ref())
    group.next_op(ALICE, SetAvatar(admins), T0 + 5)
    carols = encode_avatar_ref(_ref(cid=bytes(Cid.of(RAW, b"carol's"))))
    forged = sign_op(CAROL, group.group_id, SetAvatar(carols), group.heads(), 50, T0 + 6)
    assert group.add(forged) is AddResult.NEW
    assert group.verdict(forged.op_id).status is OpStatus.INVALID
    assert group.state.avatar == admins
    with pytest.raises(UsageError, match="only admins"):
        _fork(BASE).next_op(CAROL, SetAvatar(carols), T0 + 5)


def _photo(size: tuple[int, int], mode: str = "RGB") -> bytes:
    im = Image.new(mode, size, (200, 30, 60) if mode == "RGB" else (200, 30, 60, 128))
    for x in range(0, size[0], 7):  # some detail, so JPEG has something to compress
        for y in range(0, size[1], 11):
            im.putpixel((x, y), (x % 256, y % 256, 90) if mode == "RGB" else (x % 256, 9, 9, 255))
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPS
    buf = io.BytesIO()
    im.save(buf, "JPEG" if mode == "RGB" else "PNG", exif=exif)
    return buf.getvalue()


def test_prepare_avatar_squares_shrinks_and_strips() -> None:
    pic = prepare_avatar(_photo((1600, 900)))
    assert (pic.width, pic.height, pic.mime) == (512, 512, "image/jpeg")
    assert len(pic.data) <= MAX_PICTURE_BYTES and len(pic.blurhash) == 28
    im = Image.open(io.BytesIO(pic.data))
    assert not im.getexif() and "exif" not in im.info
    small = prepare_avatar(_photo((300, 200)))
    assert (small.width, small.height) == (200, 200)  # never enlarged
    clear = prepare_avatar(_photo((100, 100), "RGBA"))
    assert clear.mime == "image/webp"  # transparency kept
    thumb = avatar_thumbnail(pic.data, 900)
    assert 0 < len(thumb) <= 900 and thumb.startswith(b"\xff\xd8\xff")
    assert avatar_thumbnail(pic.data, 10) == b""
    with pytest.raises(ImageRejected, match="not an image"):
        prepare_avatar(b"<svg xmlns='http://www.w3.org/2000/svg'/>")


def test_a_reference_with_the_largest_thumbnail_still_fits() -> None:
    pic = prepare_avatar(_photo((800, 800)))
    bare = _ref(thumbnail=b"")
    budget = MAX_REF_BYTES - len(encode_avatar_ref(bare)) - 4
    full = dataclasses.replace(bare, thumbnail=avatar_thumbnail(pic.data, budget))
    assert full.thumbnail and len(encode_avatar_ref(full)) <= MAX_REF_BYTES
