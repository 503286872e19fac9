"""The local API of a real client in memory: an httpx client over ASGI (no socket),
authenticated with a test token, its base URL the API's ``/api/v1``."""

from __future__ import annotations

from typing import Any

import httpx

from boxless.api.app import build_app

TOKEN = "t" * 32
ORIGIN = "http://127.0.0.1:9"


def api_client(
    client: Any, origin: str = ORIGIN, token: str = TOKEN, status: Any = None
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on ``client``'s API app (use it as ``async with``);
    ``status``: what ``GET /status`` reads (e.g. the memnet transport's ``status``)."""
    app = build_app(client, token, origin, status or (lambda: {"ok": True}))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=origin + "/api/v1",
        headers={"Authorization": f"Bearer {token}"},
    )
