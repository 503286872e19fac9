"""The events WebSocket of an API app driven in memory (no socket): one handshake,
then whatever the app sends until a deadline."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

import trio


async def ws_events(
    app: Any,
    headers: list[tuple[bytes, bytes]],
    *,
    query_string: bytes = b"",
    on_send: Callable[[MutableMapping[str, Any]], None] | None = None,
    wait_s: float = 2.0,
) -> list[dict[str, Any]]:
    """Connect to ``/api/v1/events`` and return what the app sent within ``wait_s``
    (``on_send`` sees each message as it goes, e.g. to act at the accept)."""
    sent: list[dict[str, Any]] = []
    incoming: list[dict[str, Any]] = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop()
        await trio.sleep_forever()
        raise AssertionError

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))
        if on_send is not None:
            on_send(message)

    scope = {
        "type": "websocket",
        "path": "/api/v1/events",
        "headers": headers,
        "query_string": query_string,
        "scheme": "ws",
    }
    with trio.move_on_after(wait_s):
        await app(scope, receive, send)
    return sent
