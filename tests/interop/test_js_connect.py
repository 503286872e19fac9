"""A js-waku light node (@waku/sdk) connects to our node over WebSocket:
Noise, mplex, identify, and the metadata handshake as js-waku checks it."""

from __future__ import annotations

from pathlib import Path

from tests.interop.jsrun import Event, by_event, run_js
from tests.interop.nodes import CLUSTER, health, metric, start_node, wait_for, ws_addr
from tests.nodeproc import NodeProcess

BASE_PROTOCOLS = {
    "/ipfs/id/1.0.0",
    "/ipfs/ping/1.0.0",
    "/vac/waku/metadata/1.0.0",
    "/vac/waku/relay/2.0.0",
    "/vac/waku/store-query/3.0.0",
}


def test_websocket_noise_mplex(service_node: NodeProcess, js_view: dict[str, Event]) -> None:
    conn = js_view["connected"]
    assert conn["remoteAddr"] == ws_addr(service_node)
    assert conn["encryption"] == "/noise"
    assert conn["multiplexer"] == "/mplex/6.7.0"  # js-waku offers no other muxer
    assert conn["status"] == "open"


def test_identify(service_node: NodeProcess, js_view: dict[str, Event]) -> None:
    ident = js_view["identified"]
    assert ident["peerId"] == service_node.info["peer_id"]
    assert BASE_PROTOCOLS <= set(ident["protocols"])
    assert ident["signedPeerRecord"]
    # Our WebSocket listen address is among those identify announced.
    assert ws_addr(service_node).split("/p2p/")[0] in ident["listenAddrs"]


def test_metadata_as_js_waku_reads_it(js_view: dict[str, Event]) -> None:
    md = js_view["metadata"]
    assert md["clusterId"] == CLUSTER
    assert md["shards"] == list(range(8))
    # js-waku's peer manager would pick us for every shard of the cluster...
    assert all(md["onShard"].values()) and len(md["onShard"]) == 8
    # ...and our node kept the connection after both metadata exchanges.
    assert js_view["still-connected"]["open"] == 1


def test_js_node_of_another_cluster_is_shown_the_door(tmp_path: Path) -> None:
    """js-waku keeps a connection to a peer of another cluster; our node must close it."""
    node = start_node("lonely", tmp_path / "lonely")
    try:
        before = metric(node, "boxless_cluster_mismatch_disconnects_total")
        events = run_js(
            "connect.mjs", {"addr": ws_addr(node), "clusterId": 43, "expectHangUp": True}
        )
        assert by_event(events, "connected")
        [hung_up] = by_event(events, "hung-up")
        assert hung_up["afterMs"] < 15000
        assert metric(node, "boxless_cluster_mismatch_disconnects_total") == before + 1
        wait_for("no connection left", lambda: health(node)["peers"] == 0)
    finally:
        node.kill()
