"""Attachments in 1:1 chats: send files, receive their descriptors, fetch them.

Theory of operation
-------------------
Sending (:meth:`AttachmentManager.send`): each file is encrypted, stored and
pinned on the service peers by :class:`~boxless.client.attachment_transfer.AttachmentTransfer`
*before* anything is queued, so a message never names a file nobody keeps.
Then one transaction queues the :class:`~boxless.chat.attachment.Attachments`
body through the conversations' outbox (retries, receipts), adds the message
to the chat (its text: the caption, or a paper-clip and the file names, so
previews and search show it) and records each file as ``ready`` (the sender
has it).

Receiving (a gated handler: contacts only): the message and one ``remote``
row per file commit with the receive transaction. After commit, files the
auto-download rules want are queued for the download task
(:mod:`boxless.client.attachment_downloads`, one
:class:`~boxless.client.attachment_downloads.AttachmentDownloads` held here:
the rules, the bounded queue, the fetch with its progress events, and the
resume of interrupted downloads when :meth:`AttachmentManager.run` starts).

Without a blob service (``transfer`` is None) sending is refused with what
to do and received files stay ``remote`` until one runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence

import trio

from boxless._trio_compat import TaskStatus
from boxless.chat import envelope as env
from boxless.chat.attachment import AttachmentAsk, AttachmentRef, AttachmentRepinned
from boxless.client import attachment_store as store
from boxless.client import events as ev
from boxless.client import store as db
from boxless.client.attachment_downloads import (
    AUTO_DOWNLOAD_DEFAULT,
    AUTO_MODES,
    AttachmentDownloads,
    BlobsUnavailable,
    NoSuchAttachment,
    api_id,
    auto_downloads,
    require_transfer,
)
from boxless.client.attachment_transfer import AttachmentTransfer, FileInfo
from boxless.client.channel import DirectChannel, FollowUp, Received
from boxless.client.conversations import Conversations, incoming_row
from boxless.client.groups import GroupManager
from boxless.client.repin_asks import AskLimiter
from boxless.errors import BoxlessError, UsageError

__all__ = [
    "AUTO_DOWNLOAD_DEFAULT",
    "AUTO_MODES",
    "AttachmentManager",
    "BlobsUnavailable",
    "NoSuchAttachment",
    "auto_downloads",
]

logger = logging.getLogger(__name__)

REPIN_TICK_S = 5.0
REPIN_FIRST_S = 5.0
REPIN_MAX_S = 3600.0
REPIN_FAST_S = 30.0
REPIN_FAST_TRIES = 20
REPIN_KEEP_S = 7 * 24 * 3600  # give up re-pinning a file after a week
REPIN_BATCH = 20
REPIN_ASKS_QUEUE = 16  # asked-for re-pins waiting (run one at a time, off the receive path)
MAX_NOTE_PEERS = 8


def repin_delay_s(tries: int) -> float:
    """Seconds before the next re-pin try after ``tries`` failed ones: 5, 10, 20, then
    every 30 s for about 10 minutes (a node restarting), then doubling up to 1 h."""
    delay = REPIN_FIRST_S * (1 << min(tries, 20))
    return float(min(delay, REPIN_FAST_S if tries < REPIN_FAST_TRIES else REPIN_MAX_S))


def chat_of(contact: bytes) -> str:
    return f"contact:{contact.hex()}"


def preview_text(body: env.Attachments) -> str:
    """What the chat list and search show for a message of files."""
    if body.caption:
        return body.caption
    return "📎 " + ", ".join(item.name for item in body.items)


class AttachmentManager:
    """The attachments feature of a client; see the module docstring."""

    def __init__(
        self,
        channel: DirectChannel,
        conversations: Conversations,
        transfer: AttachmentTransfer | None,
        *,
        groups: GroupManager | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.channel = channel
        self.groups = groups
        self.db = channel.db
        self.conversations = conversations
        self.transfer = transfer
        self.clock = clock
        self.downloads = AttachmentDownloads(channel, transfer=lambda: self.transfer, clock=clock)
        self.asks = AskLimiter()  # who may make us pin a sent file again, how often
        self._repins_in, self._repins_out = trio.open_memory_channel[
            tuple[bytes, AttachmentAsk, AttachmentRef]
        ](REPIN_ASKS_QUEUE)
        channel.handlers.on_body((env.Attachments,), self._on_attachments)
        if groups is not None:
            groups.on_content((env.Attachments,), self._on_group_attachments)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def require_transfer(self) -> AttachmentTransfer:
        return require_transfer(self.transfer)

    # -- settings (the download rules: AttachmentDownloads) -------------------------------------

    @property
    def auto_download_bytes(self) -> int:
        return self.downloads.auto_download_bytes

    def set_auto_download_bytes(self, value: int) -> None:
        self.downloads.set_auto_download_bytes(value)

    @property
    def auto_download_mode(self) -> str:
        return self.downloads.auto_download_mode

    def set_auto_download_mode(self, mode: str) -> None:
        self.downloads.set_auto_download_mode(mode)

    # -- sending --------------------------------------------------------------------------------

    async def send(
        self,
        contact: bytes,
        files: Sequence[tuple[AsyncIterable[bytes], FileInfo]],
        *,
        caption: str = "",
        reply_to: bytes | None = None,
        progress: Callable[[int, int, int | None], None] | None = None,
    ) -> bytes:
        """Upload ``files`` (one, or an album of up to 9 photos/videos) and send them.

        ``progress(index, done, total)`` follows each upload. Returns the
        message id. Raises before anything is queued if an upload fails.
        """
        self.conversations.accepted(contact)
        refs = await self._upload_all(files, progress)
        return self.send_uploaded(contact, refs, caption=caption, reply_to=reply_to)

    async def upload(
        self,
        chunks: AsyncIterable[bytes],
        info: FileInfo,
        *,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> AttachmentRef:
        """Encrypt, store and pin one file (see :meth:`AttachmentTransfer.upload`);
        its descriptor, for :meth:`send_uploaded` or :meth:`send_group_uploaded`."""
        ref = await self.require_transfer().upload(chunks, info, progress=progress)
        self._note_pins(ref)
        return ref

    def _note_pins(self, ref: AttachmentRef) -> None:
        """Kept by fewer service nodes than wanted (one died mid-upload): re-pin later."""
        transfer = self.require_transfer()
        if len(ref.peers) >= transfer.wanted_pins:
            return
        now_ms = self._now_ms()
        with self.db.transaction() as cur:
            store.put_repin(
                cur,
                ref.cid,
                ref.size,
                ref.peers,
                now_ms + int(REPIN_FIRST_S * 1000),
                now_ms + REPIN_KEEP_S * 1000,
            )

    async def repin_due(self) -> int:
        """Try the due re-pins once; how many files are now kept by enough nodes."""
        transfer = self.transfer
        if transfer is None:
            return 0
        with self.db.transaction() as cur:
            due = store.due_repins(cur, self._now_ms(), REPIN_BATCH)
        finished = 0
        for row in due:
            pinned, why = await transfer.pin_more(row.cid, row.pinned_by)
            gone = why.startswith("the file is no longer")  # nothing left to serve: give up
            done = len(pinned) >= transfer.wanted_pins or gone
            finished += done and not gone
            if done and not gone:
                logger.info("attachments: re-pinned a sent file: %d service nodes keep it",
                            len(pinned))  # fmt: skip
            else:
                logger.info("attachments: re-pin %d of %d nodes (%s)", len(pinned),
                            transfer.wanted_pins, why)  # fmt: skip
            next_ms = self._now_ms() + int(repin_delay_s(row.tries) * 1000)
            with self.db.transaction() as cur:
                store.update_repin(
                    cur, row.cid, tuple(pinned), done=done, next_ms=next_ms, error=why or None
                )
        return finished

    async def _repin_loop(self) -> None:
        while True:
            await trio.sleep(REPIN_TICK_S)
            try:
                await self.repin_due()
            except BoxlessError as exc:  # a network error: the next tick tries again
                logger.info("attachments: re-pin round failed: %s", exc)

    def send_uploaded(
        self,
        contact: bytes,
        refs: Sequence[AttachmentRef],
        *,
        caption: str = "",
        reply_to: bytes | None = None,
    ) -> bytes:
        """Send files already uploaded (and pinned) to a contact; the message id."""
        row = self.conversations.accepted(contact)
        body = env.Attachments(tuple(refs), caption, reply_to)  # checks the album rules
        now_ms = self._now_ms()
        with self.db.transaction() as cur:
            mid = self.conversations.queue_shown(cur, row, body, preview_text(body), reply_to)
            for i, ref in enumerate(refs):
                store.put_attachment(cur, mid, i, chat_of(contact), True, ref, "ready", now_ms)
        self.channel.emit(ev.MessageChanged(mid.hex(), contact.hex()))
        return mid

    async def _upload_all(
        self,
        files: Sequence[tuple[AsyncIterable[bytes], FileInfo]],
        progress: Callable[[int, int, int | None], None] | None,
    ) -> list[AttachmentRef]:
        transfer = self.require_transfer()
        refs: list[AttachmentRef] = []
        for i, (chunks, info) in enumerate(files):

            def report(done: int, total: int | None, i: int = i) -> None:
                if progress is not None:
                    progress(i, done, total)

            refs.append(await transfer.upload(chunks, info, progress=report))
            self._note_pins(refs[-1])
        return refs

    async def send_group(
        self,
        group_id: bytes,
        files: Sequence[tuple[AsyncIterable[bytes], FileInfo]],
        *,
        caption: str = "",
        progress: Callable[[int, int, int | None], None] | None = None,
    ) -> str:
        """Upload ``files`` and send them to a group (one Megolm message); its message id."""
        if self.groups is None:
            raise UsageError("groups are not available in this client")
        refs = await self._upload_all(files, progress)
        return await self.send_group_uploaded(group_id, refs, caption=caption)

    async def send_group_uploaded(
        self, group_id: bytes, refs: Sequence[AttachmentRef], *, caption: str = ""
    ) -> str:
        """Send files already uploaded to a group (one Megolm message); its message id."""
        if self.groups is None:
            raise UsageError("groups are not available in this client")
        body = env.Attachments(tuple(refs), caption)
        row = await self.groups.send_content(group_id, body, preview_text(body))
        with self.db.transaction() as cur:
            for i, ref in enumerate(refs):
                store.put_attachment(
                    cur,
                    row.message_id.encode(),
                    i,
                    f"group:{group_id.hex()}",
                    True,
                    ref,
                    "ready",
                    self._now_ms(),
                )
        return row.message_id

    # -- receiving (inside the receive transaction) --------------------------------------------

    def _on_group_attachments(
        self, cur: db.Cursor, group_id: bytes, sender: bytes, message_id: str, msg: env.ChatMessage
    ) -> str:
        """A member's files (the group checked membership): rows stored, the text returned."""
        body = msg.body
        assert isinstance(body, env.Attachments)
        if body.is_note:  # asks travel only 1:1; a member's note here is just shown as such
            return "📎 (a note about a file, which groups do not use)"
        key = message_id.encode()
        now_ms = self._now_ms()
        chat = f"group:{group_id.hex()}"
        if all(
            store.put_attachment(cur, key, i, chat, False, ref, "remote", now_ms)
            for i, ref in enumerate(body.items)
        ):
            wants = self.downloads.wants(cur)
            if self.transfer is not None:
                for i, ref in enumerate(body.items):
                    if wants(ref):  # a full queue leaves it for a restart or a request
                        self.downloads.enqueue((key, i))
        return preview_text(body)

    def _on_attachments(self, cur: db.Cursor, r: Received) -> FollowUp | None:
        body = r.message.body
        assert isinstance(body, env.Attachments)
        if body.is_note:
            return self._on_note(cur, r, body)
        mid = r.message.message_id
        now_ms = self._now_ms()
        if not db.add_message(cur, incoming_row(r, preview_text(body), now_ms, body.reply_to)):
            return None
        for i, ref in enumerate(body.items):
            store.put_attachment(cur, mid, i, chat_of(r.sender), False, ref, "remote", now_ms)
        self.channel.emit(ev.MessageChanged(mid.hex(), r.sender.hex()))
        wants = self.downloads.wants(cur)
        wanted = [(mid, i) for i, ref in enumerate(body.items) if wants(ref)]
        if not wanted or self.transfer is None:
            return None

        async def enqueue() -> None:
            for key in wanted:
                self.downloads.enqueue(key)

        return enqueue

    # -- downloading ----------------------------------------------------------------------------

    def attachment(self, message_id: bytes, idx: int) -> store.AttachmentRow:
        return self.downloads.row(message_id, idx)

    def attachments(self, message_id: bytes) -> list[store.AttachmentRow]:
        with self.db.transaction() as cur:
            return store.attachments_of(cur, message_id)

    api_id = staticmethod(api_id)

    async def download(self, message_id: bytes, idx: int) -> store.AttachmentRow:
        """Fetch, verify and cache one file now (:meth:`AttachmentDownloads.download`)."""
        return await self.downloads.download(message_id, idx)

    # -- a file its nodes lost: ask the sender, who pins it again ------------------------------

    async def ask_again(self, message_id: bytes, idx: int) -> str:
        """Ask the sender of a received 1:1 file to pin it again (their client does it
        from its own copy and tells us where); returns whom we asked."""
        row = self.attachment(message_id, idx)
        if row.outgoing or not row.chat.startswith("contact:"):
            raise UsageError("only a file a contact sent you in your 1:1 chat can be asked for")
        contact = bytes.fromhex(row.chat.removeprefix("contact:"))
        note = env.Attachments((), ask=AttachmentAsk(message_id, idx))
        await self.conversations.send_body(contact, note)
        name = self.downloads.sender_name(row)
        self.downloads.set_state(row, "failed", error=f"asked {name} to send it again")
        return name

    def _on_note(self, cur: db.Cursor, r: Received, body: env.Attachments) -> FollowUp | None:
        """An ask (we sent the file: pin it again) or a re-pin (we asked: fetch again).

        Only the chat's other person counts: a note about another chat's file, a file
        we did not send (ask) or did not receive from them (re-pin) is dropped.
        """
        chat = chat_of(r.sender)
        if body.ask is not None:
            ask = body.ask
            row = store.get_attachment(cur, ask.message_id, ask.index)
            if row is None or not row.outgoing or row.chat != chat:
                logger.info("attachments: an ask about no file we sent them: dropped")
                return None
            why = self.asks.allow(r.sender, (ask.message_id, ask.index), self.clock())
            if why is not None:
                logger.info("attachments: an ask to pin a file again was refused: %s", why)
                return None
            sender, ref = r.sender, row.ref

            async def repin() -> None:  # queued: a pin can take minutes, receiving goes on
                try:
                    self._repins_in.send_nowait((sender, ask, ref))
                except trio.WouldBlock:
                    logger.info("attachments: too many re-pins waiting: an ask was dropped")

            return repin
        note = body.repinned
        assert note is not None
        row = store.get_attachment(cur, note.message_id, note.index)
        if row is None or row.outgoing or row.chat != chat or row.state == "ready":
            logger.info("attachments: a re-pin note about no file of theirs we lack: dropped")
            return None
        store.set_peers(cur, note.message_id, note.index, note.peers)
        store.set_state(cur, note.message_id, note.index, "remote", self._now_ms(), error=None)
        key2 = (note.message_id, note.index)

        async def fetch() -> None:
            self.downloads.enqueue(key2)

        return fetch

    async def _repin_for(self, contact: bytes, ask: AttachmentAsk, ref: AttachmentRef) -> None:
        """Pin our copy again on every service peer and tell ``contact`` where."""
        transfer = self.transfer
        if transfer is None:
            return
        peers = await transfer.pin_again(ref.cid, max_peers=MAX_NOTE_PEERS)  # W8: shared
        if peers:
            note = AttachmentRepinned(ask.message_id, ask.index, peers)
            await self.conversations.send_body(contact, env.Attachments((), repinned=note))

    async def _repins_asked(self) -> None:
        """Run the re-pins contacts asked for, one at a time (cancel to stop)."""
        async for contact, ask, ref in self._repins_out:
            await self._repin_for(contact, ask, ref)

    async def open(self, message_id: bytes, idx: int) -> AsyncIterator[bytes]:
        """The file's plaintext, streamed (fetched first if it is not cached).

        Only a stream that ends without an error is the whole, verified file.
        """
        transfer = self.require_transfer()
        row = self.attachment(message_id, idx)
        async for piece in transfer.open(row.ref):
            yield piece

    async def open_range(
        self, message_id: bytes, idx: int, first: int, last: int
    ) -> AsyncIterator[bytes]:
        """The file's bytes ``first..last``, decrypted from the segment that holds
        ``first`` (a seek: only the blocks covering the range are read or fetched)."""
        transfer = self.require_transfer()
        row = self.attachment(message_id, idx)
        async for piece in transfer.open_range(row.ref, first, last):
            yield piece

    def use_transfer(self, transfer: AttachmentTransfer) -> None:
        """Start sending and fetching through ``transfer`` (a running blob service)."""
        self.transfer = transfer
        self.downloads.resume()

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Resume interrupted and pending downloads, then fetch what arrives, one at a time;
        meanwhile re-pin sent files that too few service nodes keep (every 5 s, backing off).

        Cancellation stops a fetch between blocks; its row stays ``downloading``
        and is resumed at the next start.
        """
        task_status.started()
        if self.transfer is not None:
            self.downloads.resume()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._repin_loop)
            nursery.start_soon(self._repins_asked)
            await self.downloads.run()
