"""Light push v3/v2 sans-IO core: request checks, status codes, codecs, rate limit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxless.errors import DecodeError, UsageError
from boxless.waku import lightpush as lp
from boxless.waku.message import MAX_MESSAGE_SIZE, WakuMessage
from boxless.waku.sharding import pubsub_topic, pubsub_topic_for
from boxless.wire import lightpush_pb2

NOW = 1_700_000_000 * 10**9
CT = "/boxless/1/chat/proto"
CLUSTER = 42
TOPIC = pubsub_topic_for(CT, CLUSTER)
POLICY = lp.ShardPolicy(CLUSTER, frozenset({TOPIC}))
MSG = WakuMessage(b"hi", CT, timestamp=NOW)
S = lp.LightPushStatus


def parse(version: int, data: bytes) -> lp.PushRequest | lp.PushRejection:
    return lp.parse_request(version, data, POLICY, NOW)


def rejected(result: lp.PushRequest | lp.PushRejection) -> lp.PushRejection:
    assert isinstance(result, lp.PushRejection), result
    return result


@pytest.mark.parametrize("version", [2, 3])
def test_valid_request_round_trips(version: int) -> None:
    got = parse(version, lp.build_request(version, "r1", MSG, TOPIC))
    assert got == lp.PushRequest(version, "r1", TOPIC, MSG)


def test_v3_without_topic_is_autosharded() -> None:
    got = parse(3, lp.build_request(3, "r1", MSG))
    assert isinstance(got, lp.PushRequest) and got.pubsub_topic == TOPIC
    # an empty topic is read as absent (js-waku never sends one; nwaku says 400)
    req = lightpush_pb2.LightpushRequest(request_id="r2", pubsub_topic="")
    req.message.MergeFromString(MSG.encode())
    assert parse(3, req.SerializeToString()) == lp.PushRequest(3, "r2", TOPIC, MSG)


def test_field_numbers_match_js_waku() -> None:
    # js-waku LightPushRequestV3: request_id 1, pubsub_topic 20, message 21
    data = lp.build_request(3, "x", WakuMessage(b"", CT), TOPIC)
    assert data.startswith(b"\x0a\x01x\xa2\x01")  # field 20, wire type 2
    res = lightpush_pb2.LightpushResponse.FromString(lp.build_response(3, "x", S.SUCCESS, None, 4))
    assert res.status_code == 200 and res.relay_peer_count == 4 and not res.HasField("status_desc")


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"\xff\xff", S.BAD_REQUEST),  # not protobuf
        (lightpush_pb2.LightpushRequest(request_id="a").SerializeToString(), S.BAD_REQUEST),
    ],
)
def test_bad_v3_requests(data: bytes, status: lp.LightPushStatus) -> None:
    assert rejected(parse(3, data)).status == status


def test_status_per_rule() -> None:
    big = WakuMessage(b"x" * (MAX_MESSAGE_SIZE + 1), CT)
    assert rejected(parse(3, lp.build_request(3, "a", big, TOPIC))).status == S.PAYLOAD_TOO_LARGE
    other = pubsub_topic(CLUSTER, 7 if TOPIC != pubsub_topic(CLUSTER, 7) else 6)
    r = rejected(parse(3, lp.build_request(3, "b", MSG, other)))
    assert (r.status, r.request_id) == (S.UNSUPPORTED_PUBSUB_TOPIC, "b")
    stale = WakuMessage(b"x", CT, timestamp=NOW - 3600 * 10**9)
    r = rejected(parse(3, lp.build_request(3, "c", stale, TOPIC)))
    assert r.status == S.INVALID_MESSAGE and r.desc.startswith("timestamp")
    bad_ct = WakuMessage(b"x", "not-a-topic")
    assert rejected(parse(3, lp.build_request(3, "d", bad_ct))).status == S.INVALID_MESSAGE
    assert rejected(parse(3, lp.build_request(3, "e", bad_ct, TOPIC))).status == S.INVALID_MESSAGE
    meta = WakuMessage(b"x", CT, meta=b"m" * 65)
    assert rejected(parse(2, lp.build_request(2, "f", meta, TOPIC))).status == S.INVALID_MESSAGE


def test_v2_needs_topic_and_message() -> None:
    rpc = lightpush_pb2.PushRPC(request_id="a")
    rpc.request.message.MergeFromString(MSG.encode())
    assert rejected(parse(2, rpc.SerializeToString())).status == S.BAD_REQUEST
    only_id = lightpush_pb2.PushRPC(request_id="a").SerializeToString()
    assert rejected(parse(2, only_id)).status == S.BAD_REQUEST
    with pytest.raises(UsageError):
        lp.build_request(2, "a", MSG)


@pytest.mark.parametrize("status", list(lp.LightPushStatus))
def test_responses_round_trip_both_versions(status: lp.LightPushStatus) -> None:
    v3 = lp.parse_response(3, lp.build_response(3, "id", status, "why", 3))
    assert (v3.request_id, v3.status, v3.desc, v3.relay_peer_count) == ("id", status, "why", 3)
    v2 = lp.parse_response(2, lp.build_response(2, "id", status, "why"))
    assert v2.status == status and v2.ok == (status == S.SUCCESS)


def test_rejection_encodes_for_its_version() -> None:
    r = rejected(parse(2, b"\xff"))
    raw = lightpush_pb2.PushRPC.FromString(r.encode())
    assert not raw.response.is_success and raw.response.info.startswith("BAD_REQUEST")
    with pytest.raises(DecodeError):
        lp.parse_response(2, lightpush_pb2.PushRPC(request_id="x").SerializeToString())
    with pytest.raises(DecodeError):
        lp.parse_response(3, lightpush_pb2.LightpushResponse(request_id="x").SerializeToString())
    foreign = lightpush_pb2.PushRPC(request_id="x")
    foreign.response.info = "something odd"
    assert lp.parse_response(2, foreign.SerializeToString()).status == 0


def test_protocol_ids() -> None:
    assert lp.protocol_id(3) == "/vac/waku/lightpush/3.0.0"
    assert lp.protocol_id(2) == "/vac/waku/lightpush/2.0.0-beta1"
    with pytest.raises(UsageError):
        lp.protocol_id(1)


# --- fuzz: untrusted bytes only ever give a value or a rejection / DecodeError -------


@given(st.binary(max_size=512), st.sampled_from([2, 3]))
def test_parse_request_never_raises(data: bytes, version: int) -> None:
    assert isinstance(parse(version, data), lp.PushRequest | lp.PushRejection)


@given(st.binary(max_size=512), st.sampled_from([2, 3]))
def test_parse_response_raises_only_decode_error(data: bytes, version: int) -> None:
    try:
        assert isinstance(lp.parse_response(version, data), lp.LightPushResult)
    except DecodeError:
        pass


@given(
    st.binary(max_size=64),
    st.sampled_from([CT, "/x/1/y/z", "bad", ""]),
    st.one_of(st.none(), st.integers(NOW - 30 * 10**9, NOW + 30 * 10**9)),
    st.sampled_from([None, TOPIC, "/waku/2/rs/1/0"]),
)
def test_structured_requests_never_raise(
    payload: bytes, ct: str, ts: int | None, topic: str | None
) -> None:
    data = lp.build_request(3, "r", WakuMessage(payload, ct, timestamp=ts), topic)
    assert isinstance(parse(3, data), lp.PushRequest | lp.PushRejection)


# --- rate limit under a fake clock ---------------------------------------------------


def test_token_bucket_burst_then_rate() -> None:
    lim = lp.TokenBucketLimiter(rate=10, burst=20)
    assert all(lim.allow("a", 0.0) for _ in range(20))
    assert not lim.allow("a", 0.0)
    assert lim.allow("b", 0.0)  # per peer
    assert lim.allow("a", 0.1) and not lim.allow("a", 0.1)  # 0.1 s refills one token
    assert sum(lim.allow("a", 100.0) for _ in range(50)) == 20  # refill caps at burst


def test_token_bucket_bounded_memory() -> None:
    lim = lp.TokenBucketLimiter(rate=1, burst=1, max_peers=3)
    for p in range(10):
        lim.allow(p, 0.0)
    assert lim.tracked_peers == 3
    lim.forget(9)
    assert lim.tracked_peers == 2
    with pytest.raises(UsageError):
        lp.TokenBucketLimiter(rate=0)
