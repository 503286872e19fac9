"""People Nearby in the local API: /api/v1/nearby...

- ``GET /nearby`` → ``{sharing, cell, people: [{id, name, status, avatar,
  distance, seen_at_ms, greeted}], hellos: [{id, name, text, received_at_ms}],
  drops: {reason: n}}``; ``distance`` is a bucket ("< 1 km", "< 5 km", "< 10 km");
- ``POST /nearby/start {lat, lon, name?, status?, avatar?}``: share a coarse
  cell (the position itself never leaves this device) → as GET;
- ``POST /nearby/stop`` → as GET (our card withdrawn, everything forgotten);
- ``POST /nearby/people/{id}/hello {text?}``: send that card our contact link;
- ``POST /nearby/hellos/{id}/accept``: make the greeter a contact;
  ``DELETE /nearby/hellos/{id}``: ignore it.

Off (not sharing): every action but start is a 409 ``not_sharing``.
"""

from __future__ import annotations

import base64
from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxless.api.errors import ApiError
from boxless.api.params import parse_body
from boxless.client.core import Client
from boxless.client.nearby import NotSharing


class StartSharing(BaseModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    name: str = Field(default="", max_length=256)
    status: str = Field(default="", max_length=400)
    avatar: bool = False


class SayHello(BaseModel):
    text: str = Field(default="", max_length=200)


BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("POST", "/api/v1/nearby/start"): StartSharing,
    ("POST", "/api/v1/nearby/people/{id}/hello"): SayHello,
}


def _card_id(request: Request) -> bytes:
    try:
        value = bytes.fromhex(str(request.path_params["id"]))
    except ValueError:
        value = b""
    if len(value) != 32:
        raise ApiError(422, "invalid_id", "id must be a card's 64 hex characters")
    return value


def nearby_routes(client: Client) -> list[Route]:
    """The /api/v1/nearby routes over ``client.nearby``."""
    nearby = client.nearby

    def state() -> dict[str, Any]:
        session = nearby.session
        if session is None:
            return {
                "sharing": False,
                "cell": None,
                "people": [],
                "hellos": [],
                "drops": nearby.drops(),
            }
        return {
            "sharing": True,
            "cell": session.cell,
            "name": session.name,
            "people": [
                {
                    "id": p.id,
                    "name": p.name,
                    "status": p.status,
                    "avatar": base64.b64encode(p.avatar).decode() if p.avatar else None,
                    "distance": p.distance,
                    "seen_at_ms": p.seen_at_ms,
                    "greeted": p.greeted,
                }
                for p in nearby.people()
            ],
            "hellos": [
                {"id": x.id, "name": x.name, "text": x.text, "received_at_ms": x.received_at_ms}
                for x in nearby.received_hellos()
            ],
            "drops": nearby.drops(),
        }

    def off(exc: NotSharing) -> ApiError:
        return ApiError(409, "not_sharing", str(exc))

    async def get(request: Request) -> Response:
        """Who is nearby (distance buckets only), hellos received, dropped input."""
        return JSONResponse(state())

    async def start(request: Request) -> Response:
        """Share a ~5 km cell of this position and see people around (opt-in)."""
        body = await parse_body(request, StartSharing)
        await nearby.start(
            body.lat, body.lon, name=body.name, status=body.status, avatar=body.avatar
        )
        return JSONResponse(state())

    async def stop(request: Request) -> Response:
        """Stop sharing: our card is withdrawn and what was seen forgotten."""
        await nearby.stop()
        return JSONResponse(state())

    async def hello(request: Request) -> Response:
        """Say hello to a card: it gets our contact link and decides."""
        body = await parse_body(request, SayHello)
        try:
            await nearby.say_hello(_card_id(request), body.text)
        except NotSharing as exc:
            raise off(exc) from None
        return JSONResponse(state())

    async def accept(request: Request) -> Response:
        """Accept a hello: the greeter becomes a contact (a request each way)."""
        try:
            await nearby.accept(_card_id(request))
        except NotSharing as exc:
            raise off(exc) from None
        return JSONResponse(state())

    async def ignore(request: Request) -> Response:
        """Ignore a hello."""
        nearby.ignore(_card_id(request))
        return JSONResponse(state())

    return [
        Route("/api/v1/nearby", get, methods=["GET"]),
        Route("/api/v1/nearby/start", start, methods=["POST"]),
        Route("/api/v1/nearby/stop", stop, methods=["POST"]),
        Route("/api/v1/nearby/people/{id}/hello", hello, methods=["POST"]),
        Route("/api/v1/nearby/hellos/{id}/accept", accept, methods=["POST"]),
        Route("/api/v1/nearby/hellos/{id}", ignore, methods=["DELETE"]),
    ]
