"""Stealth receiving in the Wallet pane (docs/redenvelopes.md; client/stealth.py).

- ``GET /api/v1/wallet/stealth`` -> ``{meta_address, configured, address, chain_id,
  announcer, scanned_block, found: [{address, block, tx, balance, balance_wei, swept}]}``
  (``error`` instead of the chain fields when the wallet has no chain).
- ``GET /api/v1/wallet/stealth/qr.png``: the meta-address as a QR code.
- ``PUT /api/v1/wallet/stealth {announcer}``: the ERC-5564 announcer to scan.
- ``POST /api/v1/wallet/stealth/scan`` -> ``{scanned_block, head, done, new}``: the next
  blocks (at most 50,000 a call; call again until ``done``), the last block remembered.
- ``POST /api/v1/wallet/stealth/sweep {confirmed: true}`` -> ``{to, swept, skipped}``:
  every found stealth address's ETH to the wallet's main address (409 without the
  user's confirm).
"""

from __future__ import annotations

import trio
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxless.api.errors import ApiError
from boxless.api.params import parse_body
from boxless.api.web import qr_png
from boxless.client.core import Client
from boxless.client.stealth import StealthWallet

__all__ = ["BODIES", "stealth_routes"]


class AnnouncerBody(BaseModel):
    announcer: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")


class SweepBody(BaseModel):
    confirmed: bool = False  # set by the UI after its own confirm step


BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("PUT", "/api/v1/wallet/stealth"): AnnouncerBody,
    ("POST", "/api/v1/wallet/stealth/sweep"): SweepBody,
}


def stealth_routes(client: Client) -> list[Route]:
    wallet = StealthWallet(client.account, clock=client.clock)

    async def info(request: Request) -> Response:
        return JSONResponse(await wallet.info())

    async def qr(request: Request) -> Response:
        uri = (await wallet.info())["meta_address"]
        png = await trio.to_thread.run_sync(qr_png, uri)
        return Response(png, media_type="image/png")

    async def set_announcer(request: Request) -> Response:
        body: AnnouncerBody = await parse_body(request, AnnouncerBody)
        wallet.set_announcer(bytes.fromhex(body.announcer[2:]))
        return JSONResponse(await wallet.info())

    async def scan(request: Request) -> Response:
        return JSONResponse(await wallet.scan())

    async def sweep(request: Request) -> Response:
        body: SweepBody = await parse_body(request, SweepBody)
        if not body.confirmed:
            raise ApiError(409, "confirm_first", "confirm the sweep in Boxless first")
        return JSONResponse(await wallet.sweep())

    return [
        Route("/api/v1/wallet/stealth", info, methods=["GET"]),
        Route("/api/v1/wallet/stealth", set_announcer, methods=["PUT"]),
        Route("/api/v1/wallet/stealth/qr.png", qr, methods=["GET"]),
        Route("/api/v1/wallet/stealth/scan", scan, methods=["POST"]),
        Route("/api/v1/wallet/stealth/sweep", sweep, methods=["POST"]),
    ]
