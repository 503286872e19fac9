"""The node's reach of the network (boxless/client/connectivity.py): one event per
change, live, and the same state on ``GET /api/v1/status`` for a page that opens
(or reconnects) while the node is cut off — over the in-memory network."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

from boxless.api.app import build_app
from boxless.client import events as ev
from boxless.client.connectivity import NetworkReach
from tests.asgi_api import ORIGIN, TOKEN
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
    async with memnet(tmp_path, ("alice", "bob")) as (_, (alice, _bob)):
        app = build_app(alice.client, TOKEN, ORIGIN, alice.transport.status)
        api = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=ORIGIN + "/api/v1",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        async with api, alice.client.events() as events:

            async def next_connectivity() -> ev.Connectivity:
                with trio.fail_after(10):  # virtual: a look each second
                    while True:
                        e = await events.receive()
                        if isinstance(e, ev.Connectivity):
                            return e

            assert (await api.get("/status")).json()["connected"] is True
            alice.transport.set_online(False)
            # a page opening now reads it (the event went out before it listened)
            assert (await api.get("/status")).json()["connected"] is False
            down = await next_connectivity()
            assert not down.ok and "cannot reach" in down.detail
            alice.transport.set_online(True)
            assert (await next_connectivity()).ok
            assert (await api.get("/status")).json()["connected"] is True
            await trio.sleep(30)  # no change: no event (the next one is a change again)
            alice.transport.set_online(False)
            assert not (await next_connectivity()).ok
