"""Configuration of a Waku node, validated when built."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from boxless.errors import ConfigError
from boxless.waku.sharding import DEFAULT_CLUSTER_ID, DEFAULT_NUM_SHARDS

DAY_NS = 86_400 * 10**9


DEFAULT_RETENTION_COUNT = 2_000_000
DEFAULT_RETENTION_BYTES = 4 * 1024**3


@dataclass(frozen=True)
class RetentionPolicy:
    """How long the archive keeps messages. Boxless keeps 30 days by default:
    offline delivery needs at least 7 (see the 1:1 chat issue). Age alone does
    not bound the disk (anyone can publish, so a month of spam fills any disk),
    so the default also keeps at most 2 million messages and 4 GiB of encoded
    messages, evicting the oldest received first (docs/operators.md)."""

    max_age_ns: int | None = 30 * DAY_NS
    max_count: int | None = DEFAULT_RETENTION_COUNT
    max_bytes: int | None = DEFAULT_RETENTION_BYTES
    interval_s: float = 60.0


@dataclass(frozen=True)
class ServiceLimits:
    """Per-peer and global bounds of a service node (issue 10, finding 6).

    Store queries: each peer gets ``store_rate`` queries/s in bursts of
    ``store_burst`` (a 10,000-message catch-up is 100 pages of 100, inside one
    burst), at most ``store_in_flight`` at once; beyond that the answer is 429
    TOO_MANY_REQUESTS. Queries run on ``store_threads`` worker threads of their
    own (archive writes have a separate one, so a query flood never delays
    them); with ``store_queue`` queries already waiting the answer is 503. One
    answer carries at most ``store_answer_bytes`` of messages (the page ends
    early, with a cursor). Rate tables hold ``max_peers`` peers and turn over
    at most ``peer_admit_rate`` a second once full.

    Streams: a peer may hold ``streams_per_peer`` open inbound service streams
    (js-waku pre-opens one per protocol, about five), all peers together
    ``streams_total``; beyond that a new stream is reset (see
    :class:`boxless.node.limits.StreamGate`).
    """

    store_rate: float = 20.0
    store_burst: int = 100
    store_in_flight: int = 2
    store_threads: int = 4
    store_queue: int = 256
    store_answer_bytes: int = 4 * 1024 * 1024
    store_bytes_per_token: int = 256 * 1024
    max_peers: int = 10_000
    peer_admit_rate: float = 50.0
    streams_per_peer: int = 16
    streams_total: int = 2048

    def __post_init__(self) -> None:
        for name in (
            "store_burst",
            "store_in_flight",
            "store_threads",
            "max_peers",
            "store_bytes_per_token",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.store_rate <= 0 or self.peer_admit_rate <= 0:
            raise ConfigError("store_rate and peer_admit_rate must be positive")
        if self.store_answer_bytes < 64 * 1024:
            raise ConfigError("store_answer_bytes must be at least 64 KiB (one message fits)")
        if not 1 <= self.streams_per_peer <= self.streams_total:
            raise ConfigError("need 1 <= streams_per_peer <= streams_total")


@dataclass(frozen=True)
class NodeConfig:
    """Everything a node needs to start. Paths and URLs are already resolved."""

    data_dir: Path
    listen: tuple[str, ...] = ("/ip4/0.0.0.0/tcp/60000",)
    peers: tuple[str, ...] = ()
    relay: bool = True
    store: bool = False
    filter: bool = False
    lightpush: bool = False
    peer_exchange: bool = True
    announce: tuple[str, ...] = ()  # multiaddrs to advertise (ENR) instead of the listen ones
    db_url: str | None = None
    cluster_id: int = DEFAULT_CLUSTER_ID
    num_shards: int = DEFAULT_NUM_SHARDS
    shards: tuple[int, ...] = ()  # empty: every shard of the cluster
    admin_listen: str | None = None
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    limits: ServiceLimits = field(default_factory=ServiceLimits)
    store_resume: bool = True
    max_message_size: int = 150 * 1024
    blobs: bool = False  # Bitswap + block store + pin protocol (docs/blobs.md)
    blob_quota: int = 10 * 1024**3  # bytes of blocks the node keeps at most
    blob_peer_quota: int = 2 * 1024**3  # bytes of pins one requesting peer may hold
    blob_retention_days: float = 30.0  # how long a pin is kept at most

    def __post_init__(self) -> None:
        if not 0 <= self.cluster_id < 2**16:
            raise ConfigError(f"--cluster must be 0..65535, got {self.cluster_id}")
        if self.cluster_id == 1:
            raise ConfigError(
                "cluster 1 is the public Waku Network, which requires RLN membership; "
                "Boxless does not support RLN yet: pick another --cluster"
            )
        if not self.shards:
            object.__setattr__(self, "shards", tuple(range(self.num_shards)))
        for shard in self.shards:
            if not 0 <= shard < self.num_shards:
                raise ConfigError(f"--shard {shard} is outside 0..{self.num_shards - 1}")
        for flag, on in (
            ("--store", self.store),
            ("--filter", self.filter),
            ("--lightpush", self.lightpush),
        ):
            if on and not self.relay:
                raise ConfigError(f"{flag} serves what relay carries: add --relay")
        if self.blobs and (self.blob_quota < 1 or self.blob_peer_quota < 1):
            raise ConfigError("--blob-quota and the per-peer quota must be positive")
        if self.blob_retention_days <= 0:
            raise ConfigError("--blob-retention-days must be positive")
        if self.admin_listen is not None:
            host, _, port = self.admin_listen.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"--admin must be HOST:PORT, got {self.admin_listen!r}")

    @property
    def archive_url(self) -> str:
        """The archive's URL: --db, else SQLite in the data directory."""
        return self.db_url or f"sqlite:///{(self.data_dir / 'archive.db').resolve()}"

    @property
    def key_path(self) -> Path:
        return self.data_dir / "node.key"
