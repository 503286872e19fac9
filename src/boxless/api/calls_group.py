"""Group call resources of the local API: /api/v1/group-calls...

A group call is a mesh (client/calls_group.py): the browser holds one peer
connection per other participant and posts, per peer, its offer or answer and
its ICE candidates. ``GET /api/v1/group-calls/current`` is ``{call, ice_servers}``
with ``call`` = ``{call_id, chat, video, ringing, started_by, started_by_name,
started_at_ms, joined_at_ms, participants: [{key, name, offerer, need_offer,
described, remote_kind, remote_sdp, remote_candidates, code, connected, epoch,
gen}], session, detached}`` or null; every change is a ``group_call`` event.
Repairs: ``…/join`` in a call we are in rejoins (a reloaded page, another tab:
new connections with everyone, ``session`` + 1), ``…/peers/{key}/retry`` makes
a new connection with one participant, ``…/detach {session}`` says the page
holding the media went away (we leave unless a page rejoins soon). A
description names the round it was made for (``epoch``, ``gen``); a stale one
gets 409 ``stale_round``. History rows of group calls are in ``GET
/api/v1/calls`` (``chat`` = ``group:<gid>``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxless.api.call_params import Candidates, Sdp, bad_sdp, call_id_of, candidates_of
from boxless.api.errors import ApiError
from boxless.api.params import parse_body
from boxless.calls.group import StaleRound
from boxless.client.calls_group import GroupCalls
from boxless.client.core import Client
from boxless.errors import DecodeError, UsageError


class StartGroupCall(BaseModel):
    chat: str = Field(max_length=200)
    video: bool = False


class Description(Sdp):
    epoch: int | None = Field(default=None, ge=0)
    gen: int | None = Field(default=None, ge=0)


class Detach(BaseModel):
    session: int | None = Field(default=None, ge=0)


BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("POST", "/api/v1/group-calls"): StartGroupCall,
    ("POST", "/api/v1/group-calls/{call_id}/peers/{peer}/description"): Description,
    ("POST", "/api/v1/group-calls/{call_id}/peers/{peer}/candidates"): Candidates,
    ("POST", "/api/v1/group-calls/{call_id}/detach"): Detach,
}


def _peer(request: Request) -> bytes:
    try:
        value = bytes.fromhex(request.path_params["peer"])
    except ValueError:
        value = b""
    if len(value) != 32:
        raise ApiError(422, "invalid_peer", "peer must be an identity key (64 hex characters)")
    return value


def group_of(chat: str) -> bytes:
    kind, _, gid = chat.partition(":")
    try:
        value = bytes.fromhex(gid)
    except ValueError:
        value = b""
    if kind != "group" or not 1 <= len(value) <= 64:
        raise ApiError(422, "invalid_chat", "a group call needs chat = group:<group id hex>")
    return value


def group_call_routes(client: Client) -> list[Route]:
    """The /api/v1/group-calls routes over ``client.calls.group``."""
    group = client.calls.group
    assert isinstance(group, GroupCalls)

    async def current(request: Request) -> Response:
        """The running group call (``call``: null if none) and the STUN/TURN servers."""
        ice = await client.calls.ice_servers_now()
        return JSONResponse({"call": group.current(), "ice_servers": ice})

    async def start(request: Request) -> Response:
        """Start a call in a group and ring its members: 201 and the call."""
        body: StartGroupCall = await parse_body(request, StartGroupCall)
        return JSONResponse(await group.start(group_of(body.chat), body.video), status_code=201)

    async def join(request: Request) -> Response:
        """Join the call that rings (or runs) in the group; rejoin the one we are in."""
        return JSONResponse(await group.join(call_id_of(request)))

    async def detach(request: Request) -> Response:
        """The page holding the call's media went away (closed, reloading)."""
        body: Detach = await parse_body(request, Detach)
        return JSONResponse(await group.detach(call_id_of(request), body.session))

    async def retry(request: Request) -> Response:
        """A new connection with one participant (the pair was lost)."""
        try:
            return JSONResponse(await group.retry(call_id_of(request), _peer(request)))
        except UsageError as exc:
            raise ApiError(409, "not_in_call", str(exc)) from None

    async def leave(request: Request) -> Response:
        """Leave the call, or decline its ring."""
        return JSONResponse(await group.leave(call_id_of(request)))

    async def description(request: Request) -> Response:
        """The browser's offer or answer for its connection with one participant."""
        body: Description = await parse_body(request, Description)
        call_id, peer = call_id_of(request), _peer(request)
        try:
            return JSONResponse(await group.describe(call_id, peer, body.sdp, body.epoch, body.gen))
        except DecodeError as exc:
            raise bad_sdp(exc) from None
        except StaleRound as exc:
            raise ApiError(409, "stale_round", str(exc)) from None

    async def candidates(request: Request) -> Response:
        """The browser's ICE candidates for one participant."""
        found = candidates_of(await parse_body(request, Candidates))
        await group.add_candidates(call_id_of(request), _peer(request), found)
        return JSONResponse({"sent": len(found)})

    async def connected(request: Request) -> Response:
        """The browser's connection with one participant is up."""
        try:
            return JSONResponse(await group.pair_connected(call_id_of(request), _peer(request)))
        except UsageError as exc:
            raise ApiError(409, "not_in_call", str(exc)) from None

    prefix = "/api/v1/group-calls"
    one = prefix + "/{call_id}"
    peer = one + "/peers/{peer}"
    routes: list[Any] = [
        Route(prefix + "/current", current, methods=["GET"]),
        Route(prefix, start, methods=["POST"]),
        Route(one + "/join", join, methods=["POST"]),
        Route(one + "/leave", leave, methods=["POST"]),
        Route(one + "/detach", detach, methods=["POST"]),
        Route(peer + "/retry", retry, methods=["POST"]),
        Route(peer + "/description", description, methods=["POST"]),
        Route(peer + "/candidates", candidates, methods=["POST"]),
        Route(peer + "/connected", connected, methods=["POST"]),
    ]
    return routes
