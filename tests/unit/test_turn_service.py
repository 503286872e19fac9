"""A service node's TURN grants (node/turn_service.py): who gets credentials, how often."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path
from typing import Any

import trio
import trio.testing

from boxless.client.calls import TURN_ASK_EVERY
from boxless.errors import PeerError
from boxless.node.turn_service import (
    GRANT_BURST,
    GRANT_EVERY,
    GRANT_TTL,
    MAX_PEERS_TRACKED,
    TurnIssuer,
)
from tests.memnet_fixtures import memnet

SECRET = b"s" * 64
CLIENTS = {"light-1", "light-2"}


def issuer() -> TurnIssuer:
    return TurnIssuer(SECRET, ["turn:node.example:3478"], lambda peer: peer in CLIENTS)


def test_a_light_client_gets_short_lived_credentials_coturn_accepts() -> None:
    got = issuer().answer("light-1", 1000.0)
    assert got["urls"] == ["turn:node.example:3478"] and got["ttl_s"] == GRANT_TTL
    expiry, label = got["username"].split(":")
    assert int(expiry) == 1000 + GRANT_TTL and len(label) == 12  # a random label, no identity
    mac = hmac.new(SECRET, got["username"].encode(), hashlib.sha1).digest()
    assert got["credential"] == base64.b64encode(mac).decode()  # what coturn checks
    assert "secret" not in str(got) and SECRET.decode() not in str(got)


def test_a_peer_that_is_not_our_light_client_is_refused() -> None:
    i = issuer()
    for n in range(100):
        assert i.answer(f"stranger-{n}", 1000.0) == {"error": "not a light client"}
    assert i.refused["not a light client"] == 100 and i.granted == 0
    assert not i._buckets  # strangers leave nothing behind


def test_a_client_asking_in_a_loop_is_limited() -> None:
    i = issuer()
    answers = [i.answer("light-1", 1000.0) for _ in range(1000)]
    assert sum("error" not in a for a in answers) == GRANT_BURST
    assert i.refused["rate"] == 1000 - GRANT_BURST
    assert "error" not in i.answer("light-2", 1000.0)  # another client is not starved
    assert "error" not in i.answer("light-1", 1000.0 + GRANT_EVERY)  # one more a minute


def test_the_rate_table_is_bounded() -> None:
    i = TurnIssuer(SECRET, ["turn:x:1"], lambda peer: True)
    for n in range(MAX_PEERS_TRACKED + 500):
        i.answer(n, 1.0)
    assert len(i._buckets) == MAX_PEERS_TRACKED


async def test_the_client_asks_its_node_in_the_background_and_falls_back(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """``Calls.ice_servers_now``: the configured servers at once; the node's grant once
    it came; a node that has no TURN is asked again only after a minute."""
    async with memnet(tmp_path, ("alice",)) as (net, (alice,)):
        calls = alice.client.calls
        calls.ice_servers = ["stun:stun.example:3478"]
        asked: list[float] = []
        offer: dict[str, Any] | None = None

        async def node() -> dict[str, Any]:  # what request_turn returns or raises
            asked.append(trio.current_time())
            if offer is None:
                raise PeerError("the node refused TURN credentials: not a light client")
            return offer

        calls.turn_source = node
        assert await calls.ice_servers_now() == [{"urls": "stun:stun.example:3478"}]
        await trio.sleep(1)
        assert len(asked) == 1 and len(await calls.ice_servers_now()) == 1  # no TURN, not asked
        assert len(asked) == 1
        offer = issuer().answer("light-1", alice.client.clock())
        await trio.sleep(TURN_ASK_EVERY)
        await calls.ice_servers_now()
        await trio.sleep(1)
        got = await calls.ice_servers_now()
        assert len(asked) == 2 and got[1]["urls"] == offer["urls"]
        assert got[1]["username"] == offer["username"]
        await trio.sleep(10)
        await calls.ice_servers_now()
        assert len(asked) == 2  # the grant is kept for half its life
