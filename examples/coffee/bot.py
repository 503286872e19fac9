"""Bob's Coffee, the shop bot: ``boxless bot run examples.coffee.bot:app --escrow 0x…``.

Requests from the Coffee mini app (``org.boxless.coffee``): ``menu``, ``order``,
``paid`` (the deal id the buyer's Boxless made; the bot then reads the deal from
the chain), ``status``, ``cancel``. The bot confirms a funded order, pushes
"brewing" then "ready", and thanks the buyer when the chain says they released.
"""

from __future__ import annotations

from typing import Any

import trio

from boxless.bot import Bot, BotApp, Message, Payment, Request
from examples.coffee.shop import Shop, ShopError

APP_ID = "org.boxless.coffee"
NAME = "Bob's Coffee"

app = BotApp("coffee")
shop = Shop()


def _seller(bot: Bot) -> str | None:
    return None if bot.escrow is None else "0x" + bot.escrow.signer.address.hex()


@app.on_request(APP_ID)
async def coffee(bot: Bot, req: Request) -> Any:
    p = req.payload if isinstance(req.payload, dict) else {}
    op = p.get("op")
    try:
        if op == "menu":
            return {"shop": NAME, "items": shop.menu(), "seller": _seller(bot)}
        if op == "order":
            order = shop.order(req.user, p.get("items"))
            return {**order.json(), "seller": _seller(bot), "memo": f"{NAME} order {order.id}"}
        if op == "paid":
            order = shop.mine(req.user, p.get("order"))
            deal = p.get("deal")
            if not isinstance(deal, int) or isinstance(deal, bool) or deal < 0:
                raise ShopError("a deal id is a number")
            bot.watch_deal(deal)  # believed when the chain says so (on_payment)
            return {**order.json(), "checking": deal}
        if op == "status":
            return shop.mine(req.user, p.get("order")).json()
        if op == "cancel":
            order = shop.cancel(req.user, p.get("order"))
            if order.state == "paid" and bot.escrow is not None and order.deal is not None:
                await trio.to_thread.run_sync(bot.escrow.refund, order.deal)
                order.state = "refunded"
            return order.json()
    except ShopError as exc:
        return {"error": str(exc)}
    return {"error": "op is menu, order, paid, status or cancel"}


@app.on_payment
async def payment(bot: Bot, pay: Payment) -> None:
    if pay.what == "funded":
        order = shop.funded(pay.deal, pay.ref, pay.amount, trio.current_time())
        if order is not None:
            await bot.push(order.user, APP_ID, {**order.json(), "note": "Paid. Brewing now."})
    else:
        order = shop.settled(pay.deal, pay.what)
        if order is not None:
            await bot.push(order.user, APP_ID, order.json())
            if order.state == "done":
                await bot.send(f"contact:{order.user}", f"Thanks! Order {order.id} is paid. Enjoy.")


@app.every(1.0)
async def counter(bot: Bot) -> None:
    for order in shop.brewed(trio.current_time()):
        await bot.push(order.user, APP_ID, {**order.json(), "note": "Ready to collect."})
        await bot.send(
            f"contact:{order.user}",
            f"Your order {order.id} is ready at {NAME}. Collect it, then release the payment"
            " in the Coffee app.",
        )


@app.on_message
async def hello(bot: Bot, msg: Message) -> str | None:
    if msg.chat.startswith("group:"):
        return None
    return f"Hi, this is {NAME}. Open the Coffee app (the card in this chat) to order."
