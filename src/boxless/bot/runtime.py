"""Run a :class:`~boxless.bot.app.BotApp` on a Boxless account, headless.

Theory of operation
-------------------
A bot is an ordinary :class:`~boxless.client.core.Client`. :class:`Bot` listens
to the client's typed events and turns the ones meant for it into jobs: a new
incoming 1:1 or group text (``message``/``group_message`` events, read back from
the store, so only authenticated messages count), a mini app's request
(``app_message`` with kind ``request``), a contact request (accepted when
``accept_contacts``). Every job goes through the :class:`~boxless.bot.inbox.Inbox`
(a bounded queue and a token bucket per user, fair turns), so a flooding user is
rate-limited and cannot starve the others or grow memory. A dispatcher runs at
most ``concurrency`` handlers at a time. Payments are read from the chain, never
taken from a user's word: the bot watches the escrow deals it is told about
(:meth:`Bot.watch_deal`) and reports each state change whose seller is the bot.
Scheduled jobs run in the same nursery; cancelling the bot cancels them all.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from boxless._trio_compat import TaskStatus
from boxless.bot.app import BotApp, Message, Payment, Request
from boxless.bot.inbox import Inbox, Limits
from boxless.chat.requests import ContactEvent
from boxless.errors import BoxlessError, UsageError

if TYPE_CHECKING:
    from boxless.client.core import Client
    from boxless.client.escrow import Escrow
    from boxless.client.transport import Transport

logger = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 16 * 1024  # docs/miniapps.md: an AppMessage's JSON
SEEN_IDS = 10_000  # message ids remembered (an edit or receipt re-announces a message)
WATCHED_DEALS = 10_000
PAYMENT_POLL_S = 2.0
_DEAL_EVENTS = {
    "open": "funded",
    "released": "released",
    "refunded": "refunded",
    "reclaimed": "reclaimed",
}

_FINAL = frozenset({"released", "refunded", "reclaimed"})

Job = Message | Request | tuple[str, str]  # ("contact", key hex): a contact request


class Bot:
    """A running bot. As a library::

        async with Bot.open(home, passphrase, app, transport=t) as bot:
            await trio.sleep_forever()

    or over a client that already runs: ``await nursery.start(Bot(app, client).run)``.
    """

    def __init__(
        self,
        app: BotApp,
        client: Client,
        *,
        limits: Limits | None = None,
        concurrency: int = 8,
        accept_contacts: bool = True,
        escrow: Escrow | None = None,
        monotonic: Callable[[], float] = trio.current_time,
    ) -> None:
        self.app = app
        self.client = client
        self.inbox: Inbox[Job] = Inbox(limits or Limits())
        self.accept_contacts = accept_contacts
        self.escrow = escrow
        self.monotonic = monotonic
        self.handled = 0
        self._limiter = trio.Semaphore(concurrency)
        self._wake = trio.Event()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._deals: OrderedDict[int, str] = OrderedDict()  # deal -> last state seen
        self._started_ms = 0

    # -- opening an account ---------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def open(
        cls, home: Path, passphrase: str, app: BotApp, *, transport: Transport, **options: Any
    ) -> AsyncIterator[Bot]:
        """Open the account in ``home``, run its client over ``transport`` and the bot;
        on exit (or cancellation) both stop and the account closes."""
        from boxless.client.core import Client
        from boxless.identity.account import open_account

        account = open_account(home, passphrase)
        try:
            async with trio.open_nursery() as nursery:
                client = Client(account, transport)
                await nursery.start(client.run)
                bot = cls(app, client, **options)
                await nursery.start(bot.run)
                yield bot
                nursery.cancel_scope.cancel()
        finally:
            account.close()

    # -- what handlers call ------------------------------------------------------------------

    @property
    def me(self) -> str:
        return self.client.me.hex()

    async def send(self, chat: str, text: str) -> None:
        """Send ``text`` to ``contact:<hex>`` or ``group:<hex>``."""
        kind, _, key = chat.partition(":")
        if kind == "contact":
            await self.client.send_text(bytes.fromhex(key), text)
        elif kind == "group":
            await self.client.groups.send_text(bytes.fromhex(key), text)
        else:
            raise UsageError(f"a chat is contact:<hex> or group:<hex>, not {chat!r}")

    async def push(self, user: str, app_id: str, payload: Any) -> None:
        """Send an unrequested message (``push``) to ``user``'s copy of the app."""
        await self._app_message(user, app_id, "push", os.urandom(16), payload)

    def watch_deal(self, deal: int) -> None:
        """Follow escrow deal ``deal`` on the chain; ``on_payment`` hears its changes."""
        if self.escrow is None:
            raise UsageError("this bot has no escrow contract configured")
        if deal not in self._deals:
            self._deals[deal] = "none"
            while len(self._deals) > WATCHED_DEALS:
                self._deals.popitem(last=False)

    # -- running -----------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[Bot] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled (cancellation stops handlers and jobs mid-way).

        Listens before the client's catch-up from store history ends: a request sent
        while the bot was down arrives in it (before, it was emitted to nobody)."""
        self._started_ms = int(self.client.clock() * 1000) - 1000
        async with self.client.events(buffer=4096) as events, trio.open_nursery() as nursery:
            await self.client.ready.wait()
            nursery.start_soon(self._dispatch)
            for seconds, job in self.app.jobs:
                nursery.start_soon(self._every, seconds, job)
            if self.escrow is not None and self.app.payment_handlers:
                nursery.start_soon(self._watch_payments)
            if self.accept_contacts:
                for c in self.client.contacts():
                    if c.state == "request_received":
                        self._offer(c.identity_key.hex(), ("contact", c.identity_key.hex()))
            task_status.started(self)
            async for event in events:
                self._on_event(event)

    def _on_event(self, event: Any) -> None:
        kind = event.type
        if kind == "message" and event.contact:
            self._on_direct(event.message_id)
        elif kind == "group_message":
            self._on_group(event.id)
        elif kind == "app_message" and event.kind == "request":
            self._offer(
                event.contact, Request(event.contact, event.app_id, event.request_id, event.payload)
            )
        elif (
            kind == "contact_request" and self.accept_contacts and event.state == "request_received"
        ):
            self._offer(event.contact, ("contact", event.contact))

    def _on_direct(self, message_id: str) -> None:
        row = self.client.message(bytes.fromhex(message_id))
        if (
            row is None
            or row.outgoing
            or row.deleted
            or not self._new(message_id, row.received_at_ms)
        ):
            return
        sender = row.contact.hex()
        self._offer(
            sender,
            Message(
                f"contact:{sender}",
                message_id,
                sender,
                row.text,
                row.sent_at_ms,
                row.received_at_ms or 0,
            ),
        )

    def _on_group(self, message_id: str) -> None:
        try:
            _, row = self.client.groups.message(message_id)
        except BoxlessError:
            return
        if row.outgoing or row.kind != "text" or not self._new(message_id, row.received_at_ms):
            return
        sender = row.sender.hex()
        chat = f"group:{row.group_id.hex()}"
        self._offer(
            sender,
            Message(chat, message_id, sender, row.text, row.sent_at_ms, row.received_at_ms or 0),
        )

    def _new(self, message_id: str, received_at_ms: int | None) -> bool:
        """Not seen yet and received while the bot runs (older ones were answered before)."""
        if message_id in self._seen or (received_at_ms or 0) < self._started_ms:
            return False
        self._seen[message_id] = None
        while len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)
        return True

    def _offer(self, user: str, job: Job) -> None:
        if self.inbox.offer(user, job, self.monotonic()):
            self._wake.set()
        else:
            logger.info("bot: %s is over its limits; a job was dropped", user[:16])

    async def _dispatch(self) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                # a free slot first, then the next job: a job taken early would wait for
                # a slot with its turn already given (a flooder's job ahead of another user)
                await self._limiter.acquire()
                taken = self.inbox.take()
                while taken is None:
                    await self._wake.wait()
                    self._wake = trio.Event()
                    taken = self.inbox.take()
                nursery.start_soon(self._handle, taken[1])

    async def _handle(self, job: Job) -> None:
        try:
            if isinstance(job, Message):
                await self._handle_message(job)
            elif isinstance(job, Request):
                await self._handle_request(job)
            else:
                await self.client.respond(bytes.fromhex(job[1]), ContactEvent.ACCEPT)
            self.handled += 1
        except BoxlessError as exc:
            logger.warning("bot: a job failed: %s", exc)
        finally:
            self._limiter.release()

    async def _handle_message(self, msg: Message) -> None:
        for handler in self.app.message_handlers:
            answer = await self._user_code(handler, msg)
            if isinstance(answer, str) and answer:
                await self.send(msg.chat, answer)

    async def _handle_request(self, req: Request) -> None:
        handler = self.app.request_handlers.get(req.app_id)
        if handler is None:
            answer: Any = {"error": f"this bot does not serve {req.app_id}"}
        else:
            answer = await self._user_code(handler, req)
        await self._app_message(
            req.user, req.app_id, "response", bytes.fromhex(req.request_id), answer
        )

    async def _user_code(self, handler: Callable[[Bot, Any], Any], job: Any) -> Any:
        """Run a handler; its own bug answers ``{"error": ...}`` and is logged, and the
        bot keeps serving the other users (the one place that catches everything)."""
        try:
            return await handler(self, job)
        except BoxlessError as exc:
            return {"error": str(exc)}
        except Exception:
            logger.exception("bot: handler %s failed", getattr(handler, "__name__", handler))
            return {"error": "the bot failed on this request"}

    async def _app_message(
        self, user: str, app_id: str, kind: str, request_id: bytes, payload: Any
    ) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        if len(data) > MAX_PAYLOAD_BYTES:
            data = json.dumps({"error": "the answer is over 16 KiB"}).encode()
        await self.client.miniapps.send_app_message(
            bytes.fromhex(user), app_id, kind, request_id, data
        )

    async def _every(self, seconds: float, job: Callable[[Bot], Any]) -> None:
        while True:
            await trio.sleep(seconds)
            await self._run_job(job)

    async def _run_job(self, job: Callable[[Bot], Any]) -> None:
        try:
            await job(self)
        except BoxlessError as exc:
            logger.warning("bot: scheduled job %s failed: %s", job.__name__, exc)

    async def _watch_payments(self) -> None:
        assert self.escrow is not None
        escrow = self.escrow
        me = escrow.signer.address
        while True:
            await trio.sleep(PAYMENT_POLL_S)
            for deal_id, last in list(self._deals.items()):
                try:
                    deal = await trio.to_thread.run_sync(escrow.status, deal_id)
                except BoxlessError as exc:
                    logger.info("bot: escrow deal %d unreadable: %s", deal_id, exc)
                    continue
                if deal.seller != me or deal.state in _FINAL:
                    # not ours (or no such deal), or settled: read no more; a user cannot
                    # make the bot poll the chain for deals that are not its own
                    self._deals.pop(deal_id, None)
                    if deal.seller != me:
                        continue
                elif deal.state == last:
                    continue
                else:
                    self._deals[deal_id] = deal.state
                what = _DEAL_EVENTS.get(deal.state)
                if what is None:
                    continue
                # settled before we first looked: it was funded first
                steps = ["funded", what] if last == "none" and what != "funded" else [what]
                for step in steps:
                    payment = Payment(deal_id, step, deal.buyer, deal.amount, deal.ref)
                    for handler in self.app.payment_handlers:
                        await self._user_code(handler, payment)
