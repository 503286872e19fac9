"""13/WAKU2-STORE v3 (``/vac/waku/store-query/3.0.0``), sans-IO.

Theory of operation
-------------------
Service side: :func:`parse_request` turns untrusted request bytes into either a
:class:`StoreRequest` (a validated :class:`~boxless.archive.ArchiveQuery` plus
the request id) or a :class:`StoreRejection` that is already the error to send.
The adapter runs the query on the archive in a worker thread and encodes the
page with :func:`build_response`; if the archive raises
:class:`~boxless.archive.CursorNotFoundError` it answers
``build_error(request_id, StoreStatus.BAD_REQUEST, CURSOR_NOT_FOUND)``, and on
:class:`~boxless.errors.StorageError` ``SERVICE_UNAVAILABLE``. A peer over its
rate gets ``TOO_MANY_REQUESTS`` (the adapter decides, with
:mod:`boxless.node.limits`); :func:`trim_page` caps an answer's bytes. Client side:
:func:`build_request` and :func:`parse_response`. Nothing here does I/O.

Status codes. Spec 13 only says success is ``2xx``; the codes below are the
ones nwaku (the reference service) sends and js-waku understands:
200 OK, 400 BAD_REQUEST, 429 TOO_MANY_REQUESTS, 503 SERVICE_UNAVAILABLE, with
``status_desc`` in nwaku's ``"KIND: cause"`` form.

Page order (verified, both directions). Spec 13, "Populating response
messages": "Regardless of whether the response is to a forward or backward
query, the messages field in the response MUST be ordered in a forward
direction". js-waku (``packages/core/src/lib/store/store.ts``, core 0.0.40 and
current master) ignores the response cursor and takes as next cursor
``messages[messages.length - 1].messageHash`` when paginating forward and
``messages[0].messageHash`` when paginating backward, stopping only on an empty
page (its other exit test, ``length > MAX_PAGE_SIZE && length < limit``, can
never hold). So rows go oldest to newest in *both* directions: a backward page
is the ``limit`` entries just before the cursor, reversed into ascending order,
and its ``messages[0]`` (the oldest) is where the next backward page starts,
which is also the ``pagination_cursor`` the spec asks for ("the *first* entry
included"). Newest-first backward pages would make js-waku resume from the
newest row and receive the same rows again, one new row per page.

Leniency for js-waku. On hash lookups js-waku sends ``pubsub_topic`` (from its
decoder, possibly ``""``) alongside ``message_hashes``; spec 13 forbids that,
but rejecting it would break js-waku's lookups, so a pubsub topic with hashes
narrows the lookup and an empty one counts as unset. Content topics or a time
range with hashes are still rejected, as js-waku itself refuses to send them.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.archive.base import HASH_SIZE, ArchivePage, ArchiveQuery, ArchiveRow
from boxless.errors import DecodeError, UsageError
from boxless.wire import store_pb2

__all__ = [
    "CURSOR_NOT_FOUND",
    "DEFAULT_PAGE_SIZE",
    "MAX_CONTENT_TOPICS",
    "MAX_MESSAGE_HASHES",
    "MAX_PAGE_SIZE",
    "STORE_PROTOCOL_ID",
    "StoreEntry",
    "StoreRejection",
    "StoreRequest",
    "StoreResponse",
    "StoreStatus",
    "build_error",
    "build_request",
    "build_response",
    "parse_request",
    "trim_page",
    "parse_response",
]

log = logging.getLogger(__name__)

STORE_PROTOCOL_ID = "/vac/waku/store-query/3.0.0"
DEFAULT_PAGE_SIZE = 20
"""Page size when the request sets no (or a zero) limit; nwaku's and js-waku's."""
MAX_PAGE_SIZE = 100
"""Largest page served unless the node configures another; nwaku's and js-waku's."""
MAX_CONTENT_TOPICS = 10
"""Most content topics one query may name (nwaku's limit)."""
MAX_MESSAGE_HASHES = 1000
"""Most hashes one lookup may name; bounds the cost of one query."""
CURSOR_NOT_FOUND = "BAD_REQUEST: cursor not found"


class StoreStatus(enum.IntEnum):
    """Status codes a store service sends (nwaku's ``ErrorCode``)."""

    OK = 200
    BAD_REQUEST = 400
    TOO_MANY_REQUESTS = 429
    SERVICE_UNAVAILABLE = 503


@dataclass(frozen=True, slots=True)
class StoreRequest:
    """A valid request: its id and the archive query it asks for."""

    request_id: str
    query: ArchiveQuery


@dataclass(frozen=True, slots=True)
class StoreRejection:
    """An invalid request, with the error response to send back."""

    request_id: str
    status_code: StoreStatus
    status_desc: str

    def encode(self) -> bytes:
        """Return the encoded StoreQueryResponse for this rejection."""
        return build_error(self.request_id, self.status_code, self.status_desc)


class StoreEntry(NamedTuple):
    """One response entry: the key, and the value when data was asked for."""

    message_hash: bytes
    pubsub_topic: str | None
    message: bytes | None


@dataclass(frozen=True, slots=True)
class StoreResponse:
    """A decoded StoreQueryResponse. ``cursor`` is None when no more entries match."""

    request_id: str
    status_code: int
    status_desc: str
    messages: tuple[StoreEntry, ...]
    cursor: bytes | None

    @property
    def ok(self) -> bool:
        """Whether the status code is a success (2xx)."""
        return 200 <= self.status_code < 300


# --- service side ------------------------------------------------------------------


class _Invalid(Exception):
    """Internal: the request breaks a rule; the message is the cause."""


def parse_request(
    data: bytes,
    *,
    max_page_size: int = MAX_PAGE_SIZE,
    max_content_topics: int = MAX_CONTENT_TOPICS,
    max_message_hashes: int = MAX_MESSAGE_HASHES,
) -> StoreRequest | StoreRejection:
    """Decode and validate a StoreQueryRequest from a peer. Never raises on bad input.

    The page limit defaults to 20 when unset or zero and is capped at
    ``max_page_size``.
    """
    try:
        req = store_pb2.StoreQueryRequest.FromString(data)
    except ProtobufDecodeError:
        return StoreRejection("", StoreStatus.BAD_REQUEST, "BAD_REQUEST: decode rpc failed")
    try:
        query = _to_query(req, max_page_size, max_content_topics, max_message_hashes)
    except _Invalid as exc:
        return StoreRejection(req.request_id, StoreStatus.BAD_REQUEST, f"BAD_REQUEST: {exc}")
    return StoreRequest(req.request_id, query)


def _to_query(
    req: store_pb2.StoreQueryRequest,
    max_page_size: int,
    max_content_topics: int,
    max_message_hashes: int,
) -> ArchiveQuery:
    if not req.request_id:
        raise _Invalid("empty request_id")
    pubsub_topic = req.pubsub_topic if req.HasField("pubsub_topic") and req.pubsub_topic else None
    content_topics = tuple(dict.fromkeys(req.content_topics))
    time_start = req.time_start if req.HasField("time_start") else None
    time_end = req.time_end if req.HasField("time_end") else None
    hashes = tuple(req.message_hashes)
    _check_filters(pubsub_topic, content_topics, time_start, time_end, hashes)
    if len(content_topics) > max_content_topics:
        raise _Invalid(f"too many content topics ({len(content_topics)} > {max_content_topics})")
    if len(hashes) > max_message_hashes:
        raise _Invalid(f"too many message hashes ({len(hashes)} > {max_message_hashes})")
    if any(len(h) != HASH_SIZE for h in hashes):
        raise _Invalid(f"message hashes must be {HASH_SIZE} bytes")
    cursor = req.pagination_cursor if req.HasField("pagination_cursor") else None
    if cursor is not None and len(cursor) != HASH_SIZE:
        raise _Invalid(f"pagination_cursor must be {HASH_SIZE} bytes")
    return ArchiveQuery(
        pubsub_topic=pubsub_topic,
        content_topics=content_topics,
        time_start=time_start,
        time_end=time_end,
        message_hashes=hashes,
        cursor=cursor,
        forward=req.pagination_forward,
        limit=_page_size(req, max_page_size),
        include_data=req.include_data,
    )


def _check_filters(
    pubsub_topic: str | None,
    content_topics: tuple[str, ...],
    time_start: int | None,
    time_end: int | None,
    hashes: tuple[bytes, ...],
) -> None:
    if hashes:
        if content_topics or time_start is not None or time_end is not None:
            raise _Invalid("message_hashes cannot be combined with content topics or times")
        return
    if content_topics and pubsub_topic is None:
        raise _Invalid("content_topics need a pubsub_topic")
    if pubsub_topic is not None and not content_topics:
        raise _Invalid("pubsub_topic needs content_topics")
    if time_start is not None and time_end is not None and time_start > time_end:
        raise _Invalid("time_start is after time_end")


def _page_size(req: store_pb2.StoreQueryRequest, max_page_size: int) -> int:
    if not req.HasField("pagination_limit") or req.pagination_limit == 0:
        return min(DEFAULT_PAGE_SIZE, max_page_size)
    return min(req.pagination_limit, max_page_size)


def build_response(request_id: str, page: ArchivePage, include_data: bool) -> bytes:
    """Encode a 200 response for ``page``, rows in the (ascending) order given.

    With ``include_data`` each entry embeds the stored WakuMessage and its
    pubsub topic. A stored message that no longer parses is served as its hash
    alone (valid per spec) and logged, rather than failing every query over it.
    """
    res = store_pb2.StoreQueryResponse(
        request_id=request_id, status_code=StoreStatus.OK, status_desc="OK"
    )
    for row in page.rows:
        entry = res.messages.add(message_hash=row.message_hash)
        if not include_data:
            continue
        try:
            entry.message.MergeFromString(row.message)
        except ProtobufDecodeError:
            entry.ClearField("message")
            log.error(
                "archived message %s does not parse; serving its hash only", row.message_hash.hex()
            )
            continue
        entry.pubsub_topic = row.pubsub_topic
    if page.next_cursor is not None:
        res.pagination_cursor = page.next_cursor
    return res.SerializeToString()


ENTRY_OVERHEAD = 64
"""Bytes an entry costs in a response besides its message: hash, topic, tags."""


def trim_page(page: ArchivePage, forward: bool, max_bytes: int) -> ArchivePage:
    """``page`` cut to about ``max_bytes`` of entries, with the cursor moved to match.

    A page of 100 messages of 150 KiB is 15 MB; a service caps each answer and
    lets the client page on. The rows kept are the first ones in *traversal*
    order (the oldest going forward, the newest going backward), at least one,
    and the cursor names the last kept one in that order, which is also what
    js-waku takes as its next cursor (``messages[-1]`` forward, ``messages[0]``
    backward): nothing is skipped, nothing repeated. Pure; no I/O.
    """
    order = page.rows if forward else tuple(reversed(page.rows))
    kept: list[ArchiveRow] = []
    used = 0
    for row in order:
        size = len(row.message) + len(row.pubsub_topic) + ENTRY_OVERHEAD
        if kept and used + size > max_bytes:
            break
        kept.append(row)
        used += size
    if len(kept) == len(order):
        return page
    cursor = kept[-1].message_hash
    rows = tuple(kept) if forward else tuple(reversed(kept))
    return ArchivePage(rows, cursor)


def build_error(request_id: str, code: int, desc: str) -> bytes:
    """Encode an error response (no messages, no cursor)."""
    res = store_pb2.StoreQueryResponse(request_id=request_id, status_code=code, status_desc=desc)
    return res.SerializeToString()


# --- client side -------------------------------------------------------------------


def build_request(
    request_id: str,
    *,
    include_data: bool = True,
    pubsub_topic: str | None = None,
    content_topics: Sequence[str] = (),
    time_start: int | None = None,
    time_end: int | None = None,
    message_hashes: Sequence[bytes] = (),
    cursor: bytes | None = None,
    forward: bool = True,
    limit: int | None = None,
) -> bytes:
    """Encode a StoreQueryRequest. Raises UsageError for a query spec 13 forbids."""
    if not request_id:
        raise UsageError("request_id must be a non-empty unique string")
    if bool(pubsub_topic) != bool(content_topics) and not message_hashes:
        raise UsageError("set both pubsub_topic and content_topics, or neither")
    if message_hashes and (content_topics or time_start is not None or time_end is not None):
        raise UsageError("message_hashes cannot be combined with content topics or times")
    if limit is not None and limit < 1:
        raise UsageError(f"limit must be at least 1, got {limit}")
    req = store_pb2.StoreQueryRequest(
        request_id=request_id,
        include_data=include_data,
        content_topics=list(content_topics),
        message_hashes=list(message_hashes),
        pagination_forward=forward,
    )
    if pubsub_topic is not None:
        req.pubsub_topic = pubsub_topic
    if time_start is not None:
        req.time_start = time_start
    if time_end is not None:
        req.time_end = time_end
    if cursor is not None:
        req.pagination_cursor = cursor
    if limit is not None:
        req.pagination_limit = limit
    return req.SerializeToString()


def parse_response(data: bytes) -> StoreResponse:
    """Decode a StoreQueryResponse from a peer. Raises DecodeError on bad bytes."""
    try:
        res = store_pb2.StoreQueryResponse.FromString(data)
    except ProtobufDecodeError as exc:
        raise DecodeError(f"store response does not decode: {exc}") from exc
    if not res.HasField("status_code"):
        raise DecodeError("store response has no status_code")
    cursor = res.pagination_cursor if res.HasField("pagination_cursor") else None
    if cursor is not None and len(cursor) != HASH_SIZE:
        raise DecodeError(f"store response cursor is {len(cursor)} bytes, not {HASH_SIZE}")
    return StoreResponse(
        request_id=res.request_id,
        status_code=res.status_code,
        status_desc=res.status_desc,
        messages=tuple(_entry(kv) for kv in res.messages),
        cursor=cursor,
    )


def _entry(kv: store_pb2.WakuMessageKeyValue) -> StoreEntry:
    if len(kv.message_hash) != HASH_SIZE:
        raise DecodeError(f"store entry hash is {len(kv.message_hash)} bytes, not {HASH_SIZE}")
    has_message, has_topic = kv.HasField("message"), kv.HasField("pubsub_topic")
    if has_message != has_topic:
        raise DecodeError("store entry sets only one of message and pubsub_topic")
    if not has_message:
        return StoreEntry(kv.message_hash, None, None)
    return StoreEntry(kv.message_hash, kv.pubsub_topic, kv.message.SerializeToString())
