"""Red envelopes over the local API (a chat is ``contact:<key hex>`` or ``group:<gid hex>``).

- ``GET /api/v1/redenvelopes?chat=`` -> ``{envelopes: [...]}`` newest first
  (client/redenvelopes.py ``_json``: greeting, total, shares, lucky, expiry,
  ``status`` open | empty | expired | refused, ``my_amount``, ``opened``: who
  opened which with the chain's amounts, ``best_luck``). Never the secret.
- ``POST /api/v1/redenvelopes {chat, total, shares, lucky, greeting, expiry_s?, token?}``
  -> 201 ``{message_id}``: deposits ``total`` (decimal text in ``token``: "ETH", the
  default, or the wallet's configured ERC-20 symbol, e.g. "BXD": approved, then
  deposited) and posts the card. The user confirms in the UI before this call.
- ``POST /api/v1/redenvelopes/{envelope_id}/open`` -> ``{relayed: true}``: the
  "opened" notice is sent, the sender's client claims our share (the amount comes
  with a ``redenvelope`` event); 409 with the reason when it may not be opened
  (empty, expired, another chat, not a member, already opened).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxless.api.errors import ApiError
from boxless.api.params import parse_body
from boxless.client.core import Client
from boxless.client.redenvelopes_core import DEFAULT_EXPIRY_S
from boxless.errors import UsageError
from boxless.payments.amounts import parse_amount

CHAT = r"^(contact|group):[0-9a-f]{16,128}$"
_ID = re.compile(r"[0-9a-f]{64}")


class SendEnvelopeBody(BaseModel):
    chat: str = Field(pattern=CHAT)
    total: str = Field(pattern=r"^[0-9]{1,30}(\.[0-9]{1,18})?$")
    shares: int = Field(ge=1, le=1000)
    lucky: bool = True
    greeting: str = Field(default="", max_length=200)
    expiry_s: int = Field(default=DEFAULT_EXPIRY_S, ge=60, le=30 * 86400)
    token: str = Field(default="ETH", min_length=1, max_length=16)


BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("POST", "/api/v1/redenvelopes"): SendEnvelopeBody,
}


def redenvelope_routes(client: Client) -> list[Route]:
    feature = client.redenvelopes

    async def listing(request: Request) -> Response:
        chat = request.query_params.get("chat", "")
        if not re.fullmatch(CHAT, chat):
            raise ApiError(422, "invalid_query", "chat is contact:<key hex> or group:<id hex>")
        return JSONResponse({"envelopes": feature.envelopes(chat)})

    async def send(request: Request) -> Response:
        body: SendEnvelopeBody = await parse_body(request, SendEnvelopeBody)
        token, decimals = feature.currency_of(body.token)  # UsageError: which ones exist
        total = parse_amount(body.total, decimals)
        if total < body.shares:
            raise ApiError(422, "invalid_body", "the total must be at least one unit per share")
        message_id = await feature.send(
            body.chat, total, body.shares, body.lucky, body.greeting, body.expiry_s, token
        )
        return JSONResponse({"message_id": message_id}, status_code=201)

    async def open_envelope(request: Request) -> Response:
        envelope_id = request.path_params["envelope_id"]
        if not _ID.fullmatch(envelope_id):
            raise ApiError(404, "not_found", "no such red envelope")
        try:
            result = await feature.open(bytes.fromhex(envelope_id))
        except UsageError as exc:
            raise ApiError(409, "cannot_open", str(exc)) from exc
        return JSONResponse(result)

    return [
        Route("/api/v1/redenvelopes", listing, methods=["GET"]),
        Route("/api/v1/redenvelopes", send, methods=["POST"]),
        Route("/api/v1/redenvelopes/{envelope_id}/open", open_envelope, methods=["POST"]),
    ]
