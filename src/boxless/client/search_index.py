"""The search index during a catch-up: texts queued, then indexed right after (issue 9).

Theory of operation
-------------------
Indexing a text (a trigram FTS5 insert) was about 15 % of a catch-up's CPU, paid
inside the receive transaction of every page of history. While a catch-up runs,
:meth:`SearchIndex.begin` switches the insert triggers to queueing the new texts
(``client_search_pending``, ``migrations_search/0005``); :meth:`SearchIndex.end`
switches them back and wakes :meth:`SearchIndex.run`, which indexes the queue in
chunks of :data:`INDEX_CHUNK` texts, one transaction each, yielding to the event
loop between chunks (10,000 texts take about a second of CPU; nothing waits on
it). Search finds a caught-up text once its chunk committed.

The switch is a row in the database, so every writer (1:1 and group texts alike)
follows it. A crash during a catch-up leaves it on and texts queued: the next
catch-up starts by indexing them, and turns it off at its end. Catch-ups may
overlap (a reconnect during one): the switch stays on until the last one ends.
"""

from __future__ import annotations

import logging

import trio
import trio.lowlevel

from boxless.client import search_store as ss
from boxless.storage.userdb import UserDB

logger = logging.getLogger(__name__)

INDEX_CHUNK = 500
"""Queued texts indexed per transaction (a few tens of ms of CPU)."""


class SearchIndex:
    """Defers indexing while catch-ups run and indexes the queue after them."""

    def __init__(self, db: UserDB) -> None:
        self.db = db
        self._active = 0  # catch-ups running
        self._wake = trio.Event()

    def begin(self) -> None:
        """A catch-up starts: queue new texts instead of indexing them."""
        self._active += 1
        if self._active == 1:
            with self.db.transaction() as cur:
                ss.set_deferred(cur, True)

    def end(self) -> None:
        """A catch-up ended (or failed): index new texts again, and the queue soon."""
        self._active -= 1
        if self._active == 0:
            with self.db.transaction() as cur:
                ss.set_deferred(cur, False)
            self._wake.set()

    async def run(self) -> None:
        """Index what is queued (at start: what a crash left), then after each catch-up.

        Cancellation between chunks loses nothing: the queue is in the database.
        """
        while True:
            await self.index_pending()
            await self._wake.wait()
            self._wake = trio.Event()

    async def index_pending(self) -> int:
        """Index the whole queue, one chunk per transaction; return how many were taken."""
        total = 0
        while True:
            with self.db.transaction() as cur:
                done = ss.index_pending(cur, INDEX_CHUNK)
            if not done:
                break
            total += done
            await trio.lowlevel.checkpoint()  # the receive loop and the API run in between
        if total:
            logger.info("indexed %d texts stored during a catch-up", total)
        return total
