"""The message archive interface shared by every storage backend.

Theory of operation
-------------------
The archive is a key-value store of Waku messages for the store protocol
(13/WAKU2-STORE). The key is the 32-byte deterministic message hash; the value
is the *opaque* encoded ``WakuMessage`` plus the columns queries need
(pubsub topic, content topic, sender timestamp) and the node's receive time.
The archive never parses message bytes: the node decides what is eligible
(ephemeral, timestamp drift) before calling :meth:`Archive.insert`.

Ordering. Every query walks the total order ``(timestamp, message_hash)``:
ties on the sender timestamp are broken by the natural (bytewise) order of the
hash, as the spec requires. Pagination is keyset pagination on that pair, never
OFFSET, so a page costs the same at row 10 as at row 10 million.

Page order. Whatever the direction, :attr:`ArchivePage.rows` is ordered
*oldest to newest* (ascending), because spec 13 says the response "MUST be
ordered in a forward direction" for forward and backward queries alike.
A backward query selects the ``limit`` entries just *before* the cursor, then
reverses them. :attr:`ArchivePage.next_cursor` is the hash of the last entry in
*traversal* order: the newest row for forward queries, the oldest row
(``rows[0]``) for backward ones, exactly as the spec's "Paginating the response"
section says and exactly what js-waku sends back (it uses ``messages[-1]``
forward and ``messages[0]`` backward as its next cursor).

Time range. ``time_start`` and ``time_end`` are both *inclusive*. Spec 13's
"Filter matching" calls ``end_time`` exclusive, but nwaku, the reference
service, filters with ``timestamp <= end`` and js-waku splits long ranges into
chunks that share their boundaries, so inclusive loses nothing at a boundary
(a boundary message may be seen twice; clients dedupe by hash).

Retention. Age, count and size limits all evict by the node's receive time
``received_at`` (oldest received first), not the sender's ``timestamp``: a sender
controls ``timestamp`` and could pin a far-future message in the archive forever
(the attack described in spec 13's "Future Work"). Size is the sum of the stored
encoded message lengths, not the database file size.

Threads. Methods are synchronous; the node calls them from worker threads via
``trio.to_thread.run_sync``. Every backend must be safe to call from several
threads at once, including concurrent writers.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from boxless.errors import UsageError, ValidationError

HASH_SIZE = 32


class CursorNotFoundError(ValidationError):
    """A query's pagination cursor names a message hash the archive does not hold.

    The peer sent a cursor we never served (or one retention has since deleted).
    The store service answers status 400 ``BAD_REQUEST: cursor not found``.
    """


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise UsageError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")


@dataclass(frozen=True, slots=True)
class ArchiveRow:
    """One stored message: its key, indexed columns and opaque encoded bytes.

    ``timestamp`` is the sender's timestamp and ``received_at`` the node's
    receive time, both Unix epoch nanoseconds.
    """

    message_hash: bytes
    pubsub_topic: str
    content_topic: str
    timestamp: int
    message: bytes
    received_at: int

    def __post_init__(self) -> None:
        _check_hash(self.message_hash, "message_hash")


@dataclass(frozen=True, slots=True)
class ArchiveQuery:
    """A validated store query, with the semantics of spec 13.

    Either a content filter (``pubsub_topic`` + ``content_topics`` and/or a time
    range, both ends inclusive) or a hash lookup (``message_hashes``, optionally
    narrowed by ``pubsub_topic``), never both. ``cursor`` is an exclusive
    message hash; ``forward=False`` (the spec's default) walks newest first.
    """

    pubsub_topic: str | None = None
    content_topics: tuple[str, ...] = ()
    time_start: int | None = None
    time_end: int | None = None
    message_hashes: tuple[bytes, ...] = ()
    cursor: bytes | None = None
    forward: bool = False
    limit: int = 20
    include_data: bool = False

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise UsageError(f"limit must be at least 1, got {self.limit}")
        if self.content_topics and self.pubsub_topic is None:
            raise UsageError("content_topics need a pubsub_topic (spec 13)")
        if self.message_hashes and (
            self.content_topics or self.time_start is not None or self.time_end is not None
        ):
            raise UsageError("message_hashes cannot be combined with content topics or times")
        for value in self.message_hashes:
            _check_hash(value, "each of message_hashes")
        if self.cursor is not None:
            _check_hash(self.cursor, "cursor")


@dataclass(frozen=True, slots=True)
class ArchivePage:
    """One page of results, ``rows`` oldest to newest in either direction.

    ``next_cursor`` is the hash to pass as the next query's cursor, or None
    when no more entries match.
    """

    rows: tuple[ArchiveRow, ...]
    next_cursor: bytes | None


class Archive(abc.ABC):
    """A message archive. All methods are synchronous and thread-safe."""

    @abc.abstractmethod
    def insert(self, rows: Sequence[ArchiveRow]) -> int:
        """Store ``rows`` in one transaction; return how many were new.

        Idempotent: a row whose hash is already stored is silently skipped.
        """

    @abc.abstractmethod
    def query(self, q: ArchiveQuery) -> ArchivePage:
        """Return one page for ``q``.

        Raises :class:`CursorNotFoundError` if ``q.cursor`` is not stored.
        With ``include_data=False`` the rows' ``message`` may be ``b""``.
        """

    @abc.abstractmethod
    def count(self) -> int:
        """Return the number of stored messages."""

    @abc.abstractmethod
    def apply_retention(
        self,
        now_ns: int,
        *,
        max_age_ns: int | None,
        max_count: int | None,
        max_bytes: int | None,
    ) -> int:
        """Delete messages outside the limits, oldest received first.

        ``max_age_ns`` drops rows with ``received_at < now_ns - max_age_ns``;
        ``max_count`` keeps the newest ``max_count`` rows; ``max_bytes`` keeps
        the newest rows whose encoded sizes sum to at most ``max_bytes``.
        None disables a limit. Returns the number of rows deleted.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. The archive must not be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_retention_limits(
    max_age_ns: int | None, max_count: int | None, max_bytes: int | None
) -> None:
    """Raise UsageError if a retention limit is negative."""
    for name, value in (
        ("max_age_ns", max_age_ns),
        ("max_count", max_count),
        ("max_bytes", max_bytes),
    ):
        if value is not None and value < 0:
            raise UsageError(f"{name} must be >= 0 or None, got {value}")
