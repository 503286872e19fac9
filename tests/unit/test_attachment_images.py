"""Photos: compressed by default, originals on request, no EXIF ever, bombs refused."""

from __future__ import annotations

import io
import struct
import time
import zlib

import pytest
from PIL import Image, PngImagePlugin

from boxless.media.images import (
    MAX_EDGE,
    ImageRejected,
    prepare_image,
    probe_image,
    strip_jpeg_metadata,
)

GPS = {1: "N", 2: (52.0, 22.0, 7.5), 3: "E", 4: (4.0, 53.0, 1.0)}


def _photo(w: int, h: int, *, orientation: int = 1, fmt: str = "JPEG") -> bytes:
    im = Image.radial_gradient("L").resize((w, h)).convert("RGB")
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0112] = orientation
    exif.get_ifd(0x8825).update(GPS)
    buf = io.BytesIO()
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", "home address")
        im.save(buf, "PNG", pnginfo=info, exif=exif)
    else:
        im.save(buf, "JPEG", quality=90, exif=exif, comment=b"home address")
    return buf.getvalue()


def _no_metadata(data: bytes) -> None:
    im = Image.open(io.BytesIO(data))
    assert not im.getexif(), "EXIF survived"
    assert b"home address" not in data and b"PhoneMaker" not in data and b"Exif" not in data


def test_compressed_by_default_and_exif_gone() -> None:
    src = _photo(3000, 2000)
    assert b"Exif" in src and b"PhoneMaker" in src
    out = prepare_image(src)
    assert out.mime == "image/jpeg" and (out.width, out.height) == (MAX_EDGE, 1365)
    _no_metadata(out.data)
    assert len(out.thumbnail) <= 8192 and Image.open(io.BytesIO(out.thumbnail)).format == "JPEG"
    _no_metadata(out.thumbnail)


def test_original_keeps_pixels_but_not_metadata() -> None:
    src = _photo(2500, 1000)
    out = prepare_image(src, original=True)
    assert (out.width, out.height) == (2500, 1000)
    _no_metadata(out.data)
    scan = src.index(b"\xff\xda")
    assert out.data.endswith(src[scan:])  # the compressed pixel data copied unchanged
    png = _photo(300, 200, fmt="PNG")
    out = prepare_image(png, original=True)
    assert out.mime == "image/png"
    _no_metadata(out.data)
    assert Image.open(io.BytesIO(out.data)).tobytes() == Image.open(io.BytesIO(png)).tobytes()


def test_a_rotated_original_is_turned_upright_before_its_exif_goes() -> None:
    out = prepare_image(_photo(400, 100, orientation=6), original=True)
    assert (out.width, out.height) == (100, 400)
    _no_metadata(out.data)


def test_transparency_goes_webp_and_thumbnail_budget_holds() -> None:
    im = Image.new("RGBA", (600, 400), (0, 0, 0, 0))
    im.paste((200, 10, 10, 255), (100, 100, 300, 300))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    out = prepare_image(buf.getvalue(), thumb_budget=4096)
    assert out.mime == "image/webp" and len(out.thumbnail) <= 4096
    noisy = Image.effect_noise((900, 900), 100).convert("RGB")
    buf = io.BytesIO()
    noisy.save(buf, "JPEG", quality=95)
    assert len(prepare_image(buf.getvalue(), thumb_budget=4096).thumbnail) <= 4096


def _png_bomb(side: int) -> bytes:
    """A real 1-bit PNG of side x side zero pixels: tiny on disk, huge decoded."""
    row = b"\x00" * (1 + side // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_a_real_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = _png_bomb(20000)  # 400 MP (1.2 GB as RGB) in well under 100 KB
    assert len(bomb) < 100_000
    t0 = time.perf_counter()
    for call in (prepare_image, probe_image):
        with pytest.raises(ImageRejected, match="bomb"):
            call(bomb)
    assert time.perf_counter() - t0 < 1.0
    # and a GIF with absurdly many frames
    frames = [Image.new("RGB", (8, 8), (255 * (i % 2), 0, 0)) for i in range(301)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageRejected, match="frames"):
        prepare_image(buf.getvalue())


def test_not_an_image_or_damaged() -> None:
    for junk in (
        b"",
        b"hello",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"\xff\xd8\xff\xe0\x00",
    ):
        with pytest.raises(ImageRejected):
            prepare_image(junk)
    good = _photo(200, 200)
    with pytest.raises(ImageRejected, match="damaged"):
        prepare_image(good[: len(good) // 2])
    with pytest.raises(ImageRejected):
        strip_jpeg_metadata(b"\xff\xd8\xff\xe1\xff\xff")


def test_an_animated_sticker_stays_animated_without_metadata() -> None:
    frames = [Image.new("RGB", (64, 64), (i * 60, 255 - i * 60, 0)) for i in range(4)]
    buf = io.BytesIO()
    frames[0].save(
        buf, "GIF", save_all=True, append_images=frames[1:], comment=b"home address", duration=50
    )
    out = prepare_image(buf.getvalue())
    assert out.mime == "image/gif" and Image.open(io.BytesIO(out.data)).n_frames == 4
    assert b"home address" not in out.data
