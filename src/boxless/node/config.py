"""Configuration of a Waku node, validated when built."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from boxless.errors import ConfigError
from boxless.waku.sharding import DEFAULT_CLUSTER_ID, DEFAULT_NUM_SHARDS

DAY_NS = 86_400 * 10**9


@dataclass(frozen=True)
class RetentionPolicy:
    """How long the archive keeps messages. Boxless keeps 30 days by default:
    offline delivery needs at least 7 (see the 1:1 chat issue)."""

    max_age_ns: int | None = 30 * DAY_NS
    max_count: int | None = None
    max_bytes: int | None = None
    interval_s: float = 60.0


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
    store_resume: bool = True
    max_message_size: int = 150 * 1024

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
