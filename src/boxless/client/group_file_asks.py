""" "Ask again" in groups: a member asks the sender of a file the network lost to pin it again.

Theory of operation
-------------------
As in 1:1 chats (``client/attachments.py``), but between two members who need not
be contacts, so the notes travel like a group's direct bodies: an
:class:`~boxless.chat.attachment.AttachmentAsk` / ``AttachmentRepinned`` naming the
group (``group_id``) and the group message's 32-byte id, Olm-encrypted to the other
member's device from its card (:meth:`GroupCore.queue_direct`: the group's direct
outbox, retried until the network takes it, kept across restarts). The channel
routes these notes here ungated (``Handlers.on_body_when``); their rules are ours:

* the sending device must be the member's as the group knows it (its card or a
  contact's device, or one its identity certified);
* an ask is answered only by the file's sender, only about a file it really sent
  to that group, only for a current member who was already in the group when the
  file was sent (its Join op is not later than the message, 5 min of clock skew
  allowed) -- :func:`ask_refusal`, a pure function;
* each file is pinned again at most once a minute and each member gets a burst of
  3 re-pins, then one a minute (:class:`~boxless.client.repin_asks.AskLimiter`, the
  1:1 asks' limits, bounded tables);
* the re-pin runs in this feature's own task, never in the receive pipeline (a
  large file or a silent node would stall everything else), from a bounded queue
  (a full queue drops the ask: the member may ask again later);
* a *re-pinned* note is taken only from the file's sender, for a file we received
  in that group and lack: its peers replace the descriptor's and the file is
  fetched again (in this feature's task, one at a time).
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import trio

from boxless.chat import envelope as env
from boxless.chat.attachment import AttachmentAsk, AttachmentRef, AttachmentRepinned
from boxless.client import attachment_store as store
from boxless.client import group_store as gs
from boxless.client import store as db
from boxless.client.attachments import AttachmentManager, NoSuchAttachment
from boxless.client.channel import DirectChannel, FollowUp, Received
from boxless.client.groups import GroupManager
from boxless.client.repin_asks import AskLimiter
from boxless.errors import BoxlessError, UsageError
from boxless.groups import GroupState

__all__ = ["GroupFileAsks", "ask_refusal", "is_group_note"]

logger = logging.getLogger(__name__)

SKEW_MS: Final = 5 * 60 * 1000  # a Join op's clock may run this far ahead of the sender's
REPIN_QUEUE: Final = 16
FETCH_QUEUE: Final = 64
MAX_NOTE_PEERS: Final = 8
_HEX_ID = re.compile(r"[0-9a-f]{64}")


def is_group_note(body: object) -> bool:
    """An ask or re-pinned note about a file sent to a group (routed to this feature)."""
    if not isinstance(body, env.Attachments):
        return False
    note = body.ask or body.repinned
    return note is not None and bool(note.group_id)


def ask_refusal(
    *,
    me: bytes,
    asker: bytes,
    group_id: bytes,
    state: GroupState | None,
    asker_joined_ms: int | None,
    file: store.AttachmentRow | None,
    sent_at_ms: int | None,
) -> str | None:
    """Whether we answer ``asker``'s ask about a file of group ``group_id``: None, or why not.

    ``state`` is the group as we know it (None: not ours), ``asker_joined_ms`` the
    time of the op that last let the asker in, ``file`` our row of the file named and
    ``sent_at_ms`` when its message was sent (both None if we have no such message)."""
    if state is None or not state.is_member(me):
        return "not a group we are in"
    if not state.is_member(asker):
        return "the asker is not a member of that group"
    if (
        file is None
        or sent_at_ms is None
        or not file.outgoing
        or file.chat != f"group:{group_id.hex()}"
    ):
        return "not a file we sent to that group"
    if asker_joined_ms is None or asker_joined_ms > sent_at_ms + SKEW_MS:
        return "the asker joined after the file was sent"
    return None


@dataclass(frozen=True, slots=True)
class _Repin:
    asker: bytes
    group_id: bytes
    message_id: bytes  # the group message's 32-byte id
    index: int
    ref: AttachmentRef


class GroupFileAsks:
    """The group side of "Ask again" (see the module docstring); run :meth:`run`."""

    def __init__(
        self,
        channel: DirectChannel,
        groups: GroupManager,
        attachments: AttachmentManager,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.channel = channel
        self.groups = groups
        self.attachments = attachments
        self.db = channel.db
        self.clock = clock
        self.limits = AskLimiter()  # the 1:1 asks' limits, per member
        self.dropped: Counter[str] = Counter()
        self._repin_in, self._repin_out = trio.open_memory_channel[_Repin](REPIN_QUEUE)
        self._fetch_in, self._fetch_out = trio.open_memory_channel[tuple[bytes, int]](FETCH_QUEUE)
        channel.handlers.on_body_when((env.Attachments,), is_group_note, self._on_note, gated=False)

    # -- asking ------------------------------------------------------------------------------

    async def ask(self, message_id: bytes, idx: int) -> str:
        """Ask the member who sent file ``idx`` of group message ``message_id`` (its id
        as the API shows it) to pin it again; returns whom we asked."""
        row = self.attachments.attachment(message_id, idx)
        text_id = message_id.decode("ascii", "replace")
        if row.outgoing or not row.chat.startswith("group:") or not _HEX_ID.fullmatch(text_id):
            raise UsageError("only a file a member sent to a group you are in can be asked for")
        gid = bytes.fromhex(row.chat.removeprefix("group:"))
        core = self.groups.core
        with self.db.transaction() as cur:
            found = gs.get_message(cur, text_id)
            if found is None:
                raise NoSuchAttachment("no such attachment")
            sender = found[1].sender
            state = core.member_log(cur, gid).state  # NotAMember if we left
            name = core.name(cur, gid, sender) or "the sender"
            if not state.is_member(sender):
                raise UsageError(f"{name} is no longer in this group: nobody can send it again")
            note = AttachmentAsk(bytes.fromhex(text_id), idx, gid)
            core.queue_direct(cur, sender, env.Attachments((), ask=note))
            store.set_state(
                cur, row.message_id, idx, "failed", _ms(self.clock()), error=f"asked {name} to send it again"
            )  # fmt: skip
        return name

    # -- from the receive pipeline (inside its transaction) ---------------------------------

    def _on_note(self, cur: db.Cursor, r: Received) -> FollowUp | None:
        body = r.message.body
        assert isinstance(body, env.Attachments)
        known = self.groups.core.device(cur, r.sender)
        devices = self.channel.devices
        if known != r.device_key and not (
            devices is not None and devices.certified(cur, r.sender, r.device_key)
        ):
            return self._drop("a device that is not the member's")
        if body.ask is not None:
            return self._on_ask(cur, r.sender, body.ask)
        assert body.repinned is not None
        return self._on_repinned(cur, r.sender, body.repinned)

    def _on_ask(self, cur: db.Cursor, asker: bytes, ask: AttachmentAsk) -> FollowUp | None:
        gid, key = ask.group_id, ask.message_id.hex()
        core = self.groups.core
        state = joined = None
        if gs.has_group(cur, gid):
            log = core.log(cur, gid)
            state = log.state
            member = state.members.get(asker)
            op = log.get(member.joined_at_op) if member is not None else None
            joined = op.created_at_ms if op is not None else None
        row = store.get_attachment(cur, key.encode(), ask.index)
        found = gs.get_message(cur, key)
        why = ask_refusal(
            me=core.me,
            asker=asker,
            group_id=gid,
            state=state,
            asker_joined_ms=joined,
            file=row,
            sent_at_ms=found[1].sent_at_ms if found is not None else None,
        ) or self.limits.allow(asker, (ask.message_id, ask.index), self.clock())
        if why is not None or row is None:
            return self._drop(why or "no such file")
        job = _Repin(asker, gid, ask.message_id, ask.index, row.ref)

        async def queue() -> None:  # after commit; the re-pin runs in our own task
            try:
                self._repin_in.send_nowait(job)
            except trio.WouldBlock:
                self._drop("too many re-pins waiting")

        return queue

    def _on_repinned(
        self, cur: db.Cursor, sender: bytes, note: AttachmentRepinned
    ) -> FollowUp | None:
        key = note.message_id.hex().encode()
        row = store.get_attachment(cur, key, note.index)
        found = gs.get_message(cur, key.decode())
        if (
            row is None
            or found is None
            or row.outgoing
            or row.chat != f"group:{note.group_id.hex()}"
            or found[1].sender != sender
            or row.state == "ready"
        ):
            return self._drop("a re-pin note about no file of theirs we lack")
        store.set_peers(cur, key, note.index, note.peers)
        store.set_state(cur, key, note.index, "remote", _ms(self.clock()), error=None)

        async def fetch() -> None:
            try:
                self._fetch_in.send_nowait((key, note.index))
            except trio.WouldBlock:
                self._drop("too many fetches waiting")  # left "remote": Download fetches it

        return fetch

    def _drop(self, why: str) -> FollowUp | None:
        """Count and log a refused note; returns no follow-up (``return self._drop(...)``)."""
        self.dropped[why] += 1
        logger.info("group file note dropped: %s", why)
        return None

    # -- the feature's own task ---------------------------------------------------------------

    async def run(self) -> None:
        """Pin files again for the members who asked, and fetch files whose sender
        pinned them again, each one at a time, until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._repins)
            async for key, idx in self._fetch_out:
                try:  # a failure is on the row (and its event); no blob service: it waits
                    await self.attachments.download(key, idx)
                except BoxlessError as exc:
                    logger.info("group file: not fetched again: %s", exc)

    async def _repins(self) -> None:
        async for job in self._repin_out:
            await self._repin(job)

    async def _repin(self, job: _Repin) -> None:
        """Pin our copy again on every service peer and tell the member where."""
        transfer = self.attachments.transfer
        if transfer is None:
            return
        peers = await transfer.pin_again(job.ref.cid, max_peers=MAX_NOTE_PEERS)
        if peers:
            note = AttachmentRepinned(job.message_id, job.index, peers, job.group_id)
            with self.db.transaction() as cur:
                self.groups.core.queue_direct(cur, job.asker, env.Attachments((), repinned=note))


def _ms(t: float) -> int:
    return int(t * 1000)
