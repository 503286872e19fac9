"""Tests for boxless.waku.sharding: content topics, pubsub topics, autosharding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.errors import UsageError, ValidationError
from boxless.waku.sharding import (
    DEFAULT_CLUSTER_ID,
    DEFAULT_NUM_SHARDS,
    ContentTopic,
    StaticShard,
    parse_content_topic,
    parse_pubsub_topic,
    pubsub_topic,
    pubsub_topic_for,
    shard_for_content_topic,
)


def test_defaults() -> None:
    assert DEFAULT_CLUSTER_ID == 42
    assert DEFAULT_NUM_SHARDS == 8


# --- content topics ------------------------------------------------------------------


def test_parse_short_form() -> None:
    ct = parse_content_topic("/toychat/2/huilong/proto")
    assert ct == ContentTopic("toychat", "2", "huilong", "proto")
    assert ct.generation is None
    assert str(ct) == "/toychat/2/huilong/proto"


def test_parse_with_generation() -> None:
    ct = parse_content_topic("/0/myapp/1/mytopic/cbor")
    assert ct == ContentTopic("myapp", "1", "mytopic", "cbor", generation=0)
    assert str(ct) == "/0/myapp/1/mytopic/cbor"


def test_parse_dotted_version() -> None:
    assert parse_content_topic("/myapp/v1.1/mytopic/cbor").version == "v1.1"


# Invalid cases are the js-waku topics.spec.ts ones, plus a missing leading slash.
@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("", "format is invalid"),
        (" ", "format is invalid"),
        ("myContentTopic", "format is invalid"),
        ("myapp1mytopiccbor/", "format is invalid"),
        (" /myapp/1/mytopic", "format is invalid"),
        ("/myapp/1/mytopic", "format is invalid"),
        ("/0/myapp/1/mytopic/cbor/extra", "format is invalid"),
        ("x/myapp/1/mytopic/cbor", "format is invalid"),
        ("/a/myapp/1/mytopic/cbor", "generation is not a number"),
        ("/ /myapp/1/mytopic/cbor", "generation is not a number"),
        ("/_/myapp/1/mytopic/cbor", "generation is not a number"),
        ("/$/myapp/1/mytopic/cbor", "generation is not a number"),
        ("/-0/myapp/1/mytopic/cbor", "generation is not a number"),
        ("/00/myapp/1/mytopic/cbor", "generation is not a number"),
        ("/1/myapp/1/mytopic/cbor", "generation 1 is not supported"),
        ("/1000/myapp/1/mytopic/cbor", "generation 1000 is not supported"),
        ("/1/toychat/2/huilong/proto", "generation 1 is not supported"),
        ("/1/statusim/1/community/cbor", "generation 1 is not supported"),
        ("/0//1/mytopic/cbor", "application must not be empty"),
        ("/0/myapp//mytopic/cbor", "version must not be empty"),
        ("/0/myapp/1//cbor", "topic_name must not be empty"),
        ("/0/myapp/1/mytopic/", "encoding must not be empty"),
    ],
)
def test_parse_rejects_invalid(topic: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        parse_content_topic(topic)


def test_content_topic_cannot_be_built_invalid() -> None:
    with pytest.raises(ValidationError):
        ContentTopic("a/b", "1", "t", "proto")
    with pytest.raises(ValidationError):
        ContentTopic("app", "1", "t", "proto", generation=1)


field = st.text(min_size=1, max_size=12).filter(lambda s: "/" not in s)


@given(field, field, field, field, st.sampled_from([None, 0]))
@settings(max_examples=200)
def test_content_topic_str_parse_roundtrip(
    app: str, version: str, name: str, encoding: str, generation: int | None
) -> None:
    ct = ContentTopic(app, version, name, encoding, generation)
    assert parse_content_topic(str(ct)) == ct


@given(st.text(alphabet="/0123abc ", max_size=30) | st.text(max_size=30))
@settings(max_examples=300)
def test_parse_content_topic_only_raises_validation_error(text: str) -> None:
    try:
        ct = parse_content_topic(text)
    except ValidationError:
        return
    assert str(ct) == text


# --- autosharding --------------------------------------------------------------------

# Vectors from js-waku packages/utils/src/common/sharding/topics.spec.ts (8 shards).
JS_WAKU_SHARDS_8 = [
    ("/toychat/2/huilong/proto", 3),
    ("/myapp/1/latest/proto", 0),
    ("/waku/2/content/test.js", 1),
    ("/0/toychat/2/huilong/proto", 3),
    ("/statusim/1/community/cbor", 4),
    ("/0/statusim/1/community/cbor", 4),
    ("/app/22/sometopic/someencoding", 2),
    ("/app/27/sometopic/someencoding", 5),
    ("/app/20/sometopic/someencoding", 7),
    ("/app/29/sometopic/someencoding", 6),
]


@pytest.mark.parametrize(("topic", "shard"), JS_WAKU_SHARDS_8)
def test_autosharding_vectors(topic: str, shard: int) -> None:
    assert shard_for_content_topic(topic) == shard
    assert shard_for_content_topic(topic, 8) == shard


@pytest.mark.parametrize(("num_shards", "shard"), [(16, 15), (2, 1), (1, 0)])
def test_autosharding_vectors_other_shard_counts(num_shards: int, shard: int) -> None:
    assert shard_for_content_topic("/app/20/sometopic/someencoding", num_shards) == shard


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("/toychat/2/huilong/proto", "/toychat/2/othertopic/otherencoding"),
        ("/myapp/1/latest/proto", "/myapp/1/new/proto"),
        ("/waku/2/content/test.js", "/waku/2/users/proto"),
    ],
)
def test_same_application_and_version_share_a_shard(a: str, b: str) -> None:
    assert shard_for_content_topic(a) == shard_for_content_topic(b)


def test_autosharding_rejects_bad_shard_count() -> None:
    with pytest.raises(UsageError):
        shard_for_content_topic("/app/1/t/proto", 0)


def test_autosharding_rejects_bad_topic() -> None:
    with pytest.raises(ValidationError):
        shard_for_content_topic("/invalid/format")


def test_pubsub_topic_for() -> None:
    assert pubsub_topic_for("/toychat/2/huilong/proto", 1) == "/waku/2/rs/1/3"
    assert pubsub_topic_for("/app/20/sometopic/someencoding", 0, 16) == "/waku/2/rs/0/15"
    assert pubsub_topic_for("/app/22/sometopic/someencoding") == "/waku/2/rs/42/2"


# --- static-shard pubsub topics ------------------------------------------------------


def test_pubsub_topic_format_and_parse() -> None:
    assert pubsub_topic(1, 7) == "/waku/2/rs/1/7"
    assert parse_pubsub_topic("/waku/2/rs/2/2") == (2, 2)
    assert StaticShard.parse("/waku/2/rs/42/0") == StaticShard(42, 0)
    assert StaticShard(65535, 65535).pubsub_topic == "/waku/2/rs/65535/65535"


@pytest.mark.parametrize(
    "topic",
    [
        "/waku/1/rs/1/2",
        "/waku/2/r/1/2",
        "/incorrect/format",
        "/waku/2/rs",
        "/waku/2/rs/",
        "/waku/2/rs/1",
        "/waku/2/rs/1/2/extra",
        "/waku/2/rs/1/2/",
        "/waku/2/default-waku/proto",
        "/waku/2/rs/01/2",
        "/waku/2/rs/1/+2",
        "/waku/2/rs/1/2_0",
        "/waku/2/rs/1/\u0661",  # Arabic-Indic digit one: int() would accept it
        "/waku/2/rs/65536/0",
        "/waku/2/rs/0/65536",
    ]
    + [f"/waku/2/rs/{v}/1" for v in ["x", "y", "$", "!", "\\", "-", "", " "]]
    + [f"/waku/2/rs/1/{v}" for v in ["x", "y", "$", "!", "\\", "-", "", " "]],
)
def test_parse_pubsub_topic_rejects_invalid(topic: str) -> None:
    with pytest.raises(ValidationError):
        parse_pubsub_topic(topic)


@pytest.mark.parametrize(("cluster", "shard"), [(-1, 0), (0, -1), (65536, 0), (0, 65536)])
def test_pubsub_topic_rejects_out_of_range(cluster: int, shard: int) -> None:
    with pytest.raises(ValidationError):
        pubsub_topic(cluster, shard)


@given(st.integers(0, 65535), st.integers(0, 65535))
@settings(max_examples=100)
def test_pubsub_topic_roundtrip(cluster: int, shard: int) -> None:
    assert parse_pubsub_topic(pubsub_topic(cluster, shard)) == (cluster, shard)


@given(
    st.text(max_size=30) | st.text(alphabet="/waku2rs0159", max_size=20).map("/waku/2/rs/".__add__)
)
@settings(max_examples=300)
def test_parse_pubsub_topic_only_raises_validation_error(text: str) -> None:
    try:
        cluster, shard = parse_pubsub_topic(text)
    except ValidationError:
        return
    assert pubsub_topic(cluster, shard) == text
