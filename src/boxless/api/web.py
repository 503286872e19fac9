"""Serving the web UI, and the image helpers of its QR endpoints.

The UI is plain files in ``boxless/web`` (no build step), mounted at ``/`` by
both the full API app and the onboarding app. Static files carry no secrets, so
:class:`~boxless.api.guard.Guard` lets them through without the token.
"""

from __future__ import annotations

import io
import tempfile
import warnings
from pathlib import Path

from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from boxless.api.errors import ApiError
from boxless.api.params import read_limited
from boxless.identity.contact_code import InvalidContactCode, decode_qr_image, save_qr_png

__all__ = [
    "MAX_QR_IMAGE_BYTES",
    "MAX_QR_PIXELS",
    "WEB_DIR",
    "check_image_size",
    "qr_link",
    "qr_png",
    "read_limited",
    "web_mount",
]

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
MAX_QR_IMAGE_BYTES = 2 * 1024 * 1024
# A 12-megapixel phone photo is 4000x3000; decoded to 8-bit grey it takes 12 MB.
# Bytes alone bound nothing: a 36 KiB PNG of one colour decoded to 722 MiB.
MAX_QR_PIXELS = 16_000_000
QR_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")


class WebMount(Mount):
    """The static web UI at ``/``, never answering for ``/api/`` paths.

    A plain ``Mount("/")`` matches every path, which would turn an API call with
    the wrong method (405) or an unknown API path into a static-file lookup.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get("path", "").startswith("/api/"):
            return Match.NONE, {}
        return super().matches(scope)


def web_mount() -> WebMount:
    """The web UI files shipped in the package (``boxless/web``)."""
    return WebMount("/", app=StaticFiles(directory=WEB_DIR, html=True), name="web")


QR_SCALE = 6
"""Pixels per module: a short link's code (37-45 modules with its 4-module quiet zone)
is 222-270 px, shown 1:1 -- modules big enough for a phone camera across a desk."""


def qr_png(link: str) -> bytes:
    """The QR code of ``link`` as PNG bytes (the same image `boxless whoami --png` saves)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "qr.png"
        save_qr_png(link, path, scale=QR_SCALE)
        return path.read_bytes()


def check_image_size(image: bytes, max_pixels: int = MAX_QR_PIXELS) -> None:
    """Refuse an upload by its header, before anything is decoded: a 422 ApiError if
    it is not a PNG/JPEG/WebP/GIF/BMP image, a 413 if it has more than ``max_pixels``.

    ``Image.open`` reads only the header, so ``.size`` costs nothing however large
    the picture claims to be (Pillow's own bomb check, which raises
    DecompressionBombError past 2 x ``Image.MAX_IMAGE_PIXELS``, would also fire here).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # Pillow warns past 89 MP; we judge the size below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(image), formats=QR_FORMATS) as header:
                width, height = header.size
    except Image.DecompressionBombError:
        raise ApiError(
            413, "image_too_large", "the image has far too many pixels: send a photo of the QR code"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ApiError(
            422, "invalid_image", "the upload is not a PNG, JPEG, WebP, GIF or BMP image"
        ) from None
    if width * height > max_pixels:
        raise ApiError(
            413,
            "image_too_large",
            f"the image is {width}x{height} pixels; the limit is {max_pixels // 1_000_000}"
            " megapixels: crop it to the QR code or shrink it",
        )


def qr_link(image: bytes) -> str:
    """The text of the first QR code in ``image`` (raises InvalidContactCode, or an
    ApiError for an image too large to decode or of another kind)."""
    check_image_size(image)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(image)
        try:
            return decode_qr_image(path)
        except InvalidContactCode as exc:  # say "the image", not our temporary path
            raise InvalidContactCode(str(exc).replace(str(path), "the image")) from None
