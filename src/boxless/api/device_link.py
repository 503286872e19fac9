"""First run in the browser, "Link to an existing account" (docs/devices.md).

While ``boxless up`` has no account, the onboarding app also serves:

- ``POST /api/v1/onboarding/link {passphrase, name?}`` → ``{link, code, qr,
  expires_at}``: this device's offer (its keys, a one-time secret, 10 minutes),
  the short code to compare and the QR code (a PNG data URL); the node then
  waits for the transfer on the pairing topic. Calling it again starts over.
- ``GET /api/v1/onboarding/link`` → ``{state, done, total, error, name}``:
  ``waiting``, ``receiving``, ``linked`` (the account exists and the full API
  is up: reload) or ``failed`` (``error`` says what to do).

The passphrase lives in memory only until the account is written.
"""

from __future__ import annotations

import base64
import io
import logging
import platform
from typing import Any

import segno
import trio
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxless.api.onboarding import Onboarding
from boxless.api.params import parse_body
from boxless.client.core import Client
from boxless.client.devices import create_linked_account, receive_link
from boxless.client.devices_core import PendingDevice
from boxless.client.transport import Transport
from boxless.errors import BoxlessError, UsageError
from boxless.storage.userdb import check_new_passphrase

logger = logging.getLogger(__name__)


class LinkBody(BaseModel):
    passphrase: str = Field(min_length=1, max_length=1024)
    name: str | None = Field(default=None, max_length=64)


class DeviceLinker:
    """The new device's side of linking, run by ``boxless up`` before an account exists."""

    def __init__(
        self,
        nursery: trio.Nursery,
        transport: Transport,
        onboarding: Onboarding,
    ) -> None:
        self.nursery = nursery
        self.transport = transport
        self.onboarding = onboarding
        self.home = onboarding.home
        self.clock = onboarding.clock
        self.kdf = onboarding.kdf
        self.status: dict[str, Any] = {"state": "idle", "done": 0, "total": 0, "error": None}
        self._scope: trio.CancelScope | None = None

    def start(self, passphrase: str, name: str | None) -> dict[str, Any]:
        if self.onboarding.done:
            raise UsageError("the account already exists: reload the page")
        check_new_passphrase(passphrase)
        pending = PendingDevice.create(
            name or f"{platform.node() or 'New device'}"[:64],
            platform.system() or "unknown",
            self.clock(),
        )
        if self._scope is not None:
            self._scope.cancel()
        self._scope = trio.CancelScope()
        self.status = {"state": "waiting", "done": 0, "total": 0, "error": None}
        self.nursery.start_soon(self._wait, pending, passphrase, self._scope)
        png = io.BytesIO()
        segno.make_qr(pending.offer.link, error="m").save(png, kind="png", scale=5, border=4)
        return {
            "link": pending.offer.link,
            "code": pending.offer.code,
            "qr": "data:image/png;base64," + base64.b64encode(png.getvalue()).decode(),
            "expires_at": pending.offer.expires_at,
        }

    def _progress(self, done: int, total: int) -> None:
        self.status.update(state="receiving", done=done, total=total)

    async def _wait(self, pending: PendingDevice, passphrase: str, scope: trio.CancelScope) -> None:
        with scope:
            try:
                linked = await receive_link(self.transport, pending, self.clock, self._progress)
                if self.onboarding.done:
                    return
                self.onboarding.done = True  # no account is created beside this one
                account = await trio.to_thread.run_sync(
                    create_linked_account, self.home, passphrase, linked, self.clock(), self.kdf
                )
                Client(account, self.transport).devices.import_snapshot(linked.snapshot)
                await self.onboarding.on_account(account)
            except (BoxlessError, trio.TooSlowError) as exc:
                message = str(exc) or "the link expired; show a new one"
                logger.info("linking this device failed: %s", message)
                self.status = {"state": "failed", "done": 0, "total": 0, "error": message}
                return
            self.status = {
                "state": "linked",
                "done": self.status["total"],
                "total": self.status["total"],
                "error": None,
                "name": linked.account_name,
            }


def link_routes(linker: DeviceLinker) -> list[Route]:
    """The onboarding app's routes for linking this device (before its catch-all)."""

    async def start(request: Request) -> Response:
        """Show this device's link and QR code; wait for the transfer."""
        body = await parse_body(request, LinkBody)
        return JSONResponse(linker.start(body.passphrase, body.name))

    async def status(request: Request) -> Response:
        """How the link goes: waiting, receiving, linked, failed."""
        return JSONResponse(linker.status)

    return [
        Route("/api/v1/onboarding/link", start, methods=["POST"]),
        Route("/api/v1/onboarding/link", status, methods=["GET"]),
    ]
