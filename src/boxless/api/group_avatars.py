"""The group picture routes: set one as an attachment (admins), fetch it (members).

- ``PUT /api/v1/groups/{gid}/avatar {image: base64}`` (``""`` removes) -> the group,
  as ``GET /groups/{gid}``. The picture (PNG, JPEG, WebP, GIF; at most 1.5 MiB: the
  web UI and the CLI shrink it first) becomes a square of at most 512 px, is uploaded
  encrypted and pinned on the service nodes, and the group's signed op carries its
  reference. 403 ``not_admin`` for a member who is not an admin (nothing uploaded),
  422 ``invalid_image``, 503 when no service node keeps it.
- ``GET /api/v1/groups/{gid}/avatar`` -> the picture's bytes (fetched and verified
  the first time, from the local cache after), 404 without one, 502 ``unavailable``
  with what happened when it cannot be fetched (the group JSON's ``avatar`` thumbnail
  is shown meanwhile).

The group JSON (``api/groups.py``, fields from ``api/group_avatar_json.py``) carries ``avatar`` (base64: an inline picture, or
the reference's small thumbnail), ``avatar_url`` (this route, with the picture's CID
so a browser caches each picture once) and ``avatar_blurhash``.
"""

from __future__ import annotations

import base64
import binascii

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxless.api.errors import ApiError
from boxless.api.groups import group_json, names_of
from boxless.api.params import parse_body, path_key
from boxless.client.core import Client
from boxless.client.group_avatars import GroupAvatars, NotAnAdmin, PictureUnavailable
from boxless.media.images import ImageRejected

__all__ = ["group_avatar_routes"]

MAX_IMAGE_B64 = 2 * 1024**2  # 1.5 MiB of picture


class NewPicture(BaseModel):
    image: str = Field(max_length=MAX_IMAGE_B64, description='base64; "" removes the picture')


def group_avatar_routes(client: Client) -> list[Route]:
    """The /api/v1/groups/{gid}/avatar routes."""
    avatars = GroupAvatars(client.groups, client.attachments)

    async def put(request: Request) -> Response:
        """Set (or with "" remove) the group's picture: admins only."""
        gid = path_key(request, "gid")
        body = await parse_body(request, NewPicture, limit=MAX_IMAGE_B64 + 1024)
        try:
            image = base64.b64decode(body.image, validate=True)
        except binascii.Error:
            raise ApiError(422, "invalid_body", "image: must be base64") from None
        try:
            await avatars.set(gid, image)
        except NotAnAdmin as exc:
            raise ApiError(403, "not_admin", str(exc)) from None
        except ImageRejected as exc:
            raise ApiError(422, "invalid_image", str(exc)) from None
        groups = client.groups
        return JSONResponse(group_json(groups.summary(gid), names_of(groups), client.me))

    async def get(request: Request) -> Response:
        """The group's picture (fetched the first time)."""
        gid = path_key(request, "gid")
        if not client.groups.state(gid).avatar:
            raise ApiError(404, "not_found", "this group has no picture")
        try:
            data, mime = await avatars.picture(gid)
        except PictureUnavailable as exc:
            raise ApiError(502, "unavailable", str(exc)) from None
        return Response(
            data,
            media_type=mime,
            headers={
                "Cache-Control": "private, max-age=86400",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "sandbox; default-src 'none'",
            },
        )

    base = "/api/v1/groups/{gid}/avatar"
    return [Route(base, put, methods=["PUT"]), Route(base, get, methods=["GET"])]
