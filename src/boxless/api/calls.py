"""Call resources of the local API: /api/v1/calls...

The browser owns the WebRTC peer connection; these routes carry its SDP and ICE
candidates to the client, which relays them to the contact end-to-end
encrypted (client/calls.py). A call is ``{call_id, chat, outgoing, video,
phase, reason, code, started_at_ms, connected_at_ms, duration_s, remote_sdp,
remote_candidates}``; every change is also a ``call`` event (and ``call_ice``
when the peer's candidates arrive). History rows are ``{call_id, chat,
outgoing, video, reason, started_at_ms, connected_at_ms, ended_at_ms,
duration_s}``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxless.api.call_params import Candidates, Sdp, bad_sdp, call_id_of, candidates_of
from boxless.api.calls_group import BODIES as GROUP_BODIES
from boxless.api.calls_group import group_call_routes, group_of
from boxless.api.errors import ApiError
from boxless.api.params import parse_body
from boxless.client.core import Client
from boxless.errors import DecodeError


class StartCall(Sdp):
    chat: str = Field(max_length=80)
    video: bool = False


class Answer(Sdp):
    pass


BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("POST", "/api/v1/calls"): StartCall,
    ("POST", "/api/v1/calls/{call_id}/accept"): Answer,
    ("POST", "/api/v1/calls/{call_id}/restart"): Answer,
    ("POST", "/api/v1/calls/{call_id}/candidates"): Candidates,
    **GROUP_BODIES,
}


def _contact_of(chat: str) -> bytes:
    kind, _, key = chat.partition(":")
    try:
        value = bytes.fromhex(key)
    except ValueError:
        value = b""
    if kind != "contact" or len(value) != 32:
        raise ApiError(422, "invalid_chat", "calls are 1:1 for now: chat must be contact:<key hex>")
    return value


def call_routes(client: Client) -> list[Route]:
    """The /api/v1/calls routes over ``client.calls``."""
    calls = client.calls

    async def current(request: Request) -> Response:
        """The running call (``call``: null if none) and the STUN/TURN servers to use
        (``ice_servers``: RTCIceServer objects, turn: ones with short-lived credentials)."""
        return JSONResponse({"call": calls.current(), "ice_servers": await calls.ice_servers_now()})

    async def history(request: Request) -> Response:
        """Ended calls, newest first: 1:1 and group calls (``?chat=contact:<key>`` or
        ``group:<gid>`` for one chat, ``limit``); group rows have ``group``, ``started_by``
        and ``participants``."""
        chat = request.query_params.get("chat")
        try:
            limit = int(request.query_params.get("limit", "50"))
        except ValueError:
            raise ApiError(422, "invalid_limit", "limit must be a number") from None
        group = calls.group
        if chat and chat.startswith("group:"):
            gid = group_of(chat)
            return JSONResponse({"calls": group.history(gid, limit) if group else []})
        peer = _contact_of(chat) if chat else None
        rows = calls.history(peer, limit)
        if peer is None and group is not None:
            rows = sorted(rows + group.history(None, limit), key=lambda r: -r["started_at_ms"])
        return JSONResponse({"calls": rows[: max(1, limit)]})

    async def start(request: Request) -> Response:
        """Ring a contact with the browser's offer: 201 and the call (phase ``outgoing``)."""
        body: StartCall = await parse_body(request, StartCall)
        try:
            call = await calls.start(_contact_of(body.chat), body.sdp, body.video)
        except DecodeError as exc:
            raise bad_sdp(exc) from None
        return JSONResponse(call, status_code=201)

    async def accept(request: Request) -> Response:
        """Answer the ringing call with the browser's answer (phase ``connecting``)."""
        body: Answer = await parse_body(request, Answer)
        try:
            return JSONResponse(await calls.accept(call_id_of(request), body.sdp))
        except DecodeError as exc:
            raise bad_sdp(exc) from None

    async def restart(request: Request) -> Response:
        """The caller's ICE restart: a new offer on the same connection (the callee
        sees ``restarts`` grow and answers it through ``…/accept``)."""
        body: Answer = await parse_body(request, Answer)
        try:
            return JSONResponse(await calls.restart(call_id_of(request), body.sdp))
        except DecodeError as exc:
            raise bad_sdp(exc) from None

    async def decline(request: Request) -> Response:
        """Decline the ringing call."""
        return JSONResponse(await calls.decline(call_id_of(request)))

    async def hang_up(request: Request) -> Response:
        """End the call (or stop ringing)."""
        return JSONResponse(await calls.hang_up(call_id_of(request)))

    async def connected(request: Request) -> Response:
        """The browser's ICE connection is up (phase ``connected``)."""
        return JSONResponse(await calls.connected(call_id_of(request)))

    async def candidates(request: Request) -> Response:
        """The browser's ICE candidates, relayed to the contact."""
        found = candidates_of(await parse_body(request, Candidates))
        await calls.add_candidates(call_id_of(request), found)
        return JSONResponse({"sent": len(found)})

    prefix = "/api/v1/calls"
    one = prefix + "/{call_id}"
    routes: list[Any] = [
        Route(prefix + "/current", current, methods=["GET"]),
        Route(prefix, history, methods=["GET"]),
        Route(prefix, start, methods=["POST"]),
        Route(one + "/accept", accept, methods=["POST"]),
        Route(one + "/restart", restart, methods=["POST"]),
        Route(one + "/decline", decline, methods=["POST"]),
        Route(one + "/hangup", hang_up, methods=["POST"]),
        Route(one + "/connected", connected, methods=["POST"]),
        Route(one + "/candidates", candidates, methods=["POST"]),
    ]
    if calls.group is not None:
        routes += group_call_routes(client)
    return routes
