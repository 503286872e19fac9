"""Media metadata: blurhash, stickers passed through, metadata lies refused, re-pin schedule."""

from __future__ import annotations

import dataclasses
import io
import math
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from boxless.blobs.cid import RAW, Cid
from boxless.chat.attachment import (
    AttachmentKind,
    AttachmentRef,
    Attachments,
    decode_attachments,
)
from boxless.client.attachment_transfer import FileInfo, check_info
from boxless.client.attachments import repin_delay_s
from boxless.errors import DecodeError, UsageError
from boxless.media.images import (
    MAX_STICKER_BYTES,
    ImageRejected,
    blurhash,
    prepare_image,
    strip_gif_metadata,
    strip_webp_metadata,
)

_B83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def _dc(hash_: str) -> tuple[int, int, int]:
    value = 0
    for ch in hash_[2:6]:
        value = value * 83 + _B83.index(ch)
    return value >> 16, (value >> 8) & 255, value & 255


def _ref(**kw: object) -> AttachmentRef:
    base: dict[str, object] = dict(
        cid=bytes(Cid.of(RAW, b"x")), key=os.urandom(32), plaintext_sha256=bytes(32),
        ciphertext_sha256=bytes(32), size=10, mime="audio/ogg", name="n.ogg",
        kind=AttachmentKind.VOICE,
    )  # fmt: skip
    base.update(kw)
    return AttachmentRef(**base)  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None)
@given(st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)))
def test_blurhash_of_a_flat_image_carries_its_colour(rgb: tuple[int, int, int]) -> None:
    h = blurhash(Image.new("RGB", (40, 30), rgb))
    assert len(h) == 28 and h[0] == "L" and all(c in _B83 for c in h)
    assert all(abs(a - b) <= 1 for a, b in zip(_dc(h), rgb, strict=True))


def test_blurhash_sees_a_left_right_gradient() -> None:
    im = Image.linear_gradient("L").rotate(90).convert("RGB")  # dark on the right
    h = blurhash(im)
    # the first AC component (horizontal cosine) dominates: its red part is far from 9
    q = _B83.index(h[6]) * 83 + _B83.index(h[7])
    assert abs(q // (19 * 19) - 9) >= 5
    assert not math.isnan(q)


def test_photos_get_a_blurhash_stickers_pass_through_byte_for_byte() -> None:
    buf = io.BytesIO()
    Image.effect_noise((64, 48), 50).convert("RGB").save(buf, "JPEG")
    photo = prepare_image(buf.getvalue())
    assert len(photo.blurhash) == 28 and not photo.animated
    frames = [Image.new("RGB", (32, 32), (i * 60, 0, 0)) for i in range(4)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    gif = buf.getvalue()
    out = prepare_image(gif)
    assert out.animated and out.mime == "image/gif" and out.data == strip_gif_metadata(gif)
    assert Image.open(io.BytesIO(out.data)).n_frames == 4
    exif = Image.Exif()
    exif[0x010E] = "secret-gps"  # ImageDescription
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], duration=80,
                   exif=exif.tobytes())  # fmt: skip
    webp = buf.getvalue()
    assert b"secret-gps" in webp
    out = prepare_image(webp)
    assert out.animated and b"secret-gps" not in out.data
    assert out.data == strip_webp_metadata(webp)
    assert Image.open(io.BytesIO(out.data)).n_frames == 4
    # too big for a sticker: a clear refusal (checked before anything is decoded)
    with pytest.raises(ImageRejected, match="send it as a file"):
        n = MAX_STICKER_BYTES // 256 + 1  # a GIF comment of 255-byte sub-blocks, over the cap
        prepare_image(gif[:-1] + b"\x21\xfe" + (b"\xff" + b"c" * 255) * n + b"\x00\x3b")
    with pytest.raises(ImageRejected):
        strip_gif_metadata(gif[:20])


def test_metadata_lies_are_refused_on_both_sides() -> None:
    _ref(waveform=bytes(100), duration_ms=1)  # the most a voice note carries
    for bad in (
        dict(waveform=bytes(101)),  # waveform too big
        dict(kind=AttachmentKind.FILE, waveform=b"\x01"),  # a waveform on a file
        dict(duration_ms=24 * 3600 * 1000 + 1),  # longer than a day
        dict(width=65536),
        dict(animated=True),  # only a sticker is animated
    ):
        with pytest.raises(UsageError):
            _ref(**bad)
        with pytest.raises(UsageError):  # refused before anything is uploaded
            check_info(FileInfo("n.ogg", "audio/ogg", **{"kind": AttachmentKind.VOICE, **bad}))  # type: ignore[arg-type]
    # from the wire: a peer's lie is a DecodeError; an unknown kind drops the voice fields
    good = Attachments((_ref(waveform=b"\x05" * 10),))
    pb = good.to_proto()
    pb.items[0].waveform = bytes(101)
    with pytest.raises(DecodeError, match="waveform"):
        decode_attachments(pb.SerializeToString())
    pb = good.to_proto()
    pb.items[0].kind = 77  # type: ignore[assignment]
    ref = decode_attachments(pb.SerializeToString()).items[0]
    assert ref.kind is AttachmentKind.FILE and ref.waveform == b""
    # an album list that is too long
    pb = good.to_proto()
    pb.items.extend([pb.items[0]] * 9)
    with pytest.raises(DecodeError, match="1 to 9"):
        decode_attachments(pb.SerializeToString())
    img = dataclasses.replace(_ref(), kind=AttachmentKind.IMAGE, mime="image/jpeg")
    with pytest.raises(UsageError, match="only images and videos"):
        Attachments((img, _ref()))


def test_repin_schedule() -> None:
    delays = [repin_delay_s(t) for t in range(40)]
    assert delays[:3] == [5.0, 10.0, 20.0] and set(delays[3:20]) == {30.0}
    assert delays[20] == 3600.0 and max(delays) == 3600.0
