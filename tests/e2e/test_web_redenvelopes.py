"""Issue 14 in a real browser: a lucky red envelope in a group.

Three `boxless up` processes of the session's world on a real anvil. Alice
(10 ETH) sends a lucky envelope of 2 shares from the group's 🧧 button, through
the confirm step; Bob (1 ETH) and Carol (0 ETH) open it and Alice's client signs
their tickets and relays their claims. Everyone's card then lists who opened
which with the chain's amounts, and the best luck. Then an envelope in BXD (the
devnet's ERC-20, configured in the wallets): the card says BXD, Bob opens it and
gets BXD. Screenshots: docs/screenshots/red-envelope.png (Carol's view),
red-envelope-bxd.png (Bob's BXD card).
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx
import pytest

from boxless.payments.devnet import Anvil, deploy_token, fund_account
from boxless.payments.hdwallet import address_bytes
from boxless.payments.rpc import Rpc
from tests.e2e.test_web import DESKTOP, open_ui, shot

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
pytestmark = pytest.mark.slow


def _fund(chain: Anvil, address: str, wei: int) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "anvil_setBalance", "params": [address, hex(wei)]}
    httpx.post(chain.url, json=body, timeout=5).raise_for_status()


def test_lucky_red_envelope_in_a_group(world: Any, browser: Any, anvil: Anvil) -> None:  # noqa: F811
    alice, bob, carol = world.persons("Alice", "Bob", "Carol")
    rpc = Rpc(anvil.url, anvil.chain_id)
    minter = secrets.token_bytes(32)  # this test's own BXD, from its own account
    _fund(anvil, "0x" + address_bytes(minter).hex(), 10**18)
    bxd = deploy_token(rpc, minter, 10**12)
    for user, wei in ((alice, 10 * 10**18), (bob, 10**18), (carol, 0)):
        user.call("PUT", "/wallet/chain", {
            "rpc_url": anvil.url, "chain_id": anvil.chain_id, "confirmations": 1,
            "token": bxd, "token_symbol": "BXD", "token_decimals": 6,
        })  # fmt: skip
        _fund(anvil, user.call("GET", "/wallet")["address"], wei)
    alice_address = bytes.fromhex(alice.call("GET", "/wallet")["address"][2:])
    fund_account(rpc, minter, bxd, alice_address, 10 * 10**18, 50 * 10**6)
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

    # In BXD: approve + deposit by Alice's node, the card names the token, Bob gets BXD.
    body = {"chat": f"group:{gid}", "total": "12.5", "shares": 1, "lucky": False,
            "greeting": "in BXD", "token": "BXD"}  # fmt: skip
    sent = httpx.post(f"{alice.url}/api/v1/redenvelopes", json=body, timeout=120,
                      headers={"Authorization": f"Bearer {alice.token}"})  # fmt: skip
    assert sent.status_code == 201, sent.text  # two transactions: approve, deposit
    bobs = opened["Bob"]
    card = bobs.locator(".redcard", has_text="in BXD").last
    expect(card).to_contain_text("12.5 BXD · 1 equal share")
    card.get_by_role("button", name="Open").click()
    expect(card.locator(".redcard-status")).to_contain_text("You got 12.5 BXD")
    card.scroll_into_view_if_needed()
    shot(bobs, "red-envelope-bxd")
    balances = {b["symbol"]: b for b in bob.call("GET", "/wallet")["balances"]}
    assert balances["BXD"]["amount"] == str(12_500_000)
    bobs.goto(f"{bob.url}/#/wallet")  # the Wallet pane shows the token received
    expect(bobs.locator("#wallet-balances li[data-symbol=BXD]")).to_contain_text("12.5")
    rpc.close()
