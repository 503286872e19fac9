"""The node's reach of the network (boxless/client/connectivity.py): one event per
change on each events socket, live, and the same state on ``GET /api/v1/status``
for a page that opens (or reconnects) while the node is cut off — over the
in-memory network."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from boxless.client import events as ev
from boxless.client.connectivity import NetworkReach, relay_events
from tests.asgi_api import api_client
from tests.memnet_fixtures import memnet, virtual_wall_clock

__all__ = ["virtual_wall_clock"]


def test_one_event_per_change() -> None:
    reach = NetworkReach()
    assert reach.observe({"mode": "light", "connected": True}) is None  # nothing to take back
    assert reach.observe({"mode": "light", "connected": True}) is None
    down = reach.observe({"mode": "light", "connected": False})
    assert down == ev.Connectivity(False, "the node cannot reach a service node")
    assert reach.observe({"mode": "light", "connected": False}) is None
    up = reach.observe({"mode": "light", "connected": True})
    assert up is not None and up.ok
    relay = NetworkReach()  # a node that starts cut off says so at once
    assert relay.observe({"mode": "relay", "connected": False}) == ev.Connectivity(
        False, "the node cannot reach a relay peer"
    )


@pytest.mark.usefixtures("virtual_wall_clock")
async def test_cut_off_and_back_live_and_on_the_status_route(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(tmp_path, ("alice",)) as (_, (alice,)):
        api = api_client(alice.client, status=alice.transport.status)
        sent: list[ev.Event] = []
        grew = trio.Event()

        async def send(e: ev.Event) -> None:
            sent.append(e)
            grew.set()

        def reach() -> list[bool]:
            return [e.ok for e in sent if isinstance(e, ev.Connectivity)]

        async def until(pred: Callable[[], bool]) -> None:
            nonlocal grew
            with trio.fail_after(10):  # virtual: a look each second
                while not pred():
                    grew = trio.Event()
                    await grew.wait()

        async with api, alice.client.events() as events, trio.open_nursery() as nursery:
            # what an events socket runs (api/app.py)
            nursery.start_soon(relay_events, events, send, alice.transport.status)
            assert (await api.get("/status")).json()["connected"] is True
            await alice.client.set_display_name("Alicia")  # a client event passes through
            await until(lambda: any(isinstance(e, ev.ProfileChanged) for e in sent))
            alice.transport.set_online(False)
            # a page opening now reads it (the event went out before it listened)
            assert (await api.get("/status")).json()["connected"] is False
            await until(lambda: reach() == [False])
            alice.transport.set_online(True)
            await until(lambda: reach() == [False, True])
            assert (await api.get("/status")).json()["connected"] is True
            await trio.sleep(30)  # no change: no event
            assert reach() == [False, True]
            alice.transport.set_online(False)
            await until(lambda: reach() == [False, True, False])
            nursery.cancel_scope.cancel()

        # a socket that opens while the node is cut off hears it at once
        sent.clear()
        async with alice.client.events() as events, trio.open_nursery() as nursery:
            nursery.start_soon(relay_events, events, send, alice.transport.status)
            await until(lambda: bool(sent))
            assert sent[0] == ev.Connectivity(False, "the node cannot reach a service node")
            nursery.cancel_scope.cancel()
