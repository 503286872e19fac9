"""Photos for attachments: compress like WeChat, strip metadata, refuse bombs. Sans-IO.

Theory of operation
-------------------
:func:`prepare_image` takes the bytes a person picked and returns what is
sent: by default a re-encoded copy (longest edge at most 2048 px, JPEG
quality 80, or WebP if it has transparency), or with ``original=True`` the
same pixels at full size. Either way no metadata leaves the device: a
re-encoded image is written without EXIF/XMP/ICC text, and an original JPEG or
PNG is rewritten segment by segment without its APPn/COM segments (EXIF, XMP,
IPTC, comments) or text/eXIf/tIME chunks -- the compressed pixel data is copied
unchanged. An original whose EXIF rotates it is re-encoded at full size (quality
95) so it is not shown sideways once the EXIF is gone.

Every image also gets a small JPEG thumbnail (at most 8 KiB, or a smaller
budget in an album) that travels inside the message.

Animated GIF/WebP (stickers) are sent byte for byte, not recompressed, up to
:data:`MAX_STICKER_BYTES` (a WebP's EXIF/XMP chunks and a GIF's comments and
application extensions other than looping are cut out; the frames are copied). Every photo
gets a blurhash (:func:`blurhash`, the small encoder of the blurhash spec,
written here: the PyPI packages are unmaintained or need a C build).

Bombs: the pixel count in the header is checked *before* any pixel is decoded
(:data:`MAX_PIXELS`, 50 MP, and for animations the frames times pixels), and
Pillow's own ``DecompressionBombError`` is mapped to the same refusal.
:func:`probe_image` applies the same caps to a received image before a viewer
makes a thumbnail of it.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from dataclasses import dataclass, field
from typing import cast

from PIL import Image, ImageOps, UnidentifiedImageError

from boxless.errors import UsageError

__all__ = [
    "MAX_EDGE",
    "MAX_PIXELS",
    "ImageRejected",
    "PreparedImage",
    "prepare_image",
    "prepare_avatar",
    "avatar_thumbnail",
    "blurhash",
    "probe_image",
    "strip_gif_metadata",
    "strip_jpeg_metadata",
    "strip_png_metadata",
]

MAX_EDGE = 2048
QUALITY = 80
MAX_PIXELS = 50_000_000
MAX_ANIMATION_PIXELS = 200_000_000  # all frames together
MAX_FRAMES = 300
THUMB_EDGE = 320
THUMB_BUDGET = 8 * 1024
MAX_STICKER_BYTES = 8 * 1024**2
BLURHASH_COMPONENTS = (4, 3)
_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


class ImageRejected(UsageError):
    """This file cannot be sent or shown as a photo (not an image, or a bomb)."""


@dataclass(frozen=True, slots=True)
class PreparedImage:
    data: bytes = field(repr=False)
    mime: str
    width: int
    height: int
    thumbnail: bytes = field(repr=False)
    blurhash: str = ""
    animated: bool = False


def _open(data: bytes) -> Image.Image:
    """Open and check the header's size before decoding a single pixel."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageRejected("this file is not an image we can read; send it as a file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(
            "the image has too many pixels (a decompression bomb?); send it as a file"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error):  # a damaged header
        raise ImageRejected("this file is not an image we can read; send it as a file") from None
    if im.format not in _FORMATS:
        raise ImageRejected(f"{im.format} images are sent as files, not photos")
    w, h = im.size
    frames = getattr(im, "n_frames", 1)
    if w * h > MAX_PIXELS or frames > MAX_FRAMES or w * h * frames > MAX_ANIMATION_PIXELS:
        raise ImageRejected(
            f"the image is {w}x{h} pixels{f' x {frames} frames' if frames > 1 else ''}, over the "
            f"{MAX_PIXELS // 1_000_000} MP limit (a decompression bomb?); send it as a file"
        )
    return im


def probe_image(data: bytes) -> tuple[str, int, int]:
    """MIME type and size of an image, with the bomb caps; decodes nothing."""
    im = _open(data)
    return _FORMATS[str(im.format)], im.width, im.height


def _load(im: Image.Image) -> Image.Image:
    try:
        im.load()
        out = ImageOps.exif_transpose(im)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageRejected(
            f"the image is damaged ({type(exc).__name__}); send it as a file"
        ) from None
    return out if out is not None else im


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)


def _encode(im: Image.Image, fmt: str, quality: int) -> bytes:
    buf = io.BytesIO()
    clean = im.copy()
    clean.info = {}  # no EXIF, XMP, ICC text or comments are carried over
    if fmt == "JPEG":
        clean.convert("RGB").save(buf, "JPEG", quality=quality, optimize=True, progressive=True)
    else:
        clean.save(buf, "WEBP", quality=quality, method=4)
    return buf.getvalue()


def make_thumbnail(im: Image.Image, budget: int = THUMB_BUDGET) -> bytes:
    """A JPEG of at most ``budget`` bytes, as large and clear as fits."""
    edge, quality = THUMB_EDGE, 60
    while True:
        small = im.copy()
        small.thumbnail((edge, edge))
        if _has_alpha(small):
            bg = Image.new("RGB", small.size, (255, 255, 255))
            bg.paste(small.convert("RGBA"), mask=small.convert("RGBA").split()[3])
            small = bg
        out = _encode(small, "JPEG", quality)
        if len(out) <= budget or edge <= 32:
            if len(out) > budget:
                raise ImageRejected("no thumbnail fits the budget")
            return out
        if quality > 35:
            quality -= 10
        else:
            edge = edge * 3 // 4


def prepare_image(
    data: bytes, *, original: bool = False, thumb_budget: int = THUMB_BUDGET
) -> PreparedImage:
    """What to send for a photo: compressed (default) or original, metadata gone.

    Raises :class:`ImageRejected` (with what to do) for non-images and bombs.
    """
    im = _open(data)
    fmt = str(im.format)
    if getattr(im, "n_frames", 1) > 1:
        if len(data) > MAX_STICKER_BYTES:
            raise ImageRejected(
                f"an animated image is at most {MAX_STICKER_BYTES // 1024**2} MiB as a sticker; "
                "send it as a file"
            )
        loaded = _load(im).convert("RGBA")
        thumb = make_thumbnail(loaded, thumb_budget)
        out = strip_webp_metadata(data) if fmt == "WEBP" else strip_gif_metadata(data)
        return PreparedImage(
            out, _FORMATS[fmt], im.width, im.height, thumb, blurhash(loaded), animated=True
        )
    orientation = im.getexif().get(0x0112, 1)
    pixels = _load(im)
    thumb = make_thumbnail(pixels, thumb_budget)
    hashed = blurhash(pixels)
    if original and orientation == 1 and fmt in ("JPEG", "PNG"):
        stripped = strip_jpeg_metadata(data) if fmt == "JPEG" else strip_png_metadata(data)
        return PreparedImage(stripped, _FORMATS[fmt], pixels.width, pixels.height, thumb, hashed)
    if not original and max(pixels.size) > MAX_EDGE:
        pixels = pixels.copy()
        pixels.thumbnail((MAX_EDGE, MAX_EDGE), Image.Resampling.LANCZOS)
    out_fmt = "WEBP" if _has_alpha(pixels) else "JPEG"
    if pixels.mode not in ("RGB", "RGBA", "L"):
        pixels = pixels.convert("RGBA" if out_fmt == "WEBP" else "RGB")
    quality = 95 if original else QUALITY
    out = _encode(pixels, out_fmt, quality)
    return PreparedImage(out, _FORMATS[out_fmt], pixels.width, pixels.height, thumb, hashed)


AVATAR_EDGE = 512
AVATAR_MAX_BYTES = 256 * 1024


def prepare_avatar(data: bytes, edge: int = AVATAR_EDGE) -> PreparedImage:
    """A group or profile picture: the centre square, at most ``edge`` px, JPEG (WebP
    with transparency), no metadata, at most :data:`AVATAR_MAX_BYTES`; no thumbnail
    (see :func:`avatar_thumbnail`). Raises :class:`ImageRejected` for non-images and bombs.
    """
    pixels = _load(_open(data))  # an animation's first frame
    side = min(pixels.size)
    left, top = (pixels.width - side) // 2, (pixels.height - side) // 2
    square = pixels.crop((left, top, left + side, top + side))
    if side > edge:
        square = square.resize((edge, edge), Image.Resampling.LANCZOS)
    fmt = "WEBP" if _has_alpha(square) else "JPEG"
    square = square.convert("RGBA" if fmt == "WEBP" else "RGB")
    for quality in (85, 70, 55, 40):
        out = _encode(square, fmt, quality)
        if len(out) <= AVATAR_MAX_BYTES:
            mime = _FORMATS[fmt]
            return PreparedImage(out, mime, square.width, square.height, b"", blurhash(square))
    raise ImageRejected("the picture does not compress below 256 KiB; choose a simpler one")


def avatar_thumbnail(data: bytes, budget: int) -> bytes:
    """A small JPEG of a prepared picture within ``budget`` bytes (shown while the
    picture loads), or ``b""`` if even 32 px does not fit."""
    im = _load(_open(data))
    for edge in (96, 72, 56, 48, 40, 32):
        for quality in (70, 50, 35):
            small = im.copy()
            small.thumbnail((edge, edge))
            if _has_alpha(small):
                bg = Image.new("RGB", small.size, (255, 255, 255))
                bg.paste(small.convert("RGBA"), mask=small.convert("RGBA").split()[3])
                small = bg
            out = _encode(small, "JPEG", quality)
            if len(out) <= budget:
                return out
    return b""


# -- blurhash (https://github.com/woltapp/blurhash, the reference algorithm) --

_B83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
_TO_LINEAR = [
    (v / 255) / 12.92 if v / 255 <= 0.04045 else ((v / 255 + 0.055) / 1.055) ** 2.4
    for v in range(256)
]


def _b83(value: int, length: int) -> str:
    return "".join(_B83[(value // 83 ** (length - 1 - i)) % 83] for i in range(length))


def _to_srgb(v: float) -> int:
    v = min(max(v, 0.0), 1.0)
    return int((v * 12.92 if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _sign_pow(v: float, e: float) -> float:
    return math.copysign(abs(v) ** e, v)


def blurhash(im: Image.Image, components: tuple[int, int] = BLURHASH_COMPONENTS) -> str:
    """The blurhash of an image (4×3 components: 28 characters), from a 32 px copy."""
    cx, cy = components
    small = im.convert("RGBA") if _has_alpha(im) else im.convert("RGB")
    if small.mode == "RGBA":
        bg = Image.new("RGB", small.size, (255, 255, 255))
        bg.paste(small, mask=small.split()[3])
        small = bg
    small = small.resize((32, 32) if small.width == small.height else _fit32(small.size))
    w, h = small.size
    rgb = cast("list[tuple[int, int, int]]", list(small.get_flattened_data()))
    px = [(_TO_LINEAR[r], _TO_LINEAR[g], _TO_LINEAR[b]) for r, g, b in rgb]
    cos_x = [[math.cos(math.pi * i * x / w) for x in range(w)] for i in range(cx)]
    cos_y = [[math.cos(math.pi * j * y / h) for y in range(h)] for j in range(cy)]
    factors: list[tuple[float, float, float]] = []
    for j in range(cy):
        for i in range(cx):
            r = g = b = 0.0
            for y in range(h):
                row, fy = y * w, cos_y[j][y]
                for x in range(w):
                    basis = cos_x[i][x] * fy
                    pr, pg, pb = px[row + x]
                    r += basis * pr
                    g += basis * pg
                    b += basis * pb
            scale = (1 if i == j == 0 else 2) / (w * h)
            factors.append((r * scale, g * scale, b * scale))
    dc, ac = factors[0], factors[1:]
    out = _b83((cx - 1) + (cy - 1) * 9, 1)
    if ac:
        actual = max(abs(v) for f in ac for v in f)
        quant = max(0, min(82, int(actual * 166 - 0.5)))
        maximum = (quant + 1) / 166
        out += _b83(quant, 1)
    else:
        maximum = 1.0
        out += _b83(0, 1)
    out += _b83((_to_srgb(dc[0]) << 16) + (_to_srgb(dc[1]) << 8) + _to_srgb(dc[2]), 4)
    for f in ac:
        q = [max(0, min(18, int(_sign_pow(v / maximum, 0.5) * 9 + 9.5))) for v in f]
        out += _b83(q[0] * 19 * 19 + q[1] * 19 + q[2], 2)
    return out


def _fit32(size: tuple[int, int]) -> tuple[int, int]:
    w, h = size
    if w >= h:
        return 32, max(1, round(32 * h / w))
    return max(1, round(32 * w / h)), 32


_GIF_KEEP_APPS = (b"NETSCAPE2.0", b"ANIMEXTS1.0")  # looping


def _gif_sub_blocks(data: bytes, pos: int) -> int:
    """The position after the sub-block chain starting at ``pos``."""
    while True:
        if pos >= len(data):
            raise ImageRejected("the GIF file is damaged; send it as a file")
        n = data[pos]
        pos += 1 + n
        if n == 0:
            return pos


def strip_gif_metadata(data: bytes) -> bytes:
    """A GIF without comments and foreign application extensions (XMP); frames unchanged."""
    if len(data) < 13 or data[:3] != b"GIF":
        raise ImageRejected("the GIF file is damaged; send it as a file")
    pos = 13
    if data[10] & 0x80:
        pos += 3 * 2 ** ((data[10] & 7) + 1)
    out = [data[:pos]]
    while pos < len(data):
        start, tag = pos, data[pos]
        if tag == 0x3B:  # trailer
            out.append(b"\x3b")
            break
        if tag == 0x21:
            label = data[pos + 1] if pos + 1 < len(data) else -1
            end = _gif_sub_blocks(data, pos + 2)
            app = data[pos + 3 : pos + 14] if label == 0xFF else b""
            if label != 0xFE and (label != 0xFF or app in _GIF_KEEP_APPS):
                out.append(data[start:end])
            pos = end
        elif tag == 0x2C:
            if pos + 10 > len(data):
                raise ImageRejected("the GIF file is damaged; send it as a file")
            flags = data[pos + 9]
            pos += 10
            if flags & 0x80:
                pos += 3 * 2 ** ((flags & 7) + 1)
            end = _gif_sub_blocks(data, pos + 1)  # after the LZW minimum code size
            out.append(data[start:end])
            pos = end
        else:
            raise ImageRejected("the GIF file is damaged; send it as a file")
    else:
        raise ImageRejected("the GIF file is truncated; send it as a file")
    return b"".join(out)


def strip_webp_metadata(data: bytes) -> bytes:
    """A WebP without its EXIF and XMP chunks (the frames copied unchanged)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ImageRejected("the WebP file is damaged; send it as a file")
    chunks = []
    pos = 12
    while pos + 8 <= len(data):
        fourcc = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        end = pos + 8 + size + (size & 1)
        if end > len(data) + (size & 1):
            raise ImageRejected("the WebP file is damaged; send it as a file")
        chunk = data[pos:end]
        if fourcc == b"VP8X" and size >= 10:
            flags = chunk[8] & ~0x0C  # EXIF (0x08) and XMP (0x04) present: no more
            chunk = chunk[:8] + bytes([flags]) + chunk[9:]
        if fourcc not in (b"EXIF", b"XMP "):
            chunks.append(chunk)
        pos = end
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


# -- metadata strippers for originals (the compressed pixels copied unchanged) --

_JPEG_KEEP_APP = {0xE0, 0xEE}  # JFIF, Adobe (colour transform); APP2 only if ICC


def strip_jpeg_metadata(data: bytes) -> bytes:
    """The JPEG without EXIF/XMP/IPTC/comments (APPn except JFIF/Adobe/ICC, COM)."""
    if data[:2] != b"\xff\xd8":
        raise ImageRejected("not a JPEG file")
    out = bytearray(b"\xff\xd8")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ImageRejected("the JPEG is damaged; send it as a file")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if length < 2 or end > len(data):
            raise ImageRejected("the JPEG is damaged; send it as a file")
        if marker == 0xDA:  # start of scan: the rest is pixel data, copied as is
            out += data[pos:]
            return bytes(out)
        body = data[pos + 4 : end]
        keep = not (0xE0 <= marker <= 0xEF or marker == 0xFE)
        keep = (
            keep
            or marker in _JPEG_KEEP_APP
            or (marker == 0xE2 and body.startswith(b"ICC_PROFILE\x00"))
        )
        if keep:
            out += data[pos:end]
        pos = end
    raise ImageRejected("the JPEG has no image data; send it as a file")


_PNG_DROP = {b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME"}


def strip_png_metadata(data: bytes) -> bytes:
    """The PNG without eXIf, text and time chunks."""
    sig = b"\x89PNG\r\n\x1a\n"
    if not data.startswith(sig):
        raise ImageRejected("not a PNG file")
    out = bytearray(sig)
    pos = len(sig)
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise ImageRejected("the PNG is damaged; send it as a file")
        if kind not in _PNG_DROP:
            out += data[pos:end]
        pos = end
        if kind == b"IEND":
            return bytes(out)
    raise ImageRejected("the PNG is damaged; send it as a file")
