"""The optional admin HTTP port: ``/health`` (JSON) and ``/metrics`` (Prometheus).

Served by hypercorn's trio worker in the node's own nursery, so it shares the
node's lifetime. Bind it to loopback unless a monitoring system must reach it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from boxless._trio_compat import TaskStatus

if TYPE_CHECKING:
    from boxless.node.service import WakuNode


def build_admin_app(node: WakuNode) -> Starlette:
    """The admin ASGI app for ``node``."""

    async def health(request: Request) -> JSONResponse:
        relay = node.relay
        body = {
            "status": "ok",
            "peer_id": str(node.peer_id),
            "addrs": node.addrs(),
            "enr": node.enr.to_text() if node.enr else None,
            "uptime_s": round(time.monotonic() - node.started_at, 1),
            "peers": len(node.host.get_connected_peers()),
            "cluster_id": node.config.cluster_id,
            "shards": list(node.config.shards),
            "relay": None
            if relay is None
            else {t: len(relay.mesh_peers(t)) for t in node.pubsub_topics},
            "store": node.archive is not None,
        }
        if node.archive is not None:
            body["archive_messages"] = await trio.to_thread.run_sync(node.archive.count)
        return JSONResponse(body)

    async def metrics(request: Request) -> Response:
        node.metrics.peers.set(len(node.host.get_connected_peers()))
        return Response(generate_latest(node.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/health", health), Route("/metrics", metrics)])


async def serve_admin(
    node: WakuNode, listen: str, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve the admin app on ``listen`` (HOST:PORT) until cancelled."""
    config = Config()
    config.bind = [listen]
    config.accesslog = None
    config.errorlog = None
    await serve(build_admin_app(node), config, task_status=task_status)  # type: ignore[arg-type]
