"""Whether the node reaches the network, told as :class:`~boxless.client.events.Connectivity`.

Theory of operation: the transport knows at each moment whether it holds a
service peer (light node) or any relay peer (``status()["connected"]``); nothing
tells the client when that changes. So each open events socket (api/app.py) looks
with :func:`relay_events`: at once, then every ``POLL_S`` seconds while it waits
for the client's next event, and :class:`NetworkReach` (pure) turns the looks into
one event per change, so the web UI's banner ("Your node cannot reach the
network") comes and goes live. Looking only while a socket is open costs nothing
when no page is (nor in the in-memory tests' virtual hours). A page also reads
``GET /api/v1/status`` (``connected``) when its socket opens (app.js).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import trio

from boxless.client import events as ev

__all__ = ["POLL_S", "NetworkReach", "relay_events"]

POLL_S = 1.0


class NetworkReach:
    """The last known reach; :meth:`observe` says when it changed."""

    def __init__(self) -> None:
        self.ok: bool | None = None  # not looked yet

    def observe(self, status: Mapping[str, object]) -> ev.Connectivity | None:
        """A look at the transport's status: the event to emit, if the reach changed
        (none for the first look when connected: there is nothing to take back)."""
        ok = bool(status.get("connected", True))
        before, self.ok = self.ok, ok
        if ok == before or (before is None and ok):
            return None
        if ok:
            return ev.Connectivity(True, "the node reaches the network again")
        mode = status.get("mode")
        what = "a relay peer" if mode == "relay" else "a service node"
        return ev.Connectivity(False, f"the node cannot reach {what}")


async def relay_events(
    events: trio.MemoryReceiveChannel[ev.Event],
    send: Callable[[ev.Event], Awaitable[None]],
    status: Callable[[], Mapping[str, object]],
    *,
    every_s: float = POLL_S,
) -> None:
    """``send`` each of the client's ``events`` and, between them, a Connectivity
    event whenever the node's reach changes (looked at first at once, then every
    ``every_s``). Returns when ``events`` ends; cancelling it loses no event (one
    not yet received stays in the channel)."""
    reach = NetworkReach()
    next_look = trio.current_time()
    while True:
        if trio.current_time() >= next_look:
            change = reach.observe(status())
            next_look = trio.current_time() + every_s
            if change is not None:
                await send(change)
        event: ev.Event | None = None
        with trio.move_on_at(next_look):
            try:
                event = await events.receive()
            except trio.EndOfChannel:
                return
        if event is not None:
            await send(event)
