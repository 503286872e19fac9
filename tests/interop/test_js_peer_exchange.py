"""js-waku against our ENRs and peer exchange service.

@waku/enr decodes records we sign (peer id, multiaddrs, waku2, rs and rsv
shards) and we decode one it signs; js-waku's peer exchange discovery asks our
service, derives each peer id from the ENR's secp256k1 key, and dials one:
js-libp2p's Noise accepts our secp256k1 node key as that peer id.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import multiaddr
import trio
from libp2p.crypto.secp256k1 import create_new_key_pair

from boxless.node.host import build_host
from boxless.node.peer_exchange import PeerExchangeService
from boxless.waku import peer_exchange as px
from boxless.waku.enr import Enr, RelayShards, Waku2
from tests.interop.jsrun import by_event, node_binary, run_js

WS = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0/ws")]
SHARDS = [None, RelayShards.of(42, [0, 5]), RelayShards.of(42, range(70)), None]


async def test_js_waku_discovers_and_dials_our_peers() -> None:
    node_binary()  # skip (or fail under CI) when js-waku isn't installed
    async with AsyncExitStack() as stack:
        keys = [create_new_key_pair() for _ in SHARDS]
        hosts = [build_host(k, WS) for k in keys]
        for host in hosts:
            await stack.enter_async_context(host.run(WS))
        enrs = []
        for host, key, shards in zip(hosts, keys, SHARDS, strict=True):
            port = int(host.get_addrs()[0].value_for_protocol("tcp"))
            enrs.append(
                Enr.build(
                    key.private_key.to_bytes(),
                    3,
                    multiaddrs=[f"/ip4/127.0.0.1/tcp/{port}/ws"],
                    waku2=Waku2(relay=True, store=True),
                    shards=shards,
                )
            )
        service = PeerExchangeService(hosts[0], px.PeerCache(), lambda: enrs[0])
        service.register()
        service.add_known(enrs[1:])
        opts = {
            "addr": str(hosts[0].get_addrs()[0]),
            "enrs": [e.to_text() for e in enrs],
            "expect": len(enrs),
            "serviceId": str(hosts[0].get_id()),
        }
        with trio.fail_after(60):
            events = await trio.to_thread.run_sync(run_js, "peer_exchange.mjs", opts, 40.0)

    for enr, seen in zip(enrs, by_event(events, "decoded"), strict=True):
        assert seen["peerId"] == str(enr.peer_id())
        assert seen["multiaddrs"] == enr.multiaddrs()
        assert seen["waku2"] == {"relay": True, "store": True, "filter": False, "lightPush": False}
    decoded = by_event(events, "decoded")
    assert decoded[1]["shardInfo"] == {"clusterId": 42, "shards": [0, 5]}
    assert decoded[2]["shardInfo"] == {"clusterId": 42, "shards": list(range(70))}  # rsv

    [js_enr] = by_event(events, "js-enr")
    theirs = Enr.from_text(js_enr["text"])
    assert str(theirs.peer_id()) == js_enr["peerId"]
    assert theirs.location_multiaddrs() == [
        "/ip4/10.1.2.3/tcp/60001",
        "/dns4/example.org/tcp/443/wss",
    ]
    assert theirs.waku2 == Waku2(relay=True, filter=True, lightpush=True)

    [discovered] = by_event(events, "discovered")
    assert set(discovered["peers"]) == {str(h.get_id()) for h in hosts}
    [dialed] = by_event(events, "dialed")
    assert dialed["remote"] == dialed["peerId"]
