"""Relay both ways between our node and a js-libp2p GossipSub peer configured
as js-waku's relay (StrictNoSign, sha256 message ids, /vac/waku/relay/2.0.0)."""

from __future__ import annotations

from tests.interop.jsrun import JsScript
from tests.interop.nodes import content_topic, publish, topic_of, wait_stored, ws_addr
from tests.nodeproc import NodeProcess

FROM_JS = 5
FROM_US = 3
BURST = 500


def test_relay_both_ways(service_node: NodeProcess) -> None:
    ct = content_topic("relay")
    opts = {
        "addr": ws_addr(service_node),
        "pubsubTopic": topic_of(ct),
        "contentTopic": ct,
        "publish": FROM_JS,
        "expect": FROM_US,
        "hold": True,
    }
    with JsScript("relay.mjs", opts, timeout=60) as js:
        mesh = js.expect("mesh", 20)
        assert service_node.info["peer_id"] in mesh["peers"]

        # js -> us: our relay accepts js's messages and our store archives them
        # under the very hashes js-waku computes.
        from_js = js.expect("published", 10)["hashes"]
        rows = wait_stored(service_node, ct, from_js)
        assert [rows[h]["payload"] for h in from_js] == [f"from js #{i}" for i in range(1, 6)]

        # us -> js: what we publish reaches the js subscriber, unsigned as Waku wants.
        from_us = publish(service_node, ct, "from boxless", count=FROM_US)
        got = js.collect("received", FROM_US, 20)
        assert sorted(e["hash"] for e in got) == sorted(from_us)
        assert {bytes.fromhex(e["payload"]).decode() for e in got} == {
            f"from boxless #{i}" for i in range(1, FROM_US + 1)
        }
        assert all(e["contentTopic"] == ct for e in got)
        assert all(e["from"] is None and e["seqno"] is None for e in got)
        js.expect("holding", 5)
        js.release()
        js.finish(20)


def test_burst_from_js_is_archived_whole(service_node: NodeProcess) -> None:
    """js-libp2p GossipSub publishes back-to-back; our relay must not shed any."""
    ct = content_topic("burst")
    opts = {"addr": ws_addr(service_node), "pubsubTopic": topic_of(ct), "contentTopic": ct}
    with JsScript("relay.mjs", {**opts, "publish": BURST, "hold": True}, timeout=60) as js:
        js.expect("mesh", 20)
        sent = js.expect("published", 30)["hashes"]
        js.expect("holding", 5)  # connected while we look
        assert len(wait_stored(service_node, ct, sent)) == BURST
        js.release()
        js.finish(20)
