"""Group reliability (sans-IO): Scalable Data Sync (SDS) channels and their bloom filter.

:class:`SdsChannel` keeps one participant's view of one group channel: it wraps
outgoing content with causal history and a bloom filter, delivers incoming content
in causal order, names missing messages for repair, and tracks which of our
messages others have acknowledged -- all from the messages members send anyway.
Nothing here awaits, touches a socket or reads a clock.
"""

from boxless.sync.bloom import (
    DEFAULT_BLOOM_PARAMS,
    MAX_BLOOM_BYTES,
    WINDOW_BLOOM_PARAMS,
    BloomFilter,
    BloomParams,
    RollingBloomFilter,
    base_hashes,
    hash_n,
    murmur3_32,
)
from boxless.sync.message import (
    HistoryEntry,
    Kind,
    SdsMessage,
    content_message_id,
    decode_message,
    encode_message,
    ephemeral_message_id,
    message_id_is_valid,
)
from boxless.sync.sds import (
    AckState,
    Delivered,
    MissingDependency,
    SdsChannel,
    SdsConfig,
    Wrapped,
    bloom_for_rate,
)

__all__ = [
    "DEFAULT_BLOOM_PARAMS",
    "MAX_BLOOM_BYTES",
    "WINDOW_BLOOM_PARAMS",
    "AckState",
    "BloomFilter",
    "BloomParams",
    "Delivered",
    "HistoryEntry",
    "Kind",
    "MissingDependency",
    "RollingBloomFilter",
    "SdsChannel",
    "SdsConfig",
    "SdsMessage",
    "Wrapped",
    "base_hashes",
    "bloom_for_rate",
    "content_message_id",
    "decode_message",
    "encode_message",
    "ephemeral_message_id",
    "hash_n",
    "message_id_is_valid",
    "murmur3_32",
]
