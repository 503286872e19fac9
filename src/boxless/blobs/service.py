"""A host's blob service: the block store, Bitswap and (on service nodes) the
pin protocol, plus the loop that expires pins, collects garbage and checks, a
batch of blocks per round, that their files are still there (lost ones are
forgotten, so Bitswap stops claiming them and a re-pin writes them again)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio
from libp2p.abc import IHost
from libp2p.peer.id import ID

from boxless._trio_compat import TaskStatus
from boxless.blobs.bitswap import Bitswap
from boxless.blobs.client import BlobClient
from boxless.blobs.pin import PinPolicy, PinService
from boxless.blobs.store import DEFAULT_QUOTA, BlockStore

logger = logging.getLogger(__name__)

CHECK_BATCH = 5000  # blocks stat-ed per round by the rolling check (a few ms)


class BlobService:
    """Serve blocks from ``root`` over ``host``; with ``pin_policy``, accept pins."""

    def __init__(
        self,
        host: IHost,
        root: Path,
        *,
        quota: int = DEFAULT_QUOTA,
        pin_policy: PinPolicy | None = None,
        on_violation: Callable[[ID, str], Awaitable[None]] | None = None,
        gc_interval_s: float = 300.0,
    ) -> None:
        self.store = BlockStore(root, quota=quota)
        self.bitswap = Bitswap(host, self.store, on_violation=on_violation)
        self.pins = (
            PinService(host, self.bitswap, pin_policy, on_violation=on_violation)
            if pin_policy is not None
            else None
        )
        self.client = BlobClient(self.bitswap)
        self.gc_interval_s = gc_interval_s
        self._check_after = ""  # the rolling check's place (a block name)

    def register(self) -> None:
        self.bitswap.register()
        if self.pins is not None:
            self.pins.register()

    async def run(self, *, task_status: TaskStatus[BlobService] = trio.TASK_STATUS_IGNORED) -> None:
        """Register the protocols, then expire pins and collect garbage every
        ``gc_interval_s`` until cancelled; the store is closed on the way out."""
        self.register()
        task_status.started(self)
        try:
            while True:
                now = time.time()
                expired = self.store.expire(now)
                freed = self.store.gc(now)
                if expired or freed:
                    logger.info("blobs: %d pins expired, %d bytes freed", expired, freed)
                await self.check_some()
                await trio.sleep(self.gc_interval_s)
        finally:
            self.store.close()

    async def check_some(self, limit: int = CHECK_BATCH) -> int:
        """The rolling integrity check: the next ``limit`` blocks (in name order,
        wrapping round) have their files stat-ed in a worker thread (no re-hash: see
        ``bench/blobs_check.py --rehash``); lost ones are forgotten. How many."""
        batch = self.store.block_sizes(self._check_after, limit)
        self._check_after = batch[-1][0] if len(batch) == limit else ""
        lost = await trio.to_thread.run_sync(self.store.lost_names, batch)
        if lost:
            self.store.forget(lost)
            logger.warning("blobs: %d blocks were lost from the disk; forgotten", len(lost))
        return len(lost)
