"""Filter v2 sans-IO core: request parsing, the subscription state machine under a
fake clock (expiry, limits, refresh, push failures), push and client codecs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from boxless.errors import DecodeError, UsageError
from boxless.waku import filter as fc
from boxless.waku.message import WakuMessage
from boxless.wire import filter_pb2

PS = "/waku/2/rs/42/3"
CT = "/boxless/1/chat/proto"
S = fc.FilterStatus
T = fc.RequestType


def wire(
    kind: int, topic: str | None = None, topics: tuple[str, ...] = (), rid: str = "r"
) -> bytes:
    req = filter_pb2.FilterSubscribeRequest(request_id=rid, pubsub_topic=topic)
    req.filter_subscribe_type = kind  # type: ignore[assignment]
    req.content_topics.extend(topics)
    return req.SerializeToString()


# --- parsing -------------------------------------------------------------------------


def test_parse_each_type() -> None:
    assert fc.parse_request(wire(1, PS, (CT, CT))) == fc.FilterRequest("r", T.SUBSCRIBE, PS, (CT,))
    assert fc.parse_request(wire(2, PS, (CT,))) == fc.FilterRequest("r", T.UNSUBSCRIBE, PS, (CT,))
    # js-waku pings with pubsub_topic "" and unsubscribes-all with a topic: ignored
    assert fc.parse_request(wire(0, "")) == fc.FilterRequest("r", T.SUBSCRIBER_PING)
    assert fc.parse_request(wire(3, PS)) == fc.FilterRequest("r", T.UNSUBSCRIBE_ALL)


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xff\xff",
        wire(1, None, (CT,)),
        wire(1, "", (CT,)),
        wire(1, PS, ()),
        wire(2, PS, ("",)),
        wire(1, PS, tuple(f"/a/1/t{i}/p" for i in range(101))),
        wire(9, PS, (CT,)),
    ],
)
def test_bad_requests_are_400(data: bytes) -> None:
    got = fc.parse_request(data)
    assert isinstance(got, fc.FilterRejection) and got.status == S.BAD_REQUEST
    res = fc.parse_response(got.encode())
    assert res.status_code == 400 and res.status_desc.startswith("BAD_REQUEST")


def test_hundred_topics_is_the_limit() -> None:
    topics = tuple(f"/a/1/t{i}/p" for i in range(100))
    assert isinstance(fc.parse_request(wire(1, PS, topics)), fc.FilterRequest)


def test_invalid_request_values_cannot_be_built() -> None:
    with pytest.raises(UsageError):
        fc.FilterRequest("r", T.SUBSCRIBE, PS, ())
    with pytest.raises(UsageError):
        fc.FilterRequest("r", T.SUBSCRIBER_PING, PS)
    with pytest.raises(UsageError):
        fc.build_request(fc.FilterRequest("", T.SUBSCRIBER_PING))


def test_client_request_and_response_round_trip() -> None:
    req = fc.FilterRequest("id1", T.SUBSCRIBE, PS, (CT, "/b/1/c/d"))
    assert fc.parse_request(fc.build_request(req)) == req
    ping = fc.FilterRequest("id2", T.SUBSCRIBER_PING)
    assert fc.parse_request(fc.build_request(ping)) == ping
    res = fc.parse_response(fc.build_response("id1", S.NOT_FOUND, "NOT_FOUND: x"))
    assert res == fc.FilterResponse("id1", 404, "NOT_FOUND: x") and not res.ok
    with pytest.raises(DecodeError):
        fc.parse_response(filter_pb2.FilterSubscribeResponse(request_id="x").SerializeToString())


# --- push codec ---------------------------------------------------------------------------


def test_push_always_carries_pubsub_topic() -> None:
    msg = WakuMessage(b"hello", CT, timestamp=5)
    raw = filter_pb2.MessagePush.FromString(fc.encode_push(PS, msg))
    assert raw.HasField("pubsub_topic") and raw.pubsub_topic == PS
    assert fc.decode_push(fc.encode_push(PS, msg)) == (PS, msg)
    with pytest.raises(UsageError):
        fc.encode_push("", msg)
    no_topic = filter_pb2.MessagePush()
    no_topic.waku_message.MergeFromString(msg.encode())
    for bad in (no_topic.SerializeToString(), filter_pb2.MessagePush(pubsub_topic=PS).SerializeToString()):  # fmt: skip
        with pytest.raises(DecodeError):
            fc.decode_push(bad)
    with pytest.raises(DecodeError):
        fc.decode_push(fc.encode_push(PS, WakuMessage(b"x" * 100, CT)), max_size=50)


# --- fuzz ---------------------------------------------------------------------------------


@given(st.binary(max_size=512))
def test_parse_request_never_raises(data: bytes) -> None:
    assert isinstance(fc.parse_request(data), fc.FilterRequest | fc.FilterRejection)


@given(st.binary(max_size=512))
def test_decoders_raise_only_decode_error(data: bytes) -> None:
    for decode in (fc.decode_push, fc.parse_response):
        try:
            decode(data)
        except DecodeError:
            pass


@given(
    st.integers(-5, 10),
    st.one_of(st.none(), st.text(max_size=20)),
    st.lists(st.text(max_size=10), max_size=120),
)
def test_structured_requests_never_raise(kind: int, topic: str | None, topics: list[str]) -> None:
    req = filter_pb2.FilterSubscribeRequest(request_id="r", pubsub_topic=topic)
    req.content_topics.extend(topics)
    data = (
        req.SerializeToString()
        + filter_pb2.FilterSubscribeRequest(
            filter_subscribe_type=kind  # type: ignore[arg-type]
        ).SerializeToString()
    )
    assert isinstance(fc.parse_request(data), fc.FilterRequest | fc.FilterRejection)


# --- the state machine under a fake clock --------------------------------------------------


def test_subscribe_match_unsubscribe() -> None:
    subs = fc.FilterSubscriptions()
    assert subs.ping("a", 0.0).status == S.NOT_FOUND
    assert subs.subscribe("a", PS, [CT, "/x/1/y/z"], 0.0).ok
    assert subs.subscribe("b", PS, [CT], 0.0).ok
    assert subs.matching_peers(PS, CT) == {"a", "b"}
    assert subs.matching_peers("/waku/2/rs/42/4", CT) == set()  # pubsub topic matters
    assert subs.ping("a", 1.0).ok
    assert subs.unsubscribe("a", PS, [CT], 2.0).ok
    assert subs.matching_peers(PS, CT) == {"b"}
    assert subs.unsubscribe("a", PS, [CT], 2.0).status == S.NOT_FOUND  # already gone
    assert subs.unsubscribe("a", PS, ["/x/1/y/z"], 2.0).ok
    assert not subs.is_subscribed("a")  # no criteria left: no subscription
    assert subs.unsubscribe_all("a").status == S.NOT_FOUND
    assert subs.unsubscribe_all("b").ok and len(subs) == 0 and subs.get_timer() is None


def test_handle_dispatches_requests() -> None:
    subs = fc.FilterSubscriptions()
    sub = fc.FilterRequest("1", T.SUBSCRIBE, PS, (CT,))
    assert subs.handle("p", fc.FilterRequest("0", T.SUBSCRIBER_PING), 0.0).status == 404
    assert subs.handle("p", sub, 0.0).ok
    assert subs.handle("p", fc.FilterRequest("2", T.SUBSCRIBER_PING), 0.0).ok
    assert subs.handle("p", fc.FilterRequest("3", T.UNSUBSCRIBE, PS, (CT,)), 0.0).ok
    assert subs.handle("p", sub, 0.0).ok
    assert subs.handle("p", fc.FilterRequest("4", T.UNSUBSCRIBE_ALL), 0.0).ok
    assert subs.peers == frozenset()


def test_expiry_and_refresh() -> None:
    subs = fc.FilterSubscriptions(ttl=300.0)
    subs.subscribe("a", PS, [CT], 0.0)
    subs.subscribe("b", PS, [CT], 100.0)
    assert subs.get_timer() == 300.0
    assert subs.expire(299.9) == []
    assert subs.ping("a", 250.0).ok  # refreshed: now lives until 550
    assert subs.get_timer() == 400.0
    assert subs.expire(400.0) == ["b"]
    subs.subscribe("a", PS, [CT], 500.0)  # re-subscribing refreshes too
    assert subs.expire(799.0) == [] and subs.expire(800.0) == ["a"]
    assert subs.matching_peers(PS, CT) == set()


def test_limits_answer_503_and_change_nothing() -> None:
    subs = fc.FilterSubscriptions(max_peers=2, max_criteria_per_peer=3)
    assert subs.subscribe("a", PS, ["/a/1/1/p", "/a/1/2/p"], 0.0).ok
    assert subs.subscribe("b", PS, [CT], 0.0).ok
    assert subs.ping("a", 1.0).ok and subs.ping("b", 1.0).ok  # both proven: not evictable
    full = subs.subscribe("c", PS, [CT], 1.0)
    assert full.status == S.SERVICE_UNAVAILABLE and not subs.is_subscribed("c")
    assert full.evicted == () and subs.peers == {"a", "b"}
    too_many = subs.subscribe("a", PS, ["/a/1/3/p", "/a/1/4/p"], 5.0)
    assert too_many.status == S.SERVICE_UNAVAILABLE
    assert len(subs.criteria("a")) == 2  # all or nothing
    assert subs.subscribe("a", PS, ["/a/1/1/p", "/a/1/3/p"], 5.0).ok  # overlap counts once
    assert subs.unsubscribe_all("b").ok
    assert subs.subscribe("c", PS, [CT], 6.0).ok  # room again


def test_full_node_evicts_detached_first_then_unproven_oldest_first() -> None:
    connected = {"a", "b", "c", "d", "e"}
    subs = fc.FilterSubscriptions(max_peers=3, is_connected=connected.__contains__)
    for t, peer in enumerate("abc"):
        assert subs.subscribe(peer, PS, [CT], float(t)).ok
    connected.discard("b")  # b hung up: it goes first even though a is older
    got = subs.subscribe("d", PS, [CT], 3.0)
    assert got.ok and got.evicted == (fc.Eviction("b", fc.EvictionReason.DETACHED),)
    # everyone connected now: the oldest unproven goes (a), then c
    got = subs.subscribe("e", PS, [CT], 4.0)
    assert got.evicted == (fc.Eviction("a", fc.EvictionReason.UNPROVEN),)
    subs.push_succeeded("d")  # a push reached d: proven
    assert subs.is_proven("d") and not subs.is_proven("e")
    got = subs.subscribe("a", PS, [CT], 5.0)
    assert got.evicted == (fc.Eviction("c", fc.EvictionReason.UNPROVEN),)
    assert subs.peers == {"d", "e", "a"} and subs.matching_peers(PS, CT) == {"d", "e", "a"}


def test_a_renewal_proves_a_subscriber_and_a_proven_connected_one_is_never_evicted() -> None:
    subs = fc.FilterSubscriptions(max_peers=2)
    assert subs.subscribe("honest", PS, [CT], 0.0).ok
    assert subs.subscribe("honest", PS, [CT], 1.0).ok  # js-waku re-subscribes: a renewal
    assert subs.subscribe("x", PS, [CT], 2.0).ok
    assert subs.ping("x", 3.0).ok
    refused = subs.subscribe("y", PS, [CT], 4.0)
    assert refused.status == S.SERVICE_UNAVAILABLE and subs.peers == {"honest", "x"}


def test_fresh_peer_id_flood_leaves_honest_subscribers_served() -> None:
    """Attack: 2,000 fresh peer ids (free to make) each subscribe once and hang
    up. Before, the first 1,000 took every slot and every later subscriber, an
    honest light client included, got 503 until the junk expired (5 minutes,
    or never if the flooder pinged). Now the junk only displaces itself: the
    honest subscriber from before the flood keeps its slot, the one arriving
    in the middle of it gets in and stays."""
    live = {"early", "late"}
    subs = fc.FilterSubscriptions(is_connected=live.__contains__)
    assert subs.subscribe("early", PS, [CT], 0.0).ok
    subs.push_succeeded("early")
    evictions = 0
    for i in range(2000):
        now = 1.0 + i / 100
        live.add(f"sybil-{i}")
        got = subs.subscribe(f"sybil-{i}", PS, [CT], now)
        live.discard(f"sybil-{i}")  # subscribed, then hung up
        assert got.ok
        evictions += len(got.evicted)
        assert all(e.reason is fc.EvictionReason.DETACHED for e in got.evicted)
        if i == 1500:
            late = subs.subscribe("late", PS, [CT], now)
            assert late.ok
            evictions += len(late.evicted)
    assert len(subs) == fc.MAX_SUBSCRIBED_PEERS and evictions == 2002 - fc.MAX_SUBSCRIBED_PEERS
    assert {"early", "late"} <= subs.matching_peers(PS, CT)


def test_connected_flood_displaces_only_unproven_junk() -> None:
    """Attack: the flooder keeps its fresh ids connected and never renews. A
    proven subscriber keeps its slot; newcomers take unproven slots oldest first."""
    subs = fc.FilterSubscriptions(max_peers=10)
    assert subs.subscribe("honest", PS, [CT], 0.0).ok and subs.ping("honest", 0.5).ok
    for i in range(100):
        assert subs.subscribe(f"sybil-{i}", PS, [CT], 1.0 + i).ok
    assert "honest" in subs.peers and len(subs) == 10
    assert subs.peers - {"honest"} == {f"sybil-{i}" for i in range(91, 100)}


def test_node_wide_criteria_cap() -> None:
    subs = fc.FilterSubscriptions(max_criteria=5, max_criteria_per_peer=4)
    assert subs.subscribe("a", PS, [f"/a/1/{i}/p" for i in range(4)], 0.0).ok
    assert subs.ping("a", 0.0).ok
    refused = subs.subscribe("b", PS, ["/b/1/0/p", "/b/1/1/p"], 1.0)
    assert refused.status == S.SERVICE_UNAVAILABLE and subs.criteria_total == 4
    assert subs.subscribe("b", PS, ["/b/1/0/p"], 1.0).ok and subs.criteria_total == 5
    # an unproven peer's criteria can be taken back for a newcomer
    got = subs.subscribe("c", PS, ["/c/1/0/p"], 2.0)
    assert got.evicted == (fc.Eviction("b", fc.EvictionReason.UNPROVEN),)
    assert subs.criteria_total == 5 and subs.unsubscribe("a", PS, ["/a/1/0/p"], 3.0).ok
    assert subs.criteria_total == 4


def test_failed_pushes_drop_peer_and_success_resets() -> None:
    subs = fc.FilterSubscriptions(max_push_failures=3)
    subs.subscribe("a", PS, [CT], 0.0)
    assert not subs.mark_failed("a") and not subs.mark_failed("a")
    subs.push_succeeded("a")
    assert not subs.mark_failed("a") and not subs.mark_failed("a")
    assert subs.mark_failed("a")
    assert not subs.is_subscribed("a") and subs.matching_peers(PS, CT) == set()
    assert not subs.mark_failed("a")  # unknown peer: nothing to drop
    subs.subscribe("b", PS, [CT], 0.0)
    assert subs.mark_failed("b", 3)  # one failed write of three pushes


class SubscriptionsModel(RuleBasedStateMachine):
    """The index used for matching always agrees with the per-peer criteria."""

    def __init__(self) -> None:
        super().__init__()
        self.offline: set[str] = set()
        self.subs = fc.FilterSubscriptions(
            ttl=10.0,
            max_peers=3,
            max_criteria_per_peer=4,
            max_criteria=6,
            is_connected=lambda p: p not in self.offline,
        )
        self.now = 0.0

    peers = st.sampled_from("abcd")
    topics = st.lists(st.sampled_from(["/a/1/x/p", "/a/1/y/p", "/b/1/z/p"]), min_size=1)
    pubsub = st.sampled_from([PS, "/waku/2/rs/42/5"])

    @rule(peer=peers, ps=pubsub, cts=topics)
    def subscribe(self, peer: str, ps: str, cts: list[str]) -> None:
        self.subs.subscribe(peer, ps, cts, self.now)

    @rule(peer=peers, ps=pubsub, cts=topics)
    def unsubscribe(self, peer: str, ps: str, cts: list[str]) -> None:
        self.subs.unsubscribe(peer, ps, cts, self.now)

    @rule(peer=peers)
    def unsubscribe_all(self, peer: str) -> None:
        self.subs.unsubscribe_all(peer)

    @rule(peer=peers)
    def fail(self, peer: str) -> None:
        self.subs.mark_failed(peer)

    @rule(peer=peers)
    def ping(self, peer: str) -> None:
        self.subs.ping(peer, self.now)

    @rule(peer=peers)
    def pushed(self, peer: str) -> None:
        self.subs.push_succeeded(peer)

    @rule(peer=peers)
    def toggle_connection(self, peer: str) -> None:
        self.offline ^= {peer}

    @rule(dt=st.floats(0, 6))
    def tick(self, dt: float) -> None:
        self.now += dt
        self.subs.expire(self.now)

    @invariant()
    def index_agrees(self) -> None:
        expected: dict[tuple[str, str], set[object]] = {}
        for peer in self.subs.peers:
            crit = self.subs.criteria(peer)
            assert 0 < len(crit) <= 4
            for c in crit:
                expected.setdefault(c, set()).add(peer)
        assert len(self.subs) <= 3
        assert self.subs.criteria_total == sum(len(self.subs.criteria(p)) for p in self.subs.peers)
        assert self.subs.criteria_total <= 6
        timer = self.subs.get_timer()
        assert (timer is None) == (len(self.subs) == 0)
        assert timer is None or timer > self.now - 6  # nothing overdue by more than a tick
        for ps in (PS, "/waku/2/rs/42/5"):
            for ct in ("/a/1/x/p", "/a/1/y/p", "/b/1/z/p"):
                assert self.subs.matching_peers(ps, ct) == expected.get((ps, ct), set())


TestSubscriptionsModel = SubscriptionsModel.TestCase


def test_client_subscriptions_batches_and_matches() -> None:
    cs = fc.ClientSubscriptions()
    assert not cs
    cs.add(PS, [f"/a/1/t{i}/p" for i in range(250)])
    cs.add("/waku/2/rs/42/1", [CT])
    batches = list(cs.requests())
    assert [len(b) for _, b in batches] == [100, 100, 50, 1]
    assert cs.matches(PS, "/a/1/t7/p") and not cs.matches(PS, CT)
    cs.remove("/waku/2/rs/42/1", [CT])
    assert not cs.matches("/waku/2/rs/42/1", CT)
    cs.clear()
    assert not cs
