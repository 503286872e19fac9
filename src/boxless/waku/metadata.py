"""66/WAKU2-METADATA: exchanging cluster id and shards on connection.

Sans-IO: encode/decode and the compatibility rule. On every new connection a
node sends its cluster id and shards and reads the peer's; a peer of another
cluster is disconnected (js-waku never hangs up itself, so we must). The
``shards`` field is written unpacked (one tag per value): js-waku's decoder
rejects the packed form. Our decoder accepts both, as protobuf requires.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.errors import DecodeError
from boxless.wire import metadata_pb2

METADATA_PROTOCOL_ID = "/vac/waku/metadata/1.0.0"
MAX_METADATA_SIZE = 4096
MAX_SHARD = 1023  # 64/WAKU2-NETWORK allows at most 1024 shards per cluster


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """What one node says of itself: its cluster (None if unset) and shards."""

    cluster_id: int | None
    shards: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.cluster_id is not None and not 0 <= self.cluster_id < 2**32:
            raise ValueError(f"cluster id out of range: {self.cluster_id}")
        for shard in self.shards:
            if not 0 <= shard <= MAX_SHARD:
                raise ValueError(f"shard out of range: {shard}")


def _encode(
    msg: metadata_pb2.WakuMetadataRequest | metadata_pb2.WakuMetadataResponse, info: ClusterInfo
) -> bytes:
    if info.cluster_id is not None:
        msg.cluster_id = info.cluster_id
    msg.shards.extend(info.shards)
    return msg.SerializeToString()


def encode_request(info: ClusterInfo) -> bytes:
    """Encode our metadata as a request."""
    return _encode(metadata_pb2.WakuMetadataRequest(), info)


def encode_response(info: ClusterInfo) -> bytes:
    """Encode our metadata as a response."""
    return _encode(metadata_pb2.WakuMetadataResponse(), info)


def _decode(
    data: bytes,
    msg: metadata_pb2.WakuMetadataRequest | metadata_pb2.WakuMetadataResponse,
    what: str,
) -> ClusterInfo:
    if len(data) > MAX_METADATA_SIZE:
        raise DecodeError(f"metadata {what} of {len(data)} bytes exceeds {MAX_METADATA_SIZE}")
    try:
        msg.ParseFromString(data)
    except ProtobufDecodeError as exc:
        raise DecodeError(f"malformed metadata {what}: {exc}") from exc
    cluster = msg.cluster_id if msg.HasField("cluster_id") else None
    shards = tuple(sorted(set(msg.shards)))
    if any(s > MAX_SHARD for s in shards):
        raise DecodeError(f"metadata {what} names a shard above {MAX_SHARD}")
    return ClusterInfo(cluster, shards)


def decode_request(data: bytes) -> ClusterInfo:
    """Decode a peer's request; :class:`DecodeError` on garbage."""
    return _decode(data, metadata_pb2.WakuMetadataRequest(), "request")


def decode_response(data: bytes) -> ClusterInfo:
    """Decode a peer's response; :class:`DecodeError` on garbage."""
    return _decode(data, metadata_pb2.WakuMetadataResponse(), "response")


def is_compatible(local_cluster: int, remote: ClusterInfo) -> bool:
    """Whether we keep a connection with ``remote``.

    A peer that states another cluster (0 included: it is a real cluster id)
    is dropped; a peer that leaves the field unset is kept, as nwaku does.
    """
    return remote.cluster_id is None or remote.cluster_id == local_cluster


def shards_overlap(ours: Iterable[int], theirs: Iterable[int]) -> bool:
    """True if the two shard sets share a shard (or either is empty: unknown)."""
    a, b = set(ours), set(theirs)
    return not a or not b or bool(a & b)
