"""The sans-IO store protocol core: request validation, responses, client codec, fuzz."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.archive import ArchivePage, ArchiveQuery, ArchiveRow, CursorNotFoundError, open_archive
from boxless.archive.base import Archive
from boxless.errors import DecodeError, UsageError
from boxless.waku.store import (
    CURSOR_NOT_FOUND,
    STORE_PROTOCOL_ID,
    StoreRejection,
    StoreRequest,
    StoreStatus,
    build_error,
    build_request,
    build_response,
    parse_request,
    parse_response,
)
from boxless.wire import message_pb2, store_pb2

PUBSUB = "/waku/2/rs/1/0"
TOPIC = "/app/1/chat/proto"
H1 = b"\x01" * 32
H2 = b"\x02" * 32


def encoded_message(i: int, ts: int) -> bytes:
    msg = message_pb2.WakuMessage(payload=b"hi %d" % i, content_topic=TOPIC, timestamp=ts)
    return msg.SerializeToString()


def row(i: int, ts: int) -> ArchiveRow:
    return ArchiveRow(
        message_hash=hashlib.sha256(b"%d" % i).digest(),
        pubsub_topic=PUBSUB,
        content_topic=TOPIC,
        timestamp=ts,
        message=encoded_message(i, ts),
        received_at=ts,
    )


def query_of(data: bytes, **kw: int) -> ArchiveQuery:
    parsed = parse_request(data, **kw)
    assert isinstance(parsed, StoreRequest), parsed
    return parsed.query


def rejection_of(data: bytes) -> StoreRejection:
    parsed = parse_request(data)
    assert isinstance(parsed, StoreRejection), parsed
    assert parsed.status_code == StoreStatus.BAD_REQUEST
    return parsed


def test_protocol_id() -> None:
    assert STORE_PROTOCOL_ID == "/vac/waku/store-query/3.0.0"


# --- parse_request ---------------------------------------------------------------------


def test_request_round_trip() -> None:
    data = build_request(
        "r1",
        pubsub_topic=PUBSUB,
        content_topics=[TOPIC, TOPIC],
        time_start=-5,
        time_end=10,
        cursor=H1,
        forward=False,
        limit=7,
        include_data=True,
    )
    parsed = parse_request(data)
    assert parsed == StoreRequest(
        "r1",
        ArchiveQuery(
            pubsub_topic=PUBSUB,
            content_topics=(TOPIC,),
            time_start=-5,
            time_end=10,
            cursor=H1,
            forward=False,
            limit=7,
            include_data=True,
        ),
    )


def test_spec_defaults_backward_without_data() -> None:
    q = query_of(store_pb2.StoreQueryRequest(request_id="r").SerializeToString())
    assert (q.forward, q.include_data, q.limit) == (False, False, 20)


@pytest.mark.parametrize(
    ("asked", "served"), [(None, 20), (0, 20), (1, 1), (100, 100), (10**9, 100)]
)
def test_page_size_default_and_cap(asked: int | None, served: int) -> None:
    req = store_pb2.StoreQueryRequest(request_id="r")
    if asked is not None:
        req.pagination_limit = asked
    assert query_of(req.SerializeToString()).limit == served


def test_node_page_size_cap() -> None:
    data = build_request("r", limit=80)
    assert query_of(data, max_page_size=50).limit == 50


@pytest.mark.parametrize(
    ("fields", "cause"),
    [
        ({"content_topics": [TOPIC]}, "content_topics need a pubsub_topic"),
        ({"pubsub_topic": PUBSUB}, "pubsub_topic needs content_topics"),
        ({"message_hashes": [H1], "content_topics": [TOPIC]}, "cannot be combined"),
        ({"message_hashes": [H1], "time_start": 1}, "cannot be combined"),
        ({"message_hashes": [b"short"]}, "32 bytes"),
        ({"pagination_cursor": b"short"}, "pagination_cursor must be 32 bytes"),
        ({"time_start": 5, "time_end": 4}, "time_start is after time_end"),
        (
            {"pubsub_topic": PUBSUB, "content_topics": [f"/a/1/{i}/p" for i in range(11)]},
            "too many",
        ),
        ({"message_hashes": [bytes([i % 256]) * 32 for i in range(1001)]}, "too many"),
    ],
)
def test_invalid_requests_are_rejected_with_cause(fields: dict[str, object], cause: str) -> None:
    data = store_pb2.StoreQueryRequest(request_id="rid", **fields).SerializeToString()  # type: ignore[arg-type]
    rejection = rejection_of(data)
    assert rejection.request_id == "rid"
    assert rejection.status_desc.startswith("BAD_REQUEST: ") and cause in rejection.status_desc
    decoded = parse_response(rejection.encode())
    assert (decoded.status_code, decoded.request_id, decoded.messages) == (400, "rid", ())


def test_empty_request_id_is_rejected() -> None:
    assert "request_id" in rejection_of(b"").status_desc


def test_garbage_is_a_decode_failure() -> None:
    rejection = rejection_of(b"\xff\xff\xff")
    assert rejection.status_desc == "BAD_REQUEST: decode rpc failed"


def test_js_waku_hash_lookup_with_pubsub_topic_is_accepted() -> None:
    # js-waku sends its decoder's pubsub topic (or "") with message_hashes.
    for topic in (PUBSUB, ""):
        req = store_pb2.StoreQueryRequest(request_id="r", pubsub_topic=topic, message_hashes=[H1])
        q = query_of(req.SerializeToString())
        assert q.message_hashes == (H1,)
        assert q.pubsub_topic == (topic or None)


# --- build_response / parse_response ---------------------------------------------------------


def test_response_with_data_and_cursor() -> None:
    rows = (row(1, 100), row(2, 200))
    data = build_response("r", ArchivePage(rows=rows, next_cursor=rows[0].message_hash), True)
    res = parse_response(data)
    assert (res.ok, res.status_code, res.status_desc, res.request_id) == (True, 200, "OK", "r")
    assert res.cursor == rows[0].message_hash
    assert [e.message_hash for e in res.messages] == [r.message_hash for r in rows]
    assert all(e.pubsub_topic == PUBSUB for e in res.messages)
    decoded = [message_pb2.WakuMessage.FromString(e.message or b"") for e in res.messages]
    assert [m.timestamp for m in decoded] == [100, 200]


def test_response_without_data_and_last_page() -> None:
    res = parse_response(build_response("r", ArchivePage((row(1, 1),), None), False))
    assert res.cursor is None
    assert res.messages[0].pubsub_topic is None and res.messages[0].message is None


def test_unparseable_stored_message_is_served_as_hash_only() -> None:
    bad = ArchiveRow(H1, PUBSUB, TOPIC, 1, b"\xff\xff", 1)
    res = parse_response(build_response("r", ArchivePage((bad,), None), True))
    assert res.messages[0] == (H1, None, None)


def test_error_response() -> None:
    res = parse_response(build_error("r", StoreStatus.BAD_REQUEST, CURSOR_NOT_FOUND))
    assert (res.ok, res.status_code, res.status_desc) == (False, 400, CURSOR_NOT_FOUND)


@pytest.mark.parametrize(
    "response",
    [
        store_pb2.StoreQueryResponse(request_id="r"),  # no status code
        store_pb2.StoreQueryResponse(status_code=200, pagination_cursor=b"x"),
        store_pb2.StoreQueryResponse(
            status_code=200, messages=[store_pb2.WakuMessageKeyValue(message_hash=b"x")]
        ),
        store_pb2.StoreQueryResponse(
            status_code=200,
            messages=[store_pb2.WakuMessageKeyValue(message_hash=H1, pubsub_topic=PUBSUB)],
        ),
    ],
)
def test_malformed_responses_raise_decode_error(response: store_pb2.StoreQueryResponse) -> None:
    with pytest.raises(DecodeError):
        parse_response(response.SerializeToString())


def test_build_request_refuses_what_spec_forbids() -> None:
    with pytest.raises(UsageError):
        build_request("r", content_topics=[TOPIC])
    with pytest.raises(UsageError):
        build_request("r", message_hashes=[H1], time_end=3)
    with pytest.raises(UsageError):
        build_request("", pubsub_topic=PUBSUB, content_topics=[TOPIC])


# --- a js-waku-like client against the core and an in-memory archive ---------------------------


def serve(archive: Archive, data: bytes) -> bytes:
    """What the service adapter does, minus the stream."""
    parsed = parse_request(data)
    if isinstance(parsed, StoreRejection):
        return parsed.encode()
    try:
        page = archive.query(parsed.query)
    except CursorNotFoundError:
        return build_error(parsed.request_id, StoreStatus.BAD_REQUEST, CURSOR_NOT_FOUND)
    return build_response(parsed.request_id, page, parsed.query.include_data)


@pytest.mark.parametrize("forward", [True, False])
def test_js_waku_pagination_sees_every_message_once(forward: bool) -> None:
    rows = [row(i, 1000 + i // 3) for i in range(95)]
    with open_archive("sqlite:///:memory:") as archive:
        archive.insert(rows)
        cursor: bytes | None = None
        pages: list[list[bytes]] = []
        for n in range(100):
            res = parse_response(
                serve(
                    archive,
                    build_request(
                        f"r{n}",
                        pubsub_topic=PUBSUB,
                        content_topics=[TOPIC],
                        cursor=cursor,
                        forward=forward,
                        limit=10,
                    ),
                )
            )
            assert res.ok
            if not res.messages:  # js-waku stops only on an empty page
                break
            pages.append([e.message_hash for e in res.messages])
            # js-waku ignores res.cursor: last message forward, first message backward.
            cursor = res.messages[-1 if forward else 0].message_hash
        flat = [h for page in (pages if forward else reversed(pages)) for h in page]
        expected = [
            r.message_hash for r in sorted(rows, key=lambda r: (r.timestamp, r.message_hash))
        ]
        assert flat == expected


def test_unknown_cursor_maps_to_bad_request() -> None:
    with open_archive("sqlite:///:memory:") as archive:
        res = parse_response(serve(archive, build_request("r", cursor=H2)))
    assert (res.status_code, res.status_desc, res.request_id) == (400, CURSOR_NOT_FOUND, "r")


# --- fuzz --------------------------------------------------------------------------------------


@settings(max_examples=500)
@given(st.binary(max_size=512))
def test_parse_request_never_raises(data: bytes) -> None:
    assert isinstance(parse_request(data), StoreRequest | StoreRejection)


@settings(max_examples=500)
@given(st.binary(max_size=512))
def test_parse_response_returns_or_raises_decode_error(data: bytes) -> None:
    try:
        parse_response(data)
    except DecodeError:
        pass


@settings(max_examples=300)
@given(
    request_id=st.text(max_size=8),
    pubsub=st.none() | st.text(max_size=8),
    topics=st.lists(st.text(max_size=8), max_size=12),
    start=st.none() | st.integers(-(2**63), 2**63 - 1),
    end=st.none() | st.integers(-(2**63), 2**63 - 1),
    hashes=st.lists(st.binary(min_size=30, max_size=33), max_size=3),
    cursor=st.none() | st.binary(min_size=31, max_size=33),
    limit=st.none() | st.integers(0, 2**64 - 1),
)
def test_structured_requests_parse_or_reject(
    request_id: str,
    pubsub: str | None,
    topics: list[str],
    start: int | None,
    end: int | None,
    hashes: list[bytes],
    cursor: bytes | None,
    limit: int | None,
) -> None:
    req = store_pb2.StoreQueryRequest(
        request_id=request_id,
        pubsub_topic=pubsub,
        content_topics=topics,
        time_start=start,
        time_end=end,
        message_hashes=hashes,
        pagination_cursor=cursor,
        pagination_limit=limit,
    )
    parsed = parse_request(req.SerializeToString())
    if isinstance(parsed, StoreRequest):
        assert 1 <= parsed.query.limit <= 100
        assert parsed.request_id == request_id
