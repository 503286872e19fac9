"""Whether the node reaches the network, told as :class:`~boxless.client.events.Connectivity`.

Theory of operation: the transport knows at each moment whether it holds a
service peer (light node) or any relay peer (``status()["connected"]``); nothing
tells the client when that changes. :func:`watch_connectivity` looks every
``POLL_S`` seconds while someone listens to the client's events (an open page, a
bot), and :class:`NetworkReach` (pure) turns the looks into one event per change,
so the web UI's banner ("Your node cannot reach the network") comes and goes
live. A page whose events socket was away reads the same state from
``GET /api/v1/status`` (``connected``) when its socket opens (app.js).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import trio

from boxless.client import events as ev

__all__ = ["POLL_S", "NetworkReach", "watch_connectivity"]

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


async def watch_connectivity(
    status: Callable[[], Mapping[str, object]],
    emit: Callable[[ev.Event], None],
    listening: Callable[[], int],
    *,
    every_s: float = POLL_S,
) -> None:
    """Emit a Connectivity event whenever the reach changes, until cancelled (which
    is the only way out). Looks only while ``listening()`` (nobody to tell otherwise:
    the first look after that compares with the last one, so a change is not lost)."""
    reach = NetworkReach()
    while True:
        if listening():
            event = reach.observe(status())
            if event is not None:
                emit(event)
        await trio.sleep(every_s)
