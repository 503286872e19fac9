"""Content topics: derivation, syntax, one shard, and classification of peers' strings."""

from __future__ import annotations

import hashlib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxless.chat.topics import (
    N_PARTITIONS,
    TopicKind,
    TopicRef,
    boxless_shard,
    bundle_topic,
    classify,
    contact_partition,
    contact_topic,
    conversation_topic,
    group_topic,
)
from boxless.errors import UsageError
from boxless.waku.sharding import parse_content_topic, shard_for_content_topic

KEY = bytes(range(32))


def test_conversation_topic_is_derived_from_the_secret_only() -> None:
    secret = b"s" * 32
    topic = conversation_topic(secret)
    assert topic == conversation_topic(bytes(secret))  # both sides compute the same
    assert topic != conversation_topic(b"t" * 32)
    parsed = parse_content_topic(topic)
    assert (parsed.application, parsed.version, parsed.encoding) == ("boxless", "1", "proto")
    assert parsed.topic_name.startswith("chat-") and len(parsed.topic_name) == 5 + 32
    # nothing about it is a plain hash of the secret
    assert hashlib.sha256(secret).hexdigest()[:32] not in topic


def test_conversation_topic_known_answer() -> None:
    # HKDF-SHA256(ikm=0x00..1f, salt=none, info="boxless conversation topic v1", L=16),
    # recomputed with the RFC 5869 steps so another implementation can check itself
    import hmac

    prk = hmac.new(b"\x00" * 32, KEY, hashlib.sha256).digest()
    okm = hmac.new(prk, b"boxless conversation topic v1" + b"\x01", hashlib.sha256).digest()[:16]
    assert conversation_topic(KEY) == f"/boxless/1/chat-{okm.hex()}/proto"


def test_short_secret_is_refused() -> None:
    with pytest.raises(UsageError, match="at least 16 bytes"):
        conversation_topic(b"x" * 15)


def test_contact_partition_is_sha256_mod_n() -> None:
    expected = int.from_bytes(hashlib.sha256(KEY).digest(), "big") % N_PARTITIONS
    assert contact_partition(KEY) == expected
    assert contact_topic(KEY) == f"/boxless/1/contact-{expected}/proto"


def test_partitions_spread_keys() -> None:
    seen = {contact_partition(os.urandom(32)) for _ in range(2000)}
    assert len(seen) > 1500  # ~1545 distinct expected of 4096 with 2000 keys
    assert all(0 <= n < N_PARTITIONS for n in seen)


def test_bundle_topic_is_from_the_identity_key() -> None:
    topic = bundle_topic(KEY)
    digest = hashlib.sha256(b"boxless device bundle topic v1" + KEY).digest()
    assert topic == f"/boxless/1/bundle-{digest[:16].hex()}/proto"
    assert topic != bundle_topic(bytes(32))
    with pytest.raises(UsageError, match="32 bytes"):
        bundle_topic(b"short")
    with pytest.raises(UsageError, match="32 bytes"):
        contact_topic(b"short")


def test_all_boxless_traffic_shares_one_shard() -> None:
    topics = [conversation_topic(os.urandom(32)) for _ in range(20)]
    topics += [contact_topic(os.urandom(32)) for _ in range(20)]
    topics += [bundle_topic(os.urandom(32)) for _ in range(20)]
    for num_shards in (1, 8, 64, 1024):
        assert {shard_for_content_topic(t, num_shards) for t in topics} == {
            boxless_shard(num_shards)
        }


def test_classify_recognises_our_topics() -> None:
    conv = conversation_topic(KEY)
    assert classify(conv) == TopicRef(TopicKind.CONVERSATION, conv.split("-")[1][:32])
    assert classify(contact_topic(KEY)) == TopicRef(
        TopicKind.CONTACT_REQUESTS, str(contact_partition(KEY))
    )
    bundle = bundle_topic(KEY)
    assert classify(bundle) is not None
    assert classify(bundle) == TopicRef(TopicKind.DEVICE_BUNDLES, bundle.split("-")[1][:32])
    group = group_topic(b"\x01" * 32)
    assert group == "/boxless/1/group-" + "01" * 32 + "/proto"
    assert classify(group) == TopicRef(TopicKind.GROUP, "01" * 32)
    with pytest.raises(UsageError):
        group_topic(b"short")


@pytest.mark.parametrize(
    "topic",
    [
        "/boxless/1/contact-4096/proto",
        "/boxless/1/contact-007/proto",
        "/boxless/1/contact-/proto",
        "/boxless/1/chat-" + "A" * 32 + "/proto",
        "/boxless/1/chat-" + "a" * 31 + "/proto",
        "/boxless/2/chat-" + "a" * 32 + "/proto",
        "/boxless/1/chat-" + "a" * 32 + "/json",
        "/0/boxless/1/chat-" + "a" * 32 + "/proto",
        "/boxless/1/proto",
        "/waku/2/default-content/proto",
        "",
    ],
)
def test_classify_rejects_everything_else(topic: str) -> None:
    assert classify(topic) is None


@given(st.text(max_size=80))
def test_classify_never_raises(topic: str) -> None:
    classify(topic)
