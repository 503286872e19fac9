"""pay()'s seller check (docs/miniapps.md, Escrow): opening an app that may pay asks its
bot for its wallet address; pay() refuses a `to` that is not that address, and refuses
(nothing paid) while the bot has told none — before, an unknown address let the app's
page name any seller. Real clients on the in-memory network, a real escrow on anvil."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from boxless.client.escrow import Escrow
from boxless.client.miniapp_pay import set_escrow_address
from boxless.identity.keys import Identity
from boxless.miniapps import pack_files
from boxless.payments.devnet import Anvil
from boxless.payments.evmcall import Signer
from boxless.payments.hdwallet import checksum_address
from boxless.payments.rpc import Rpc
from boxless.payments.store import ChainConfig, PaymentStore
from tests.asgi_api import api_client as _api
from tests.memnet_fixtures import befriend, memnet, wait_for

pytestmark = pytest.mark.slow
APP = "org.example.seller"


def _bundle(dev: Identity, bot: bytes) -> bytes:
    manifest = {
        "id": APP, "name": "Seller", "version": "1.0.0", "icon": "icon.png",
        "entry": "index.html", "permissions": ["pay"],
        "developer": dev.public_key.hex(), "bot": bot.hex(),
    }  # fmt: skip
    files = {"manifest.json": json.dumps(manifest).encode(), "index.html": b"x", "icon.png": b"p"}
    return pack_files(files, dev)


async def test_pay_only_to_the_wallet_the_bot_told(
    tmp_path: Path,
    anvil: Anvil,  # noqa: F811
    autojump_clock: trio.testing.MockClock,
) -> None:
    rpc = Rpc(anvil.url, anvil.chain_id)
    deployer = Signer(rpc, secrets.token_bytes(32))
    rpc.call("anvil_setBalance", [checksum_address(deployer.address), hex(10**20)])
    escrow = await trio.to_thread.run_sync(Escrow.deploy, deployer)
    chain = ChainConfig(anvil.url, anvil.chain_id, confirmations=1)
    async with (
        memnet(tmp_path, ("alice", "bob")) as (_net, (alice, bob)),
        _api(alice.client) as api,
    ):
        for person in (alice, bob):
            PaymentStore(person.client.db).set_chain(chain)
        set_escrow_address(alice.client.db, anvil.chain_id, escrow.address)
        buyer = alice.client.payments.address()
        rpc.call("anvil_setBalance", [checksum_address(buyer), hex(10**18)])
        shop = bob.client.payments.address()  # the bot's own wallet
        dev = Identity.from_private_bytes(secrets.token_bytes(32))
        assert (await api.post("/miniapps", content=_bundle(dev, bob.me))).status_code == 201
        await api.put(f"/miniapps/{APP}/permissions/pay", json={"granted": True})
        pay = {"amount": "0.001", "token": "ETH", "memo": "Tea", "to": "0x" + shop.hex()}

        async def bridge(params: Any) -> tuple[int, Any]:
            body = {"method": "pay", "params": params, "confirmed": True}
            r = await api.post(f"/miniapps/{APP}/bridge", json=body)
            return r.status_code, r.json()

        # the bot is no contact yet: it cannot be asked, nothing is paid to any `to`
        assert (await api.post(f"/miniapps/{APP}/opened")).status_code == 204
        status, answer = await bridge(pay)
        assert status == 400 and "has not told its wallet address" in answer["error"]["message"]

        await befriend(alice, bob)
        assert (await api.post(f"/miniapps/{APP}/opened")).status_code == 204  # asks the bot
        await wait_for(alice, lambda: alice.client.payments.address_of(bob.me) == shop)

        # the app's page names another seller: refused, the escrow holds nothing
        status, answer = await bridge({**pay, "to": "0x" + secrets.token_bytes(20).hex()})
        assert status == 400 and "not the wallet of the app's bot" in answer["error"]["message"]
        assert rpc.call("eth_getBalance", [checksum_address(escrow.address), "latest"]) == "0x0"
        status, answer = await bridge(pay)
        assert status == 200, answer
        deal = escrow.status(int(answer["result"]["deal"]))
        assert (deal.buyer, deal.seller, deal.amount) == (buyer, shop, 10**15)
    rpc.close()
