"""Bob's Coffee: the shop's orders, sans-IO (the bot in bot.py does the I/O).

An order's life, with the escrow's rules (``Escrow.vy``: the buyer pays into
escrow for the seller; only the buyer releases; the seller may refund; the buyer
reclaims after the deadline):

    ordered --(escrow deal funded, ref = order id, amount ≥ total, seller = shop)--> paid
    paid --(brewed)--> ready  (the bot tells the buyer: collect, then release)
    ready --(the buyer releases the deal)--> done
    ordered/paid --(the buyer cancels; a paid one is refunded by the shop)--> cancelled/refunded

A deal is believed only as the chain reports it (the bot reads ``status``), never
as the buyer says; a deal whose reference names another order, or that pays too
little, or pays someone else, does not pay for the order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

GWEI = 10**9
MENU: dict[str, tuple[str, int]] = {  # id -> (name, price in wei)
    "espresso": ("Espresso", 1_000_000 * GWEI),  # 0.001 ETH
    "flat-white": ("Flat white", 2_000_000 * GWEI),
    "cappuccino": ("Cappuccino", 2_000_000 * GWEI),
    "croissant": ("Croissant", 1_500_000 * GWEI),
}
MAX_QTY = 10
MAX_OPEN_PER_USER = 5
MAX_ORDERS = 10_000
BREW_S = 5.0


def _order_id(ref: bytes) -> str:
    """The order a deal's reference names: the app's pay() sends the id as text (16 hex
    characters, docs/miniapps.md ``ref``); a bot-made deal may carry its 8 raw bytes."""
    if len(ref) == 16 and all(c in b"0123456789abcdef" for c in ref):
        return ref.decode()
    return ref.hex()


class ShopError(ValueError):
    """The buyer's request cannot be done; the message says why."""


@dataclass
class Order:
    id: str  # 16 hex: also the escrow reference
    user: str
    items: dict[str, int]
    amount: int
    state: str = "ordered"
    deal: int | None = None
    paid_at: float = 0.0

    def json(self) -> dict[str, object]:
        lines = [f"{q} × {MENU[i][0]}" for i, q in self.items.items()]
        return {
            "order": self.id,
            "items": lines,
            "amount": str(self.amount),
            "state": self.state,
            "deal": self.deal,
        }


@dataclass
class Shop:
    orders: dict[str, Order] = field(default_factory=dict)

    @staticmethod
    def menu() -> list[dict[str, object]]:
        return [{"id": k, "name": n, "price": str(p)} for k, (n, p) in MENU.items()]

    def order(self, user: str, items: object) -> Order:
        if not isinstance(items, dict) or not items:
            raise ShopError("an order is {item id: quantity}, at least one item")
        clean: dict[str, int] = {}
        for item, qty in items.items():
            if item not in MENU:
                raise ShopError(f"{str(item)[:40]!r} is not on the menu")
            if not isinstance(qty, int) or isinstance(qty, bool) or not 1 <= qty <= MAX_QTY:
                raise ShopError(f"a quantity is 1 to {MAX_QTY}")
            clean[item] = qty
        mine = [
            o for o in self.orders.values() if o.user == user and o.state in ("ordered", "paid")
        ]
        if len(mine) >= MAX_OPEN_PER_USER:
            raise ShopError(f"at most {MAX_OPEN_PER_USER} open orders; pay or cancel one first")
        if len(self.orders) >= MAX_ORDERS:
            self._forget_closed()
        order = Order(
            os.urandom(8).hex(), user, clean, sum(MENU[i][1] * q for i, q in clean.items())
        )
        self.orders[order.id] = order
        return order

    def mine(self, user: str, order_id: object) -> Order:
        order = self.orders.get(order_id) if isinstance(order_id, str) else None
        if order is None or order.user != user:
            raise ShopError("no such order")
        return order

    def funded(self, deal: int, ref: bytes, amount: int, now: float) -> Order | None:
        """The chain says ``deal`` (for the shop) holds ``amount`` with ``ref``: the order
        it pays, now paid, or None (no such order, too little, or already paid)."""
        order = self.orders.get(_order_id(ref))
        if order is None or order.state != "ordered" or amount < order.amount:
            return None
        order.state, order.deal, order.paid_at = "paid", deal, now
        return order

    def brewed(self, now: float) -> list[Order]:
        """Paid orders brewed by ``now``: ready for collection."""
        ready = [o for o in self.orders.values() if o.state == "paid" and now - o.paid_at >= BREW_S]
        for o in ready:
            o.state = "ready"
        return ready

    def settled(self, deal: int, what: str) -> Order | None:
        order = next((o for o in self.orders.values() if o.deal == deal), None)
        if order is None:
            return None
        order.state = {"released": "done", "refunded": "refunded", "reclaimed": "reclaimed"}.get(
            what, order.state
        )
        return order

    def cancel(self, user: str, order_id: object) -> Order:
        """The buyer cancels before the coffee is ready; a paid order needs a refund."""
        order = self.mine(user, order_id)
        if order.state == "ordered":
            order.state = "cancelled"
        elif order.state != "paid":
            raise ShopError(f"an order that is {order.state} cannot be cancelled")
        return order

    def _forget_closed(self) -> None:
        for oid in [
            o.id for o in self.orders.values() if o.state not in ("ordered", "paid", "ready")
        ]:
            del self.orders[oid]
        if len(self.orders) >= MAX_ORDERS:
            raise ShopError("the shop is too busy; try again later")
