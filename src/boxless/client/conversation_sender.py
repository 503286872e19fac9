"""The 1:1 outbox's send task: what is due goes out, in queue order, and settles.

Theory of operation
-------------------
:class:`~boxless.client.conversations.Conversations` queues messages (rows and
outbox entries in one transaction) and wakes this task. One round
(:meth:`OutboxSender._send_due`) takes what the outbox says is due, seals it in
chunks of :data:`SEND_CHUNK` (Olm → seal, one transaction), pushes each chunk
through a window of :data:`PUSH_WINDOW` concurrent light pushes started in
queue order and settles the outcomes in one transaction (``queued → sent``, or
a retry with backoff). A recipient whose push failed gets nothing more that
round, so a rate-limited burst never arrives shuffled. Cancelling :meth:`run`
loses nothing: every state is in the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import trio

from boxless.chat import envelope as env
from boxless.chat.outbox import Outbox, OutboxEntry, StateChange
from boxless.chat.requests import ContactState
from boxless.client import events as ev
from boxless.client import store as db
from boxless.client.channel import DirectChannel
from boxless.errors import BoxlessError, UsageError
from boxless.waku.message import WakuMessage

__all__ = ["PUSH_WINDOW", "SEND_CHUNK", "OutboxSender", "may_send", "state_rank"]

logger = logging.getLogger(__name__)

SEND_CHUNK = 50  # messages sealed and settled per transaction
PUSH_WINDOW = 4  # light pushes in flight at once (a burst's p99: one after another, 9.2 s)

_RANKS = {"queued": 0, "sent": 1, "delivered": 2, "read": 3, "failed": -1}


def state_rank(state: str) -> int:
    """A message's visible delivery state, ordered: a state only moves up."""
    return _RANKS.get(state, 0)


class OutboxSender:
    """Delivers the outbox of :class:`~boxless.client.conversations.Conversations`."""

    def __init__(
        self, channel: DirectChannel, outbox: Outbox, *, clock: Callable[[], float]
    ) -> None:
        self.channel = channel
        self.db = channel.db
        self.outbox = outbox
        self.clock = clock
        self._wake = trio.Event()

    def wake(self) -> None:
        """Something was queued or became due: look again now."""
        self._wake.set()

    async def run(self) -> None:
        """Send what is due, then wait for the outbox's next timer or a wake;
        until cancelled (state is in the database)."""
        while True:
            await self._send_due()
            timer = self.outbox.get_timer()
            delay = 60.0 if timer is None else max(0.0, timer - self.clock())
            with trio.move_on_after(delay):
                await self._wake.wait()
            self._wake = trio.Event()

    async def _send_due(self) -> None:
        """One round over what is due, oldest first, in chunks: seal a chunk in one
        transaction, push it through a window of :data:`PUSH_WINDOW` concurrent
        light pushes started in queue order, settle it in one transaction. A
        recipient whose message failed gets nothing more this round: what has not
        started yet waits behind it, in order (a rate-limited burst would
        otherwise arrive shuffled); the receiver orders by Lamport, so the few
        pushes already in flight cannot overtake it in their history."""
        due = self.outbox.due(self.clock())
        held: dict[bytes, float] = {}
        window = trio.Semaphore(PUSH_WINDOW)
        for i in range(0, len(due), SEND_CHUNK):
            ready = self._seal(due[i : i + SEND_CHUNK])
            outcomes: dict[int, tuple[bytes, StateChange | None, bytes]] = {}
            previous = trio.Event()
            previous.set()
            async with trio.open_nursery() as nursery:
                for n, (entry, message) in enumerate(ready):
                    await window.acquire()  # a failure seen meanwhile holds the rest
                    if entry.recipient in held:
                        window.release()
                        self.outbox.defer(entry.message_id, held[entry.recipient])
                        continue
                    done = trio.Event()
                    nursery.start_soon(
                        self._push_one, entry, message, n, outcomes, held, previous, done, window
                    )
                    previous = done
            self._settle_all([outcomes[n] for n in sorted(outcomes)])

    async def _push_one(
        self,
        entry: OutboxEntry,
        message: WakuMessage | None,
        n: int,
        outcomes: dict[int, tuple[bytes, StateChange | None, bytes]],
        held: dict[bytes, float],
        previous: trio.Event,
        done: trio.Event,
        window: trio.Semaphore,
    ) -> None:
        """One push of the window; the fan-out to the contact's other devices goes
        after the previous message's, so those devices get them in queue order too."""
        try:
            sent = message is not None and await self._push(message)
        finally:
            window.release()
        now = self.clock()
        if sent:
            change = self.outbox.on_sent(entry.message_id, now)
        else:  # hold what has not started yet for this recipient, at once
            change = self.outbox.on_send_failed(entry.message_id, now)
            head = self.outbox.get(entry.message_id)
            if head is not None:
                held.setdefault(entry.recipient, head.next_attempt_at)
        outcomes[n] = (entry.message_id, change, entry.recipient)
        try:
            await previous.wait()
            if sent:  # and the contact's other linked devices (client/devices.py)
                await self.channel.fan_out(
                    entry.recipient, None, entry.content_topic, entry.payload
                )
        finally:
            done.set()

    def _seal(self, entries: list[OutboxEntry]) -> list[tuple[OutboxEntry, WakuMessage | None]]:
        """Olm-encrypt and seal what may go now, in one transaction (None: can't seal)."""
        ready: list[tuple[OutboxEntry, WakuMessage | None]] = []
        gone: list[bytes] = []
        with self.db.transaction() as cur:
            for entry in entries:
                contact = db.get_contact(cur, entry.recipient)
                if contact is None or contact.state == ContactState.BLOCKED.value:
                    self.outbox.remove(entry.message_id)
                    db.delete_outbox_row(cur, entry.message_id)
                    gone.append(entry.message_id)
                elif may_send(contact, entry):
                    try:
                        bundle = self.channel.contact_bundle(contact)
                    except UsageError as exc:
                        logger.info("cannot send yet: %s", exc)
                        ready.append((entry, None))
                        continue
                    ready.append(
                        (entry, self.channel.seal(bundle, entry.content_topic, entry.payload))
                    )
                # else: waits for their answer; retried when they accept
        return ready

    async def _push(self, message: WakuMessage) -> bool:
        try:
            return (await self.channel.push(message)).accepted
        except BoxlessError as exc:
            logger.info("send failed, will retry: %s", exc)
            return False

    def _settle_all(self, outcomes: list[tuple[bytes, StateChange | None, bytes]]) -> None:
        """Persist a round's outbox entries (or removals) and messages' visible states."""
        changed: list[tuple[bytes, bytes]] = []
        with self.db.transaction() as cur:
            for message_id, change, contact in outcomes:
                if self._settle_in(cur, change, message_id):
                    changed.append((message_id, contact))
        for message_id, contact in changed:
            self.channel.emit(ev.MessageChanged(message_id.hex(), contact.hex()))

    def _settle_in(self, cur: db.Cursor, change: StateChange | None, message_id: bytes) -> bool:
        """Persist one outbox entry (or its removal) and its message's visible state;
        True if a change is worth an event."""
        row = self.outbox.row(message_id)
        if row is None:
            db.delete_outbox_row(cur, message_id)
        else:
            db.save_outbox_row(cur, row)
        if change is None:
            return False
        msg = db.get_message(cur, message_id)
        if msg is not None and state_rank(change.new.value) > state_rank(msg.state):
            db.update_message(cur, replace(msg, state=change.new.value))
        return True


def may_send(contact: db.ContactRow, entry: OutboxEntry) -> bool:
    """Whether a queued message may go to ``contact`` now: a request always; on the
    conversation topic, anything once they accepted or asked us, and our answer
    when we declined them (nothing else: they are not a contact)."""
    if entry.content_topic != contact.conversation_topic:
        return True  # a contact request, on their partition topic
    if contact.state in (ContactState.ACCEPTED.value, ContactState.REQUEST_RECEIVED.value):
        return True
    if contact.state == ContactState.DECLINED.value:
        return isinstance(env.decode(entry.payload).body, env.ContactResponse)
    return False
