"""Per-chat settings in the local API: /api/v1/chats/...

- ``GET /chats/settings`` → ``{chat: {pinned, muted, marked_unread, draft,
  cleared_at_ms}}`` for every chat with a setting (chats absent: all defaults);
- ``PUT /chats/{chat}/settings {pinned?, muted?, marked_unread?}`` → that chat's;
- ``PUT /chats/{chat}/draft {text}`` → that chat's (``""`` clears the draft);
- ``DELETE /chats/{chat}`` → ``{"removed": n}``: deleted for me (messages gone from
  this device; the contact or group stays).

A chat is ``contact:<identity key hex>`` or ``group:<group id hex>``: a malformed
name is a 422, a chat that does not exist here a 404.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxless.api.errors import ApiError
from boxless.api.params import parse_body
from boxless.client.chat_settings import MAX_DRAFT, ChatSetting, InvalidChatName, UnknownChat
from boxless.client.core import Client
from boxless.errors import UsageError


class SettingsChange(BaseModel):
    pinned: bool | None = None
    muted: bool | None = None
    marked_unread: bool | None = None


class DraftChange(BaseModel):
    text: str = Field(max_length=MAX_DRAFT)


BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("PUT", "/api/v1/chats/{chat}/settings"): SettingsChange,
    ("PUT", "/api/v1/chats/{chat}/draft"): DraftChange,
}


def setting_json(s: ChatSetting) -> dict[str, Any]:
    return {
        "pinned": s.pinned,
        "muted": s.muted,
        "marked_unread": s.marked_unread,
        "draft": s.draft,
        "cleared_at_ms": s.cleared_at_ms,
    }


def chat_routes(client: Client) -> list[Route]:
    """The /api/v1/chats routes over ``client.chat_settings``."""
    settings = client.chat_settings

    def chat_of(request: Request) -> str:
        return str(request.path_params["chat"])

    def mapped(exc: UsageError) -> ApiError:
        if isinstance(exc, InvalidChatName):
            return ApiError(422, "invalid_chat", str(exc))
        if isinstance(exc, UnknownChat):
            return ApiError(404, "not_found", str(exc))
        return ApiError(422, "invalid_body", str(exc))

    async def all_settings(request: Request) -> Response:
        """Every chat's pin, mute, unread mark and draft (chats not listed: defaults)."""
        return JSONResponse({k: setting_json(v) for k, v in settings.all().items()})

    async def change(request: Request) -> Response:
        """Pin, mute or mark a chat unread (fields left out stay as they are)."""
        body = await parse_body(request, SettingsChange)
        try:
            s = settings.update(
                chat_of(request),
                pinned=body.pinned,
                muted=body.muted,
                marked_unread=body.marked_unread,
            )
        except UsageError as exc:
            raise mapped(exc) from None
        return JSONResponse(setting_json(s))

    async def draft(request: Request) -> Response:
        """Keep the composer's text as the chat's draft ("" clears it)."""
        body = await parse_body(request, DraftChange)
        try:
            s = settings.set_draft(chat_of(request), body.text)
        except UsageError as exc:
            raise mapped(exc) from None
        return JSONResponse(setting_json(s))

    async def delete(request: Request) -> Response:
        """Delete a chat for me: its messages leave this device; the contact/group stays."""
        try:
            removed = settings.delete_chat(chat_of(request))
        except UsageError as exc:
            raise mapped(exc) from None
        return JSONResponse({"removed": removed})

    prefix = "/api/v1/chats"
    return [
        Route(prefix + "/settings", all_settings, methods=["GET"]),
        Route(prefix + "/{chat}/settings", change, methods=["PUT"]),
        Route(prefix + "/{chat}/draft", draft, methods=["PUT"]),
        Route(prefix + "/{chat}", delete, methods=["DELETE"]),
    ]
