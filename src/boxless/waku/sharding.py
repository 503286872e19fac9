"""Content topics, static-shard pubsub topics and autosharding.

Theory of operation
-------------------
A *content topic* names what a message is about and has the shape
``/[{generation}/]{application}/{version}/{topic-name}/{encoding}`` (23/WAKU2-TOPICS,
WAKU2-RELAY-SHARDING). Only generation 0 exists; an omitted generation means 0.

A *pubsub topic* names the gossipsub mesh a message travels on. With static
sharding it is ``/waku/2/rs/{cluster_id}/{shard}``, both numbers being 16-bit.

*Autosharding* (64/WAKU2-NETWORK) maps a content topic onto a shard without the
application choosing one: the last 8 bytes of ``sha256(application ‖ version)``,
read as a big-endian unsigned integer, modulo the number of shards in the
cluster. Topics sharing application and version therefore share a shard.

Everything here is pure: strings in, values out, :class:`ValidationError` when
a string breaks the syntax (the string usually came from a peer).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from boxless.errors import UsageError, ValidationError

__all__ = [
    "DEFAULT_CLUSTER_ID",
    "DEFAULT_NUM_SHARDS",
    "MAX_CLUSTER_ID",
    "MAX_SHARD",
    "ContentTopic",
    "StaticShard",
    "parse_content_topic",
    "parse_pubsub_topic",
    "pubsub_topic",
    "pubsub_topic_for",
    "shard_for_content_topic",
]

DEFAULT_CLUSTER_ID = 42
"""Boxless's own cluster. Cluster 1 is the public Waku Network, which requires RLN."""

DEFAULT_NUM_SHARDS = 8
"""Shards per cluster used for autosharding, as on the Waku Network."""

MAX_CLUSTER_ID = 0xFFFF
"""Cluster ids are 16-bit (they are carried as uint16 in ENRs and metadata)."""

MAX_SHARD = 0xFFFF
"""Shard indices are 16-bit."""

_PUBSUB_PREFIX = "/waku/2/rs/"
_DECIMAL = re.compile(r"0|[1-9][0-9]*", re.ASCII)


@dataclass(frozen=True, slots=True)
class ContentTopic:
    """A parsed content topic; building one with invalid fields raises ValidationError.

    ``generation`` is ``None`` when the topic string omitted it (it then means 0);
    keeping the difference lets :meth:`__str__` give back the exact string, which
    matters because filter and store match content topics as strings.
    """

    application: str
    version: str
    topic_name: str
    encoding: str
    generation: int | None = None

    def __post_init__(self) -> None:
        if self.generation not in (None, 0):
            raise ValidationError(
                f"content topic generation {self.generation} is not supported (only 0)"
            )
        for name in ("application", "version", "topic_name", "encoding"):
            value: str = getattr(self, name)
            if not value:
                raise ValidationError(f"content topic {name} must not be empty")
            if "/" in value:
                raise ValidationError(f"content topic {name} must not contain '/'")

    def __str__(self) -> str:
        """Return the content topic string this value was parsed from."""
        tail = f"/{self.application}/{self.version}/{self.topic_name}/{self.encoding}"
        if self.generation is None:
            return tail
        return f"/{self.generation}{tail}"

    def shard(self, num_shards: int = DEFAULT_NUM_SHARDS) -> int:
        """Return the autosharding shard index of this topic among ``num_shards``."""
        if num_shards < 1:
            raise UsageError(f"num_shards must be at least 1, got {num_shards}")
        digest = hashlib.sha256((self.application + self.version).encode()).digest()
        return int.from_bytes(digest[-8:], "big") % num_shards


def parse_content_topic(content_topic: str) -> ContentTopic:
    """Parse ``/[{generation}/]{application}/{version}/{topic-name}/{encoding}``.

    Raises :class:`ValidationError` naming what is wrong.
    """
    parts = content_topic.split("/")
    if len(parts) not in (5, 6) or parts[0] != "":
        raise ValidationError(f"content topic format is invalid: {content_topic!r}")
    generation: int | None = None
    if len(parts) == 6:
        generation = _parse_generation(parts[1], content_topic)
    application, version, topic_name, encoding = parts[-4:]
    return ContentTopic(application, version, topic_name, encoding, generation)


def _parse_generation(text: str, content_topic: str) -> int:
    """Parse the generation field of a content topic (a canonical decimal)."""
    if not _DECIMAL.fullmatch(text):
        raise ValidationError(f"content topic generation is not a number: {content_topic!r}")
    return int(text)


def shard_for_content_topic(content_topic: str, num_shards: int = DEFAULT_NUM_SHARDS) -> int:
    """Return the autosharding shard index for ``content_topic``."""
    return parse_content_topic(content_topic).shard(num_shards)


@dataclass(frozen=True, slots=True)
class StaticShard:
    """A (cluster, shard) pair; its pubsub topic is ``/waku/2/rs/<cluster>/<shard>``."""

    cluster_id: int
    shard: int

    def __post_init__(self) -> None:
        if not 0 <= self.cluster_id <= MAX_CLUSTER_ID:
            raise ValidationError(f"cluster id {self.cluster_id} is outside 0..{MAX_CLUSTER_ID}")
        if not 0 <= self.shard <= MAX_SHARD:
            raise ValidationError(f"shard {self.shard} is outside 0..{MAX_SHARD}")

    @property
    def pubsub_topic(self) -> str:
        """The static-sharding pubsub topic of this shard."""
        return f"{_PUBSUB_PREFIX}{self.cluster_id}/{self.shard}"

    @classmethod
    def parse(cls, topic: str) -> StaticShard:
        """Parse a ``/waku/2/rs/<cluster>/<shard>`` pubsub topic.

        Numbers must be canonical decimals (no sign, spaces or leading zeros), so
        that parsing and formatting are inverse. Raises :class:`ValidationError`.
        """
        if not topic.startswith(_PUBSUB_PREFIX):
            raise ValidationError(f"not a static-shard pubsub topic: {topic!r}")
        fields = topic[len(_PUBSUB_PREFIX) :].split("/")
        if len(fields) != 2 or not all(_DECIMAL.fullmatch(f) for f in fields):
            raise ValidationError(f"invalid cluster id or shard in pubsub topic: {topic!r}")
        return cls(int(fields[0]), int(fields[1]))


def pubsub_topic(cluster_id: int, shard: int) -> str:
    """Return ``/waku/2/rs/<cluster_id>/<shard>``; ValidationError if out of range."""
    return StaticShard(cluster_id, shard).pubsub_topic


def parse_pubsub_topic(topic: str) -> tuple[int, int]:
    """Return ``(cluster_id, shard)`` of a static-shard pubsub topic."""
    parsed = StaticShard.parse(topic)
    return parsed.cluster_id, parsed.shard


def pubsub_topic_for(
    content_topic: str,
    cluster_id: int = DEFAULT_CLUSTER_ID,
    num_shards: int = DEFAULT_NUM_SHARDS,
) -> str:
    """Return the pubsub topic autosharding assigns to ``content_topic`` in a cluster."""
    return pubsub_topic(cluster_id, shard_for_content_topic(content_topic, num_shards))
