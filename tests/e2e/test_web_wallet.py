"""Issue 14 in a real browser: a transfer from the chat and the Wallet pane.

Two `boxless up` processes of the session's world on a real anvil (the BXD test
token deployed, both wallets funded and set up over the API). Alice opens the
chat with Bob, taps the pay button, enters 0.5 ETH and a note, reviews the fee
cap, confirms; her card turns "Confirmed" and Bob's "Received" once the chain
agrees. Alice's Wallet pane shows both balances and the transfer in history.
Screenshots: docs/screenshots/transfer-card.png (Bob's chat), wallet.png.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest

from boxless.payments.devnet import Anvil, deploy_token, fund_account
from boxless.payments.hdwallet import address_bytes, checksum_address, parse_address
from boxless.payments.rpc import Rpc
from tests.e2e.test_web import DESKTOP, open_ui, shot

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
pytestmark = pytest.mark.slow
FUNDER = secrets.token_bytes(32)  # this test's own account: no nonce shared with another test


def test_transfer_in_chat_and_the_wallet_pane(world: Any, browser: Any, anvil: Anvil) -> None:  # noqa: F811
    alice, bob = world.persons("Alice", "Bob")
    world.befriend(alice, bob)
    rpc = Rpc(anvil.url, anvil.chain_id)
    rpc.call("anvil_setBalance", [checksum_address(address_bytes(FUNDER)), hex(10**21)])
    token = deploy_token(rpc, FUNDER, 10**15)
    for user in (alice, bob):
        user.call("PUT", "/wallet/chain", {
            "rpc_url": anvil.url, "chain_id": anvil.chain_id, "token": token,
            "token_symbol": "BXD", "token_decimals": 6, "confirmations": 1,
        })  # fmt: skip
        address = parse_address(user.call("GET", "/wallet")["address"])
        fund_account(rpc, FUNDER, token, address, 10 * 10**18, 250 * 10**6)
    rpc.close()
    alice_address = alice.call("GET", "/wallet")["address"]

    page = open_ui(browser, alice, DESKTOP)
    page.goto(f"{alice.url}/#/chat/{world.key(bob)}")
    page.get_by_role("button", name="Transfer or request money").click()
    dialog = page.locator(".pay-dialog")
    dialog.get_by_label("Amount").fill("0.5")
    dialog.get_by_label("Note").fill("dinner 🍜")
    dialog.get_by_role("button", name="Next").click()  # asks Bob's address, then quotes
    expect(dialog.locator(".pay-review")).to_contain_text("fee")
    expect(dialog.locator(".pay-review")).to_contain_text("0.5 ETH")
    dialog.get_by_role("button", name="Confirm and send").click()
    expect(dialog).to_have_count(0)
    card = page.locator(".paycard[data-kind=transfer]").last
    expect(card).to_contain_text("0.5 ETH")
    expect(card.locator(".paycard-status")).to_have_text(re.compile("Confirmed|Received"))

    bob_page = open_ui(browser, bob, DESKTOP)
    bob_page.goto(f"{bob.url}/#/chat/{world.key(alice)}")
    bob_card = bob_page.locator(".paycard[data-kind=transfer]").last
    expect(bob_card.locator(".paycard-status")).to_have_text("Received")
    expect(bob_card).to_contain_text("dinner 🍜")
    shot(bob_page, "transfer-card")
    expect(card.locator(".paycard-status")).to_have_text("Received")  # Bob's client acked

    page.goto(f"{alice.url}/#/wallet")
    balances = page.locator("#wallet-balances")
    expect(balances.locator("li[data-symbol=BXD]")).to_contain_text("250")
    expect(balances.locator("li[data-symbol=ETH]")).to_contain_text("9.49")
    history = page.locator("#wallet-history li").first
    expect(history).to_contain_text("0.5 ETH")
    expect(history.locator(".wallet-tx-state")).to_have_text("Confirmed")
    expect(page.locator(".wallet-receive img.qr")).to_have_attribute("src", re.compile("^blob:"))
    expect(page.locator(".wallet-uri")).to_contain_text(
        f"ethereum:{alice_address}@{anvil.chain_id}"
    )
    shot(page, "wallet")

    # Private receiving (stealth): a payment to Alice's meta-address is found by a scan
    # of the announcer and swept to her main address after a confirm step
    from boxless.payments.evmcall import Signer
    from boxless.payments.stealth import MetaAddress
    from boxless.payments.stealth_chain import Announcer

    stealth = page.locator("#wallet-stealth")
    meta = stealth.locator("#stealth-meta")
    expect(meta).to_contain_text("st:eth:0x")
    expect(stealth.locator("img.qr")).to_have_attribute("src", re.compile("^blob:"))
    rpc = Rpc(anvil.url, anvil.chain_id)
    announcer = Announcer.deploy(Signer(rpc, FUNDER))
    announcer.pay(MetaAddress.parse(meta.inner_text().strip()), 3 * 10**17)
    rpc.close()
    stealth.locator(".stealth-announcer").fill(checksum_address(announcer.address))
    stealth.locator(".stealth-scan").click()
    expect(stealth.locator("#stealth-found li")).to_contain_text("0.3 ETH")
    expect(stealth.locator(".stealth-status")).to_contain_text("Scanned up to block")
    shot(page, "wallet-stealth")
    stealth.locator(".stealth-sweep").click()
    page.locator("dialog.miniapp-dialog .miniapp-yes").click()  # the confirm step
    expect(stealth.locator("#stealth-found li .wallet-tx-state")).to_have_text("Swept")
