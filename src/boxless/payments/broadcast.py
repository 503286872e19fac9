"""Pipelined broadcasting: signed transactions go out in JSON-RPC batches while the
caller signs and stores the next ones.

Theory of operation: :meth:`Broadcaster.submit` queues a signed transaction and
returns a future. One worker thread takes everything queued (up to a batch's
worth), stores it in one DB transaction (``persist``: nothing goes out before it
is stored), then sends it as one ``[eth_chainId, eth_sendRawTransaction × k]`` batch in
queue (= nonce) order, and settles each future: the record; :class:`RpcRefused`
for a transaction the node refused (``on_refused`` forgets it: it was never
out; "already known" counts as sent: a refresh may have re-broadcast it first);
:class:`RpcDown` for all of a batch the node never answered (they stay
stored, pending, and are re-broadcast by the wallet's refresh). The queue is
bounded, so a caller faster than the node waits instead of growing memory.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

from boxless.payments.errors import RpcDown, RpcRefused
from boxless.payments.rpc import MAX_BATCH, Rpc
from boxless.payments.store import TxRecord

QUEUE = 1024

_Item = tuple[TxRecord, "Future[TxRecord]"]


def already_known(exc: RpcRefused) -> bool:
    """Whether a refused broadcast means the node has this very transaction already
    (geth: "already known", anvil: "already imported"): it is out, not refused."""
    text = str(exc).lower()
    return any(m in text for m in ("already known", "already imported", "known transaction"))


class Broadcaster:
    def __init__(
        self,
        rpc: Rpc,
        on_refused: Callable[[TxRecord], None],
        persist: Callable[[list[TxRecord], int], None],
    ) -> None:
        self.rpc = rpc
        self.on_refused = on_refused
        self.persist = persist
        self._queue: queue.Queue[_Item | None] = queue.Queue(QUEUE)
        self._thread = threading.Thread(target=self._run, name="wallet-broadcast", daemon=True)
        self._thread.start()

    def submit(self, record: TxRecord) -> Future[TxRecord]:
        future: Future[TxRecord] = Future()
        self._queue.put((record, future))
        return future

    def close(self) -> None:
        """Send what is queued, then stop the worker."""
        self._queue.put(None)
        self._thread.join()
        self.rpc.close()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            items = [first]
            while len(items) < MAX_BATCH - 1:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                items.append(item)
            self._send(items)

    def _send(self, items: list[_Item]) -> None:
        try:  # stored before any goes out: a crash then loses nothing that left
            self.persist([record for record, _ in items], items[0][0].created_ms)
        except Exception as exc:  # noqa: BLE001 - every caller hears why; nothing sent
            for _, future in items:
                future.set_exception(exc)
            return
        calls = [("eth_sendRawTransaction", ["0x" + record.raw.hex()]) for record, _ in items]
        try:
            results = self.rpc.batch_each(calls)
        except RpcDown as exc:
            for record, future in items:
                future.set_exception(
                    RpcDown(
                        f"{exc} The signed transaction 0x{record.hash.hex()} is saved and is "
                        "sent again on the next refresh; do not send it twice"
                    )
                )
            return
        except Exception as exc:  # noqa: BLE001 - a lying node: every caller hears it
            for _, future in items:
                future.set_exception(exc)
            return
        for (record, future), result in zip(items, results, strict=True):
            if isinstance(result, RpcRefused) and not already_known(result):
                self.on_refused(record)
                future.set_exception(result)
            else:
                future.set_result(record)
