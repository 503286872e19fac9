"""A host's blob service: the block store, Bitswap and (on service nodes) the
pin protocol, plus the loop that expires pins and collects garbage."""

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
                await trio.sleep(self.gc_interval_s)
        finally:
            self.store.close()
