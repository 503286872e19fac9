"""Linked devices in the local API: /api/v1/devices/... (docs/devices.md)

- ``GET /devices`` → ``{devices: [{device, name, platform, linked_at, last_seen_ms,
  this_device}]}``;
- ``POST /devices/link/preview {link}`` → ``{name, platform, code, expires_at}``: what
  the new device's link says (compare ``code`` with its screen before linking);
- ``POST /devices/link {link, history_days?}`` → 201 the new device: certifies it
  and hands the account over (progress as ``devices`` events);
- ``PUT /devices/{device} {name}`` → renamed; ``DELETE /devices/{device}`` → revoked.

An expired, used or damaged link is a 422 that says to show a new one; nothing
changes.
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
from boxless.client.devices import DeviceInfo
from boxless.client.devices_core import PairingRefused
from boxless.errors import UsageError
from boxless.identity.device_certs import MAX_NAME


class LinkBody(BaseModel):
    link: str = Field(min_length=1, max_length=4096)
    history_days: int = Field(default=30, ge=0, le=3650)


class PreviewBody(BaseModel):
    link: str = Field(min_length=1, max_length=4096)


class RenameBody(BaseModel):
    name: str = Field(min_length=1, max_length=MAX_NAME)


BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("POST", "/api/v1/devices/link/preview"): PreviewBody,
    ("POST", "/api/v1/devices/link"): LinkBody,
    ("PUT", "/api/v1/devices/{device}"): RenameBody,
}


def device_json(d: DeviceInfo) -> dict[str, Any]:
    return {
        "device": d.device_key.hex(),
        "name": d.name,
        "platform": d.platform,
        "linked_at": d.linked_at,
        "last_seen_ms": d.last_seen_ms,
        "this_device": d.this_device,
    }


def device_routes(client: Client) -> list[Route]:
    """The /api/v1/devices routes over ``client.devices``."""
    devices = client.devices

    def key_of(request: Request) -> bytes:
        text = str(request.path_params["device"])
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise ApiError(422, "invalid_device", "a device is named by its 64-hex-digit key")
        return key

    async def listing(request: Request) -> Response:
        """This account's devices (name, platform, linked at, last seen)."""
        return JSONResponse({"devices": [device_json(d) for d in devices.devices()]})

    async def preview(request: Request) -> Response:
        """What a new device's link says: its name and the short code to compare."""
        body = await parse_body(request, PreviewBody)
        try:
            p = devices.preview(body.link)
        except PairingRefused as exc:
            raise ApiError(422, "invalid_link", str(exc)) from None
        return JSONResponse(
            {"name": p.name, "platform": p.platform, "code": p.code, "expires_at": p.expires_at}
        )

    async def link(request: Request) -> Response:
        """Certify the new device of a link and hand the account over to it."""
        body = await parse_body(request, LinkBody)
        try:
            d = await devices.link(body.link, history_days=body.history_days)
        except PairingRefused as exc:
            raise ApiError(422, "invalid_link", str(exc)) from None
        except UsageError as exc:
            raise ApiError(422, "invalid_body", str(exc)) from None
        return JSONResponse(device_json(d), status_code=201)

    async def rename(request: Request) -> Response:
        """Rename one of this account's devices."""
        body = await parse_body(request, RenameBody)
        key = key_of(request)
        try:
            await devices.rename(key, body.name)
        except UsageError as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        return JSONResponse({"devices": [device_json(d) for d in devices.devices()]})

    async def revoke(request: Request) -> Response:
        """Revoke a device: contacts stop encrypting to it, it wipes its keys."""
        key = key_of(request)
        try:
            await devices.revoke(key)
        except UsageError as exc:
            raise ApiError(409, "cannot_revoke", str(exc)) from None
        return JSONResponse({"devices": [device_json(d) for d in devices.devices()]})

    prefix = "/api/v1/devices"
    return [
        Route(prefix, listing, methods=["GET"]),
        Route(prefix + "/link/preview", preview, methods=["POST"]),
        Route(prefix + "/link", link, methods=["POST"]),
        Route(prefix + "/{device}", rename, methods=["PUT"]),
        Route(prefix + "/{device}", revoke, methods=["DELETE"]),
    ]
