"""js-waku's store client (@waku/sdk Store) reads our node's archive: every
message, paginated both ways through both query APIs, and by message hash, with
payloads, timestamps and hashes equal to ours."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.interop.jsrun import Event, by_event, run_js
from tests.interop.nodes import (
    content_topic,
    health,
    metric,
    publish,
    topic_of,
    wait_for,
    wait_stored,
    ws_addr,
)
from tests.nodeproc import NodeProcess

COUNT = 120
PAGE = 20


@dataclass(frozen=True)
class Archived:
    content_topic: str
    sent: list[str]  # hashes in publish order (= timestamp order)
    rows: dict[str, dict[str, object]]  # what `boxless query --json` returns, by hash


@pytest.fixture(scope="module")
def archived(service_node: NodeProcess) -> Archived:
    ct = content_topic("store")
    sent = publish(service_node, ct, "stored", count=COUNT)
    assert len(sent) == len(set(sent)) == COUNT
    return Archived(ct, sent, wait_stored(service_node, ct, sent))


def query(node: NodeProcess, ct: str, **opts: object) -> list[Event]:
    return run_js("store.mjs", {"addr": ws_addr(node), "contentTopic": ct, **opts}, timeout=30)


def assert_same_as_ours(messages: list[Event], archived: Archived) -> None:
    """Each message js decoded is the one we archived, field by field."""
    for m in messages:
        ours = archived.rows[m["hash"]]
        assert bytes.fromhex(m["payload"]).decode() == ours["payload"]
        assert int(m["timestamp"]) == ours["timestamp"]
        assert m["contentTopic"] == ours["content_topic"] == archived.content_topic
        assert m["pubsubTopic"] == ours["pubsub_topic"] == topic_of(archived.content_topic)


def pages_of(hashes: list[str], size: int) -> list[list[str]]:
    return [hashes[i : i + size] for i in range(0, len(hashes), size)]


@pytest.mark.parametrize("api", ["ordered", "generator"])
@pytest.mark.parametrize("forward", [True, False], ids=["forward", "backward"])
def test_paginated_query_returns_everything_in_order(
    service_node: NodeProcess, archived: Archived, api: str, forward: bool
) -> None:
    events = query(service_node, archived.content_topic, api=api, pageSize=PAGE, forward=forward)
    [ready] = by_event(events, "ready")
    assert ready["pubsubTopic"] == topic_of(archived.content_topic)  # js autosharding = ours
    messages = by_event(events, "message")
    got = [m["hash"] for m in messages]
    assert len(got) == len(set(got)) == COUNT
    # Forward: oldest first. Backward: newest page first, each page oldest to newest.
    pages = pages_of(archived.sent, PAGE)
    expected = archived.sent if forward else [h for page in reversed(pages) for h in page]
    assert got == expected
    if api == "generator":
        assert [p["size"] for p in by_event(events, "page")] == [PAGE] * (COUNT // PAGE)
    assert_same_as_ours(messages, archived)


def test_lookup_by_message_hash(service_node: NodeProcess, archived: Archived) -> None:
    wanted = [archived.sent[0], archived.sent[57], archived.sent[-1]]
    events = query(service_node, archived.content_topic, api="generator", hashes=wanted)
    messages = by_event(events, "message")
    assert sorted(m["hash"] for m in messages) == sorted(wanted)
    assert_same_as_ours(messages, archived)


def test_lookup_of_unknown_hash_is_empty(service_node: NodeProcess, archived: Archived) -> None:
    events = query(service_node, archived.content_topic, hashes=["00" * 32])
    assert by_event(events, "message") == []


def violations(node: NodeProcess) -> float:
    name = "boxless_protocol_violations_total"
    return sum(metric(node, name, f'protocol="{p}"') for p in ("store", "metadata"))


def test_client_that_leaves_is_not_penalised(service_node: NodeProcess) -> None:
    # js-waku pre-opens two store streams (one per "peer:update"); a query that
    # takes one request leaves the other unused, and js closes it on stop.
    before_peers = health(service_node)["peers"]
    before = violations(service_node)
    events = query(service_node, content_topic("empty"))
    assert by_event(events, "message") == []
    wait_for(
        "the client's connection to close", lambda: health(service_node)["peers"] == before_peers
    )
    assert violations(service_node) == before


# js-waku opens its store streams right after identify (StreamManager, on
# "peer:update") and uses them whenever the app queries, possibly much later,
# or never. An idle or departing honest client must not count as misbehaving:
# five "violations" a minute get a peer disconnected and banned. (Before
# 321d2a8 our node gave up on a silent stream after 10 s and counted it.)
IDLE_S = 11.5


def test_idle_client_is_not_penalised(service_node: NodeProcess, archived: Archived) -> None:
    label = 'protocol="store"'
    before = metric(service_node, "boxless_protocol_violations_total", label)
    events = query(
        service_node,
        archived.content_topic,
        hashes=[archived.sent[3]],
        idleMs=int(IDLE_S * 1000),
    )
    # js-waku copes (it opens a fresh stream when ours was reset)...
    assert [m["hash"] for m in by_event(events, "message")] == [archived.sent[3]]
    # ...but our node must not have held its patience against it.
    assert metric(service_node, "boxless_protocol_violations_total", label) == before
