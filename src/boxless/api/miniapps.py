"""Mini apps over the local API (docs/miniapps.md).

- ``GET /api/v1/miniapps`` -> ``{apps: [...], origin}``: installed apps (recently
  used first) and the app origin's base URL (``<origin>/<app id>/<path>``).
- ``GET /api/v1/miniapps/shared`` -> ``{apps: [{message_id, index, chat, outgoing,
  name, file_name, size, state, shared_at_ms}]}``: ``.boxapp`` files shared in chats
  whose bundle is not installed, newest first (client/miniapp_shared.py).
- ``POST /api/v1/miniapps`` (body: the signed bundle file) -> 201 the app;
  422 with the reason when refused (signature, paths, size, manifest, another key).
- ``POST /api/v1/miniapps/from-attachment {message_id, index}``: install the
  bundle a chat card carries (an attachment; fetched and verified first).
- ``DELETE /api/v1/miniapps/{app_id}``: uninstall, its data removed.
- ``PUT /api/v1/miniapps/{app_id}/permissions/{permission} {granted}`` (true,
  false, or null to ask again): the user's decision (first-use prompt, settings).
- ``POST /api/v1/miniapps/{app_id}/opened``: the page was opened (recently used);
  an app that may ask for ``pay`` has its bot asked for its wallet address.
- ``POST /api/v1/miniapps/{app_id}/bridge {method, params, confirmed}``: one
  bridge call of the app's page, relayed by web/js/bridge.js. Rate-limited (429
  ``suspended`` when the app floods), permission-checked (403
  ``permission_needed`` with ``permission`` when the user has not decided yet,
  403 ``permission_denied`` when refused or not in the manifest).
  ``pay`` (params ``{amount: "0.002" ETH, token: "ETH", memo, to: seller 0x…,
  ref: order id}``, only with ``confirmed``) pays into the configured escrow
  contract and answers ``{deal}``; 4xx with the reason otherwise.
  ``deal {deal}`` reads an escrow deal for Boxless's release dialog (only this
  user's deal to the app's bot); ``release {deal}`` (only with ``confirmed``) pays
  the seller.
- ``PUT /api/v1/miniapps/escrow {address}``: the escrow contract mini apps pay into
  on the wallet's chain (as ``boxless wallet escrow``).
- ``GET /api/v1/miniapps/{app_id}/replies`` -> ``{replies: [{request_id, payload}],
  pushes: [{request_id, payload}]}``: the bot's answers to the page's
  ``backend.request`` calls of the last minute, and its pushes (read-only; the
  page reads them when its events socket opens and hands each answer to a request
  it still waits for, each push it has not seen to the app: js/bridge.js
  ``resumeAppReplies``).
- ``GET /api/v1/miniapps/{app_id}/storage/{key}``: what the app stored (settings).
- ``POST /api/v1/miniapps/{app_id}/suspend``: the UI saw the page flood the bridge.
- ``GET /api/v1/miniapps/{app_id}/icon``: the app's icon (PNG/JPEG/WebP only).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxless.api.errors import ApiError, error_response
from boxless.api.params import parse_body, read_limited
from boxless.client.core import Client
from boxless.client.escrow import Deal
from boxless.client.miniapp_pay import MiniAppPay, parse_pay
from boxless.client.miniapp_shared import list_shared
from boxless.client.miniapps import NoSuchApp, PermissionDenied
from boxless.miniapps import MAX_BUNDLE_BYTES, PERMISSIONS, BundleError
from boxless.miniapps.manifest import APP_ID_PATTERN as APP_ID
from boxless.payments.amounts import format_amount

__all__ = ["BODIES", "miniapp_routes"]


def _deal_param(p: Any) -> int:
    deal = p.get("deal") if isinstance(p, dict) else None
    if not isinstance(deal, int) or isinstance(deal, bool) or not 0 <= deal < 2**256:
        raise ApiError(422, "invalid_params", "deal is the escrow deal id (a number)")
    return deal


def _deal_json(d: Deal) -> dict[str, Any]:
    return {
        "deal": d.id,
        "amount": format_amount(d.amount, 18),
        "token": "ETH",
        "seller": "0x" + d.seller.hex(),
        "state": d.state,
        "ref": d.ref.decode("utf-8", "replace"),
    }


_MID = re.compile(r"[0-9a-f]{32}|[0-9A-Za-z_-]{8,128}")
# the permission each method needs (getUser needs none: name/avatar only when allowed)
_NEEDS = {
    "backend.request": "backend",
    "pay": "pay",
    "deal": "pay",
    "release": "pay",
    "shareToChat": "share",
    "storage.get": "storage",
    "storage.set": "storage",
}


class FromAttachmentBody(BaseModel):
    message_id: str = Field(pattern=r"^[0-9A-Za-z_-]{8,128}$")
    index: int = Field(ge=0, le=8)


class PermissionBody(BaseModel):
    granted: bool | None


class BridgeBody(BaseModel):
    method: Literal[
        "getUser",
        "backend.request",
        "pay",
        "deal",
        "release",
        "shareToChat",
        "storage.get",
        "storage.set",
    ]
    params: Any = None
    confirmed: bool = False  # set by the Boxless UI only after its own dialog


class EscrowBody(BaseModel):
    address: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")


BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("PUT", "/api/v1/miniapps/escrow"): EscrowBody,
    ("POST", "/api/v1/miniapps/from-attachment"): FromAttachmentBody,
    ("PUT", "/api/v1/miniapps/{app_id}/permissions/{permission}"): PermissionBody,
    ("POST", "/api/v1/miniapps/{app_id}/bridge"): BridgeBody,
}


def _app_id(request: Request) -> str:
    app_id: str = request.path_params["app_id"]
    if len(app_id) > 100 or not APP_ID.fullmatch(app_id):
        raise ApiError(404, "not_found", "no such mini app")
    return app_id


def _str_param(params: Any, name: str, limit: int) -> str:
    value = params.get(name) if isinstance(params, dict) else None
    if not isinstance(value, str) or len(value) > limit:
        raise ApiError(422, "invalid_params", f"{name} must be a string of at most {limit}")
    return value


def miniapp_routes(client: Client) -> list[Route]:
    feature = client.miniapps
    payer = MiniAppPay(client.account, client.payments, clock=client.clock)

    def app_json(app_id: str) -> dict[str, Any]:
        try:
            row = feature.app(app_id)
        except NoSuchApp as exc:
            raise ApiError(404, "not_found", str(exc)) from exc
        return feature.app_json(row, feature.decisions(app_id), client.clock())

    async def listing(request: Request) -> Response:
        return JSONResponse({"apps": feature.apps(), "origin": feature.app_origin})

    async def set_escrow(request: Request) -> Response:
        body: EscrowBody = await parse_body(request, EscrowBody)
        chain_id = payer.set_escrow(bytes.fromhex(body.address[2:]))
        return JSONResponse({"address": body.address.lower(), "chain_id": chain_id})

    async def shared(request: Request) -> Response:
        return JSONResponse({"apps": list_shared(feature.db)})

    def _install(data: bytes) -> Response:
        try:
            manifest = feature.install(data)
        except BundleError as exc:
            raise ApiError(422, "bundle_refused", str(exc)) from exc
        return JSONResponse(app_json(manifest.id), status_code=201)

    async def install(request: Request) -> Response:
        data = await read_limited(request, MAX_BUNDLE_BYTES + 1024 * 1024)
        if not data:
            raise ApiError(
                422, "invalid_body", "send the bundle file (boxless app pack) as the body"
            )
        return _install(data)

    async def from_attachment(request: Request) -> Response:
        body: FromAttachmentBody = await parse_body(request, FromAttachmentBody)
        mid = body.message_id
        message_id = bytes.fromhex(mid) if re.fullmatch(r"[0-9a-f]{32}", mid) else mid.encode()
        row = client.attachments.attachment(message_id, body.index)
        if row.ref.size > MAX_BUNDLE_BYTES + 1024 * 1024:
            raise ApiError(422, "bundle_refused", "the bundle is over 8 MiB")
        parts = [piece async for piece in client.attachments.open(message_id, body.index)]
        return _install(b"".join(parts))

    async def remove(request: Request) -> Response:
        try:
            feature.remove(_app_id(request))
        except NoSuchApp as exc:
            raise ApiError(404, "not_found", str(exc)) from exc
        return Response(status_code=204)

    async def permission(request: Request) -> Response:
        app_id = _app_id(request)
        perm = request.path_params["permission"]
        if perm not in PERMISSIONS:
            raise ApiError(404, "not_found", "no such permission")
        body: PermissionBody = await parse_body(request, PermissionBody)
        feature.decide(app_id, perm, body.granted)
        return JSONResponse(app_json(app_id))

    async def opened(request: Request) -> Response:
        app_id = _app_id(request)
        feature.opened(app_id)
        row = feature.app(app_id)
        if "pay" in row.manifest.permissions:  # learn the seller's wallet before pay()
            await payer.learn_seller(row.manifest.bot)
        return Response(status_code=204)

    async def suspend(request: Request) -> Response:
        app_id = _app_id(request)
        app_json(app_id)  # 404 when not installed
        feature.limiter.suspend(app_id, client.clock())
        return Response(status_code=204)

    async def icon(request: Request) -> Response:
        app_id = _app_id(request)
        app_json(app_id)
        bundle = feature.files(app_id)
        name = bundle.manifest.icon
        ext = name.rsplit(".", 1)[-1].lower()
        types = {
            "png": "image/png",
            "jpg": "image/jpeg",
            "jpeg": "image/jpeg",
            "webp": "image/webp",
        }
        if ext not in types:  # an SVG could carry script: only raster icons are shown
            raise ApiError(404, "not_found", "the app has no raster icon")
        return Response(bundle.files[name], media_type=types[ext])

    async def storage(request: Request) -> Response:
        app_id = _app_id(request)
        app_json(app_id)  # 404 when not installed
        return JSONResponse({"value": feature.stored(app_id, request.path_params["key"])})

    async def replies(request: Request) -> Response:
        try:
            kept, pushed = feature.replies(_app_id(request))
        except NoSuchApp as exc:
            raise ApiError(404, "not_found", str(exc)) from exc
        return JSONResponse(
            {"replies": [r.to_json() for r in kept], "pushes": [p.to_json() for p in pushed]}
        )

    async def bridge(request: Request) -> Response:
        app_id = _app_id(request)
        body: BridgeBody = await parse_body(request, BridgeBody, limit=64 * 1024)
        try:
            row = feature.bridge_call(app_id)
        except NoSuchApp as exc:
            raise ApiError(404, "not_found", str(exc)) from exc
        except PermissionDenied as exc:
            return error_response(429, "suspended", str(exc))
        need = _NEEDS.get(body.method)
        if need is not None:
            if need not in row.manifest.permissions:
                return error_response(
                    403, "permission_denied", f"{app_id} did not ask for {need} in its manifest"
                )
            decided = feature.decisions(app_id).get(need)
            if decided is None:
                error = {"code": "permission_needed", "message": f"ask the user for {need}"}
                return JSONResponse({"error": {**error, "permission": need}}, status_code=403)
            if not decided:
                return error_response(403, "permission_denied", f"the user refused {need}")
        try:
            result = await _call(body, row)
        except PermissionDenied as exc:
            return error_response(403, "permission_denied", str(exc))
        return JSONResponse({"result": result})

    async def _call(body: BridgeBody, row: Any) -> Any:
        p = body.params
        match body.method:
            case "getUser":
                return feature.user(row)
            case "storage.get":
                return feature.storage_get(row, _str_param(p, "key", 128))
            case "storage.set":
                value = p.get("value") if isinstance(p, dict) else None
                if value is not None and not isinstance(value, str):
                    raise ApiError(422, "invalid_params", "storage values are strings (or null)")
                feature.storage_set(row, _str_param(p, "key", 128), value)
                return None
            case "backend.request":
                payload = p.get("payload") if isinstance(p, dict) else None
                return {"request_id": await feature.backend_request(row, payload)}
            case "shareToChat":
                if not body.confirmed:
                    raise ApiError(409, "confirm_first", "the user confirms a share in Boxless")
                return {"shared": True}  # the UI sends the card to the chat the user picked
            case "pay":
                if not body.confirmed:
                    raise ApiError(409, "confirm_first", "the user confirms a payment in Boxless")
                return {"deal": await payer.pay(row.manifest.bot, parse_pay(p))}
            case "deal":  # what Boxless's release dialog shows
                return _deal_json(await payer.deal(row.manifest.bot, _deal_param(p)))
            case "release":
                if not body.confirmed:
                    raise ApiError(409, "confirm_first", "the user confirms a release in Boxless")
                return _deal_json(await payer.release(row.manifest.bot, _deal_param(p)))
        raise ApiError(404, "not_found", f"no bridge method {body.method}")

    return [
        Route("/api/v1/miniapps", listing, methods=["GET"]),
        Route("/api/v1/miniapps", install, methods=["POST"]),
        Route("/api/v1/miniapps/shared", shared, methods=["GET"]),
        Route("/api/v1/miniapps/escrow", set_escrow, methods=["PUT"]),
        Route("/api/v1/miniapps/from-attachment", from_attachment, methods=["POST"]),
        Route("/api/v1/miniapps/{app_id}", remove, methods=["DELETE"]),
        Route("/api/v1/miniapps/{app_id}/permissions/{permission}", permission, methods=["PUT"]),
        Route("/api/v1/miniapps/{app_id}/opened", opened, methods=["POST"]),
        Route("/api/v1/miniapps/{app_id}/bridge", bridge, methods=["POST"]),
        Route("/api/v1/miniapps/{app_id}/replies", replies, methods=["GET"]),
        Route("/api/v1/miniapps/{app_id}/storage/{key}", storage, methods=["GET"]),
        Route("/api/v1/miniapps/{app_id}/suspend", suspend, methods=["POST"]),
        Route("/api/v1/miniapps/{app_id}/icon", icon, methods=["GET"]),
    ]
