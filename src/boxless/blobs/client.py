"""The client-facing blob API: put a file into the local store, have service
nodes pin it, stream it back from any of them.

A :class:`BlobClient` works on a running :class:`~boxless.blobs.service.BlobService`
(a host serving Bitswap from a :class:`~boxless.blobs.store.BlockStore`). It knows
nothing about encryption: the attachments layer encrypts before :meth:`put`
and decrypts what :meth:`get` yields. Peers are libp2p peer IDs the host is
connected to (or can dial from its peer store).

Memory: ``put`` holds one chunk plus the DAG builder's per-level link lists;
``get`` holds at most ``window`` blocks (32 × 256 KiB by default). Progress
callbacks get ``(bytes done, total or None)``; ``get`` learns the total from
the root block.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass

import trio
from libp2p.peer.id import ID

from boxless.blobs.bitswap import Bitswap, DagFetcher, DagLimits
from boxless.blobs.cid import Cid
from boxless.blobs.pin import PinRefused, request_pin
from boxless.blobs.unixfs import DEFAULT_CHUNK, DEFAULT_MAX_LINKS, DagBuilder
from boxless.errors import NetworkError

Progress = Callable[[int, int | None], None]
LOCAL_OWNER = "local"


@dataclass(frozen=True)
class PutResult:
    root: Cid
    size: int  # file bytes
    stored: int  # bytes of all blocks (leaves and UnixFS nodes)
    pin_id: int


@dataclass(frozen=True)
class PinResult:
    pinned_by: list[ID]
    errors: dict[ID, str]


class BlobClient:
    """Content-addressed files over Bitswap; see the module docstring."""

    def __init__(self, bitswap: Bitswap, *, now: Callable[[], float] = time.time) -> None:
        self.bitswap = bitswap
        self.store = bitswap.store
        self.host = bitswap.host
        self.now = now

    async def put(
        self,
        chunks: AsyncIterable[bytes],
        *,
        chunk_size: int = DEFAULT_CHUNK,
        max_links: int = DEFAULT_MAX_LINKS,
        retention_s: float | None = None,
        progress: Progress | None = None,
    ) -> PutResult:
        """Chunk a byte stream into a UnixFS DAG (the same root CID Helia makes
        with these options, raw leaves, CIDv1) and keep it pinned locally
        (``retention_s``: None keeps it until unpinned). Cancellation leaves
        unpinned blocks that the store's GC removes later."""
        builder = DagBuilder(chunk_size, max_links)
        cids: list[Cid] = []
        stored = 0
        async for piece in chunks:
            for cid, block in builder.feed(piece):
                self.store.put(cid, block, self.now())
                cids.append(cid)
                stored += len(block)
            if progress is not None:
                progress(builder.size, None)
            await trio.lowlevel.checkpoint()
        for cid, block in builder.finish():
            self.store.put(cid, block, self.now())
            cids.append(cid)
            stored += len(block)
        assert builder.root is not None
        pin_id = self.store.pin(builder.root, LOCAL_OWNER, cids, stored, self.now(), retention_s)
        if progress is not None:
            progress(builder.size, builder.size)
        return PutResult(builder.root, builder.size, stored, pin_id)

    async def pin(
        self, cid: Cid, peers: Sequence[ID], *, retention_s: int = 0, timeout: float = 900.0
    ) -> PinResult:
        """Ask each of ``peers`` (service nodes) to fetch ``cid`` from us and pin
        it, all at once; return who did and why the others did not. Our
        Bitswap must keep serving until this returns."""
        pinned: list[ID] = []
        errors: dict[ID, str] = {}

        async def one(peer: ID) -> None:
            try:
                await request_pin(self.host, peer, cid, retention_s=retention_s, timeout=timeout)
                pinned.append(peer)
            except (PinRefused, NetworkError) as exc:
                errors[peer] = str(exc)

        async with trio.open_nursery() as nursery:
            for peer in peers:
                nursery.start_soon(one, peer)
        return PinResult(pinned, errors)

    async def get(
        self,
        cid: Cid,
        peers: Sequence[ID],
        *,
        cache: bool = True,
        limits: DagLimits = DagLimits(),
        window: int = 32,
        block_timeout: float = 15.0,
        progress: Progress | None = None,
        offset: int = 0,
        length: int | None = None,
    ) -> AsyncIterator[bytes]:
        """Stream the file at ``cid`` in order, fetching missing blocks from
        ``peers`` (tried in turn per block; those that say HAVE first).

        ``offset``/``length`` stream only those bytes (a seek: only the blocks
        on the way to them are fetched; past the end, what there is). A partial
        fetch caches its blocks unpinned (GC drops them after its grace).

        Every block is checked against its CID and decoded as its CID's codec
        says; a hostile DAG raises :class:`~boxless.blobs.bitswap.BadDag`, a
        missing one :class:`~boxless.blobs.bitswap.BlobUnavailable`. With
        ``cache`` the fetched blocks are kept (pinned locally once complete)."""
        fetcher = DagFetcher(
            self.bitswap, peers, window=window, block_timeout=block_timeout, limits=limits
        )
        await fetcher.rank_peers(cid)
        done = 0
        cids: list[Cid] = []
        stored = 0
        whole = offset == 0 and length is None
        end = None if length is None else offset + length
        async for block_cid, block, data in fetcher.blocks(cid, offset=offset, end=end):
            if cache:
                self.store.put(block_cid, block, self.now())
                cids.append(block_cid)
                stored += len(block)
            if data:
                done += len(data)
                yield data
            if progress is not None:
                progress(done, fetcher.file_size)
        if cache and whole and not self.store.pins(cid):
            self.store.pin(cid, LOCAL_OWNER, cids, stored, self.now(), None)

    def has(self, cid: Cid) -> bool:
        """Whether the local store holds ``cid``'s root block."""
        return self.store.has(cid)

    async def size(self, cid: Cid, peers: Sequence[ID]) -> int:
        """The file size the root block states (fetching just that block)."""
        fetcher = DagFetcher(self.bitswap, peers)
        async with aclosing(fetcher.blocks(cid)) as blocks:
            async for _ in blocks:
                break
        assert fetcher.file_size is not None
        return fetcher.file_size
