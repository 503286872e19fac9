"""A page's events socket through Playwright, to make events happen while the page is
away (docs/testing.md, "State shown only from a live event"): route the page's
``/api/v1/events`` socket through :meth:`EventGate.route` before it loads, then
:meth:`EventGate.reconnect` it deaf (the page sees it open, the node's events go
nowhere) and back."""

from __future__ import annotations

import re
import time
from typing import Any

from tests.e2e.test_web import WAIT_MS

__all__ = ["EVENTS_URL", "EventGate"]

EVENTS_URL = re.compile(r"/api/v1/events")


class EventGate:
    """A page's events socket through Playwright: to the node, or deaf (the page
    sees it open, the node's events go nowhere: they happen while it is away)."""

    def __init__(self) -> None:
        self.deaf = False
        self.sockets: list[Any] = []

    def attach(self, page: Any) -> None:
        """Route ``page``'s events socket through this gate (then load or reload it)."""
        page.route_web_socket(EVENTS_URL, self.route)

    def route(self, ws: Any) -> None:
        if not self.deaf:
            ws.connect_to_server()
        self.sockets.append(ws)

    def reconnect(self, page: Any, *, deaf: bool) -> None:
        """Drop the page's socket; return once it reconnected (bounded)."""
        self.deaf = deaf
        old, self.sockets = self.sockets, []
        for ws in old:
            ws.close()
        deadline = time.monotonic() + WAIT_MS / 1000
        while not self.sockets:  # the page retries after 1 s
            assert time.monotonic() < deadline, "the page did not reconnect its events"
            page.wait_for_timeout(100)  # (lets Playwright run the route handler)
