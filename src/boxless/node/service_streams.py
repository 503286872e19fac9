"""Caps on the inbound streams of a node's service protocols (trio adapter).

Theory of operation: each service protocol's handler is wrapped once, after
every service has registered. A new inbound stream asks the sans-IO
:class:`~boxless.node.limits.StreamGate` for a slot; refused, it is reset at
once and counted (``boxless_service_streams_refused_total{reason}``); admitted,
its handler runs inside a cancel scope that the gate's token stands for. When
the gate makes room by evicting another peer's oldest stream, that scope is
cancelled: the handler stops at its next checkpoint and the stream is reset
(``boxless_service_streams_evicted_total``). The slot is released when the
handler returns, however it returns.

Why: js-waku pre-opens a stream per protocol and may leave it idle for up to
the services' 120 s idle timeout, which is honest; but a peer (or a crowd of
fresh peer ids) opening thousands of idle streams ties up tasks and muxer
buffers. The gate keeps that bounded per peer and overall.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from prometheus_client import Counter, Gauge

from boxless.node.limits import StreamGate
from boxless.node.metrics import NodeMetrics
from boxless.node.streams import reset_quietly

__all__ = ["GateMetrics", "gate_services"]

logger = logging.getLogger(__name__)

Handler = Callable[[INetStream], Awaitable[None]]


class GateMetrics:
    """Stream-gate counters, on the node's registry (one set per NodeMetrics)."""

    def __init__(self, metrics: NodeMetrics) -> None:
        self.refused = Counter(
            "boxless_service_streams_refused",
            "Inbound service streams reset at once: the peer's or the node's cap was reached",
            ["reason"],
            registry=metrics.registry,
        )
        self.evicted = Counter(
            "boxless_service_streams_evicted",
            "Inbound service streams reset to make room for a peer holding fewer",
            registry=metrics.registry,
        )
        self.open = Gauge(
            "boxless_service_streams_open",
            "Inbound service streams open now",
            registry=metrics.registry,
        )


_METRICS: weakref.WeakKeyDictionary[NodeMetrics, GateMetrics] = weakref.WeakKeyDictionary()


def gate_metrics(metrics: NodeMetrics) -> GateMetrics:
    if metrics not in _METRICS:
        _METRICS[metrics] = GateMetrics(metrics)
    return _METRICS[metrics]


def _gated(handler: Handler, gate: StreamGate[trio.CancelScope], counters: GateMetrics) -> Handler:
    async def gated(stream: INetStream) -> None:
        """Run ``handler`` on ``stream`` if the gate admits it; else reset it.

        Cancellation (node stopping or eviction) resets the stream.
        """
        peer = stream.muxed_conn.peer_id
        scope = trio.CancelScope()
        admission = gate.open(peer, scope)
        if not admission.admitted:
            counters.refused.labels(admission.reason or "").inc()
            logger.debug("reset a stream from %s: %s cap reached", peer, admission.reason)
            await reset_quietly(stream)
            return
        if admission.evict is not None:
            counters.evicted.inc()
            admission.evict.cancel()
        counters.open.set(gate.open_total)
        try:
            with scope:
                await handler(stream)
        finally:
            gate.close(peer, scope)
            counters.open.set(gate.open_total)
            if scope.cancelled_caught:
                with trio.CancelScope(shield=True):
                    await reset_quietly(stream)

    return gated


def gate_services(
    host: IHost,
    protocols: Iterable[str],
    gate: StreamGate[trio.CancelScope],
    metrics: NodeMetrics,
) -> list[str]:
    """Wrap the registered handlers of ``protocols`` on ``host`` with ``gate``.

    Call once, after the services registered; protocols with no handler are
    skipped. Returns the protocols gated.
    """
    counters = gate_metrics(metrics)
    handlers = host.get_mux().handlers
    gated = []
    for protocol in protocols:
        handler = handlers.get(TProtocol(protocol))
        if handler is None:
            continue
        host.set_stream_handler(TProtocol(protocol), _gated(handler, gate, counters))
        gated.append(protocol)
    return gated
