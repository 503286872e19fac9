"""Issue 14 in a real browser: a lucky red envelope in a group.

Three `boxless up` processes of the session's world on a real anvil. Alice
(10 ETH) sends a lucky envelope of 2 shares from the group's 🧧 button, through
the confirm step; Bob (1 ETH) opens it and claims himself; Carol (0 ETH) opens
it and Alice's client relays her claim. Everyone's card then lists who opened
which with the chain's amounts, and the best luck. Screenshot:
docs/screenshots/red-envelope.png (Carol's view).
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from boxless.payments.devnet import Anvil
from tests.e2e.test_web import DESKTOP, open_ui, shot

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
pytestmark = pytest.mark.slow


def _fund(chain: Anvil, address: str, wei: int) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "anvil_setBalance", "params": [address, hex(wei)]}
    httpx.post(chain.url, json=body, timeout=5).raise_for_status()


def test_lucky_red_envelope_in_a_group(world: Any, browser: Any, anvil: Anvil) -> None:  # noqa: F811
    alice, bob, carol = world.persons("Alice", "Bob", "Carol")
    for user, wei in ((alice, 10 * 10**18), (bob, 10**18), (carol, 0)):
        user.call("PUT", "/wallet/chain", {
            "rpc_url": anvil.url, "chain_id": anvil.chain_id, "confirmations": 1,
        })  # fmt: skip
        _fund(anvil, user.call("GET", "/wallet")["address"], wei)
    world.befriend(alice, bob)
    world.befriend(alice, carol)
    gid = world.group(alice, [bob, carol], "Family")

    page = open_ui(browser, alice, DESKTOP)
    page.goto(f"{alice.url}/#/group/{gid}")
    page.get_by_role("button", name="Send a red envelope").click()
    dialog = page.locator(".redenvelope-dialog")
    dialog.get_by_label("Total (ETH)").fill("0.3")
    dialog.get_by_label("Shares").fill("2")
    dialog.get_by_label("Greeting").fill("Happy new year 🎉")
    dialog.get_by_role("button", name="Next").click()
    expect(dialog.locator(".re-review")).to_contain_text("0.3 ETH")
    dialog.get_by_role("button", name="Send").click()
    expect(dialog).to_have_count(0)
    expect(page.locator(".redcard").last).to_contain_text("Happy new year")

    opened = {}
    for user in (bob, carol):
        p = open_ui(browser, user, DESKTOP)
        p.goto(f"{user.url}/#/group/{gid}")
        card = p.locator(".redcard").last
        expect(card).to_contain_text("0.3 ETH · 2 lucky shares")
        card.get_by_role("button", name="Open").click()
        expect(card.locator(".redcard-status")).to_contain_text(re.compile(r"You got [0-9.]+ ETH"))
        opened[user.name] = p

    card = page.locator(".redcard").last
    expect(card.locator(".redcard-opened li")).to_have_count(2)
    expect(card.locator(".redcard-best")).to_have_count(1)
    carol_card = opened["Carol"].locator(".redcard").last
    expect(carol_card.locator(".redcard-opened li")).to_have_count(2)
    expect(carol_card.locator(".redcard-status")).to_contain_text("You got")
    shot(opened["Carol"], "red-envelope")
