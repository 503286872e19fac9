"""12/WAKU2-FILTER v2 (filter-subscribe and filter-push), sans-IO.

Theory of operation
-------------------
Service side: :func:`parse_request` turns untrusted bytes into a
:class:`FilterRequest` or a :class:`FilterRejection` (the answer to send).
:class:`FilterSubscriptions` is the whole subscription state machine, one table
(``_HANDLERS``) from request type to transition::

    SUBSCRIBER_PING  subscribed? refresh, 200 : 404
    SUBSCRIBE        add criteria (all or nothing), refresh, 200;
                     503 when the node's peer limit or the peer's criteria limit is hit
    UNSUBSCRIBE      remove the named criteria, 200; 404 if none of them was held
    UNSUBSCRIBE_ALL  drop the peer, 200; 404 if it held nothing

A subscription lives while it is refreshed (ping or subscribe) at least every
``ttl`` seconds; :meth:`FilterSubscriptions.expire` drops the stale ones (js-waku
pings every 60 s, the TTL is nwaku's 5 minutes). A peer whose pushes fail
``max_push_failures`` times in a row is dropped (:meth:`~FilterSubscriptions.mark_failed`);
one success resets the count. Time is always an argument (``now``, seconds on
any monotonic clock). Peers are opaque hashables: no libp2p here.

Pushes: :func:`encode_push` always sets ``pubsub_topic`` (js-waku drops a push
without one); :func:`decode_push` refuses one without it or without a message.

Client side: :func:`build_request`, :func:`parse_response`, and
:class:`ClientSubscriptions`, what a client asked for (to check pushes against
and to re-subscribe after a service restart).

Status codes, as nwaku sends them (``waku/waku_filter_v2/common.nim``,
``FilterSubscribeErrorKind``) and js-waku reads them (any code outside 2xx is a
rejection, ``packages/core/src/lib/filter/filter.ts``): 200 OK, 400 BAD_REQUEST,
404 NOT_FOUND, 429 TOO_MANY_REQUESTS, 503 SERVICE_UNAVAILABLE. Descriptions use
nwaku's ``"KIND: cause"`` form. Limits are nwaku's: 100 content topics per
request, 1000 criteria per peer, 1000 subscribed peers.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.errors import DecodeError, UsageError
from boxless.waku.message import MAX_MESSAGE_SIZE, WakuMessage
from boxless.wire import filter_pb2

__all__ = [
    "DEFAULT_TTL",
    "FILTER_PUSH_PROTOCOL",
    "FILTER_SUBSCRIBE_PROTOCOL",
    "MAX_CONTENT_TOPICS_PER_REQUEST",
    "MAX_CRITERIA_PER_PEER",
    "MAX_PUSH_FAILURES",
    "MAX_SUBSCRIBED_PEERS",
    "ClientSubscriptions",
    "FilterRejection",
    "FilterRequest",
    "FilterResponse",
    "FilterStatus",
    "FilterSubscriptions",
    "Outcome",
    "RequestType",
    "build_request",
    "build_response",
    "decode_push",
    "encode_push",
    "parse_request",
    "parse_response",
]

FILTER_SUBSCRIBE_PROTOCOL = "/vac/waku/filter-subscribe/2.0.0-beta1"
FILTER_PUSH_PROTOCOL = "/vac/waku/filter-push/2.0.0-beta1"

MAX_CONTENT_TOPICS_PER_REQUEST = 100
MAX_CRITERIA_PER_PEER = 1000
MAX_SUBSCRIBED_PEERS = 1000
DEFAULT_TTL = 300.0
"""Seconds a subscription lives without a ping or subscribe (nwaku: 5 minutes)."""
MAX_PUSH_FAILURES = 3

Peer = Hashable
Criterion = tuple[str, str]
"""(pubsub_topic, content_topic)."""


class FilterStatus(enum.IntEnum):
    """Status codes of filter-subscribe responses (nwaku's ``FilterSubscribeErrorKind``)."""

    OK = 200
    BAD_REQUEST = 400
    NOT_FOUND = 404
    TOO_MANY_REQUESTS = 429
    SERVICE_UNAVAILABLE = 503


class RequestType(enum.IntEnum):
    """``FilterSubscribeRequest.FilterSubscribeType``."""

    SUBSCRIBER_PING = 0
    SUBSCRIBE = 1
    UNSUBSCRIBE = 2
    UNSUBSCRIBE_ALL = 3


_NEEDS_CRITERIA = (RequestType.SUBSCRIBE, RequestType.UNSUBSCRIBE)
_WIRE_TYPE = filter_pb2.FilterSubscribeRequest.FilterSubscribeType.ValueType


@dataclass(frozen=True, slots=True)
class FilterRequest:
    """A valid filter-subscribe request. Ping and unsubscribe-all carry no criteria."""

    request_id: str
    type: RequestType
    pubsub_topic: str | None = None
    content_topics: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type in _NEEDS_CRITERIA:
            if not self.pubsub_topic or not self.content_topics:
                raise UsageError(f"{self.type.name} needs a pubsub topic and content topics")
            if len(self.content_topics) > MAX_CONTENT_TOPICS_PER_REQUEST:
                raise UsageError(
                    f"at most {MAX_CONTENT_TOPICS_PER_REQUEST} content topics per request"
                )
        elif self.pubsub_topic is not None or self.content_topics:
            raise UsageError(f"{self.type.name} carries no filter criteria")

    @property
    def criteria(self) -> frozenset[Criterion]:
        """The (pubsub topic, content topic) pairs this request names."""
        topic = self.pubsub_topic or ""
        return frozenset((topic, c) for c in self.content_topics)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A status and its description, as they go into the response."""

    status: FilterStatus
    desc: str = "OK"

    @property
    def ok(self) -> bool:
        return self.status == FilterStatus.OK


_OK = Outcome(FilterStatus.OK)


@dataclass(frozen=True, slots=True)
class FilterRejection:
    """An invalid request and the answer to send back."""

    request_id: str
    status: FilterStatus
    desc: str

    def encode(self) -> bytes:
        return build_response(self.request_id, self.status, self.desc)


# --- service side: parsing ---------------------------------------------------------


def parse_request(
    data: bytes, *, max_content_topics: int = MAX_CONTENT_TOPICS_PER_REQUEST
) -> FilterRequest | FilterRejection:
    """Decode and check a FilterSubscribeRequest from a peer. Never raises on bad input.

    Criteria sent with a ping or unsubscribe-all are ignored (js-waku sends an
    empty pubsub topic with its pings, and one with unsubscribe-all).
    """
    try:
        req = filter_pb2.FilterSubscribeRequest.FromString(data)
    except ProtobufDecodeError:
        return FilterRejection("", FilterStatus.BAD_REQUEST, "BAD_REQUEST: decode rpc failed")
    rid = req.request_id
    try:
        kind = RequestType(req.filter_subscribe_type)
    except ValueError:
        return _bad(rid, f"unknown filter_subscribe_type {req.filter_subscribe_type}")
    if kind not in _NEEDS_CRITERIA:
        return FilterRequest(rid, kind)
    topic = req.pubsub_topic if req.HasField("pubsub_topic") else ""
    topics = tuple(dict.fromkeys(req.content_topics))
    if not topic or not topics or "" in topics:
        return _bad(rid, "pubsubTopic and contentTopics must be specified")
    limit = min(max_content_topics, MAX_CONTENT_TOPICS_PER_REQUEST)
    if len(topics) > limit:
        return _bad(rid, f"exceeds maximum content topics: {limit}")
    return FilterRequest(rid, kind, topic, topics)


def _bad(request_id: str, cause: str) -> FilterRejection:
    return FilterRejection(request_id, FilterStatus.BAD_REQUEST, f"BAD_REQUEST: {cause}")


def build_response(request_id: str, status: FilterStatus, desc: str | None = None) -> bytes:
    """Encode a FilterSubscribeResponse."""
    res = filter_pb2.FilterSubscribeResponse(
        request_id=request_id, status_code=int(status), status_desc=desc
    )
    return res.SerializeToString()


# --- service side: the subscription state machine ----------------------------------


@dataclass(slots=True)
class _PeerState:
    criteria: set[Criterion] = field(default_factory=set)
    refreshed: float = 0.0
    failures: int = 0


class FilterSubscriptions:
    """Who wants which messages; see the module docstring for the transitions."""

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL,
        max_peers: int = MAX_SUBSCRIBED_PEERS,
        max_criteria_per_peer: int = MAX_CRITERIA_PER_PEER,
        max_push_failures: int = MAX_PUSH_FAILURES,
    ) -> None:
        if ttl <= 0 or max_peers < 1 or max_criteria_per_peer < 1 or max_push_failures < 1:
            raise UsageError("ttl must be positive and every limit at least 1")
        self.ttl = ttl
        self.max_peers = max_peers
        self.max_criteria_per_peer = max_criteria_per_peer
        self.max_push_failures = max_push_failures
        self._peers: dict[Peer, _PeerState] = {}
        self._index: dict[Criterion, set[Peer]] = {}

    # The one table: request type -> transition.
    def handle(self, peer: Peer, request: FilterRequest, now: float) -> Outcome:
        """Apply ``request`` from ``peer`` at ``now``; return what to answer."""
        return _HANDLERS[request.type](self, peer, request, now)

    def ping(self, peer: Peer, now: float) -> Outcome:
        state = self._peers.get(peer)
        if state is None:
            return Outcome(FilterStatus.NOT_FOUND, "NOT_FOUND: peer has no subscriptions")
        state.refreshed = now
        return _OK

    def subscribe(
        self, peer: Peer, pubsub_topic: str, content_topics: Iterable[str], now: float
    ) -> Outcome:
        wanted = {(pubsub_topic, c) for c in content_topics}
        state = self._peers.get(peer)
        if state is None and len(self._peers) >= self.max_peers:
            return Outcome(
                FilterStatus.SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE: node has reached maximum number of subscriptions",
            )
        held = state.criteria if state is not None else set()
        if len(held | wanted) > self.max_criteria_per_peer:
            return Outcome(
                FilterStatus.SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE: peer has reached maximum number of filter criteria",
            )
        if state is None:
            state = self._peers[peer] = _PeerState()
        for criterion in wanted - state.criteria:
            self._index.setdefault(criterion, set()).add(peer)
        state.criteria |= wanted
        state.refreshed = now
        state.failures = 0
        return _OK

    def unsubscribe(
        self, peer: Peer, pubsub_topic: str, content_topics: Iterable[str], now: float
    ) -> Outcome:
        state = self._peers.get(peer)
        gone = {(pubsub_topic, c) for c in content_topics} & (
            state.criteria if state is not None else set()
        )
        if state is None or not gone:
            return Outcome(FilterStatus.NOT_FOUND, "NOT_FOUND: peer has no such subscription")
        for criterion in gone:
            self._unindex(criterion, peer)
        state.criteria -= gone
        state.refreshed = now
        if not state.criteria:
            del self._peers[peer]
        return _OK

    def unsubscribe_all(self, peer: Peer) -> Outcome:
        if not self.remove(peer):
            return Outcome(FilterStatus.NOT_FOUND, "NOT_FOUND: peer has no subscriptions")
        return _OK

    def remove(self, peer: Peer) -> bool:
        """Forget ``peer`` entirely; False if it held nothing."""
        state = self._peers.pop(peer, None)
        if state is None:
            return False
        for criterion in state.criteria:
            self._unindex(criterion, peer)
        return True

    def _unindex(self, criterion: Criterion, peer: Peer) -> None:
        peers = self._index.get(criterion)
        if peers is not None:
            peers.discard(peer)
            if not peers:
                del self._index[criterion]

    def matching_peers(self, pubsub_topic: str, content_topic: str) -> set[Peer]:
        """Peers that want a message with ``content_topic`` seen on ``pubsub_topic``."""
        return set(self._index.get((pubsub_topic, content_topic), ()))

    def get_timer(self) -> float | None:
        """When the next subscription would expire, or None if there is none."""
        if not self._peers:
            return None
        return min(s.refreshed for s in self._peers.values()) + self.ttl

    def expire(self, now: float) -> list[Peer]:
        """Drop subscriptions not refreshed for ``ttl`` seconds; return their peers."""
        stale = [p for p, s in self._peers.items() if now - s.refreshed >= self.ttl]
        for peer in stale:
            self.remove(peer)
        return stale

    def push_succeeded(self, peer: Peer) -> None:
        """A push reached ``peer``: its failure count starts over."""
        state = self._peers.get(peer)
        if state is not None:
            state.failures = 0

    def mark_failed(self, peer: Peer) -> bool:
        """A push to ``peer`` failed; True if that dropped its subscription."""
        state = self._peers.get(peer)
        if state is None:
            return False
        state.failures += 1
        if state.failures < self.max_push_failures:
            return False
        self.remove(peer)
        return True

    def is_subscribed(self, peer: Peer) -> bool:
        return peer in self._peers

    def criteria(self, peer: Peer) -> frozenset[Criterion]:
        """What ``peer`` is subscribed to (empty if nothing)."""
        state = self._peers.get(peer)
        return frozenset(state.criteria) if state is not None else frozenset()

    @property
    def peers(self) -> frozenset[Peer]:
        return frozenset(self._peers)

    def __len__(self) -> int:
        return len(self._peers)


def _ping(s: FilterSubscriptions, peer: Peer, r: FilterRequest, now: float) -> Outcome:
    return s.ping(peer, now)


def _subscribe(s: FilterSubscriptions, peer: Peer, r: FilterRequest, now: float) -> Outcome:
    assert r.pubsub_topic is not None
    return s.subscribe(peer, r.pubsub_topic, r.content_topics, now)


def _unsubscribe(s: FilterSubscriptions, peer: Peer, r: FilterRequest, now: float) -> Outcome:
    assert r.pubsub_topic is not None
    return s.unsubscribe(peer, r.pubsub_topic, r.content_topics, now)


def _unsubscribe_all(s: FilterSubscriptions, peer: Peer, r: FilterRequest, now: float) -> Outcome:
    return s.unsubscribe_all(peer)


_HANDLERS: dict[RequestType, Callable[[FilterSubscriptions, Peer, FilterRequest, float], Outcome]]
_HANDLERS = {
    RequestType.SUBSCRIBER_PING: _ping,
    RequestType.SUBSCRIBE: _subscribe,
    RequestType.UNSUBSCRIBE: _unsubscribe,
    RequestType.UNSUBSCRIBE_ALL: _unsubscribe_all,
}


# --- push --------------------------------------------------------------------------


def encode_push(pubsub_topic: str, message: WakuMessage) -> bytes:
    """Encode a MessagePush; ``pubsub_topic`` is required (js-waku drops pushes without)."""
    if not pubsub_topic:
        raise UsageError("a filter push needs its pubsub topic")
    push = filter_pb2.MessagePush(pubsub_topic=pubsub_topic)
    push.waku_message.MergeFromString(message.encode())
    return push.SerializeToString()


def decode_push(data: bytes, *, max_size: int = MAX_MESSAGE_SIZE) -> tuple[str, WakuMessage]:
    """Decode a MessagePush from a peer into ``(pubsub_topic, message)``.

    Raises :class:`DecodeError` on bad bytes, or when the message or the pubsub
    topic is missing, or the message exceeds ``max_size``.
    """
    try:
        push = filter_pb2.MessagePush.FromString(data)
    except ProtobufDecodeError as exc:
        raise DecodeError(f"filter push does not decode: {exc}") from exc
    if not push.HasField("waku_message"):
        raise DecodeError("filter push has no message")
    if not push.pubsub_topic:
        raise DecodeError("filter push has no pubsub topic")
    return push.pubsub_topic, WakuMessage.decode(
        push.waku_message.SerializeToString(), max_size=max_size
    )


# --- client side -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FilterResponse:
    """A decoded FilterSubscribeResponse."""

    request_id: str
    status_code: int
    status_desc: str

    @property
    def ok(self) -> bool:
        """Whether the status code is a success (2xx)."""
        return 200 <= self.status_code < 300


def build_request(request: FilterRequest) -> bytes:
    """Encode a FilterSubscribeRequest (build ``request`` to have it checked)."""
    if not request.request_id:
        raise UsageError("request_id must be a non-empty unique string")
    req = filter_pb2.FilterSubscribeRequest(
        request_id=request.request_id,
        filter_subscribe_type=_WIRE_TYPE(int(request.type)),
        pubsub_topic=request.pubsub_topic,
        content_topics=list(request.content_topics),
    )
    return req.SerializeToString()


def parse_response(data: bytes) -> FilterResponse:
    """Decode a FilterSubscribeResponse. Raises :class:`DecodeError` on bad bytes."""
    try:
        res = filter_pb2.FilterSubscribeResponse.FromString(data)
    except ProtobufDecodeError as exc:
        raise DecodeError(f"filter response does not decode: {exc}") from exc
    if res.status_code == 0:
        raise DecodeError("filter response has no status_code")
    return FilterResponse(res.request_id, res.status_code, res.status_desc)


class ClientSubscriptions:
    """What a filter client subscribed to at one service, by pubsub topic."""

    def __init__(self) -> None:
        self._topics: dict[str, set[str]] = {}

    def add(self, pubsub_topic: str, content_topics: Iterable[str]) -> None:
        self._topics.setdefault(pubsub_topic, set()).update(content_topics)

    def remove(self, pubsub_topic: str, content_topics: Iterable[str]) -> None:
        held = self._topics.get(pubsub_topic)
        if held is not None:
            held.difference_update(content_topics)
            if not held:
                del self._topics[pubsub_topic]

    def clear(self) -> None:
        self._topics.clear()

    def matches(self, pubsub_topic: str, content_topic: str) -> bool:
        """Whether a push for this pair is one we asked for."""
        return content_topic in self._topics.get(pubsub_topic, ())

    def requests(
        self, chunk: int = MAX_CONTENT_TOPICS_PER_REQUEST
    ) -> Iterator[tuple[str, Sequence[str]]]:
        """``(pubsub_topic, content_topics)`` batches that re-create everything held."""
        for topic, contents in self._topics.items():
            ordered = sorted(contents)
            for i in range(0, len(ordered), chunk):
                yield topic, ordered[i : i + chunk]

    def __bool__(self) -> bool:
        return bool(self._topics)
