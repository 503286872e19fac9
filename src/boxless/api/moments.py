"""Moments in the local API: /api/v1/moments/... (docs/moments.md).

- ``GET /moments?poster=&before=&limit=`` → ``{posts: [...], unread, notices_unread}``
  newest first;
- ``GET /moments/notices?limit=`` → ``{notices: [{id, post_id, kind: like|comment|reply|
  mention, actor, text, at_ms, unread}], unread}``; ``POST /moments/notices/read``;
- ``POST /moments {text, place?, mentions?, audience?, chosen?}`` → 201 ``{id}``;
  ``audience``: all | only | except | me (``chosen``: identity keys for only/except);
- ``DELETE /moments/{id}``: my post, for everyone who got it;
- ``POST /moments/{id}/like {liked}``; ``POST /moments/{id}/comments {text, reply_to?}``
  → 201 ``{id}``; ``DELETE /moments/{id}/comments/{cid}``;
- ``POST /moments/read``: the unread counter to zero;
- ``GET /moments/settings`` → ``{window, hidden_from, muted, drops}``;
  ``PUT /moments/settings {window?, hidden_from?, muted?}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from boxless.api.attachments import MAX_PHOTO_BYTES, PHOTO_MIMES
from boxless.api.errors import ApiError
from boxless.api.params import hex_keys, parse_body, path_key, read_limited
from boxless.chat.attachment import AttachmentKind
from boxless.chat.moment import MAX_COMMENT_CHARS, MAX_PLACE_CHARS, MAX_TEXT_CHARS
from boxless.client.attachment_transfer import AttachmentTransfer, FileInfo
from boxless.client.core import Client
from boxless.client.moments import NoSuchPost, PostView
from boxless.client.moments_core import AudienceMode, Window
from boxless.media.images import ImageRejected, prepare_image

VIDEO_MIMES = frozenset({"video/mp4", "video/webm"})


class NewPost(BaseModel):
    text: str = Field(max_length=MAX_TEXT_CHARS)
    place: str = Field(default="", max_length=MAX_PLACE_CHARS)
    mentions: list[str] = Field(default_factory=list, max_length=20)
    audience: AudienceMode = AudienceMode.ALL
    chosen: list[str] = Field(default_factory=list, max_length=5000)
    media: list[str] = Field(default_factory=list, max_length=9)  # tokens of /moments/media


class Like(BaseModel):
    liked: bool = True


class NewComment(BaseModel):
    text: str = Field(max_length=MAX_COMMENT_CHARS)
    reply_to: str | None = Field(default=None, pattern="^[0-9a-f]{32}$")


class SettingsChange(BaseModel):
    window: Window | None = None
    hidden_from: list[str] | None = Field(default=None, max_length=5000)
    muted: list[str] | None = Field(default=None, max_length=5000)


BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("POST", "/api/v1/moments"): NewPost,
    ("POST", "/api/v1/moments/{id}/like"): Like,
    ("POST", "/api/v1/moments/{id}/comments"): NewComment,
    ("PUT", "/api/v1/moments/settings"): SettingsChange,
}


def post_json(view: PostView) -> dict[str, Any]:
    p, c = view.post, view.post.content
    assert c is not None
    return {
        "id": p.post_id.hex(),
        "poster": p.poster.hex(),
        "mine": p.mine,
        "text": c.text,
        "place": c.place,
        "mentions": [k.hex() for k in c.mentions],
        "media": [
            {
                "index": i,
                "name": m.name,
                "kind": m.kind.name.lower(),
                "mime": m.mime,
                "size": m.size,
                "width": m.width,
                "height": m.height,
            }  # fmt: skip
            for i, m in enumerate(c.media)
        ],
        "posted_at_ms": p.posted_at_ms,
        "unread": p.unread,
        "likes": [k.hex() for k in view.likes],
        "comments": [
            {
                "id": x.act_id.hex(),
                "author": x.author.hex(),
                "text": x.text,
                "reply_to": x.reply_to.hex() if x.reply_to else None,
                "at_ms": x.at_ms,
            }
            for x in view.comments
        ],
    }


def _token(text: str) -> bytes:
    try:
        token = bytes.fromhex(text)
    except ValueError:
        token = b""
    if len(token) != 16:
        raise ApiError(422, "invalid_body", "media: each is a token from POST /moments/media")
    return token


def moment_routes(client: Client) -> list[Route]:
    """The /api/v1/moments routes over ``client.moments``."""
    moments = client.moments

    def post_id(request: Request, name: str = "id") -> bytes:
        value = path_key(request, name)
        if len(value) != 16:
            raise ApiError(422, "invalid_id", f"{name} must be 32 hex characters")
        return value

    def missing(exc: NoSuchPost) -> ApiError:
        return ApiError(404, "not_found", str(exc))

    async def feed(request: Request) -> Response:
        """Posts I may read, newest first, with the likes and comments I may see."""
        q = request.query_params
        try:
            limit = min(max(int(q.get("limit", "50")), 1), 200)
            before = int(q["before"]) if "before" in q else None
        except ValueError:
            raise ApiError(422, "invalid_query", "limit and before must be numbers") from None
        poster = hex_keys([q["poster"]], "poster")[0] if "poster" in q else None
        await moments.refetch()  # posts whose content was not in store yet (once a minute)
        views = moments.feed(poster=poster, before_ms=before, limit=limit)
        return JSONResponse(
            {
                "posts": [post_json(v) for v in views],
                "unread": moments.unread(),
                "notices_unread": moments.unread_notices(),
            }
        )

    async def notices(request: Request) -> Response:
        """Likes and comments on my posts, replies to my comments, posts mentioning me."""
        try:
            limit = min(max(int(request.query_params.get("limit", "100")), 1), 500)
        except ValueError:
            raise ApiError(422, "invalid_query", "limit must be a number") from None
        rows = moments.notices(limit)
        return JSONResponse(
            {
                "notices": [
                    {
                        "id": n.id,
                        "post_id": n.post_id.hex(),
                        "kind": n.kind,
                        "actor": n.actor.hex(),
                        "text": n.text,
                        "at_ms": n.at_ms,
                        "unread": n.unread,
                    }  # fmt: skip
                    for n in rows
                ],
                "unread": moments.unread_notices(),
            }
        )

    async def notices_read(request: Request) -> Response:
        """Mark every notification read."""
        moments.mark_notices_read()
        return Response(status_code=204)

    async def create(request: Request) -> Response:
        """Post to an audience chosen here; only its members get the post's key."""
        body = await parse_body(request, NewPost)
        tokens = [_token(t) for t in body.media]
        pid = await moments.post(
            body.text,
            place=body.place,
            mentions=hex_keys(body.mentions, "mentions"),
            media=moments.staged(tokens),
            audience=body.audience,
            chosen=hex_keys(body.chosen, "chosen"),
        )
        moments.unstage(tokens)
        return JSONResponse({"id": pid.hex()}, status_code=201)

    def _transfer() -> AttachmentTransfer:
        transfer = client.attachments.transfer
        if transfer is None:
            raise ApiError(409, "no_blobs", "this node runs no blob service: start it with blobs")
        return transfer

    async def upload_media(request: Request) -> Response:
        """Upload a photo (compressed, metadata stripped) or a video for a post: its token."""
        transfer = _transfer()
        q = request.query_params
        name = q.get("name", "").strip() or "photo"
        mime = q.get("mime", "").lower()
        chunks: AsyncIterator[bytes]
        if mime in PHOTO_MIMES:
            data = await read_limited(request, MAX_PHOTO_BYTES)
            try:
                photo = prepare_image(data, original=False)
            except ImageRejected as exc:
                raise ApiError(422, "invalid_image", str(exc)) from None
            info = FileInfo(
                name, photo.mime, AttachmentKind.IMAGE, photo.width, photo.height,
                thumbnail=photo.thumbnail,
            )  # fmt: skip

            async def one() -> AsyncIterator[bytes]:
                yield photo.data

            chunks = one()
        elif mime in VIDEO_MIMES:
            info, chunks = FileInfo(name, mime, AttachmentKind.VIDEO), request.stream()
        else:
            raise ApiError(
                415,
                "unsupported_media",
                "a moment carries photos (JPEG, PNG, WebP, GIF) or a video (MP4, WebM)",
            )
        ref = await transfer.upload(chunks, info)
        token = moments.stage_media(ref)
        return JSONResponse(
            {
                "token": token.hex(),
                "name": ref.name,
                "kind": ref.kind.name.lower(),
                "size": ref.size,
            },
            status_code=201,
        )

    async def media(request: Request) -> Response:
        """A post's photo or video (fetched and verified first if needed)."""
        try:
            idx = int(request.path_params["idx"])
        except ValueError:
            raise ApiError(422, "invalid_id", "the photo index is a number") from None
        try:
            ref = moments.media(post_id(request), idx)
        except NoSuchPost as exc:
            raise missing(exc) from None
        stream = _transfer().open(ref)
        inline = ref.inline
        headers = {
            "Content-Disposition": f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(ref.name)}",
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "X-Content-Type-Options": "nosniff",
            "Content-Length": str(ref.size),
        }
        mime = ref.mime if inline else "application/octet-stream"
        return StreamingResponse(stream, media_type=mime, headers=headers)

    async def delete(request: Request) -> Response:
        """Delete my post here and for everyone who got it."""
        try:
            await moments.delete(post_id(request))
        except NoSuchPost as exc:
            raise missing(exc) from None
        return Response(status_code=204)

    async def like(request: Request) -> Response:
        """Like (or with ``liked: false`` unlike) a post."""
        body = await parse_body(request, Like)
        try:
            await moments.like(post_id(request), body.liked)
        except NoSuchPost as exc:
            raise missing(exc) from None
        return Response(status_code=204)

    async def comment(request: Request) -> Response:
        """Comment on a post (``reply_to``: a comment's id)."""
        body = await parse_body(request, NewComment)
        reply = bytes.fromhex(body.reply_to) if body.reply_to else None
        try:
            cid = await moments.comment(post_id(request), body.text, reply)
        except NoSuchPost as exc:
            raise missing(exc) from None
        return JSONResponse({"id": cid.hex()}, status_code=201)

    async def uncomment(request: Request) -> Response:
        """Delete my comment, or any comment on my post."""
        try:
            await moments.delete_comment(post_id(request), post_id(request, "cid"))
        except NoSuchPost as exc:
            raise missing(exc) from None
        return Response(status_code=204)

    async def read(request: Request) -> Response:
        """Mark every post read (the Discover counter goes to zero)."""
        moments.mark_read()
        return Response(status_code=204)

    async def settings(request: Request) -> Response:
        """My window, who my moments are hidden from, whose I don't see; drop counts."""
        return JSONResponse({**moments.settings(), "drops": moments.drops.as_dict()})

    async def change_settings(request: Request) -> Response:
        """Change the window or the lists (fields left out stay as they are)."""
        body = await parse_body(request, SettingsChange)
        moments.set_settings(
            window=body.window.value if body.window else None,
            hidden_from=None
            if body.hidden_from is None
            else hex_keys(body.hidden_from, "hidden_from"),
            muted=None if body.muted is None else hex_keys(body.muted, "muted"),
        )
        return JSONResponse({**moments.settings(), "drops": moments.drops.as_dict()})

    return [
        Route("/api/v1/moments", feed, methods=["GET"]),
        Route("/api/v1/moments", create, methods=["POST"]),
        Route("/api/v1/moments/read", read, methods=["POST"]),
        Route("/api/v1/moments/notices", notices, methods=["GET"]),
        Route("/api/v1/moments/notices/read", notices_read, methods=["POST"]),
        Route("/api/v1/moments/media", upload_media, methods=["POST"]),
        Route("/api/v1/moments/{id}/media/{idx}", media, methods=["GET"]),
        Route("/api/v1/moments/settings", settings, methods=["GET"]),
        Route("/api/v1/moments/settings", change_settings, methods=["PUT"]),
        Route("/api/v1/moments/{id}", delete, methods=["DELETE"]),
        Route("/api/v1/moments/{id}/like", like, methods=["POST"]),
        Route("/api/v1/moments/{id}/comments", comment, methods=["POST"]),
        Route("/api/v1/moments/{id}/comments/{cid}", uncomment, methods=["DELETE"]),
    ]
