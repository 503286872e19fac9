"""Emoji verification (SAS) resources of the local API: /api/v1/contacts/{key}/sas...

A flow is ``{contact, flow, role, state, emoji: [{emoji, name}] x7, decimals:
[n, n, n], they_confirmed, reason, by, expires_in_s}``; ``state`` is ``none``
(no flow yet), ``requested`` (the contact asked: accept or cancel), ``waiting``,
``compare`` (show the emoji: confirm or mismatch), ``confirmed``, ``verified``
or ``cancelled`` (``reason``: user, mismatch, timeout, unexpected or replaced;
``by``: us or them). Every change is also a ``verification`` event on the
event WebSocket. An action that does not fit the state is 409
``verification_state``, in the API's error shape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxless.api.errors import ApiError
from boxless.api.params import path_key
from boxless.client.core import Client
from boxless.client.verification import SasStateError

Action = Callable[[bytes], Awaitable[dict[str, Any]]]


def sas_routes(client: Client) -> list[Route]:
    """The /api/v1/contacts/{key}/sas routes over ``client.sas``."""
    sas = client.sas

    async def run(request: Request, action: Action, status: int = 200) -> Response:
        try:
            flow = await action(path_key(request))
        except SasStateError as exc:
            raise ApiError(409, "verification_state", str(exc)) from None
        return JSONResponse(flow, status_code=status)

    async def current(request: Request) -> Response:
        """The emoji verification with this contact: state, 7 emoji with names, decimals."""
        return JSONResponse(sas.current(path_key(request)))

    async def start(request: Request) -> Response:
        """Start comparing emoji with an accepted contact (or accept their waiting request)."""
        return await run(request, sas.start, 201)

    async def accept(request: Request) -> Response:
        """Accept the contact's request to compare emoji."""
        return await run(request, sas.accept)

    async def confirm(request: Request) -> Response:
        """The emoji match: verified once the contact confirms too."""
        return await run(request, sas.confirm)

    async def mismatch(request: Request) -> Response:
        """The emoji differ: cancelled on both sides, nobody verified."""
        return await run(request, sas.mismatch)

    async def cancel(request: Request) -> Response:
        """Stop the emoji verification, or decline the contact's request."""
        return await run(request, sas.cancel)

    async def running(request: Request) -> Response:
        """Every emoji verification still running (a new page shows their prompts)."""
        return JSONResponse(sas.running())

    prefix = "/api/v1/contacts/{key}/sas"
    return [
        Route("/api/v1/verifications", running, methods=["GET"]),
        Route(prefix, current, methods=["GET"]),
        Route(prefix, start, methods=["POST"]),
        Route(prefix + "/accept", accept, methods=["POST"]),
        Route(prefix + "/confirm", confirm, methods=["POST"]),
        Route(prefix + "/mismatch", mismatch, methods=["POST"]),
        Route(prefix + "/cancel", cancel, methods=["POST"]),
    ]
