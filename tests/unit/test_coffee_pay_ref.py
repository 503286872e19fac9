"""The Coffee shop takes the escrow reference the mini app's pay() writes: the order id
as text (docs/miniapps.md), as well as its 8 raw bytes (a deal made by the bot SDK).
Before, only the raw form matched, so an order paid from the app stayed 'ordered'."""

from __future__ import annotations

from examples.coffee.shop import Shop


def test_an_order_paid_with_its_id_as_text_is_paid() -> None:
    shop = Shop()
    order = shop.order("a1" * 32, {"espresso": 1})
    assert shop.funded(3, b"f" * 16, order.amount, 0.0) is None  # names no order
    assert shop.funded(3, order.id.upper().encode(), order.amount, 0.0) is None  # not ours
    assert shop.funded(3, order.id.encode(), order.amount, 0.0) is order
    assert order.state == "paid"
    other = shop.order("a1" * 32, {"espresso": 1})
    assert shop.funded(4, bytes.fromhex(other.id), other.amount, 0.0) is other  # raw bytes
