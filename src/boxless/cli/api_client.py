"""A small client of the local API of a running ``boxless up``, for the commands.

``boxless up`` writes ``<home>/api.json`` (URL and token, mode 0600); every
other user command reads it and calls the API with this client.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from boxless.cli.app import fail
from boxless.errors import BoxlessError, NetworkError, UsageError

__all__ = ["API_FILE", "Api", "api_for"]

API_FILE = "api.json"


class Api:
    """A small client of the local API of the `boxless up` owning ``home``."""

    def __init__(self, home: Path) -> None:
        path = home / API_FILE
        try:
            info = json.loads(path.read_text())
        except FileNotFoundError:
            raise UsageError(
                f"Boxless is not running for {home}: start it with `boxless up` first"
            ) from None
        self.url = info["url"]
        self.token = info["token"]
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            r = self.http.request(method, "/api/v1" + path, json=body)
        except httpx.HTTPError as exc:
            raise NetworkError(f"`boxless up` does not answer at {self.url}: {exc}") from exc
        if r.status_code >= 400:
            raise UsageError(r.json()["error"]["message"])
        return r.json() if r.content else None

    def contact_key(self, who: str) -> str:
        contacts = self.call("GET", "/contacts")
        exact = [c for c in contacts if c["name"].lower() == who.lower()]
        keyed = [c for c in contacts if len(who) >= 4 and c["identity_key"].startswith(who.lower())]
        found = exact or keyed
        if len(found) != 1:
            raise UsageError(
                f"no contact called {who!r}: see `boxless contacts`"
                if not found
                else f"{who!r} matches {len(found)} contacts: use a key prefix"
            )
        return str(found[0]["identity_key"])


def api_for(home: Path) -> Api:
    """The :class:`Api` of ``home``, or the one-line error and exit 2."""
    try:
        return Api(home)
    except BoxlessError as exc:
        fail(exc)
