"""The example bots' rules (issue 16): the coffee shop's orders against escrow
deals, the group poll's votes — each played by the attacker."""

from __future__ import annotations

import pytest

from examples.coffee.shop import BREW_S, MAX_OPEN_PER_USER, MENU, Shop, ShopError
from examples.poll.polls import PollBook, PollError

ALICE, MALLORY = "a1" * 32, "e5" * 32


def test_an_order_is_paid_only_by_a_deal_with_its_ref_and_enough_money() -> None:
    shop = Shop()
    order = shop.order(ALICE, {"flat-white": 2})
    assert order.amount == 2 * MENU["flat-white"][1]
    ref = bytes.fromhex(order.id)
    assert shop.funded(7, bytes(8), order.amount, 0.0) is None  # a ref naming no order
    assert shop.funded(7, ref, order.amount - 1, 0.0) is None  # too little
    assert shop.funded(7, ref, order.amount, 0.0) is order and order.state == "paid"
    assert shop.funded(8, ref, order.amount, 0.0) is None  # paid once
    assert shop.brewed(BREW_S - 1) == [] and shop.brewed(BREW_S) == [order]
    assert shop.settled(7, "released") is order and order.state == "done"


def test_orders_are_the_buyers_own_and_bounded() -> None:
    shop = Shop()
    order = shop.order(ALICE, {"espresso": 1})
    for bad in ({}, {"espresso": 0}, {"espresso": 11}, {"espresso": True}, {"tea<script>": 1}, []):
        with pytest.raises(ShopError):
            shop.order(ALICE, bad)
    with pytest.raises(ShopError, match="no such order"):
        shop.cancel(MALLORY, order.id)  # another user's order
    with pytest.raises(ShopError, match="no such order"):
        shop.mine(MALLORY, order.id)
    for _ in range(MAX_OPEN_PER_USER - 1):
        shop.order(MALLORY, {"espresso": 1})
    shop.order(MALLORY, {"espresso": 1})
    with pytest.raises(ShopError, match="open orders"):
        shop.order(MALLORY, {"espresso": 1})
    assert shop.cancel(ALICE, order.id).state == "cancelled"
    assert shop.funded(1, bytes.fromhex(order.id), order.amount, 0.0) is None


def test_a_poll_counts_one_vote_per_member_and_only_members() -> None:
    book = PollBook()
    members = {ALICE, "b2" * 32}
    poll = book.create("g1", ALICE, "Lunch? | Pizza | Sushi", 0.0)
    assert poll.options == ["Pizza", "Sushi"]
    book.vote(poll.id, ALICE, 0, members)
    book.vote(poll.id, ALICE, 1, members)  # changed, not counted twice
    book.vote(poll.id, "b2" * 32, 1, members)
    assert poll.counts() == [0, 2]
    with pytest.raises(PollError, match="members"):
        book.vote(poll.id, MALLORY, 0, members)
    for option in (2, -1, True, "0", None):
        with pytest.raises(PollError):
            book.vote(poll.id, ALICE, option, members)
    with pytest.raises(PollError, match="creator"):
        book.close(poll.id, "b2" * 32, "g1")
    with pytest.raises(PollError, match="creator"):
        book.close(poll.id, ALICE, "g2")  # /close from another group
    assert "Sushi: 2 votes" in book.close(poll.id, ALICE, "g1").results()
    with pytest.raises(PollError, match="closed"):
        book.vote(poll.id, ALICE, 0, members)
    for bad in ("no options", "Q? | one", "Q? |" + "|".join("x" * 11)):
        with pytest.raises(PollError):
            book.create("g1", ALICE, bad, 0.0)
