"""The example bots' rules (issue 16): the coffee shop's orders against escrow
deals, the group poll's votes — each played by the attacker."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.bot import Bot
from boxless.chat.requests import ContactEvent
from boxless.identity.keys import Identity
from boxless.miniapps.bundle import pack_dir
from examples.coffee.shop import BREW_S, MAX_OPEN_PER_USER, MENU, Shop, ShopError
from examples.poll import bot as poll_bot
from examples.poll.polls import PollBook, PollError
from tests.memnet_fixtures import Person, homes, memnet, wait_for

__all__ = ["homes"]  # a fixture
EXAMPLES = Path(__file__).parents[2] / "examples"
DEV = Identity.from_private_bytes(bytes(range(32)))

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


def example_bundle(name: str, bot_key: bytes, tmp: Path) -> bytes:
    """The example's app folder, its manifest naming ``bot_key``, signed by DEV."""
    src = EXAMPLES / name / "app"
    dst = tmp / f"{name}-bundle"
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    manifest = json.loads((src / "manifest.json").read_text())
    manifest.update(developer=DEV.public_key.hex(), bot=bot_key.hex())
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return pack_dir(dst, DEV)


async def ask(user: Person, bot: Person, app_id: str, payload: Any) -> Any:
    rid = os.urandom(16)
    async with user.client.events() as events:
        data = json.dumps(payload).encode()
        await user.client.miniapps.send_app_message(bot.me, app_id, "request", rid, data)
        with trio.fail_after(600):
            async for e in events:
                if e.type == "app_message" and e.request_id == rid.hex():
                    return e.payload
    raise AssertionError("no answer")


def group_texts(p: Person, gid: bytes) -> list[str]:
    return [row.text for _, row in p.client.groups.messages(gid, limit=200)]


async def test_a_group_poll_with_three_members_results_in_the_group(
    homes: Path, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    names = ("pollbot", "alice", "bob", "carol")
    async with memnet(homes, names) as (_, (pb, alice, bob, carol)):
        async with trio.open_nursery() as nursery:
            await nursery.start(Bot(poll_bot.app, pb.client).run)
            data = example_bundle("poll", pb.me, tmp_path)
            for user in (alice, bob, carol):  # the bot accepts contacts itself
                await user.client.add_contact(pb.link())
                await wait_for(user, lambda u=user: u.state(pb) == "accepted")
                user.client.miniapps.install(data)
            await alice.client.add_contact(bob.link())
            await wait_for(bob, lambda: bob.state(alice) == "request_received")
            await bob.client.respond(alice.me, ContactEvent.ACCEPT)
            await wait_for(alice, lambda: alice.state(bob) == "accepted")
            gid = (await alice.client.groups.create("Lunch crew")).group_id
            for p in (bob, pb):
                await alice.client.groups.invite(gid, p.me)
                await trio.sleep(0.001)
            everyone = {alice.me, bob.me, pb.me}
            for p in (bob, pb):
                await wait_for(p, lambda p=p: set(p.client.groups.state(gid).members) == everyone)
            await alice.client.groups.send_text(gid, "/poll Lunch? | Pizza | Sushi")
            await wait_for(bob, lambda: any("Poll 1: Lunch?" in t for t in group_texts(bob, gid)))
            listed = await ask(bob, pb, poll_bot.APP_ID, {"op": "list"})
            assert [p["question"] for p in listed["polls"]] == ["Lunch?"]
            assert (await ask(carol, pb, poll_bot.APP_ID, {"op": "list"})) == {"polls": []}
            vote = {"op": "vote", "poll": 1}
            assert (await ask(alice, pb, poll_bot.APP_ID, {**vote, "option": 1}))["counts"] == [
                0,
                1,
            ]
            assert (await ask(bob, pb, poll_bot.APP_ID, {**vote, "option": 1}))["counts"] == [0, 2]
            refused = await ask(carol, pb, poll_bot.APP_ID, {**vote, "option": 0})
            assert refused == {"error": "only the group's members vote in its polls"}
            await bob.client.groups.send_text(gid, "/close 1")  # not the creator
            await wait_for(
                bob, lambda: "only the poll's creator closes it" in group_texts(bob, gid)
            )
            await alice.client.groups.send_text(gid, "/close 1")
            await wait_for(bob, lambda: any("Sushi: 2 votes" in t for t in group_texts(bob, gid)))
            nursery.cancel_scope.cancel()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(items=JSON, order_id=JSON, option=JSON, poll_id=JSON, command=st.text(max_size=300))
def test_the_examples_answer_any_json_from_a_user_with_their_own_errors(
    items: Any, order_id: Any, option: Any, poll_id: Any, command: str
) -> None:
    """A request's payload is the user's JSON: the rules answer or say why, never crash."""
    shop = Shop()
    try:
        shop.order(ALICE, items)
    except ShopError:
        pass
    for call in (shop.mine, shop.cancel):
        try:
            call(MALLORY, order_id)
        except ShopError:
            pass
    book = PollBook()
    try:
        book.create("g1", ALICE, command, 0.0)
    except PollError:
        pass
    for pid in (poll_id, 1):
        try:
            book.vote(pid, ALICE, option, {ALICE})
        except PollError:
            pass
        try:
            book.close(pid, MALLORY, "g1")
        except PollError:
            pass
