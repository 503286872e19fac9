"""Real py-libp2p hosts (loopback TCP, Noise, yamux) each running a BlobService,
for the blob integration, interop and bench code."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import multiaddr
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr

from boxless.blobs import BlobService, PinPolicy
from boxless.node.host import build_host


@asynccontextmanager
async def blob_node(
    root: Path, *, pin_policy: PinPolicy | None = None, quota: int = 1 << 34
) -> AsyncIterator[BlobService]:
    """A host listening on 127.0.0.1 with a blob service; stopped on exit."""
    addr = multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")
    host = build_host(create_new_key_pair(), [addr])
    async with host.run([addr]), trio.open_nursery() as nursery:
        service = BlobService(host, root, quota=quota, pin_policy=pin_policy)
        await nursery.start(service.run)
        yield service
        nursery.cancel_scope.cancel()


def addr_of(service: BlobService) -> str:
    return str(service.bitswap.host.get_addrs()[0])


async def connect(a: BlobService, addr: str) -> PeerInfo:
    info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
    await a.bitswap.host.connect(info)
    return info


def file_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(size):
            yield chunk


async def aiter_chunks(data: bytes, size: int = 100_000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]
