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

Bombs: the pixel count in the header is checked *before* any pixel is decoded
(:data:`MAX_PIXELS`, 50 MP, and for animations the frames times pixels), and
Pillow's own ``DecompressionBombError`` is mapped to the same refusal.
:func:`probe_image` applies the same caps to a received image before a viewer
makes a thumbnail of it.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass, field

from PIL import Image, ImageOps, UnidentifiedImageError

from boxless.errors import UsageError

__all__ = [
    "MAX_EDGE",
    "MAX_PIXELS",
    "ImageRejected",
    "PreparedImage",
    "prepare_image",
    "probe_image",
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


def _animated_copy(im: Image.Image) -> bytes:
    """Animated GIF/WebP re-saved frame by frame with no metadata (stickers)."""
    buf = io.BytesIO()
    frames = []
    durations = []
    for i in range(getattr(im, "n_frames", 1)):
        im.seek(i)
        frames.append(im.copy())
        durations.append(int(im.info.get("duration", 100)))
    first = frames[0]
    first.info = {}
    first.save(
        buf,
        str(im.format),
        save_all=True,
        append_images=frames[1:],
        duration=durations,
        loop=0,
        disposal=2,
    )
    return buf.getvalue()


def prepare_image(
    data: bytes, *, original: bool = False, thumb_budget: int = THUMB_BUDGET
) -> PreparedImage:
    """What to send for a photo: compressed (default) or original, metadata gone.

    Raises :class:`ImageRejected` (with what to do) for non-images and bombs.
    """
    im = _open(data)
    fmt = str(im.format)
    if getattr(im, "n_frames", 1) > 1:
        loaded = _load(im)
        thumb = make_thumbnail(loaded.convert("RGBA"), thumb_budget)
        return PreparedImage(_animated_copy(im), _FORMATS[fmt], im.width, im.height, thumb)
    orientation = im.getexif().get(0x0112, 1)
    pixels = _load(im)
    thumb = make_thumbnail(pixels, thumb_budget)
    if original and orientation == 1 and fmt in ("JPEG", "PNG"):
        stripped = strip_jpeg_metadata(data) if fmt == "JPEG" else strip_png_metadata(data)
        return PreparedImage(stripped, _FORMATS[fmt], pixels.width, pixels.height, thumb)
    if not original and max(pixels.size) > MAX_EDGE:
        pixels = pixels.copy()
        pixels.thumbnail((MAX_EDGE, MAX_EDGE), Image.Resampling.LANCZOS)
    out_fmt = "WEBP" if _has_alpha(pixels) else "JPEG"
    if pixels.mode not in ("RGB", "RGBA", "L"):
        pixels = pixels.convert("RGBA" if out_fmt == "WEBP" else "RGB")
    quality = 95 if original else QUALITY
    out = _encode(pixels, out_fmt, quality)
    return PreparedImage(out, _FORMATS[out_fmt], pixels.width, pixels.height, thumb)


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
