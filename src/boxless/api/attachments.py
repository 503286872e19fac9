"""Attachments: upload a file to a contact, list, fetch, stream and preview files.

- ``POST /api/v1/contacts/{key}/attachments?name=&mime=&caption=&original=&reply_to=``
  with the file as the raw request body (streamed: encrypted while it arrives, never
  held whole, except a photo: at most 64 MiB, compressed unless ``original=1``,
  its metadata stripped either way) -> 201 ``{id, attachments: [...]}``. The
  declared MIME type is a label only (lower-case ``type/subtype`` or
  ``application/octet-stream``); a photo's comes from its decoded format.
  Media metadata the browser measured rides along (query or form fields, each
  range-checked): ``kind`` (file, image, video, voice), ``duration_ms``,
  ``width``, ``height``, ``waveform`` (base64, at most 100 bytes, voice only).
- The same with ``multipart/form-data`` (a browser's ``FormData``): 1 to 9 file
  parts, each encrypted and uploaded as it streams (:mod:`boxless.api.multipart`;
  nothing spooled to disk), each described by the metadata fields that precede
  it; ``caption``, ``original``, ``reply_to`` anywhere. Several files must be
  photos/videos (an album; 422 ``bad_album``).
- ``POST /api/v1/groups/{gid}/attachments?...`` the same for a group (``id`` is the
  group message's id).
- ``GET /api/v1/messages/{id}/attachments`` -> ``[{index, name, size, mime, kind,
  width, height, duration_ms, waveform, blurhash, animated, inline, state, done,
  error, outgoing, thumbnail}]``.
- ``POST /api/v1/messages/{id}/attachments/{index}/download`` fetches and verifies
  now -> the row (``state`` ready or failed, ``error`` says why).
- ``GET /api/v1/messages/{id}/attachments/{index}/content`` streams the verified
  plaintext; a single ``Range: bytes=a-b`` is answered 206 by fetching and decrypting
  only the chunks that cover it (a video seeks at once, cached or not). Only allowlisted media types are served as themselves; everything
  else is ``application/octet-stream`` as a download.
- ``GET /api/v1/messages/{id}/attachments/{index}/thumbnail`` -> the sender's
  thumbnail if it is a JPEG within the limits, else 404.
- ``POST /api/v1/messages/{id}/attachments/{index}/ask`` -> 202 ``{asked: name}``: a
  file the network lost; the sender's client pins it again and says where (in a
  group: the member who sent it, over the group's direct path).
- ``GET``/``PUT /api/v1/attachments/settings`` ``{auto_download_bytes, auto_download}``
  (``never|photos|media|all``: photos are photos, stickers and voice notes; media adds
  videos).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from boxless.api.errors import ApiError
from boxless.api.group_avatars import NewPicture, group_avatar_routes
from boxless.api.multipart import (
    Data,
    Event,
    MultipartError,
    MultipartParser,
    Part,
    PartEnd,
    boundary_of,
)
from boxless.api.params import parse_body, path_key
from boxless.chat.attachment import (
    MAX_ALBUM,
    MAX_ALBUM_THUMBS,
    MAX_DIMENSION,
    MAX_DURATION_MS,
    MAX_FILE_BYTES,
    MAX_WAVEFORM,
    AttachmentKind,
    AttachmentRef,
)
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
MAX_FIELD_BYTES = 8 * 1024
ALBUM_THUMB_BYTES = MAX_ALBUM_THUMBS // MAX_ALBUM
ALBUM_KINDS = (AttachmentKind.IMAGE, AttachmentKind.VIDEO)
MESSAGE_FIELDS = frozenset({"caption", "original", "reply_to"})
FILE_FIELDS = frozenset({"kind", "duration_ms", "width", "height", "waveform"})
UPLOAD_KINDS = {
    "file": AttachmentKind.FILE,
    "image": AttachmentKind.IMAGE,
    "video": AttachmentKind.VIDEO,
    "voice": AttachmentKind.VOICE,
}


class AutoDownload(BaseModel):
    auto_download_bytes: int | None = Field(default=None, ge=0, le=MAX_FILE_BYTES)
    auto_download: Literal["never", "photos", "media", "all"] | None = Field(
        default=None,
        description="photos: photos, stickers and voice notes; media: those and videos; all: any",
    )


BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("PUT", "/api/v1/attachments/settings"): AutoDownload,
    ("PUT", "/api/v1/groups/{gid}/avatar"): NewPicture,
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


def _mime(value: str) -> str:
    mime = value.split(";")[0].strip().lower()
    return mime if _MIME.fullmatch(mime) else "application/octet-stream"


def _reply_to(value: str | None) -> bytes | None:
    if not value:
        return None
    if not _MID.fullmatch(value):
        raise ApiError(400, "bad_upload", "reply_to is a message id (32 hex characters)")
    return bytes.fromhex(value)


def _number(fields: Mapping[str, str], name: str, limit: int) -> int:
    raw = fields.get(name, "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or int(raw) > limit:
        raise ApiError(400, "bad_upload", f"{name} is a whole number from 0 to {limit}")
    return int(raw)


def describe(name: str, mime: str, fields: Mapping[str, str]) -> FileInfo:
    """A file's description from the sender's fields (``kind``, ``duration_ms``,
    ``width``, ``height``, ``waveform``), each checked; raises a 400 ApiError."""
    kind_name = fields.get("kind", "").strip().lower()
    if not kind_name:
        kind = AttachmentKind.VIDEO if mime.startswith("video/") else AttachmentKind.FILE
    elif kind_name in UPLOAD_KINDS:
        kind = UPLOAD_KINDS[kind_name]
    else:
        raise ApiError(400, "bad_upload", f"kind is one of {', '.join(UPLOAD_KINDS)}")
    if kind is AttachmentKind.VOICE and not mime.startswith("audio/"):
        raise ApiError(400, "bad_upload", "a voice note is audio (audio/ogg, audio/webm, ...)")
    if kind is AttachmentKind.VIDEO and not mime.startswith("video/"):
        raise ApiError(400, "bad_upload", "a video is video/mp4 or video/webm")
    media = kind in (AttachmentKind.VIDEO, AttachmentKind.VOICE, AttachmentKind.IMAGE)
    timed = kind in (AttachmentKind.VIDEO, AttachmentKind.VOICE)
    duration = _number(fields, "duration_ms", MAX_DURATION_MS) if timed else 0
    width = _number(fields, "width", MAX_DIMENSION) if media else 0
    height = _number(fields, "height", MAX_DIMENSION) if media else 0
    waveform = b""
    if fields.get("waveform"):
        if kind is not AttachmentKind.VOICE:
            raise ApiError(400, "bad_upload", "only a voice note (kind=voice) has a waveform")
        try:
            waveform = base64.b64decode(fields["waveform"], validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "bad_upload", "waveform is base64") from None
        if len(waveform) > MAX_WAVEFORM:
            raise ApiError(400, "bad_upload", f"a waveform has at most {MAX_WAVEFORM} samples")
    return FileInfo(name, mime, kind, width, height, duration, waveform=waveform)


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

    async def _photo(
        name: str, data: bytes, original: bool, thumb_budget: int = 8 * 1024
    ) -> tuple[AsyncIterator[bytes], FileInfo]:
        """A photo compressed (unless ``original``), metadata gone, blurhash made."""
        try:
            photo = prepare_image(data, original=original, thumb_budget=thumb_budget)
        except ImageRejected as exc:
            raise ApiError(422, "invalid_image", str(exc)) from None
        kind = AttachmentKind.STICKER if photo.animated else AttachmentKind.IMAGE
        info = FileInfo(
            name, photo.mime, kind, photo.width, photo.height, thumbnail=photo.thumbnail,
            blurhash=photo.blurhash, animated=photo.animated,
        )  # fmt: skip

        async def one() -> AsyncIterator[bytes]:
            yield photo.data

        return one(), info

    async def _buffer_photo(pieces: AsyncIterator[bytes]) -> bytes:
        data = bytearray()
        async for piece in pieces:
            data += piece
            if len(data) > MAX_PHOTO_BYTES:
                raise ApiError(
                    413,
                    "too_large",
                    "a photo is at most 64 MiB: send it as a file (mime=application/octet-stream)",
                )
        return bytes(data)

    async def _upload_raw(request: Request) -> tuple[AttachmentRef, str, bytes | None]:
        """One file as the raw body, described by the query: its descriptor, caption, reply."""
        q = request.query_params
        name = q.get("name", "").strip() or "file"
        mime = _mime(q.get("mime", ""))
        original = q.get("original") in ("1", "true")
        if mime in PHOTO_MIMES:
            chunks, info = await _photo(name, await _buffer_photo(request.stream()), original)
        else:
            chunks, info = request.stream(), describe(name, mime, q)
        ref = await feature.upload(chunks, info)
        return ref, q.get("caption", ""), _reply_to(q.get("reply_to"))

    async def _upload_multipart(request: Request) -> tuple[list[AttachmentRef], str, bytes | None]:
        """Several files as multipart/form-data, each uploaded while it streams."""
        try:
            parser = MultipartParser(boundary_of(request.headers.get("content-type", "")))
        except MultipartError as exc:
            raise ApiError(400, "bad_upload", str(exc)) from None

        async def events() -> AsyncIterator[Event]:
            try:
                async for piece in request.stream():
                    for event in parser.feed(piece):
                        yield event
                for event in parser.finish():
                    yield event
            except MultipartError as exc:
                raise ApiError(400, "bad_upload", str(exc)) from None

        stream = events()

        async def part_data() -> AsyncIterator[bytes]:
            async for event in stream:
                if isinstance(event, Data):
                    yield event.data
                elif isinstance(event, PartEnd):
                    return
            raise ApiError(400, "bad_upload", "the body ends inside a part")

        async def text() -> str:
            out = bytearray()
            async for piece in part_data():
                out += piece
                if len(out) > MAX_FIELD_BYTES:
                    raise ApiError(
                        400, "bad_upload", f"a form field is over {MAX_FIELD_BYTES} bytes"
                    )
            try:
                return out.decode()
            except UnicodeDecodeError:
                raise ApiError(400, "bad_upload", "a form field is not UTF-8") from None

        fields: dict[str, str] = {}  # the next file's description
        message: dict[str, str] = {}
        refs: list[AttachmentRef] = []
        async for event in stream:
            if not isinstance(event, Part):
                continue
            if event.filename is None:
                value = await text()
                if event.name in MESSAGE_FIELDS:
                    message[event.name] = value
                elif event.name in FILE_FIELDS:
                    fields[event.name] = value
                continue
            if len(refs) >= MAX_ALBUM:
                raise ApiError(422, "bad_album", f"a message carries at most {MAX_ALBUM} files")
            name = event.filename.strip() or "file"
            mime = _mime(event.content_type)
            if mime in PHOTO_MIMES:
                data = await _buffer_photo(part_data())
                original = message.get("original") in ("1", "true")
                chunks, info = await _photo(name, data, original, ALBUM_THUMB_BYTES)
            else:
                chunks, info = part_data(), describe(name, mime, fields)
            refs.append(await feature.upload(chunks, info))
            fields = {}
            if len(refs) > 1 and not all(r.kind in ALBUM_KINDS for r in refs):
                raise ApiError(422, "bad_album", "an album holds only photos and videos")
        if not refs:
            raise ApiError(400, "bad_upload", "the form has no file part (one with a filename)")
        return refs, message.get("caption", ""), _reply_to(message.get("reply_to"))

    async def _uploads(request: Request) -> tuple[list[AttachmentRef], str, bytes | None]:
        if request.headers.get("content-type", "").lower().startswith("multipart/"):
            return await _upload_multipart(request)
        ref, caption, reply_to = await _upload_raw(request)
        return [ref], caption, reply_to

    async def upload(request: Request) -> Response:
        """Send a file or an album to a contact: see the module docstring."""
        key = request.path_params["key"]
        if not _KEY.fullmatch(key):
            raise ApiError(404, "not_found", "no such contact")
        contact = bytes.fromhex(key)
        feature.conversations.accepted(contact)  # before anything is uploaded
        refs, caption, reply_to = await _uploads(request)
        mid = feature.send_uploaded(contact, refs, caption=caption, reply_to=reply_to)
        rows = [row_json(r) for r in feature.attachments(mid)]
        return JSONResponse({"id": mid.hex(), "attachments": rows}, 201)

    async def upload_group(request: Request) -> Response:
        """Send a file or an album to a group: see the module docstring."""
        gid = path_key(request, "gid")
        refs, caption, _ = await _uploads(request)
        mid = await feature.send_group_uploaded(gid, refs, caption=caption)
        rows = [row_json(r) for r in feature.attachments(mid.encode())]
        return JSONResponse({"id": mid, "attachments": rows}, 201)

    async def listing(request: Request) -> Response:
        """The files of a message and how far each is fetched."""
        return JSONResponse([row_json(r) for r in feature.attachments(_message_id(request))])

    async def download(request: Request) -> Response:
        """Fetch, verify and cache one file now."""
        row = _row(request)
        return JSONResponse(row_json(await feature.download(row.message_id, row.idx)))

    async def ask(request: Request) -> Response:
        """Ask the sender of a file the network lost to pin it again (1:1 and group
        chats); the file is fetched by itself when their client says where.
        202 ``{asked: name}``."""
        row = _row(request)
        if row.chat.startswith("group:"):
            name = await client.group_file_asks.ask(row.message_id, row.idx)
        else:
            name = await feature.ask_again(row.message_id, row.idx)
        return JSONResponse({"asked": name}, status_code=202)

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
        """Received files of the ``auto_download`` kinds (never, photos, media, all) up to
        ``auto_download_bytes`` (0: never) are fetched when they arrive."""
        return JSONResponse(
            {
                "auto_download_bytes": feature.auto_download_bytes,
                "auto_download": feature.auto_download_mode,
            }
        )

    async def put_settings(request: Request) -> Response:
        """Change either or both settings."""
        body = await parse_body(request, AutoDownload)
        if body.auto_download_bytes is not None:
            feature.set_auto_download_bytes(body.auto_download_bytes)
        if body.auto_download is not None:
            feature.set_auto_download_mode(body.auto_download)
        return await settings(request)

    base = "/api/v1/messages/{id}/attachments"
    return [
        Route("/api/v1/contacts/{key}/attachments", upload, methods=["POST"]),
        Route("/api/v1/groups/{gid}/attachments", upload_group, methods=["POST"]),
        Route(base, listing, methods=["GET"]),
        Route(base + "/{index}/download", download, methods=["POST"]),
        Route(base + "/{index}/ask", ask, methods=["POST"]),
        Route(base + "/{index}/content", content, methods=["GET"]),
        Route(base + "/{index}/thumbnail", thumbnail, methods=["GET"]),
        Route("/api/v1/attachments/settings", settings, methods=["GET"]),
        Route("/api/v1/attachments/settings", put_settings, methods=["PUT"]),
        *group_avatar_routes(client),  # group pictures are attachments too
    ]
