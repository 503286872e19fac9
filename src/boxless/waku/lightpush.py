"""Light push (``/vac/waku/lightpush/3.0.0`` and legacy ``2.0.0-beta1``), sans-IO.

Theory of operation
-------------------
A light client hands one message to a service node, which relays it and says
how it went. Service side: :func:`parse_request` turns untrusted request bytes
into a :class:`PushRequest` (decoded, validated :class:`WakuMessage` plus the
pubsub topic it goes to) or a :class:`PushRejection` that already carries the
status to answer with. The adapter then publishes on relay and answers with
:func:`build_response`. Client side: :func:`build_request` and
:func:`parse_response`. :class:`TokenBucketLimiter` is the per-peer request rate
limit; time is an argument everywhere, nothing here reads a clock or does I/O.

Checks run in this order, first failure wins (nwaku's order)::

    undecodable / no message                 -> 400 BAD_REQUEST
    encoded message above the size limit     -> 413 PAYLOAD_TOO_LARGE
    pubsub topic not served by this node     -> 421 UNSUPPORTED_PUBSUB_TOPIC
    no pubsub topic and content topic unparseable (can't autoshard),
    or a relay rule broken (meta, timestamp) -> 420 INVALID_MESSAGE

v3 lets the client omit ``pubsub_topic``; the service then autoshards from the
content topic with its cluster and shard count. A topic that is present but
empty is read as omitted (nwaku answers 400 there; js-waku never sends it, and
leniency costs nothing). v2 has no status codes: ``is_success`` and ``info``;
v2 requests must name the pubsub topic (an empty one is refused).

Status codes (``LightPushStatus``). Verified against js-waku
(``packages/interfaces/src/light_push.ts``, enum ``LightPushStatusCode``) and
nwaku (``waku/waku_lightpush/common.nim``): 200, 400, 413, 420, 421, 429, 500,
503 SERVICE_NOT_AVAILABLE, 504 OUT_OF_RLN_PROOF, 505 NO_PEERS_TO_RELAY.
Note that waku-org/specs' lightpush.md table lists NO_PEERS_TO_RELAY as 503;
both implementations use 505 (and 503 for "service not available"), so we do.
js-waku treats every code but 200 as "remote peer rejected".
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.errors import DecodeError, UsageError, ValidationError
from boxless.waku.message import MAX_MESSAGE_SIZE, WakuMessage, validate
from boxless.waku.sharding import DEFAULT_NUM_SHARDS, pubsub_topic_for
from boxless.wire import lightpush_pb2

__all__ = [
    "LIGHTPUSH_V2",
    "LIGHTPUSH_V3",
    "LightPushResult",
    "LightPushStatus",
    "PushRejection",
    "PushRequest",
    "ShardPolicy",
    "TokenBucketLimiter",
    "build_request",
    "build_response",
    "parse_request",
    "parse_response",
    "protocol_id",
]

LIGHTPUSH_V3 = "/vac/waku/lightpush/3.0.0"
LIGHTPUSH_V2 = "/vac/waku/lightpush/2.0.0-beta1"
VERSIONS = (2, 3)


class LightPushStatus(enum.IntEnum):
    """Light push v3 status codes (nwaku's ``ErrorCode``, js-waku's ``LightPushStatusCode``)."""

    SUCCESS = 200
    BAD_REQUEST = 400
    PAYLOAD_TOO_LARGE = 413
    INVALID_MESSAGE = 420
    UNSUPPORTED_PUBSUB_TOPIC = 421
    TOO_MANY_REQUESTS = 429
    INTERNAL_SERVER_ERROR = 500
    SERVICE_NOT_AVAILABLE = 503
    OUT_OF_RLN_PROOF = 504
    NO_PEERS_TO_RELAY = 505


def protocol_id(version: int) -> str:
    """The libp2p protocol id of light push ``version`` (2 or 3)."""
    _check_version(version)
    return LIGHTPUSH_V3 if version == 3 else LIGHTPUSH_V2


def _check_version(version: int) -> None:
    if version not in VERSIONS:
        raise UsageError(f"light push version must be 2 or 3, got {version}")


@dataclass(frozen=True, slots=True)
class ShardPolicy:
    """Which pubsub topics a service relays on, and how it autoshards."""

    cluster_id: int
    pubsub_topics: frozenset[str]
    num_shards: int = DEFAULT_NUM_SHARDS

    def __post_init__(self) -> None:
        if self.num_shards < 1:
            raise UsageError(f"num_shards must be at least 1, got {self.num_shards}")


@dataclass(frozen=True, slots=True)
class PushRequest:
    """A valid request: relay ``message`` on ``pubsub_topic``."""

    version: int
    request_id: str
    pubsub_topic: str
    message: WakuMessage


@dataclass(frozen=True, slots=True)
class PushRejection:
    """An invalid request, with the answer to send back."""

    version: int
    request_id: str
    status: LightPushStatus
    desc: str

    def encode(self) -> bytes:
        """The encoded response for this rejection."""
        return build_response(self.version, self.request_id, self.status, self.desc)


class _Reject(Exception):
    """Internal: a check failed; carries the status and its description."""

    def __init__(self, status: LightPushStatus, desc: str) -> None:
        super().__init__(desc)
        self.status = status
        self.desc = desc


# --- service side ------------------------------------------------------------------


def parse_request(
    version: int,
    data: bytes,
    policy: ShardPolicy,
    now_ns: int,
    *,
    max_message_size: int = MAX_MESSAGE_SIZE,
) -> PushRequest | PushRejection:
    """Decode and check a light push request from a peer. Never raises on bad input.

    ``now_ns`` (Unix nanoseconds) is the clock the timestamp rule checks against.
    """
    _check_version(version)
    try:
        request_id, topic, raw = (_decode_v3 if version == 3 else _decode_v2)(data)
    except _Reject as exc:
        return PushRejection(version, "", exc.status, exc.desc)
    try:
        message = _check_message(raw, max_message_size, now_ns)
        resolved = _resolve_topic(topic, message, policy)
        _check_rules(message, now_ns, max_message_size)
    except _Reject as exc:
        return PushRejection(version, request_id, exc.status, exc.desc)
    return PushRequest(version, request_id, resolved, message)


def _decode_v3(data: bytes) -> tuple[str, str | None, bytes]:
    try:
        req = lightpush_pb2.LightpushRequest.FromString(data)
    except ProtobufDecodeError as exc:
        raise _Reject(LightPushStatus.BAD_REQUEST, "decode rpc failed") from exc
    if not req.HasField("message"):
        raise _Reject(LightPushStatus.BAD_REQUEST, "request has no message")
    topic = req.pubsub_topic if req.HasField("pubsub_topic") and req.pubsub_topic else None
    return req.request_id, topic, req.message.SerializeToString()


def _decode_v2(data: bytes) -> tuple[str, str | None, bytes]:
    try:
        rpc = lightpush_pb2.PushRPC.FromString(data)
    except ProtobufDecodeError as exc:
        raise _Reject(LightPushStatus.BAD_REQUEST, "decode rpc failed") from exc
    if not rpc.HasField("request") or not rpc.request.HasField("message"):
        raise _Reject(LightPushStatus.BAD_REQUEST, "request has no message")
    if not rpc.request.pubsub_topic:
        raise _Reject(LightPushStatus.BAD_REQUEST, "v2 request has no pubsub topic")
    return rpc.request_id, rpc.request.pubsub_topic, rpc.request.message.SerializeToString()


def _check_message(raw: bytes, max_size: int, now_ns: int) -> WakuMessage:
    if len(raw) > max_size:
        raise _Reject(
            LightPushStatus.PAYLOAD_TOO_LARGE,
            f"message is {len(raw)} bytes, limit is {max_size}",
        )
    try:
        return WakuMessage.decode(raw, max_size=max_size)
    except DecodeError as exc:  # the outer parse accepted it, so this is unexpected
        raise _Reject(LightPushStatus.BAD_REQUEST, str(exc)) from exc


def _resolve_topic(topic: str | None, message: WakuMessage, policy: ShardPolicy) -> str:
    if topic is None:
        try:
            topic = pubsub_topic_for(message.content_topic, policy.cluster_id, policy.num_shards)
        except ValidationError as exc:
            raise _Reject(
                LightPushStatus.INVALID_MESSAGE, f"cannot autoshard content topic: {exc}"
            ) from exc
    if topic not in policy.pubsub_topics:
        raise _Reject(
            LightPushStatus.UNSUPPORTED_PUBSUB_TOPIC, f"this node does not relay on {topic}"
        )
    return topic


def _check_rules(message: WakuMessage, now_ns: int, max_size: int) -> None:
    try:
        validate(message, now_ns, max_size=max_size)
    except ValidationError as exc:
        raise _Reject(LightPushStatus.INVALID_MESSAGE, str(exc)) from exc


def build_response(
    version: int,
    request_id: str,
    status: LightPushStatus,
    desc: str | None = None,
    relay_peer_count: int | None = None,
) -> bytes:
    """Encode a response. v2 maps ``status`` onto ``is_success`` and puts
    ``"<NAME>: <desc>"`` in ``info``; v3 carries the code itself."""
    _check_version(version)
    if version == 3:
        res = lightpush_pb2.LightpushResponse(
            request_id=request_id, status_code=int(status), status_desc=desc
        )
        if relay_peer_count is not None:
            res.relay_peer_count = relay_peer_count
        return res.SerializeToString()
    info = status.name if desc is None else f"{status.name}: {desc}"
    rpc = lightpush_pb2.PushRPC(
        request_id=request_id,
        response=lightpush_pb2.PushResponse(
            is_success=status == LightPushStatus.SUCCESS, info=info
        ),
    )
    return rpc.SerializeToString()


# --- client side -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LightPushResult:
    """What a service answered.

    ``status`` is the v3 code. v2 answers carry none: success reads as 200 and
    failure as the code named at the start of ``info`` when it names one (our
    service and nwaku's v2 do), else 0 (unknown).
    """

    request_id: str
    status: int
    desc: str
    relay_peer_count: int | None = None

    @property
    def ok(self) -> bool:
        """Whether the service relayed the message (status 200)."""
        return self.status == LightPushStatus.SUCCESS


def build_request(
    version: int, request_id: str, message: WakuMessage, pubsub_topic: str | None = None
) -> bytes:
    """Encode a request. v2 needs ``pubsub_topic``; v3 may leave it to autosharding."""
    _check_version(version)
    if not request_id:
        raise UsageError("request_id must be a non-empty unique string")
    if version == 3:
        req = lightpush_pb2.LightpushRequest(request_id=request_id, pubsub_topic=pubsub_topic)
        req.message.MergeFromString(message.encode())
        return req.SerializeToString()
    if not pubsub_topic:
        raise UsageError("light push v2 needs a pubsub topic")
    rpc = lightpush_pb2.PushRPC(request_id=request_id)
    rpc.request.pubsub_topic = pubsub_topic
    rpc.request.message.MergeFromString(message.encode())
    return rpc.SerializeToString()


def parse_response(version: int, data: bytes) -> LightPushResult:
    """Decode a response from a peer. Raises :class:`DecodeError` on bad bytes."""
    _check_version(version)
    try:
        if version == 3:
            res = lightpush_pb2.LightpushResponse.FromString(data)
        else:
            rpc = lightpush_pb2.PushRPC.FromString(data)
    except ProtobufDecodeError as exc:
        raise DecodeError(f"light push response does not decode: {exc}") from exc
    if version == 3:
        if res.status_code == 0:
            raise DecodeError("light push response has no status_code")
        count = res.relay_peer_count if res.HasField("relay_peer_count") else None
        return LightPushResult(res.request_id, res.status_code, res.status_desc, count)
    if not rpc.HasField("response"):
        raise DecodeError("light push v2 answer has no response")
    info = rpc.response.info
    status = LightPushStatus.SUCCESS if rpc.response.is_success else _status_in(info)
    return LightPushResult(rpc.request_id, int(status), info)


def _status_in(info: str) -> int:
    name = info.split(":", 1)[0].strip()
    member = LightPushStatus.__members__.get(name)
    return int(member) if member is not None and member != LightPushStatus.SUCCESS else 0


# --- rate limit --------------------------------------------------------------------


class TokenBucketLimiter:
    """Per-peer token buckets: ``rate`` requests per second, bursts up to ``burst``.

    Peers are opaque hashables. At most ``max_peers`` buckets are kept; beyond
    that the least recently seen is forgotten (it restarts with a full bucket,
    which only ever helps a peer that has been quiet longest).
    """

    def __init__(self, rate: float = 10.0, burst: int = 20, max_peers: int = 10_000) -> None:
        if rate <= 0 or burst < 1 or max_peers < 1:
            raise UsageError("rate must be positive; burst and max_peers at least 1")
        self.rate = rate
        self.burst = burst
        self.max_peers = max_peers
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def allow(self, peer: Hashable, now: float) -> bool:
        """Take one token for ``peer`` at time ``now`` (seconds); False if none is left."""
        tokens, last = self._buckets.pop(peer, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - last) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[peer] = (tokens, now)
        while len(self._buckets) > self.max_peers:
            self._buckets.popitem(last=False)
        return allowed

    def forget(self, peer: Hashable) -> None:
        """Drop ``peer``'s bucket."""
        self._buckets.pop(peer, None)

    @property
    def tracked_peers(self) -> int:
        """How many buckets are kept (not ``__len__``: an empty limiter is still truthy)."""
        return len(self._buckets)
