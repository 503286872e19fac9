"""The local API of an in-process client, served over real HTTP on loopback.

``serve_api`` is what ``boxless up`` does after starting the client: hypercorn
serving :func:`boxless.api.app.build_app`, and ``<home>/api.json`` with the URL
and token, so the ``boxless`` CLI commands can talk to it too.
"""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from boxless.api.app import build_app
from boxless.client.core import Client
from tests.chat_fixtures import befriend, make_account, running_client, start_service


@dataclass
class Api:
    """HTTP calls to one client's API."""

    client: Client
    url: str
    token: str
    home: Path  # the account's directory, where api.json is

    async def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        async with httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        ) as http:
            return await http.request(method, "/api/v1" + path, json=body)

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """The JSON of a successful response (fails the test on an error status)."""
        r = await self.request(method, path, body)
        assert r.status_code < 400, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    async def until(self, path: str, pred: Callable[[Any], bool], timeout: float = 60) -> Any:
        """GET ``path`` after each client event until ``pred(json)`` holds; return the JSON."""
        with trio.fail_after(timeout):
            async with self.client.events() as events:
                while True:
                    got = await self.call("GET", path)
                    if pred(got):
                        return got
                    await events.receive()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def serve_api(nursery: trio.Nursery, client: Client, home: Path) -> Api:
    """Serve ``client``'s API in ``nursery``; write ``home/api.json`` like `boxless up`."""
    port = _free_port()
    origin = f"http://127.0.0.1:{port}"
    token = secrets.token_urlsafe(24)
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    app = build_app(client, token, origin, lambda: {"ok": True})
    await nursery.start(serve, app, config)
    (home / "api.json").write_text(json.dumps({"url": origin, "token": token}))
    return Api(client, origin, token, home)


@asynccontextmanager
async def people(tmp_path: Path, *names: str) -> AsyncIterator[dict[str, Api]]:
    """A service node and one running client + API per name; the first is everyone's contact."""
    for name in names:
        make_account(tmp_path / name, name).close()
    async with trio.open_nursery() as nursery, AsyncExitStack() as stack:
        s1 = await start_service(nursery, tmp_path, "s1")
        apis = {}
        for name in names:
            client = await stack.enter_async_context(
                running_client(tmp_path / name, [s1.addrs()[0]])
            )
            apis[name] = await serve_api(nursery, client, tmp_path / name)
        first = apis[names[0]].client
        for name in names[1:]:
            await befriend(first, apis[name].client)
        yield apis
        nursery.cancel_scope.cancel()
