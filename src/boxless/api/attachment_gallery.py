"""A chat's files for the web UI's media gallery and bubbles.

``GET /api/v1/chats/{chat}/attachments?limit=&before=`` -> ``{files: [{message_id,
cursor, index, name, size, mime, kind, ...}], next: cursor | null}``, newest first
(the fields of ``GET /api/v1/messages/{id}/attachments`` plus the message id the
other routes take). ``chat`` is ``contact:<key hex>`` or ``group:<gid hex>``.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxless.api.attachments import row_json
from boxless.api.errors import ApiError
from boxless.client.attachment_gallery import MAX_LIMIT, chat_files
from boxless.client.attachments import AttachmentManager
from boxless.client.core import Client

__all__ = ["gallery_routes"]

_CHAT = re.compile(r"(contact|group):[0-9a-f]{64}")


def _int(request: Request, name: str, default: int | None, most: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 18:
        raise ApiError(422, "invalid_query", f"{name} must be a whole number")
    return min(int(raw), most)


def gallery_routes(client: Client) -> list[Route]:
    """The gallery route over ``client``."""

    async def listing(request: Request) -> Response:
        """The chat's files, newest first, ``limit`` at a time (at most 500)."""
        chat = request.path_params["chat"]
        if not _CHAT.fullmatch(chat):
            raise ApiError(404, "not_found", "a chat is contact:<key hex> or group:<group id hex>")
        limit = _int(request, "limit", 200, MAX_LIMIT) or 1
        before = _int(request, "before", None, 2**62)
        files = chat_files(client.db, chat, limit=limit, before=before)
        out = [
            {"message_id": AttachmentManager.api_id(f.row), "cursor": f.cursor, **row_json(f.row)}
            for f in files
        ]
        more = len(files) == limit
        return JSONResponse({"files": out, "next": files[-1].cursor if more and files else None})

    return [Route("/api/v1/chats/{chat}/attachments", listing, methods=["GET"])]
