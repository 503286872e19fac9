"""What a bot does, declared with decorators (:class:`BotApp`); :mod:`.runtime` runs it.

Handlers are async functions taking the running :class:`~boxless.bot.runtime.Bot`
and one job:

- ``@app.on_message`` — a chat message (1:1 or group) from someone else; a
  returned string is sent back to the same chat;
- ``@app.on_request(app_id)`` — a mini app's request from a user; the returned
  JSON value is sent back as the response (an exception answers
  ``{"error": ...}``);
- ``@app.on_payment`` — an escrow deal the bot watches changed state (funded,
  released, refunded, reclaimed);
- ``@app.every(seconds)`` — a scheduled job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from boxless.bot.runtime import Bot


@dataclass(frozen=True, slots=True)
class Message:
    """A chat message to the bot: ``chat`` is ``contact:<hex>`` or ``group:<hex>``."""

    chat: str
    id: str
    sender: str  # identity key hex
    text: str
    sent_at_ms: int  # the sender's clock
    received_at_ms: int = 0  # ours


@dataclass(frozen=True, slots=True)
class Request:
    """A mini app's request: ``user`` is the sender's identity key hex."""

    user: str
    app_id: str
    request_id: str
    payload: Any


@dataclass(frozen=True, slots=True)
class Payment:
    """An escrow deal for the bot's address: ``what`` is funded, released, refunded
    or reclaimed (the chain's state, read by the bot, never a user's word)."""

    deal: int
    what: str
    buyer: bytes
    amount: int
    ref: bytes


MessageHandler = Callable[["Bot", Message], Awaitable[str | None]]
RequestHandler = Callable[["Bot", Request], Awaitable[Any]]
PaymentHandler = Callable[["Bot", Payment], Awaitable[None]]
Job = Callable[["Bot"], Awaitable[None]]


@dataclass
class BotApp:
    """The handlers of one bot (it may serve several mini apps)."""

    name: str = "bot"
    message_handlers: list[MessageHandler] = field(default_factory=list)
    request_handlers: dict[str, RequestHandler] = field(default_factory=dict)
    payment_handlers: list[PaymentHandler] = field(default_factory=list)
    jobs: list[tuple[float, Job]] = field(default_factory=list)

    def on_message(self, fn: MessageHandler) -> MessageHandler:
        self.message_handlers.append(fn)
        return fn

    def on_request(self, app_id: str) -> Callable[[RequestHandler], RequestHandler]:
        def register(fn: RequestHandler) -> RequestHandler:
            if app_id in self.request_handlers:
                raise ValueError(f"{app_id} already has a request handler")
            self.request_handlers[app_id] = fn
            return fn

        return register

    def on_payment(self, fn: PaymentHandler) -> PaymentHandler:
        self.payment_handlers.append(fn)
        return fn

    def every(self, seconds: float) -> Callable[[Job], Job]:
        if seconds <= 0:
            raise ValueError("a scheduled job needs a positive period")

        def register(fn: Job) -> Job:
            self.jobs.append((seconds, fn))
            return fn

        return register
