"""TURN advertisement played as the attacker (W7): a stranger with many peer ids, a
TURN client relaying to the node's own network, a hostile node's TURN URL.

- Peer ids cost nothing and a filter subscription is free, so the per-peer bucket
  alone let 5,000 ids mint 15,000 credentials at once, and one id cycling past the
  1,024-peer table got a fresh burst every round: now all clients together get a
  bounded burst, then one a second.
- coturn's ``denied-peer-ip`` list left out ``::`` and IPv4 inside IPv6 (mapped
  ``::ffff:127.0.0.1``, NAT64, 6to4): on a dual-stack relay those reach the
  node's loopback and LAN.
- The client handed any ``turn:`` URL a node advertised to the browser: a hostile
  node could point every caller at ``turn:192.168.1.1:80`` (their router) or a
  cloud metadata address.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import multiaddr
import pytest
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.peerinfo import info_from_p2p_addr

from boxless.buckets import Buckets
from boxless.errors import PeerError
from boxless.node.host import build_host
from boxless.node.turn import TurnConfig, write_turn_config
from boxless.node.turn_service import (
    GRANT_BURST,
    MAX_PEERS_TRACKED,
    TOTAL_BURST,
    TOTAL_EVERY,
    TurnIssuer,
    request_turn,
    serve_turn,
    turn_url_refused,
)

SECRET = b"s" * 64
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _denied(conf: str) -> list[tuple[IPAddress, IPAddress]]:
    out = []
    for line in conf.splitlines():
        if line.startswith("denied-peer-ip="):
            lo, _, hi = line.removeprefix("denied-peer-ip=").partition("-")
            out.append((ipaddress.ip_address(lo), ipaddress.ip_address(hi or lo)))
    return out


@pytest.mark.parametrize(
    "target",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.20.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "::",  # the unspecified address reaches the local host
        "::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:192.168.1.1",
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "fd00::1",
        "fe80::1",
    ],
)
def test_the_relay_may_not_reach_the_nodes_own_network(tmp_path: Path, target: str) -> None:
    conf = write_turn_config(TurnConfig(tmp_path, host="192.0.2.1")).read_text()
    ip = ipaddress.ip_address(target)
    assert any(
        lo.version == ip.version and lo <= ip <= hi  # type: ignore[operator]
        for lo, hi in _denied(conf)
    ), f"{target} is not denied"


def test_a_public_peer_is_still_relayed(tmp_path: Path) -> None:
    conf = write_turn_config(TurnConfig(tmp_path, host="192.0.2.1")).read_text()
    for target in ("8.8.8.8", "2606:4700::1111"):
        ip = ipaddress.ip_address(target)
        assert not any(lo.version == ip.version and lo <= ip <= hi for lo, hi in _denied(conf))  # type: ignore[operator]


def test_many_peer_ids_mint_a_bounded_number_of_credentials() -> None:
    issuer = TurnIssuer(SECRET, ["turn:node.example:3478"], lambda peer: True)
    granted = sum("error" not in issuer.answer(f"id-{n}", 1000.0) for n in range(5000))
    assert granted == TOTAL_BURST and issuer.refused["busy"] == 5000 - TOTAL_BURST
    # one a second after that, however many ids ask
    later = [issuer.answer(f"id2-{n}", 1000.0 + 10 * TOTAL_EVERY) for n in range(100)]
    assert sum("error" not in a for a in later) == 10


def test_cycling_ids_past_the_rate_table_gets_no_fresh_burst() -> None:
    issuer = TurnIssuer(SECRET, ["turn:node.example:3478"], lambda peer: True)
    got = 0
    now = 1000.0
    for _ in range(5):  # each round: the same id asks, then enough others to evict it
        got += sum("error" not in issuer.answer("me", now) for _ in range(GRANT_BURST))
        for n in range(MAX_PEERS_TRACKED + 1):
            issuer.answer(f"other-{n}", now)
        now += 1.0
    assert got <= GRANT_BURST + 5  # not 3 per round for ever


@pytest.mark.parametrize(
    ("url", "node", "ok"),
    [
        ("turn:turn.example.org:3478", "8.8.4.4", True),
        ("turns:turn.example.org:5349?transport=tcp", "8.8.4.4", True),
        ("turn:8.8.4.4:3478?transport=udp", "8.8.4.4", True),
        ("turn:127.0.0.1:3478", "127.0.0.1", True),  # the node on this machine
        ("turn:192.168.1.20:3478", "192.168.1.20", True),  # a node on our LAN: its own
        ("turn:127.0.0.1:6379", "8.8.4.4", False),  # our loopback, not the node's
        ("turn:localhost:3478", "8.8.4.4", False),
        ("turn:192.168.1.1:80", "8.8.4.4", False),  # our router
        ("turn:169.254.169.254:80", "8.8.4.4", False),  # cloud metadata
        ("turn:[::ffff:127.0.0.1]:3478", "8.8.4.4", False),
        ("turn:[::1]:3478", "8.8.4.4", False),
        ("turn:0.0.0.0:3478", "8.8.4.4", False),
        ("turn:224.0.0.1:3478", "8.8.4.4", False),
        ("turn:user@turn.example.org:3478", "8.8.4.4", False),
        ("turn:turn.example.org:3478/path", "8.8.4.4", False),
        ("turn:turn.example.org:99999", "8.8.4.4", False),
        ("turn:[zz::1]:3478", "8.8.4.4", False),
        ("stun:turn.example.org:3478", "8.8.4.4", False),
        ("javascript:alert(1)", "8.8.4.4", False),
        (3478, "8.8.4.4", False),
    ],
)
def test_which_advertised_urls_reach_the_browser(url: object, node: str, ok: bool) -> None:
    assert (turn_url_refused(url, {node}) is None) is ok


@pytest.mark.trio
async def test_a_hostile_nodes_private_turn_url_is_refused_over_the_wire() -> None:
    """Real py-libp2p hosts on loopback: the node (at 127.0.0.1) advertises a URL on
    a private LAN address; the client refuses the grant, also once the node's
    claimed listen addresses name that LAN address (only the address the
    connection reaches counts); its own address, 127.0.0.1, is still taken."""
    addr = multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")
    node, client = (
        build_host(create_new_key_pair(), [addr]),
        build_host(create_new_key_pair(), [addr]),
    )
    async with node.run([addr]), client.run([addr]):
        hostile = TurnIssuer(SECRET, ["turn:192.168.1.1:80"], lambda peer: True)
        serve_turn(node, hostile, trio.current_time)
        info = info_from_p2p_addr(
            multiaddr.Multiaddr(f"{node.get_addrs()[0]}")
            if "/p2p/" in str(node.get_addrs()[0])
            else multiaddr.Multiaddr(f"{node.get_addrs()[0]}/p2p/{node.get_id()}")
        )
        await client.connect(info)
        with trio.fail_after(20), pytest.raises(PeerError, match="192.168.1.1 is a loopback"):
            await request_turn(client, info.peer_id)
        # what the node says it listens on (identify) is no proof of its address
        client.get_peerstore().add_addrs(
            info.peer_id, [multiaddr.Multiaddr("/ip4/192.168.1.1/tcp/4001")], 3600
        )
        with trio.fail_after(20), pytest.raises(PeerError, match="192.168.1.1 is a loopback"):
            await request_turn(client, info.peer_id)
        hostile.urls = ["turn:127.0.0.1:3478"]  # the node's own address: fine
        with trio.fail_after(20):
            grant = await request_turn(client, info.peer_id)
        assert grant["urls"] == ["turn:127.0.0.1:3478"]


def test_buckets_refill_and_stay_bounded() -> None:
    buckets = Buckets(3, 10.0, max_keys=100)
    assert [buckets.take("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert not buckets.take("a", 9.0) and buckets.take("a", 10.0)  # one per 10 s
    for n in range(1000):
        buckets.take(n, 20.0)
    assert len(buckets) == 100
