"""Search, favourites and forwarding: /api/v1/search, /api/v1/favourites, /api/v1/forward.

- ``GET /api/v1/search?q=&chat=&limit=`` -> ``{terms, messages: [{chat, chat_name, id,
  sender, sender_name, outgoing, text, snippet, sent_at_ms}], contacts: [{chat, key,
  name}], groups: [...]}``, newest messages first; a query that cannot be searched
  for is a 422 saying why (never an error of the index).
- ``GET /api/v1/favourites?q=``, ``POST /api/v1/favourites {chat, id}`` -> 201
  ``{id, chat, message_id, text, sender, sender_name, sent_at_ms, saved_at_ms}``,
  ``DELETE /api/v1/favourites/{id}``.
- ``POST /api/v1/forward {messages: [{chat, id}], to: [chat, ...]}`` -> ``{sent,
  refused: {chat: why}}``; 422 if no target could take them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxless.api.errors import ApiError
from boxless.api.params import parse_body
from boxless.client.core import Client
from boxless.client.forward import MAX_FORWARD_MESSAGES, MAX_FORWARD_TARGETS
from boxless.client.search_query import MAX_QUERY_CHARS, InvalidQuery
from boxless.client.search_store import Favourite
from boxless.errors import UsageError

CHAT = r"^(contact|group):[0-9a-f]{64}$"


class MessageRef(BaseModel):
    chat: str = Field(pattern=CHAT)
    id: str = Field(min_length=1, max_length=128)


class NewFavourite(MessageRef):
    pass


class ForwardBody(BaseModel):
    messages: list[MessageRef] = Field(min_length=1, max_length=MAX_FORWARD_MESSAGES)
    to: list[str] = Field(min_length=1, max_length=MAX_FORWARD_TARGETS)


BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("POST", "/api/v1/favourites"): NewFavourite,
    ("POST", "/api/v1/forward"): ForwardBody,
}


def favourite_json(f: Favourite) -> dict[str, Any]:
    return {
        "id": f.id,
        "chat": f.chat,
        "message_id": f.message_id,
        "text": f.text,
        "sender": f.sender,
        "sender_name": f.sender_name,
        "sent_at_ms": f.sent_at_ms,
        "saved_at_ms": f.saved_at_ms,
    }


def _limit(request: Request, default: int, most: int) -> int:
    try:
        return min(max(int(request.query_params.get("limit", str(default))), 1), most)
    except ValueError:
        raise ApiError(422, "invalid_query", "limit must be a number") from None


def _query(request: Request, required: bool) -> str:
    q = request.query_params.get("q", "")
    if len(q) > MAX_QUERY_CHARS:
        raise ApiError(
            422, "invalid_query", f"the search text is longer than {MAX_QUERY_CHARS} characters"
        )
    if required and not q.strip():
        raise ApiError(422, "invalid_query", "q: type a word to search for")
    return q


def search_routes(client: Client) -> list[Route]:
    """The search, favourites and forward routes over ``client``."""

    async def search(request: Request) -> Response:
        """Search messages of every chat (or of ``chat``), contacts and groups by ``q``."""
        q = _query(request, True)
        chat = request.query_params.get("chat") or None
        try:
            found = client.search.search(q, chat, _limit(request, 50, 200))
        except InvalidQuery as exc:
            raise ApiError(422, "invalid_query", str(exc)) from None
        except UsageError as exc:  # a malformed chat name
            raise ApiError(422, "invalid_query", f"chat: {exc}") from None
        return JSONResponse(
            {
                "terms": list(found.terms),
                "messages": [vars(m) for m in found.messages],
                "contacts": [vars(c) for c in found.contacts],
                "groups": [vars(g) for g in found.groups],
            }
        )

    async def favourites(request: Request) -> Response:
        """My favourites, newest saved first; ``q`` keeps those with every word."""
        try:
            rows = client.favourites.list(_query(request, False), _limit(request, 200, 1000))
        except InvalidQuery as exc:
            raise ApiError(422, "invalid_query", str(exc)) from None
        return JSONResponse([favourite_json(f) for f in rows])

    async def add_favourite(request: Request) -> Response:
        """Save a copy of a message (it stays when the message is deleted)."""
        body = await parse_body(request, NewFavourite)
        return JSONResponse(
            favourite_json(client.favourites.add(body.chat, body.id)), status_code=201
        )

    async def remove_favourite(request: Request) -> Response:
        raw = request.path_params["id"]
        if not raw.isdigit() or len(raw) > 18:
            raise ApiError(422, "invalid_id", "a favourite's id is a number")
        try:
            client.favourites.remove(int(raw))
        except UsageError as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        return Response(status_code=204)

    async def forward(request: Request) -> Response:
        """Send copies of messages, in their order, to each chat in ``to``."""
        body = await parse_body(request, ForwardBody)
        done = await client.forwarder.forward([(m.chat, m.id) for m in body.messages], body.to)
        if done.sent == 0 and done.refused:
            why = "; ".join(f"{chat}: {reason}" for chat, reason in done.refused.items())
            raise ApiError(422, "cannot_forward", f"nothing was sent: {why}")
        return JSONResponse({"sent": done.sent, "refused": done.refused})

    return [
        Route("/api/v1/search", search, methods=["GET"]),
        Route("/api/v1/favourites", favourites, methods=["GET"]),
        Route("/api/v1/favourites", add_favourite, methods=["POST"]),
        Route("/api/v1/favourites/{id}", remove_favourite, methods=["DELETE"]),
        Route("/api/v1/forward", forward, methods=["POST"]),
    ]
