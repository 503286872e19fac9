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
one monotonic clock that never goes back). Peers are opaque hashables: no libp2p here.

Slots are finite and peer ids are free to make, so a flood of fresh ids must
not lock honest light clients out (issue 10, finding 6). Besides the per-peer
criteria cap there is a node-wide criteria cap, and when a newcomer finds the
node full the state machine evicts, in this order, and only these:

1. a subscriber that is no longer connected (``is_connected``, a query the
   adapter passes in), least recently refreshed first: we cannot push to it
   anyway, and the node's connection cap bounds how many ids a flooder can
   keep connected, so while that cap is below ``max_peers`` a connected
   subscriber is never pushed out;
2. a connected subscriber that is *unproven*: it never renewed (no ping, no
   second subscribe) and no push ever reached it; oldest first.

A proven, connected subscriber is never evicted: with none of the above to
take, the newcomer gets 503 as before. Each eviction is reported in
:attr:`Outcome.evicted` so the adapter can stop its pushes and count it.
Peers are kept in least-recently-refreshed order, so the expiry timer and the
eviction scan start at the front.

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
request, 1000 criteria per peer, 1000 subscribed peers; ours adds 100,000
criteria over all peers (a full table of 1000-criteria peers would hold a
million index entries).
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
    "MAX_CRITERIA_TOTAL",
    "MAX_PUSH_FAILURES",
    "MAX_SUBSCRIBED_PEERS",
    "ClientSubscriptions",
    "EvictionReason",
    "Eviction",
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
MAX_CRITERIA_TOTAL = 100_000
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


class EvictionReason(enum.Enum):
    """Why a subscription made room for a newcomer (a metric label)."""

    DETACHED = "detached"
    """Its peer was no longer connected."""
    UNPROVEN = "unproven"
    """It never renewed and no push ever reached it."""


@dataclass(frozen=True, slots=True)
class Eviction:
    """A subscription dropped to make room for another peer's."""

    peer: Peer
    reason: EvictionReason


@dataclass(frozen=True, slots=True)
class Outcome:
    """A status and its description, as they go into the response, and any
    subscriptions evicted to make room (the adapter stops pushing to those)."""

    status: FilterStatus
    desc: str = "OK"
    evicted: tuple[Eviction, ...] = ()

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
    proven: bool = False
    """Renewed (ping or a later subscribe) or reached by a push: not evicted while connected."""


def _always_connected(peer: Peer) -> bool:
    return True


class FilterSubscriptions:
    """Who wants which messages; see the module docstring for the transitions.

    :param is_connected: whether a peer is connected now (a query, no I/O);
        by default every peer counts as connected, so only unproven
        subscriptions can be evicted.
    """

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL,
        max_peers: int = MAX_SUBSCRIBED_PEERS,
        max_criteria_per_peer: int = MAX_CRITERIA_PER_PEER,
        max_criteria: int = MAX_CRITERIA_TOTAL,
        max_push_failures: int = MAX_PUSH_FAILURES,
        is_connected: Callable[[Peer], bool] = _always_connected,
    ) -> None:
        if (
            ttl <= 0
            or max_peers < 1
            or max_criteria_per_peer < 1
            or max_criteria < 1
            or max_push_failures < 1
        ):
            raise UsageError("ttl must be positive and every limit at least 1")
        self.ttl = ttl
        self.max_peers = max_peers
        self.max_criteria_per_peer = max_criteria_per_peer
        self.max_criteria = max_criteria
        self.max_push_failures = max_push_failures
        self.is_connected = is_connected
        # least recently refreshed first (dicts keep insertion order; a refresh re-inserts)
        self._peers: dict[Peer, _PeerState] = {}
        self._index: dict[Criterion, set[Peer]] = {}
        self._criteria_total = 0

    # The one table: request type -> transition.
    def handle(self, peer: Peer, request: FilterRequest, now: float) -> Outcome:
        """Apply ``request`` from ``peer`` at ``now``; return what to answer."""
        return _HANDLERS[request.type](self, peer, request, now)

    def ping(self, peer: Peer, now: float) -> Outcome:
        state = self._peers.get(peer)
        if state is None:
            return Outcome(FilterStatus.NOT_FOUND, "NOT_FOUND: peer has no subscriptions")
        self._refresh(peer, state, now)
        state.proven = True
        return _OK

    def subscribe(
        self, peer: Peer, pubsub_topic: str, content_topics: Iterable[str], now: float
    ) -> Outcome:
        wanted = {(pubsub_topic, c) for c in content_topics}
        state = self._peers.get(peer)
        held = state.criteria if state is not None else set()
        added = wanted - held
        if len(held) + len(added) > self.max_criteria_per_peer:
            return Outcome(
                FilterStatus.SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE: peer has reached maximum number of filter criteria",
            )
        evicted = self._make_room(peer, new_peer=state is None, new_criteria=len(added))
        if evicted is None:
            return Outcome(
                FilterStatus.SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE: node has reached maximum number of subscriptions",
            )
        if state is None:
            state = self._peers[peer] = _PeerState()
        else:
            state.proven = True  # a renewal
        for criterion in added:
            self._index.setdefault(criterion, set()).add(peer)
        state.criteria |= added
        self._criteria_total += len(added)
        self._refresh(peer, state, now)
        state.failures = 0
        return Outcome(FilterStatus.OK, evicted=evicted)

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
        self._criteria_total -= len(gone)
        self._refresh(peer, state, now)
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
        self._criteria_total -= len(state.criteria)
        return True

    def _refresh(self, peer: Peer, state: _PeerState, now: float) -> None:
        state.refreshed = now
        self._peers[peer] = self._peers.pop(peer)  # to the back: most recently refreshed

    def _unindex(self, criterion: Criterion, peer: Peer) -> None:
        peers = self._index.get(criterion)
        if peers is not None:
            peers.discard(peer)
            if not peers:
                del self._index[criterion]

    def _make_room(
        self, requester: Peer, *, new_peer: bool, new_criteria: int
    ) -> tuple[Eviction, ...] | None:
        """Evict what must go for ``requester`` to fit (see the module docstring);
        None, evicting nothing, if the evictable subscriptions are not enough."""
        peers, criteria = len(self._peers), self._criteria_total

        def full() -> bool:
            return (new_peer and peers >= self.max_peers) or (
                criteria + new_criteria > self.max_criteria
            )

        if not full():
            return ()
        chosen: dict[Peer, Eviction] = {}
        for candidate in self._candidates(requester):
            if candidate.peer in chosen:
                continue
            chosen[candidate.peer] = candidate
            peers -= 1
            criteria -= len(self._peers[candidate.peer].criteria)
            if not full():
                for eviction in chosen.values():
                    self.remove(eviction.peer)
                return tuple(chosen.values())
        return None

    def _candidates(self, requester: Peer) -> Iterator[Eviction]:
        """Evictable subscriptions, in the order they go (never ``requester``'s)."""
        for peer in self._peers:
            if peer != requester and not self.is_connected(peer):
                yield Eviction(peer, EvictionReason.DETACHED)
        for peer, state in self._peers.items():
            if peer != requester and not state.proven:
                yield Eviction(peer, EvictionReason.UNPROVEN)

    def matching_peers(self, pubsub_topic: str, content_topic: str) -> set[Peer]:
        """Peers that want a message with ``content_topic`` seen on ``pubsub_topic``."""
        return set(self._index.get((pubsub_topic, content_topic), ()))

    def get_timer(self) -> float | None:
        """When the next subscription would expire, or None if there is none."""
        oldest = next(iter(self._peers.values()), None)
        return None if oldest is None else oldest.refreshed + self.ttl

    def expire(self, now: float) -> list[Peer]:
        """Drop subscriptions not refreshed for ``ttl`` seconds; return their peers."""
        stale = []
        for peer, state in self._peers.items():
            if now - state.refreshed < self.ttl:
                break  # the rest were refreshed later
            stale.append(peer)
        for peer in stale:
            self.remove(peer)
        return stale

    def push_succeeded(self, peer: Peer) -> None:
        """A push reached ``peer``: its failure count starts over, and it is proven."""
        state = self._peers.get(peer)
        if state is not None:
            state.failures = 0
            state.proven = True

    def mark_failed(self, peer: Peer, pushes: int = 1) -> bool:
        """``pushes`` pushes to ``peer`` failed (one write may carry several);
        True if that dropped its subscription."""
        state = self._peers.get(peer)
        if state is None:
            return False
        state.failures += pushes
        if state.failures < self.max_push_failures:
            return False
        self.remove(peer)
        return True

    def is_subscribed(self, peer: Peer) -> bool:
        return peer in self._peers

    def is_proven(self, peer: Peer) -> bool:
        """Whether ``peer`` renewed or was reached by a push (False if not subscribed)."""
        state = self._peers.get(peer)
        return state is not None and state.proven

    def criteria(self, peer: Peer) -> frozenset[Criterion]:
        """What ``peer`` is subscribed to (empty if nothing)."""
        state = self._peers.get(peer)
        return frozenset(state.criteria) if state is not None else frozenset()

    @property
    def criteria_total(self) -> int:
        """Criteria held over all peers."""
        return self._criteria_total

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
