"""The node a client process runs: the one place `boxless up`, `boxless link` and
`boxless bot run` start it from (heavy imports stay inside, so commands that never
start a node do not pay for py-libp2p)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import trio

from boxless.errors import ConfigError

if TYPE_CHECKING:
    from boxless.client.transport import Transport


async def start_node(
    nursery: trio.Nursery,
    home: Path,
    service_peers: list[str],
    relay: bool,
    peers: list[str],
    listen: list[str],
    cluster: int,
) -> Transport:
    """Start the light node (or, with ``relay``, a full relay node) in ``nursery`` and
    return the client's transport over it."""
    from boxless.client.transport import LightTransport, RelayTransport
    from boxless.node.config import NodeConfig
    from boxless.node.light import LightNode
    from boxless.node.service import WakuNode

    if relay:
        config = NodeConfig(
            home / "node", tuple(listen), peers=tuple(peers), cluster_id=cluster, store_resume=False
        )
        return RelayTransport(await nursery.start(WakuNode(config).run))
    if not service_peers:
        raise ConfigError("a light node needs --service-peer (or use --relay --peer)")
    light = LightNode(home / "node", service_peers, cluster_id=cluster, listen=listen)
    await nursery.start(light.run)
    return LightTransport(light)
