"""Writing relayed messages to the archive in batches, losing none on shutdown.

Messages arrive one by one from relay; the archive is fastest with batched
transactions. :class:`Archiver` owns a bounded channel: ``put`` awaits when it
is full (back-pressure reaches relay instead of silently dropping), and the
writer task takes whatever is queued (up to ``batch_size``) and inserts it in a
worker thread. On cancellation the writer drains the queue under a shield, so
SIGINT/SIGTERM never loses a message that relay already accepted.

Threads. Writes run on a :class:`trio.CapacityLimiter` of their own (one
thread: the archive has one writer anyway), not trio's default limiter that
store queries used to share, so a flood of queries can never leave the writer
waiting for a thread (store queries have their own limiter in
:class:`~boxless.node.store_service.StoreService`).
"""

from __future__ import annotations

import logging

import trio

from boxless.archive import Archive, ArchiveRow
from boxless.node.metrics import NodeMetrics

logger = logging.getLogger(__name__)


class Archiver:
    """Batching archive writer; run :meth:`run` in a nursery, feed it with :meth:`put`."""

    def __init__(
        self, archive: Archive, metrics: NodeMetrics, *, queue: int = 4096, batch_size: int = 512
    ) -> None:
        self.archive = archive
        self.metrics = metrics
        self.batch_size = batch_size
        self._send, self._recv = trio.open_memory_channel[ArchiveRow](queue)
        self.threads = trio.CapacityLimiter(1)
        self.flushed = 0

    async def put(self, row: ArchiveRow) -> None:
        """Queue ``row``; waits while the writer is ``queue`` rows behind."""
        await self._send.send(row)

    async def run(self) -> None:
        """Write batches until cancelled, then flush what is queued (shielded)."""
        try:
            async for first in self._recv:
                batch = self._take_batch(first)
                # Shielded: trio.to_thread.run_sync checks for cancellation before it
                # starts the thread, so a cancel arriving here dropped a whole batch
                # that was already taken off the queue (seen as 2950 of 3000 in CI).
                with trio.CancelScope(shield=True):
                    await self._write(batch)
        finally:
            with trio.CancelScope(shield=True):
                pending = self._take_batch(None, limit=None)
                if pending:
                    logger.info("flushing %d queued messages to the archive", len(pending))
                    await self._write(pending)

    def _take_batch(self, first: ArchiveRow | None, limit: int | None = -1) -> list[ArchiveRow]:
        batch = [first] if first is not None else []
        cap = self.batch_size if limit == -1 else limit
        while cap is None or len(batch) < cap:
            try:
                batch.append(self._recv.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
        return batch

    async def _write(self, batch: list[ArchiveRow]) -> None:
        new = await trio.to_thread.run_sync(self.archive.insert, batch, limiter=self.threads)
        self.metrics.archive_inserted.inc(new)
        self.flushed += len(batch)
