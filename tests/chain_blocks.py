"""Fast blocks on a real anvil for tests that drive clients or the CLI: a thread
mines a block every 50 ms (real time) while the test runs, so each transaction
waits ~50 ms for its receipt instead of up to anvil's 1 s block time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


@contextmanager
def fast_blocks(url: str, every_s: float = 0.05) -> Iterator[None]:
    stop = threading.Event()
    body = {"jsonrpc": "2.0", "id": 1, "method": "evm_mine", "params": []}

    def mine() -> None:
        with httpx.Client(timeout=5) as client:
            while not stop.wait(every_s):
                client.post(url, json=body)

    thread = threading.Thread(target=mine, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
