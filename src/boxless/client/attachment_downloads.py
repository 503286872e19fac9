"""Attachments' downloads: the auto-download rules and the one-at-a-time fetch task.

Theory of operation
-------------------
The auto-download setting (a size limit, 25 MiB by default, and a rule:
never, photos, media or all; :func:`auto_downloads`) decides which received
files are queued on arrival. The queue is bounded (:data:`QUEUE`): a file that
does not fit stays ``remote`` and is fetched after a restart or on request.
:meth:`AttachmentDownloads.run` fetches one file at a time from the peers its
descriptor names, verifies and decrypts it (the plaintext is dropped: the cache
is the ciphertext in the block store), and reports ``attachment_progress`` (at
most every 256 KiB) and ``attachment_ready`` events. A file that fails is
marked ``failed`` with the reason; :meth:`AttachmentDownloads.download` retries
on request. :meth:`AttachmentDownloads.resume` queues again rows left
``downloading`` and ``remote`` rows under the limit (blocks already fetched
stay in the block store, so the fetch asks only for what is missing).

:class:`~boxless.client.attachments.AttachmentManager` holds one and keeps the
public API (``download``, the settings, ``run``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import trio

from boxless.chat.attachment import AttachmentKind, AttachmentRef
from boxless.client import attachment_store as store
from boxless.client import events as ev
from boxless.client import store as db
from boxless.client.attachment_transfer import AttachmentTransfer
from boxless.client.channel import DirectChannel
from boxless.errors import BoxlessError, NetworkError, UsageError

__all__ = [
    "AUTO_DOWNLOAD_DEFAULT",
    "AUTO_MODES",
    "AttachmentDownloads",
    "BlobsUnavailable",
    "NoSuchAttachment",
    "api_id",
    "auto_downloads",
    "require_transfer",
]

logger = logging.getLogger(__name__)

AUTO_DOWNLOAD_DEFAULT = 25 * 1024**2
QUEUE = 256  # downloads waiting; beyond it they wait for a restart or a request
PROGRESS_STEP = 256 * 1024
RESUME_BATCH = 200
GONE_PREFIX = "the file is no longer on the network"

AUTO_MODES = ("never", "photos", "media", "all")  # stored as their index
AUTO_MODE_DEFAULT = "all"
_AUTO_KINDS = {
    # voice notes are small and only play once fetched: photos' company, as in Signal
    "photos": frozenset({AttachmentKind.IMAGE, AttachmentKind.STICKER, AttachmentKind.VOICE}),
    "media": frozenset(
        {AttachmentKind.IMAGE, AttachmentKind.STICKER, AttachmentKind.VOICE, AttachmentKind.VIDEO}
    ),
}


def auto_downloads(ref: AttachmentRef, mode: str, limit: int) -> bool:
    """Whether a received file is fetched on arrival under the setting ``mode``
    ("never", "photos": photos, stickers and voice notes, "media": those and videos,
    "all": any file) and the size ``limit`` (0: never), the same for every network."""
    if mode == "never" or ref.size > limit:
        return False
    return mode == "all" or ref.kind in _AUTO_KINDS.get(mode, frozenset())


class BlobsUnavailable(UsageError):
    """This client runs no blob service, so it cannot send or fetch files."""


class NoSuchAttachment(UsageError):
    """No attachment with that message id and index."""


def require_transfer(transfer: AttachmentTransfer | None) -> AttachmentTransfer:
    """``transfer``, or a clear error saying how to get one."""
    if transfer is None:
        raise BlobsUnavailable(
            "this node runs no blob service: start it with blobs enabled to send files"
        )
    return transfer


def api_id(row: store.AttachmentRow) -> str:
    """The message id the API and events use: hex (1:1) or the group message's id."""
    return row.message_id.decode() if row.chat.startswith("group:") else row.message_id.hex()


class AttachmentDownloads:
    """Which received files are fetched, and the task that fetches them."""

    def __init__(
        self,
        channel: DirectChannel,
        *,
        transfer: Callable[[], AttachmentTransfer | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.channel = channel
        self.db = channel.db
        self.transfer = transfer  # the blob service, once one runs
        self.clock = clock
        self._queue_in, self._queue_out = trio.open_memory_channel[tuple[bytes, int]](QUEUE)
        self._queued: set[tuple[bytes, int]] = set()

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- settings -------------------------------------------------------------------------------

    @property
    def auto_download_bytes(self) -> int:
        with self.db.transaction() as cur:
            return store.get_setting(cur, "auto_download_bytes", AUTO_DOWNLOAD_DEFAULT)

    def set_auto_download_bytes(self, value: int) -> None:
        if not 0 <= value <= 2 * 1024**3:
            raise UsageError("the auto-download size is from 0 (never) to 2 GiB")
        with self.db.transaction() as cur:
            store.set_setting(cur, "auto_download_bytes", value)

    @property
    def auto_download_mode(self) -> str:
        with self.db.transaction() as cur:
            return self._mode(cur)

    def set_auto_download_mode(self, mode: str) -> None:
        if mode not in AUTO_MODES:
            raise UsageError(f"the auto-download rule is one of {', '.join(AUTO_MODES)}")
        with self.db.transaction() as cur:
            store.set_setting(cur, "auto_download_mode", AUTO_MODES.index(mode))

    @staticmethod
    def _mode(cur: db.Cursor) -> str:
        code = store.get_setting(cur, "auto_download_mode", AUTO_MODES.index(AUTO_MODE_DEFAULT))
        return AUTO_MODES[code] if 0 <= code < len(AUTO_MODES) else AUTO_MODE_DEFAULT

    def wants(self, cur: db.Cursor) -> Callable[[AttachmentRef], bool]:
        """The setting as a test of one received file."""
        mode = self._mode(cur)
        limit = store.get_setting(cur, "auto_download_bytes", AUTO_DOWNLOAD_DEFAULT)
        return lambda ref: auto_downloads(ref, mode, limit)

    # -- the queue ------------------------------------------------------------------------------

    def enqueue(self, key: tuple[bytes, int]) -> bool:
        """Queue one file (message id, index) for the fetch task; False: the queue is
        full and the file stays ``remote`` (fetched after a restart or on request)."""
        if key in self._queued:
            return True
        try:
            self._queue_in.send_nowait(key)
        except trio.WouldBlock:
            return False
        self._queued.add(key)
        return True

    def resume(self) -> None:
        """Queue again what was downloading and what the setting wants (after a start,
        or once a blob service runs)."""
        with self.db.transaction() as cur:
            wants = self.wants(cur)
            pending = store.resumable(cur, self.auto_download_bytes, RESUME_BATCH)
        for row in pending:
            if row.state == "downloading" or wants(row.ref):
                self.enqueue((row.message_id, row.idx))

    async def run(self) -> None:
        """Fetch what is queued, one at a time, until cancelled. Cancellation stops a
        fetch between blocks; its row stays ``downloading`` and is resumed at the
        next start."""
        async for key in self._queue_out:
            self._queued.discard(key)
            await self.download(*key)

    # -- one file -------------------------------------------------------------------------------

    def row(self, message_id: bytes, idx: int) -> store.AttachmentRow:
        with self.db.transaction() as cur:
            row = store.get_attachment(cur, message_id, idx)
        if row is None:
            raise NoSuchAttachment("no such attachment")
        return row

    def set_state(self, row: store.AttachmentRow, state: str, **kw: object) -> None:
        with self.db.transaction() as cur:
            store.set_state(cur, row.message_id, row.idx, state, self._now_ms(), **kw)  # type: ignore[arg-type]

    async def download(self, message_id: bytes, idx: int) -> store.AttachmentRow:
        """Fetch, verify and cache one file now; its row afterwards (``ready`` or ``failed``)."""
        transfer = require_transfer(self.transfer())
        row = self.row(message_id, idx)
        if row.state == "ready" and transfer.is_cached(row.ref):
            return row
        self.set_state(row, "downloading", error=None)
        last = [0]

        def progress(done: int, total: int | None) -> None:
            # ``done``/``total`` count ciphertext (tags and header included): scaled to the file
            if done - last[0] >= PROGRESS_STEP or (total is not None and done == total):
                last[0] = done
                size = row.ref.size
                plain = size * done // total if total else min(done, size)
                self.channel.emit(ev.AttachmentProgress(api_id(row), idx, row.chat, plain, size))

        try:
            await transfer.fetch(row.ref, progress=progress)
        except BoxlessError as exc:
            logger.info("attachment %s/%d not fetched: %s", message_id.hex()[:8], idx, exc)
            why = (
                self._gone(row) if isinstance(exc, NetworkError) and not row.outgoing else str(exc)
            )
            self.set_state(row, "failed", error=why)
            self.channel.emit(ev.AttachmentReady(api_id(row), idx, row.chat, False, why))
        else:
            self.set_state(row, "ready", done=row.ref.size)
            self.channel.emit(ev.AttachmentReady(api_id(row), idx, row.chat, True, None))
        return self.row(message_id, idx)

    def sender_name(self, row: store.AttachmentRow) -> str:
        """The contact who sent a 1:1 file, as we name them; "the sender" otherwise."""
        if not row.chat.startswith("contact:"):
            return "the sender"
        with self.db.transaction() as cur:
            c = db.get_contact(cur, bytes.fromhex(row.chat.removeprefix("contact:")))
        return c.display_name if c is not None and c.display_name else "the sender"

    def _gone(self, row: store.AttachmentRow) -> str:
        """What to say when no peer sent the file (its nodes lost it, or are down)."""
        return f"{GONE_PREFIX}: ask {self.sender_name(row)} to send it again"
