"""Prometheus metrics of one node, on a registry of its own (so several nodes
can live in one process, as tests and benchmarks do)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from boxless.node.libp2p_shims import TrafficCounter


class NodeMetrics:
    """The counters a node updates; served on the admin port's /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.traffic = TrafficCounter()
        Gauge(
            "boxless_network_bytes_in", "Bytes received on libp2p connections", registry=r
        ).set_function(lambda: self.traffic.bytes_in)
        Gauge(
            "boxless_network_bytes_out", "Bytes sent on libp2p connections", registry=r
        ).set_function(lambda: self.traffic.bytes_out)
        self.peers = Gauge("boxless_peers", "Connected libp2p peers", registry=r)
        self.relay_received = Counter(
            "boxless_relay_messages_received", "Valid messages received by relay", registry=r
        )
        self.relay_published = Counter(
            "boxless_relay_messages_published", "Messages published by this node", registry=r
        )
        self.relay_invalid = Counter(
            "boxless_relay_messages_invalid",
            "Relay messages rejected by validation",
            ["reason"],
            registry=r,
        )
        self.archive_inserted = Counter(
            "boxless_archive_inserted", "Messages newly written to the archive", registry=r
        )
        self.archive_dropped = Counter(
            "boxless_archive_dropped",
            "Messages not archived because the writer queue was full",
            registry=r,
        )
        self.archive_size = Gauge("boxless_archive_messages", "Messages in the archive", registry=r)
        self.archive_pruned = Counter(
            "boxless_archive_pruned", "Messages removed by retention", registry=r
        )
        self.store_queries = Counter(
            "boxless_store_queries", "Store queries served", ["status"], registry=r
        )
        self.store_query_seconds = Histogram(
            "boxless_store_query_seconds",
            "Time to answer a store query",
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self.protocol_violations = Counter(
            "boxless_protocol_violations", "Malformed input from peers", ["protocol"], registry=r
        )
        self.cluster_mismatch = Counter(
            "boxless_cluster_mismatch_disconnects", "Peers dropped for another cluster", registry=r
        )
