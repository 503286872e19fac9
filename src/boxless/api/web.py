"""Serving the web UI, and the image helpers of its QR endpoints.

The UI is plain files in ``boxless/web`` (no build step), mounted at ``/`` by
both the full API app and the onboarding app. Static files carry no secrets, so
:class:`~boxless.api.app.AuthMiddleware` lets them through without the token.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from starlette.requests import Request
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from boxless.api.errors import ApiError
from boxless.identity.contact_code import InvalidContactCode, decode_qr_image, save_qr_png

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
MAX_QR_IMAGE_BYTES = 2 * 1024 * 1024


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


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, or a 413 ApiError as soon as it grows past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(
                413, "too_large", f"the upload is larger than {limit // (1024 * 1024)} MiB"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def qr_png(link: str) -> bytes:
    """The QR code of ``link`` as PNG bytes (the same image `boxless whoami --png` saves)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "qr.png"
        save_qr_png(link, path, scale=8)
        return path.read_bytes()


def qr_link(image: bytes) -> str:
    """The text of the first QR code in ``image`` (raises InvalidContactCode)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(image)
        try:
            return decode_qr_image(path)
        except InvalidContactCode as exc:  # say "the image", not our temporary path
            raise InvalidContactCode(str(exc).replace(str(path), "the image")) from None
