"""1:1 conversations: texts, edits, deletes, reactions, receipts, typing.

Theory of operation
-------------------
Sending: a message is encoded once (:mod:`boxless.chat.envelope`), stored and
put in the outbox (:class:`boxless.chat.outbox.Outbox`, rows in the same
transaction). The send task (:mod:`boxless.client.conversation_sender`, one
:class:`OutboxSender` held here) hands out what is due, in queue order; each
attempt goes through the direct channel (Olm → seal → Waku) to the contact's
device. ``queued → sent`` when a relay accepted it, ``→ delivered`` on the
recipient's receipt, ``→ read`` on their read receipt. Undelivered messages
are re-sent with backoff, across restarts.

Receiving: the direct channel hands this feature the bodies it registered
for, already authenticated and past the contact-request gate. Who may do
what (:func:`authorise`): only a message's author edits or deletes it; a
receipt counts only for a message we sent to that same contact; anyone in
the conversation reacts as themselves. Every message that passed the gate
moves the contact's Lamport clock, and each reliable one is acknowledged by a
DELIVERED receipt (batched), duplicates included (the sender may have missed
the first receipt).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import replace

import trio

from boxless.chat import envelope as env
from boxless.chat.ordering import LamportClock
from boxless.chat.outbox import DeliveryState, Outbox
from boxless.chat.requests import ContactState
from boxless.client import events as ev
from boxless.client import store as db
from boxless.client.channel import DirectChannel, FollowUp, Received
from boxless.client.conversation_sender import PUSH_WINDOW as PUSH_WINDOW  # re-exported
from boxless.client.conversation_sender import OutboxSender, state_rank
from boxless.errors import BoxlessError, UsageError

logger = logging.getLogger(__name__)

RECEIPT_BATCH_S = 0.01  # 100 ms acknowledged a burst in fewer receipts, but one lost receipt then
# held ~10 messages for the re-send timers: delivery under 10 % loss went past 600 s (a test)
RECEIPT_HOLD_S = 5.0  # while catching up: receipts wait up to this (or a full chunk)
RESET_INTERVAL_S = 60.0
RECEIPT_CHUNK = 500
MAX_RESET_MEMORY = 1024
ASK_INTERVAL_S = 2.0


class UnknownContact(UsageError):
    """No contact matches what the user typed."""


class Refused(enum.Enum):
    """Why a contact's action on a message was not applied."""

    NO_SUCH_MESSAGE = "no such message in this conversation"
    NOT_AUTHOR = "only a message's author may edit or delete it"
    NOT_OURS = "a receipt for a message we did not send to this contact"


def authorise(sender: bytes, body: env.Body, target: db.MessageRow | None) -> Refused | None:
    """May ``sender`` do ``body`` to ``target`` (a message of our database)? None: yes.

    The one place that decides, for a contact's edit, delete, reaction or
    receipt (STYLE: "who may do what, in one place").
    """
    if target is None or target.contact != sender:
        return Refused.NO_SUCH_MESSAGE
    if isinstance(body, (env.Edit, env.Delete)) and target.outgoing:
        return Refused.NOT_AUTHOR  # our own message: only we may change it
    if isinstance(body, env.Receipt) and not target.outgoing:
        return Refused.NOT_OURS
    return None


class Conversations:
    """The 1:1 messages of one client. Run :meth:`run` in the client's nursery."""

    def __init__(self, channel: DirectChannel, *, clock: Callable[[], float]) -> None:
        self.channel = channel
        self.db = channel.db
        self.clock = clock
        with self.db.transaction() as cur:
            self.outbox = Outbox.from_rows(db.load_outbox_rows(cur), now=clock())
        self.sender = OutboxSender(channel, self.outbox, clock=clock)
        self._receipts: dict[bytes, list[bytes]] = {}
        self._receipts_ready = trio.Event()
        self._catching_up = False
        self._last_reset: dict[bytes, float] = {}
        handlers = channel.handlers
        handlers.on_body((env.Text,), self._on_text)
        handlers.on_body((env.Edit, env.Delete, env.Reaction), self._on_action)
        handlers.on_body((env.Receipt,), self._on_receipt)
        handlers.on_body((env.Typing,), self._on_typing)
        handlers.on_body((env.SessionReset,), self._on_session_reset)
        handlers.accepted.append(self._observe)
        handlers.batch_end.append(self._write_lamports)
        handlers.batch_discard.append(self._forget_lamports)
        self._lamports: dict[bytes, int] = {}  # contact -> highest Lamport of this receive batch
        handlers.unknown_session.append(self.reset_session)
        handlers.missed.append(self.ask_resend)
        self._last_ask: dict[bytes, float] = {}
        self._asking: dict[bytes, bytes] = {}  # contact -> our unacknowledged ask

    async def run(self) -> None:
        """Send what is due and batch receipts, until cancelled (state is in the DB)."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.sender.run)
            nursery.start_soon(self._receipt_loop)

    # -- reads ----------------------------------------------------------------------------

    def messages(
        self, identity_key: bytes, limit: int = 50, before_lamport: int | None = None
    ) -> list[db.MessageRow]:
        """The newest ``limit`` messages (older than ``before_lamport``), oldest first."""
        with self.db.transaction() as cur:
            return db.list_messages(cur, identity_key, limit, before_lamport)

    def message(self, message_id: bytes) -> db.MessageRow | None:
        with self.db.transaction() as cur:
            return db.get_message(cur, message_id)

    def accepted(self, identity_key: bytes) -> db.ContactRow:
        """The contact, if they accepted us; a clear UsageError otherwise."""
        with self.db.transaction() as cur:
            c = db.get_contact(cur, identity_key)
        if c is None:
            raise UnknownContact("no such contact: add them by their link first")
        if c.state != ContactState.ACCEPTED.value:
            raise UsageError(f"{c.display_name} has not accepted your contact request yet")
        return c

    # -- the user's actions -----------------------------------------------------------------

    async def send_text(
        self, identity_key: bytes, text: str, reply_to: bytes | None = None
    ) -> bytes:
        """Queue a text message; return its message id."""
        return await self.send_body(identity_key, env.Text(text, reply_to))

    async def edit(self, message_id: bytes, text: str) -> None:
        msg = self._own_message(message_id)
        await self.send_body(msg.contact, env.Edit(message_id, text))

    async def delete(self, message_id: bytes) -> None:
        msg = self._own_message(message_id)
        await self.send_body(msg.contact, env.Delete(message_id))

    async def react(self, message_id: bytes, emoji: str, remove: bool = False) -> None:
        msg = self.message(message_id)
        if msg is None:
            raise UsageError("no such message")
        await self.send_body(msg.contact, env.Reaction(message_id, emoji, remove))

    async def typing(self, identity_key: bytes, typing: bool) -> None:
        """Tell the contact we are typing (ephemeral: never stored or re-sent)."""
        contact = self.accepted(identity_key)
        msg = self.new_message(contact, env.Typing(typing))
        await self.channel.send_contact(
            contact, contact.conversation_topic, env.encode(msg), ephemeral=True
        )

    async def mark_read(self, identity_key: bytes) -> int:
        """Mark the conversation read and tell the contact; return how many."""
        with self.db.transaction() as cur:
            ids = db.unread_incoming(cur, identity_key)
            db.set_incoming_read(cur, ids)
        if ids:
            contact = self.accepted(identity_key)
            await self._send_receipts(contact, ids, env.ReceiptKind.READ)
        return len(ids)

    def _own_message(self, message_id: bytes) -> db.MessageRow:
        msg = self.message(message_id)
        if msg is None or not msg.outgoing:
            raise UsageError("you can only edit or delete your own messages")
        return msg

    # -- queueing -----------------------------------------------------------------------------

    async def send_body(self, identity_key: bytes, body: env.Body) -> bytes:
        """Queue a reliable body for an accepted contact; return its message id."""
        return self.queue(self.accepted(identity_key), body)

    def new_message(self, contact: db.ContactRow, body: env.Body) -> env.ChatMessage:
        """A message to ``contact`` stamped with the next tick of their Lamport clock."""
        with self.db.transaction() as cur:
            return self._new_message(cur, contact, body)

    def _new_message(
        self, cur: db.Cursor, contact: db.ContactRow, body: env.Body
    ) -> env.ChatMessage:
        seen = self._lamports.get(contact.identity_key)
        if seen is not None:  # inside a receive batch: its messages so far count
            db.observe_lamport(cur, contact.identity_key, seen)  # (kept: written again at its end)
        c = db.get_contact(cur, contact.identity_key) or contact
        clock = LamportClock(c.lamport)
        lamport = clock.tick()
        db.put_contact(cur, replace(c, lamport=clock.value))
        return env.new_message(body, lamport=lamport, sent_at_ms=int(self.clock() * 1000))

    def queue(
        self, contact: db.ContactRow, body: env.Body, content_topic: str | None = None
    ) -> bytes:
        """Store and queue a reliable message in one transaction; the send task delivers it."""
        with self.db.transaction() as cur:
            mid = self.queue_in(cur, contact, body, content_topic)
        if isinstance(body, env.Text):
            self.channel.emit(ev.MessageChanged(mid.hex(), contact.identity_key.hex()))
        return mid

    def queue_in(
        self,
        cur: db.Cursor,
        contact: db.ContactRow,
        body: env.Body,
        content_topic: str | None = None,
    ) -> bytes:
        """:meth:`queue` inside the caller's transaction (a contact change and its
        message commit together)."""
        msg = self._outbox_add(cur, contact, body, content_topic)
        if isinstance(body, env.Text):
            db.add_message(cur, outgoing_row(contact.identity_key, msg, body.text, body.reply_to))
        elif isinstance(body, (env.Edit, env.Delete, env.Reaction)):
            target = db.get_message(cur, body.target)
            if target is not None:  # our own action changes our copy at once
                _apply_action(cur, target, body, by_me=True)
        self.sender.wake()
        return msg.message_id

    def queue_shown(
        self,
        cur: db.Cursor,
        contact: db.ContactRow,
        body: env.Body,
        text: str,
        reply_to: bytes | None = None,
    ) -> bytes:
        """:meth:`queue_in` for a feature's body that the 1:1 chat shows as ``text``
        (a payment card, a red envelope, files): its message row commits with it."""
        msg = self._outbox_add(cur, contact, body, None)
        db.add_message(cur, outgoing_row(contact.identity_key, msg, text, reply_to))
        self.sender.wake()
        return msg.message_id

    def _outbox_add(
        self, cur: db.Cursor, contact: db.ContactRow, body: env.Body, content_topic: str | None
    ) -> env.ChatMessage:
        msg = self._new_message(cur, contact, body)
        topic = content_topic or contact.conversation_topic
        self.outbox.add(msg.message_id, contact.identity_key, topic, env.encode(msg), self.clock())
        row = self.outbox.row(msg.message_id)
        assert row is not None
        db.save_outbox_row(cur, row)
        return msg

    def retry_now(self, recipient: bytes) -> None:
        """Re-send what waits for ``recipient`` now (they accepted, or re-keyed)."""
        self.outbox.retry_now(self.clock(), recipient)
        self.sender.wake()

    # -- receipts ------------------------------------------------------------------------------

    def catching_up(self, active: bool) -> None:
        """The client is working through store history (True) or done (False).

        Meanwhile DELIVERED receipts are held up to :data:`RECEIPT_HOLD_S` (or
        until a sender has a full chunk): a catch-up of thousands of messages
        acknowledges them in a few receipts instead of one per page per sender
        (each receipt is an Olm step, a commit and a light push). Held receipts
        live in memory only: after a crash the senders re-send and we
        acknowledge again."""
        self._catching_up = active
        self._receipts_ready.set()

    async def _receipt_loop(self) -> None:
        """Send DELIVERED receipts soon after, batched over a 10 ms window (each
        receipt costs both sides an Olm step, commits and a push: a burst is
        acknowledged by a few, a catch-up from store by one per sender)."""
        while True:
            await self._receipts_ready.wait()
            await trio.sleep(RECEIPT_BATCH_S)
            await self._hold_while_catching_up()
            self._receipts_ready = trio.Event()
            pending, self._receipts = self._receipts, {}
            for sender, ids in pending.items():
                with self.db.transaction() as cur:
                    contact = db.get_contact(cur, sender)
                if contact is None or contact.state == ContactState.BLOCKED.value:
                    continue
                await self._send_receipts(contact, ids, env.ReceiptKind.DELIVERED)

    async def _hold_while_catching_up(self) -> None:
        with trio.move_on_after(RECEIPT_HOLD_S - RECEIPT_BATCH_S):
            while self._catching_up and not any(
                len(ids) >= RECEIPT_CHUNK for ids in self._receipts.values()
            ):
                self._receipts_ready = trio.Event()
                await self._receipts_ready.wait()

    async def _send_receipts(
        self, contact: db.ContactRow, ids: list[bytes], kind: env.ReceiptKind
    ) -> None:
        for i in range(0, len(ids), RECEIPT_CHUNK):
            body = env.Receipt(tuple(ids[i : i + RECEIPT_CHUNK]), kind)
            msg = self.new_message(contact, body)
            try:
                await self.channel.send_contact(
                    contact, contact.conversation_topic, env.encode(msg)
                )
            except BoxlessError as exc:  # the sender re-sends; we receipt again then
                logger.info("receipt not sent: %s", exc)

    # -- handlers (inside the receive transaction) ----------------------------------------------

    def _observe(self, cur: db.Cursor, sender: bytes, msg: env.ChatMessage) -> None:
        """Every message that passed the gate: order it, and acknowledge a reliable one.

        The contact's clock only moves up, so a batch moves it once, to the highest
        Lamport it saw (:meth:`_write_lamports`, before the batch commits); a message
        we stamp inside the batch reads those seen so far (:meth:`_new_message`)."""
        if msg.lamport > self._lamports.get(sender, -1):
            self._lamports[sender] = msg.lamport
        if env.is_reliable(msg.body):
            self._receipts.setdefault(sender, []).append(msg.message_id)
            self._receipts_ready.set()

    def _write_lamports(self, cur: db.Cursor) -> None:
        """The end of a receive batch: each contact's clock moved once, in its transaction."""
        if self._lamports:
            db.observe_lamports(cur, self._lamports.items())
        self._lamports = {}

    def _forget_lamports(self) -> None:
        """The receive batch rolled back: the clocks it saw were never written."""
        self._lamports = {}

    def _on_text(self, cur: db.Cursor, r: Received) -> FollowUp | None:
        body = r.message.body
        assert isinstance(body, env.Text)
        row = incoming_row(r, body.text, int(self.clock() * 1000), body.reply_to)
        if db.add_message(cur, row):
            self.channel.emit(ev.MessageChanged(r.message.message_id.hex(), r.sender.hex()))
        return None

    def _on_action(self, cur: db.Cursor, r: Received) -> FollowUp | None:
        body = r.message.body
        assert isinstance(body, (env.Edit, env.Delete, env.Reaction))
        target = db.get_message(cur, body.target)
        refused = authorise(r.sender, body, target)
        if refused is not None or target is None:
            logger.info("a contact's %s was refused: %s", type(body).__name__, refused)
            return None
        _apply_action(cur, target, body, by_me=False)
        self.channel.emit(ev.MessageChanged(target.message_id.hex(), r.sender.hex()))
        return None

    def _on_receipt(self, cur: db.Cursor, r: Received) -> FollowUp | None:
        body = r.message.body
        assert isinstance(body, env.Receipt)
        read = body.kind is env.ReceiptKind.READ
        new_state = DeliveryState.READ.value if read else DeliveryState.DELIVERED.value
        for mid in body.message_ids:
            msg = db.get_message(cur, mid)
            entry = self.outbox.get(mid)
            if entry is not None and entry.recipient != r.sender:
                logger.info("a receipt for a message sent to someone else was ignored")
                continue
            if entry is not None:
                if read:
                    self.outbox.on_read(mid)
                else:
                    self.outbox.on_delivered(mid)
                if self.outbox.row(mid) is None:
                    db.delete_outbox_row(cur, mid)
            if msg is None or authorise(r.sender, body, msg) is not None:
                continue
            if state_rank(new_state) > state_rank(msg.state):
                db.update_message(cur, replace(msg, state=new_state))
                self.channel.emit(ev.MessageChanged(mid.hex(), r.sender.hex()))
        return None

    def _on_typing(self, cur: db.Cursor, r: Received) -> FollowUp | None:
        body = r.message.body
        assert isinstance(body, env.Typing)
        self.channel.emit(ev.Typing(r.sender.hex(), body.typing))
        return None

    def _on_session_reset(self, cur: db.Cursor, r: Received) -> FollowUp | None:
        self.retry_now(r.sender)
        return None

    async def ask_resend(self, sender: bytes) -> None:
        """A contact's message came too late to read (its key was dropped): ask them
        to re-send what we have not acknowledged. At most one ask per
        :data:`ASK_INTERVAL_S`; one that comes sooner is sent when the interval
        ends (so the last late message of a burst is asked for too). Our session
        stays: a ``SessionReset`` body only makes their outbox retry at once."""
        with self.db.transaction() as cur:
            contact = db.get_contact(cur, sender)
        now = self.clock()
        if contact is None or contact.state != ContactState.ACCEPTED.value:
            return
        last = self._last_ask.get(sender)
        if last is not None and last > now:
            return  # an ask is already scheduled
        pending = self._asking.get(sender)
        if pending is not None and pending in self.outbox:
            return  # the last ask is not acknowledged yet: one is enough (a replayer can't pile them up)
        at = now if last is None or now - last >= ASK_INTERVAL_S else last + ASK_INTERVAL_S
        if len(self._last_ask) >= MAX_RESET_MEMORY:
            self._last_ask = {k: t for k, t in self._last_ask.items() if now - t < ASK_INTERVAL_S}
        self._last_ask[sender] = at
        logger.info("asking a contact to re-send messages that came too late to read")
        mid = self.queue(contact, env.SessionReset())
        if len(self._asking) >= MAX_RESET_MEMORY:
            self._asking = {k: m for k, m in self._asking.items() if m in self.outbox}
        self._asking[sender] = mid
        if at > now:
            self.outbox.defer(mid, at)

    async def reset_session(self, sender: bytes) -> None:
        """A contact's message fits no session: start over with a fresh one (rate limited)."""
        with self.db.transaction() as cur:
            contact = db.get_contact(cur, sender)
        now = self.clock()
        if contact is None or now - self._last_reset.get(sender, -RESET_INTERVAL_S) < (
            RESET_INTERVAL_S
        ):
            return
        if len(self._last_reset) >= MAX_RESET_MEMORY:
            self._last_reset = {
                k: t for k, t in self._last_reset.items() if now - t < RESET_INTERVAL_S
            }
        self._last_reset[sender] = now
        self.channel.sessions.reset(contact.device_key)
        logger.info("re-establishing the session with a contact")
        self.queue(contact, env.SessionReset())


def outgoing_row(
    contact: bytes,
    msg: env.ChatMessage,
    text: str,
    reply_to: bytes | None = None,
    state: str = DeliveryState.QUEUED.value,
) -> db.MessageRow:
    """A message we queued to ``contact`` as the chat shows it (``text``: the words,
    or a card's preview); ``state``: "sent" for one another device of ours sent."""
    return db.MessageRow(
        message_id=msg.message_id,
        contact=contact,
        outgoing=True,
        lamport=msg.lamport,
        sent_at_ms=msg.sent_at_ms,
        received_at_ms=None,
        text=text,
        reply_to=reply_to,
        edited=False,
        deleted=False,
        state=state,
        reactions={},
    )


def incoming_row(
    r: Received, text: str, received_at_ms: int, reply_to: bytes | None = None
) -> db.MessageRow:
    """A contact's message as the chat shows it (``text``: the words, or a card's preview)."""
    return db.MessageRow(
        message_id=r.message.message_id,
        contact=r.sender,
        outgoing=False,
        lamport=r.message.lamport,
        sent_at_ms=r.message.sent_at_ms,
        received_at_ms=received_at_ms,
        text=text,
        reply_to=reply_to,
        edited=False,
        deleted=False,
        state="received",
        reactions={},
    )


def _apply_action(cur: db.Cursor, target: db.MessageRow, body: env.Body, by_me: bool) -> None:
    if isinstance(body, env.Edit):
        db.update_message(cur, replace(target, text=body.text, edited=True))
    elif isinstance(body, env.Delete):
        db.update_message(cur, replace(target, text="", deleted=True, reactions={}))
    elif isinstance(body, env.Reaction):
        who = "me" if by_me else "them"
        reactions = {k: list(v) for k, v in target.reactions.items()}
        people = reactions.setdefault(body.emoji, [])
        if body.remove and who in people:
            people.remove(who)
        elif not body.remove and who not in people:
            people.append(who)
        db.update_message(cur, replace(target, reactions={k: v for k, v in reactions.items() if v}))
