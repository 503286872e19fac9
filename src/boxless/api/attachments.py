"""Attachments: upload a file to a contact, list, fetch, stream and preview files.

- ``POST /api/v1/contacts/{key}/attachments?name=&mime=&caption=&original=`` with the
  file as the raw request body (streamed: encrypted while it arrives, never
  held whole, except a photo: at most 64 MiB, compressed unless ``original=1``,
  its metadata stripped either way) -> 201 ``{id, attachments: [...]}``. The
  declared MIME type is a label only (lower-case ``type/subtype`` or
  ``application/octet-stream``); a photo's comes from its decoded format.
- ``POST /api/v1/groups/{gid}/attachments?...`` the same for a group (``id`` is the
  group message's id).
- ``GET /api/v1/messages/{id}/attachments`` -> ``[{index, name, size, mime, kind,
  width, height, duration_ms, inline, state, done, error, outgoing, thumbnail}]``.
- ``POST /api/v1/messages/{id}/attachments/{index}/download`` fetches and verifies
  now -> the row (``state`` ready or failed, ``error`` says why).
- ``GET /api/v1/messages/{id}/attachments/{index}/content`` streams the verified
  plaintext; a single ``Range: bytes=a-b`` is answered 206 (a video seeks while it
  downloads). Only allowlisted media types are served as themselves; everything
  else is ``application/octet-stream`` as a download.
- ``GET /api/v1/messages/{id}/attachments/{index}/thumbnail`` -> the sender's
  thumbnail if it is a JPEG within the limits, else 404.
- ``GET``/``PUT /api/v1/attachments/settings`` ``{auto_download_bytes}``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from boxless.api.errors import ApiError
from boxless.api.params import parse_body, path_key
from boxless.chat.attachment import MAX_ALBUM_THUMBS, MAX_FILE_BYTES, AttachmentKind
from boxless.client.attachment_store import AttachmentRow
from boxless.client.attachment_transfer import FileInfo
from boxless.client.attachments import NoSuchAttachment
from boxless.client.core import Client
from boxless.media.images import ImageRejected, prepare_image, probe_image

__all__ = ["BODIES", "attachment_routes"]

MAX_PHOTO_BYTES = 64 * 1024**2
PHOTO_MIMES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_KEY = re.compile(r"[0-9a-f]{64}")
_MID = re.compile(r"[0-9a-f]{32}")
_SDS_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


class AutoDownload(BaseModel):
    auto_download_bytes: int = Field(ge=0, le=MAX_FILE_BYTES)


BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("PUT", "/api/v1/attachments/settings"): AutoDownload,
}


def row_json(r: AttachmentRow) -> dict[str, Any]:
    ref = r.ref
    return {
        "index": r.idx,
        "name": ref.name,
        "size": ref.size,
        "mime": ref.mime,
        "kind": ref.kind.name.lower(),
        "width": ref.width,
        "height": ref.height,
        "duration_ms": ref.duration_ms,
        "waveform": list(ref.waveform),
        "blurhash": ref.blurhash,
        "animated": ref.animated,
        "inline": ref.inline,
        "state": r.state,
        "done": r.done,
        "error": r.error,
        "outgoing": r.outgoing,
        "thumbnail": bool(ref.thumbnail),
    }


def _message_id(request: Request) -> bytes:
    """A 1:1 message id (32 hex) as its bytes; a group message id (an SDS id) as ASCII."""
    mid: str = request.path_params["id"]
    if _MID.fullmatch(mid):
        return bytes.fromhex(mid)
    if _SDS_ID.fullmatch(mid):
        return mid.encode()
    raise ApiError(404, "not_found", "no such message")


def _index(request: Request) -> int:
    raw = request.path_params["index"]
    if not raw.isdigit() or int(raw) > 8:
        raise ApiError(404, "not_found", "no such attachment")
    return int(raw)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` byte of a single ``bytes=`` range within ``size``; None: the whole.

    Raises a 416 ApiError for a range that cannot be served.
    """
    if not header:
        return None
    m = _RANGE.fullmatch(header.strip())
    if m is None or (not m[1] and not m[2]):
        raise ApiError(416, "bad_range", "only one range of the form bytes=first-last is served")
    if not m[1]:  # the last N bytes
        n = int(m[2])
        first, last = max(size - n, 0), size - 1
    else:
        first = int(m[1])
        last = min(int(m[2]), size - 1) if m[2] else size - 1
    if size == 0 or first > last or first >= size:
        raise ApiError(416, "bad_range", f"the file has {size} bytes")
    return first, last


def attachment_routes(client: Client) -> list[Route]:
    """The attachment routes over ``client``."""
    feature = client.attachments

    def _row(request: Request) -> AttachmentRow:
        try:
            return feature.attachment(_message_id(request), _index(request))
        except NoSuchAttachment as exc:
            raise ApiError(404, "not_found", str(exc)) from None

    async def _file(request: Request) -> tuple[AsyncIterator[bytes], FileInfo, str]:
        """The uploaded file as chunks, what it is, and the caption."""
        q = request.query_params
        name = q.get("name", "").strip() or "file"
        mime = q.get("mime", "application/octet-stream").lower()
        if not _MIME.fullmatch(mime):
            mime = "application/octet-stream"
        original = q.get("original") in ("1", "true")
        caption = q.get("caption", "")
        if mime not in PHOTO_MIMES:
            return request.stream(), FileInfo(name, mime), caption
        data = bytearray()
        async for piece in request.stream():
            data += piece
            if len(data) > MAX_PHOTO_BYTES:
                raise ApiError(
                    413,
                    "too_large",
                    "a photo is at most 64 MiB: send it as a file (mime=application/octet-stream)",
                )
        try:
            photo = prepare_image(bytes(data), original=original)
        except ImageRejected as exc:
            raise ApiError(422, "invalid_image", str(exc)) from None
        kind = AttachmentKind.STICKER if photo.mime == "image/gif" else AttachmentKind.IMAGE
        info = FileInfo(
            name, photo.mime, kind, photo.width, photo.height, thumbnail=photo.thumbnail
        )

        async def one() -> AsyncIterator[bytes]:
            yield photo.data

        return one(), info, caption

    async def upload(request: Request) -> Response:
        """Send a file to a contact (the raw body); photos compressed unless ``original=1``."""
        key = request.path_params["key"]
        if not _KEY.fullmatch(key):
            raise ApiError(404, "not_found", "no such contact")
        chunks, info, caption = await _file(request)
        mid = await feature.send(bytes.fromhex(key), [(chunks, info)], caption=caption)
        rows = [row_json(r) for r in feature.attachments(mid)]
        return JSONResponse({"id": mid.hex(), "attachments": rows}, 201)

    async def upload_group(request: Request) -> Response:
        """Send a file to a group (the raw body); photos compressed unless ``original=1``."""
        gid = path_key(request, "gid")
        chunks, info, caption = await _file(request)
        mid = await feature.send_group(gid, [(chunks, info)], caption=caption)
        rows = [row_json(r) for r in feature.attachments(mid.encode())]
        return JSONResponse({"id": mid, "attachments": rows}, 201)

    async def listing(request: Request) -> Response:
        """The files of a message and how far each is fetched."""
        return JSONResponse([row_json(r) for r in feature.attachments(_message_id(request))])

    async def download(request: Request) -> Response:
        """Fetch, verify and cache one file now."""
        row = _row(request)
        return JSONResponse(row_json(await feature.download(row.message_id, row.idx)))

    async def content(request: Request) -> Response:
        """The file's bytes (fetched first if needed); one Range is served as 206."""
        row = _row(request)
        size = row.ref.size
        span = parse_range(request.headers.get("range"), size)
        inline = row.ref.inline
        headers = {
            "Accept-Ranges": "bytes",
            "Content-Disposition": f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(row.ref.name)}",
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "private, no-store",
        }
        media = row.ref.mime if inline else "application/octet-stream"
        if span is None:
            headers["Content-Length"] = str(size)
            stream = feature.open(row.message_id, row.idx)
            return StreamingResponse(stream, media_type=media, headers=headers)
        first, last = span
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        headers["Content-Length"] = str(last - first + 1)
        ranged = feature.open_range(row.message_id, row.idx, first, last)
        return StreamingResponse(ranged, 206, media_type=media, headers=headers)

    async def thumbnail(request: Request) -> Response:
        """The sender's small preview, if it is a sane JPEG."""
        thumb = _row(request).ref.thumbnail
        try:
            ok = (
                bool(thumb)
                and len(thumb) <= MAX_ALBUM_THUMBS
                and probe_image(thumb)[0] == "image/jpeg"
            )
        except ImageRejected:
            ok = False
        if not ok:
            raise ApiError(404, "not_found", "this attachment has no thumbnail")
        return Response(
            thumb, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
        )

    async def settings(request: Request) -> Response:
        """Files up to ``auto_download_bytes`` are fetched when they arrive (0: never)."""
        return JSONResponse({"auto_download_bytes": feature.auto_download_bytes})

    async def put_settings(request: Request) -> Response:
        body = await parse_body(request, AutoDownload)
        feature.set_auto_download_bytes(body.auto_download_bytes)
        return await settings(request)

    base = "/api/v1/messages/{id}/attachments"
    return [
        Route("/api/v1/contacts/{key}/attachments", upload, methods=["POST"]),
        Route("/api/v1/groups/{gid}/attachments", upload_group, methods=["POST"]),
        Route(base, listing, methods=["GET"]),
        Route(base + "/{index}/download", download, methods=["POST"]),
        Route(base + "/{index}/content", content, methods=["GET"]),
        Route(base + "/{index}/thumbnail", thumbnail, methods=["GET"]),
        Route("/api/v1/attachments/settings", settings, methods=["GET"]),
        Route("/api/v1/attachments/settings", put_settings, methods=["PUT"]),
    ]
