"""The events WebSocket listens before it tells the page it is open.

A page that sees its socket open reads what it missed (app.js: resumeCall,
resumeVerifications, the chat list...). An event emitted between that read and
the moment the API starts listening would reach neither: the API must listen
first, then accept. Played here at the worst moment: the event is emitted while
the accept goes out.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import trio
import trio.testing

from boxless.api.app import build_app
from tests.asgi_ws import ws_events
from tests.memnet_fixtures import homes, memnet

__all__ = ["homes"]  # a fixture

ORIGIN = "http://127.0.0.1:8765"
TOKEN = "t" * 32


async def test_an_event_emitted_as_the_socket_opens_reaches_it(
    homes: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(homes, ("alice",)) as (net, (alice,)):
        g = await alice.client.groups.create("Trip")
        chat = f"group:{g.group_id.hex()}"
        app = build_app(alice.client, TOKEN, ORIGIN, lambda: {"ok": True})

        def at_accept(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "websocket.accept":
                # the page is told "open" now and reads its state; this change
                # happens right after that read
                alice.client.chat_settings.update(chat, pinned=True)

        sent = await ws_events(
            app,
            [(b"host", b"127.0.0.1:8765")],
            query_string=f"token={TOKEN}".encode(),
            on_send=at_accept,
            wait_s=5,
        )
        assert sent and sent[0]["type"] == "websocket.accept", sent[:1]
        events = [json.loads(m["text"]) for m in sent if m["type"] == "websocket.send"]
        assert any(e["type"] == "chat_settings" and e["chat"] == chat for e in events), events
