"""Issue 10's independent js-waku check, shared by the interop test and
``bench/interop_filter_soak.py``: a fresh js-waku light node subscribes by
filter to a content topic on a Boxless service node, light pushes ``count``
messages (every ``other_every``-th on another content topic of the same shard)
and counts what filter pushes back within ``wait_ms`` of its last send.
"""

from __future__ import annotations

from tests.interop.jsrun import Event, JsScript
from tests.interop.nodes import content_topic, ws_addr
from tests.nodeproc import NodeProcess

COUNT = 25
OTHER_EVERY = 5
WAIT_MS = 3000


def one_run(
    node: NodeProcess,
    count: int = COUNT,
    wait_ms: int = WAIT_MS,
    *,
    other_every: int = OTHER_EVERY,
    concurrent: bool = False,
) -> Event:
    """One js light node's check: its ``result`` event, or an ``error`` event."""
    opts = {
        "addr": ws_addr(node),
        "contentTopic": content_topic("soak"),
        "otherTopic": content_topic("soak-other"),
        "count": count,
        "otherEvery": other_every,
        "waitMs": wait_ms,
        "concurrent": concurrent,
    }
    with JsScript("filter_lightpush.mjs", opts, timeout=90) as js:
        js.release()
        try:
            events = js.finish(95)
        except AssertionError as exc:
            return {"event": "error", "error": str(exc).splitlines()[0]}
    [result] = [e for e in events if e["event"] == "result"]
    return result


def passed(result: Event) -> bool:
    """Every matching message came back, nothing else did, and some were sent."""
    return (
        result["event"] == "result"
        and result["expected"] > 0
        and result["received"] == result["expected"]
        and result["unexpected"] == 0
    )
