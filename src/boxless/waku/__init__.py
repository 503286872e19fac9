"""Waku v2 protocols (sans-IO): the message, its hash and validation, sharding."""

from boxless.waku.message import (
    MAX_MESSAGE_SIZE,
    MAX_META_SIZE,
    MAX_TIMESTAMP_DRIFT_NS,
    WakuMessage,
    message_hash,
    validate,
)
from boxless.waku.sharding import (
    DEFAULT_CLUSTER_ID,
    DEFAULT_NUM_SHARDS,
    MAX_CLUSTER_ID,
    MAX_SHARD,
    ContentTopic,
    StaticShard,
    parse_content_topic,
    parse_pubsub_topic,
    pubsub_topic,
    pubsub_topic_for,
    shard_for_content_topic,
)

__all__ = [
    "DEFAULT_CLUSTER_ID",
    "DEFAULT_NUM_SHARDS",
    "MAX_CLUSTER_ID",
    "MAX_MESSAGE_SIZE",
    "MAX_META_SIZE",
    "MAX_SHARD",
    "MAX_TIMESTAMP_DRIFT_NS",
    "ContentTopic",
    "StaticShard",
    "WakuMessage",
    "message_hash",
    "parse_content_topic",
    "parse_pubsub_topic",
    "pubsub_topic",
    "pubsub_topic_for",
    "shard_for_content_topic",
    "validate",
]
