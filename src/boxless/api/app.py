"""The local API app: resources over the client core, one event WebSocket.

Security model: bound to 127.0.0.1 by default; :class:`~boxless.api.guard.Guard`
checks every request first (Host allowlist against DNS rebinding, Origin, body
size, the per-install token) and adds the security headers (CSP and others).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from boxless.api.attachment_gallery import gallery_routes
from boxless.api.attachments import BODIES as ATTACHMENT_BODIES
from boxless.api.attachments import attachment_routes
from boxless.api.backup import BODIES as BACKUP_BODIES
from boxless.api.backup import backup_routes
from boxless.api.broadcasts import BODIES as BROADCAST_BODIES
from boxless.api.broadcasts import broadcast_routes
from boxless.api.calls import BODIES as CALL_BODIES
from boxless.api.calls import call_routes
from boxless.api.chats import BODIES as CHAT_BODIES
from boxless.api.chats import chat_routes
from boxless.api.devices import BODIES as DEVICE_BODIES
from boxless.api.devices import device_routes
from boxless.api.errors import ApiError, error_response, handle_api_error, handle_boxless_error
from boxless.api.groups import BODIES as GROUP_BODIES
from boxless.api.groups import group_routes
from boxless.api.guard import Guard
from boxless.api.miniapps import BODIES as MINIAPP_BODIES
from boxless.api.miniapps import miniapp_routes
from boxless.api.moments import BODIES as MOMENT_BODIES
from boxless.api.moments import moment_routes
from boxless.api.nearby import BODIES as NEARBY_BODIES
from boxless.api.nearby import nearby_routes
from boxless.api.params import parse_body, path_key
from boxless.api.payments import BODIES as PAYMENT_BODIES
from boxless.api.payments import payment_routes
from boxless.api.profiles import BODIES as PROFILE_BODIES
from boxless.api.profiles import profile_routes
from boxless.api.redenvelopes import BODIES as REDENVELOPE_BODIES
from boxless.api.redenvelopes import redenvelope_routes
from boxless.api.search import BODIES as SEARCH_BODIES
from boxless.api.search import search_routes
from boxless.api.stealth import BODIES as STEALTH_BODIES
from boxless.api.stealth import stealth_routes
from boxless.api.verification import sas_routes
from boxless.api.web import MAX_QR_IMAGE_BYTES, qr_link, qr_png, read_limited, web_mount
from boxless.chat.requests import ContactEvent
from boxless.client import events as client_events
from boxless.client import store as db
from boxless.client.connectivity import relay_events
from boxless.client.core import Client
from boxless.crypto.verification import format_safety_number, safety_number
from boxless.errors import BoxlessError
from boxless.identity.keys import fingerprint


class NewContact(BaseModel):
    link: str = Field(min_length=1, max_length=8192)
    intro: str = Field(default="", max_length=2000)


class LinkBody(BaseModel):
    link: str = Field(min_length=1, max_length=8192)


class ProfileChange(BaseModel):
    name: str = Field(min_length=1, max_length=64)


MAX_AVATAR_B64 = 70_000  # base64 of the 48 KiB picture limit, with room to spare


class AvatarChange(BaseModel):
    image: str = Field(max_length=MAX_AVATAR_B64, description='base64; "" removes the picture')


class NewMessage(BaseModel):
    text: str = Field(min_length=1, max_length=60_000)
    reply_to: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")


class EditMessage(BaseModel):
    text: str = Field(min_length=1, max_length=60_000)


class NewReaction(BaseModel):
    emoji: str = Field(min_length=1, max_length=16)
    remove: bool = False


class TypingState(BaseModel):
    typing: bool


_body = parse_body
_key = path_key

BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("POST", "/api/v1/contacts"): NewContact,
    ("POST", "/api/v1/contacts/preview"): LinkBody,
    ("PUT", "/api/v1/me"): ProfileChange,
    ("PUT", "/api/v1/me/avatar"): AvatarChange,
    ("POST", "/api/v1/contacts/{key}/messages"): NewMessage,
    ("POST", "/api/v1/messages/{id}/edit"): EditMessage,
    ("POST", "/api/v1/messages/{id}/reactions"): NewReaction,
    ("POST", "/api/v1/contacts/{key}/typing"): TypingState,
    **GROUP_BODIES,
    **BROADCAST_BODIES,
    **SEARCH_BODIES,
    **BACKUP_BODIES,
    **CHAT_BODIES,
    **DEVICE_BODIES,
    **CALL_BODIES,
    **ATTACHMENT_BODIES,
    **MOMENT_BODIES,
    **PAYMENT_BODIES,
    **REDENVELOPE_BODIES,
    **PROFILE_BODIES,
    **NEARBY_BODIES,
    **MINIAPP_BODIES,
    **STEALTH_BODIES,
}


def openapi_schema(routes: list[Any]) -> dict[str, Any]:
    """An OpenAPI 3.1 description generated from the routes, their docstrings and
    the pydantic request models (so it can't drift from the code)."""
    paths: dict[str, dict[str, Any]] = {}
    error = {"$ref": "#/components/schemas/Error"}
    for route in routes:
        if not isinstance(route, Route):
            continue
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            op: dict[str, Any] = {
                "summary": (route.endpoint.__doc__ or route.name).strip().splitlines()[0],
                "security": [{"token": []}],
                "responses": {
                    "2XX": {"description": "success"},
                    "4XX": {
                        "description": "the request's fault",
                        "content": {"application/json": {"schema": error}},
                    },
                },
                "parameters": [
                    {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                    for p in route.param_convertors
                ],
            }
            model = BODIES.get((method, route.path))
            if model is not None:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": model.model_json_schema()}},
                }
            paths.setdefault(route.path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Boxless local API",
            "version": "1",
            "description": "Live events: WebSocket /api/v1/events, one JSON object per "
            "event; their schema is at /api/v1/events/schema.json.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                }
            },
        },
    }


def _b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode() if data else None


def contact_json(c: db.ContactRow) -> dict[str, Any]:
    return {
        "identity_key": c.identity_key.hex(),
        "name": c.display_name,
        "avatar": _b64(c.avatar),
        "state": c.state,
        "intro": c.intro,
        "fingerprint": fingerprint(c.identity_key),
        "verified": c.verified_key is not None and c.verified_key == c.device_key,
        "verification_broken": c.verified_key is not None and c.verified_key != c.device_key,
        "added_at_ms": c.added_at_ms,
    }


def message_json(m: db.MessageRow) -> dict[str, Any]:
    return {
        "id": m.message_id.hex(),
        "contact": m.contact.hex(),
        "outgoing": m.outgoing,
        "lamport": m.lamport,
        "sent_at_ms": m.sent_at_ms,
        "received_at_ms": m.received_at_ms,
        "text": m.text,
        "reply_to": m.reply_to.hex() if m.reply_to else None,
        "edited": m.edited,
        "deleted": m.deleted,
        "state": m.state,
        "reactions": m.reactions,
    }


Handler = Callable[[Request], Awaitable[Response]]


def build_app(
    client: Client, token: str, origin: str, status: Callable[[], dict[str, Any]]
) -> Starlette:
    """The API for ``client``; ``origin`` is the API's own (e.g. http://127.0.0.1:8765)."""

    async def me(request: Request) -> Response:
        acc = client.account
        return JSONResponse(
            {
                "name": acc.profile.display_name,
                "avatar": _b64(acc.profile.avatar),
                "identity_key": acc.identity.public_key.hex(),
                "fingerprint": acc.identity.fingerprint,
                "device_id": acc.device.device_id.hex(),
                "link": client.links.shareable_link(),
            }
        )

    async def my_qr(request: Request) -> Response:
        png = await trio.to_thread.run_sync(qr_png, client.links.shareable_link())
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def decode_qr(request: Request) -> Response:
        if request.headers.get("content-type", "").startswith("multipart/"):
            raise ApiError(
                415, "unsupported_media_type", "send the image file itself as the body, not a form"
            )
        image = await read_limited(request, MAX_QR_IMAGE_BYTES)
        if not image:
            raise ApiError(422, "invalid_body", "send the QR image as the request body")
        link = await trio.to_thread.run_sync(qr_link, image)
        if "".join(link.split()).lower().startswith("boxless://g/"):  # a group's: join it
            return JSONResponse({"link": link, "name": None, "fingerprint": None, "group": True})
        code = await client.links.resolve_contact(link)  # short: fetched; foreign: an error
        return JSONResponse(
            {"link": link, "name": code.display_name, "fingerprint": code.fingerprint}
        )

    async def preview_contact(request: Request) -> Response:
        """Whose a contact link is (a short link's card is fetched from the network)."""
        body = await _body(request, LinkBody)
        code = await client.links.resolve_contact(body.link)
        return JSONResponse({"name": code.display_name, "fingerprint": code.fingerprint})

    async def contacts(request: Request) -> Response:
        return JSONResponse([contact_json(c) for c in client.contacts()])

    async def add_contact(request: Request) -> Response:
        body = await _body(request, NewContact)
        row = await client.add_contact(body.link, body.intro)
        return JSONResponse(contact_json(row), status_code=201)

    def action(event: ContactEvent) -> Handler:
        async def handler(request: Request) -> Response:
            return JSONResponse(contact_json(await client.respond(_key(request), event)))

        return handler

    async def messages(request: Request) -> Response:
        """Paged history: the newest ``limit``; pass ``before`` (a message's lamport) for older."""
        try:
            limit = min(max(int(request.query_params.get("limit", "50")), 1), 500)
            before = request.query_params.get("before")
            before_lamport = int(before) if before is not None else None
        except ValueError:
            raise ApiError(422, "invalid_query", "limit and before must be numbers") from None
        rows = client.messages(_key(request), limit, before_lamport)
        return JSONResponse([message_json(m) for m in rows])

    async def send(request: Request) -> Response:
        body = await _body(request, NewMessage)
        mid = await client.send_text(
            _key(request), body.text, bytes.fromhex(body.reply_to) if body.reply_to else None
        )
        msg = client.message(mid)
        assert msg is not None
        return JSONResponse(message_json(msg), status_code=201)

    async def edit(request: Request) -> Response:
        body = await _body(request, EditMessage)
        await client.edit(_key(request, "id"), body.text)
        return Response(status_code=204)

    async def delete(request: Request) -> Response:
        await client.delete(_key(request, "id"))
        return Response(status_code=204)

    async def react(request: Request) -> Response:
        body = await _body(request, NewReaction)
        await client.react(_key(request, "id"), body.emoji, body.remove)
        return Response(status_code=204)

    async def read(request: Request) -> Response:
        return JSONResponse({"marked": await client.mark_read(_key(request))})

    async def typing(request: Request) -> Response:
        body = await _body(request, TypingState)
        await client.typing(_key(request), body.typing)
        return Response(status_code=204)

    async def verification(request: Request) -> Response:
        key = _key(request)
        number = safety_number(client.me, key)
        return JSONResponse({"safety_number": format_safety_number(number)})

    async def confirm_verification(request: Request) -> Response:
        return JSONResponse(contact_json(client.confirm_verified(_key(request))))

    async def node_status(request: Request) -> Response:
        return JSONResponse(status())

    async def events(ws: WebSocket) -> None:
        # Listen before accepting: the page reads the state of what it missed once it
        # sees the socket open, so no event may fall between that read and this listener.
        async with client.events() as channel, trio.open_nursery() as nursery:
            await ws.accept()

            async def drain_client() -> None:
                try:
                    while True:
                        await ws.receive_text()
                except WebSocketDisconnect:
                    nursery.cancel_scope.cancel()

            nursery.start_soon(drain_client)

            async def send(event: client_events.Event) -> None:
                await ws.send_text(json.dumps(client_events.to_json(event)))

            try:  # the client's events, and the node's reach when it changes
                await relay_events(channel, send, status)
            except (WebSocketDisconnect, RuntimeError):
                pass
            nursery.cancel_scope.cancel()

    async def not_found(request: Request, exc: Exception) -> Response:
        return error_response(404, "not_found", f"no such resource: {request.url.path}")

    async def update_me(request: Request) -> Response:
        """Change my display name; accepted contacts are told."""
        body = await _body(request, ProfileChange)
        await client.set_display_name(body.name)
        return await me(request)

    async def update_avatar(request: Request) -> Response:
        """Change my picture (base64 PNG/JPEG, at most 48 KiB; "" removes it); contacts are told."""
        body = await _body(request, AvatarChange)
        try:
            image = base64.b64decode(body.image, validate=True)
        except binascii.Error:
            raise ApiError(422, "invalid_body", 'image: must be base64 ("" removes it)') from None
        await client.set_avatar(image)
        return await me(request)

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_schema(routes))

    async def event_schema(request: Request) -> Response:
        """The JSON Schema of every event sent on /api/v1/events."""
        return JSONResponse(client_events.json_schema())

    routes = [
        Route("/api/v1/openapi.json", openapi, methods=["GET"]),
        Route("/api/v1/events/schema.json", event_schema, methods=["GET"]),
        Route("/api/v1/me", me, methods=["GET"]),
        Route("/api/v1/me", update_me, methods=["PUT"]),
        Route("/api/v1/me/avatar", update_avatar, methods=["PUT"]),
        Route("/api/v1/me/qr.png", my_qr, methods=["GET"]),
        Route("/api/v1/status", node_status),
        Route("/api/v1/contacts", contacts, methods=["GET"]),
        Route("/api/v1/contacts", add_contact, methods=["POST"]),
        Route("/api/v1/contacts/decode-qr", decode_qr, methods=["POST"]),
        Route("/api/v1/contacts/preview", preview_contact, methods=["POST"]),
        Route("/api/v1/contacts/{key}/accept", action(ContactEvent.ACCEPT), methods=["POST"]),
        Route("/api/v1/contacts/{key}/decline", action(ContactEvent.DECLINE), methods=["POST"]),
        Route("/api/v1/contacts/{key}/block", action(ContactEvent.BLOCK), methods=["POST"]),
        Route("/api/v1/contacts/{key}/unblock", action(ContactEvent.UNBLOCK), methods=["POST"]),
        Route("/api/v1/contacts/{key}/messages", messages, methods=["GET"]),
        Route("/api/v1/contacts/{key}/messages", send, methods=["POST"]),
        Route("/api/v1/contacts/{key}/read", read, methods=["POST"]),
        Route("/api/v1/contacts/{key}/typing", typing, methods=["POST"]),
        Route("/api/v1/contacts/{key}/verification", verification, methods=["GET"]),
        Route("/api/v1/contacts/{key}/verification", confirm_verification, methods=["POST"]),
        Route("/api/v1/messages/{id}", delete, methods=["DELETE"]),
        Route("/api/v1/messages/{id}/edit", edit, methods=["POST"]),
        Route("/api/v1/messages/{id}/reactions", react, methods=["POST"]),
        *group_routes(client),
        *broadcast_routes(client),
        *search_routes(client),
        *backup_routes(client),
        *chat_routes(client),
        *device_routes(client),
        *sas_routes(client),
        *call_routes(client),
        *attachment_routes(client),
        *gallery_routes(client),
        *moment_routes(client),
        *payment_routes(client),
        *redenvelope_routes(client),
        *profile_routes(client),
        *nearby_routes(client),
        *miniapp_routes(client),
        *stealth_routes(client),
        WebSocketRoute("/api/v1/events", events),
        web_mount(),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(Guard, token=token, origin=origin)],
        exception_handlers={
            ApiError: handle_api_error,
            BoxlessError: handle_boxless_error,
            404: not_found,
        },
    )
