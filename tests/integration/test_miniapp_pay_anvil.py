"""A mini app's pay() over the local API into a real escrow contract on anvil:
refused until an escrow is configured, only after Boxless's confirm, refused with a
reason for a bad seller/amount/token or a seller that is not the bot's wallet; a
confirmed payment answers {deal} and the chain holds it (buyer, seller, amount, ref)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from boxless.client import payment_card_store as cs
from boxless.client.escrow import Escrow
from boxless.identity.keys import Identity
from boxless.miniapps import pack_files
from boxless.payments.devnet import Anvil
from boxless.payments.evmcall import Signer
from boxless.payments.hdwallet import checksum_address
from boxless.payments.rpc import Rpc
from boxless.payments.store import ChainConfig, PaymentStore
from tests.asgi_api import api_client as _api
from tests.memnet_fixtures import memnet

pytestmark = pytest.mark.slow
APP = "org.example.pay"
BOT = bytes(range(32))


def _bundle(dev: Identity) -> bytes:
    manifest = {
        "id": APP, "name": "Pay", "version": "1.0.0", "icon": "icon.png",
        "entry": "index.html", "permissions": ["pay"],
        "developer": dev.public_key.hex(), "bot": BOT.hex(),
    }  # fmt: skip
    files = {"manifest.json": json.dumps(manifest).encode(), "index.html": b"x", "icon.png": b"p"}
    return pack_files(files, dev)


async def test_pay_into_escrow_after_confirm_answers_the_deal(
    tmp_path: Path,
    anvil: Anvil,  # noqa: F811
    autojump_clock: trio.testing.MockClock,
) -> None:
    rpc = Rpc(anvil.url, anvil.chain_id)
    seller = Signer(rpc, secrets.token_bytes(32))
    rpc.call("anvil_setBalance", [checksum_address(seller.address), hex(10**20)])
    escrow = await trio.to_thread.run_sync(Escrow.deploy, seller)
    to = "0x" + seller.address.hex()
    pay = {"amount": "0.002", "token": "ETH", "memo": "Flat white", "to": to, "ref": "order-7"}
    async with memnet(tmp_path, ("alice",)) as (_net, (alice,)), _api(alice.client) as api:
        dev = Identity.from_private_bytes(secrets.token_bytes(32))
        assert (await api.post("/miniapps", content=_bundle(dev))).status_code == 201
        r = await api.put(f"/miniapps/{APP}/permissions/pay", json={"granted": True})
        assert r.status_code == 200
        db = alice.client.db
        PaymentStore(db).set_chain(ChainConfig(anvil.url, anvil.chain_id, confirmations=1))
        buyer = alice.client.payments.address()
        rpc.call("anvil_setBalance", [checksum_address(buyer), hex(10**18)])

        async def bridge(params: object, confirmed: bool = True) -> tuple[int, Any]:
            body = {"method": "pay", "params": params, "confirmed": confirmed}
            r = await api.post(f"/miniapps/{APP}/bridge", json=body)
            return r.status_code, r.json()

        status, answer = await bridge(pay)  # no escrow configured yet
        assert status == 400 and "payments unavailable" in answer["error"]["message"]
        r = await api.put("/miniapps/escrow", json={"address": "0x12"})
        assert r.status_code == 422
        r = await api.put("/miniapps/escrow", json={"address": "0x" + escrow.address.hex()})
        assert r.json() == {"address": "0x" + escrow.address.hex(), "chain_id": anvil.chain_id}
        status, answer = await bridge(pay, confirmed=False)  # never without the dialog
        assert status == 409 and answer["error"]["code"] == "confirm_first"
        for bad, reason in [
            ({**pay, "to": "0x12"}, "seller's wallet address"),
            ({**pay, "amount": "-1"}, "not an amount"),
            ({**pay, "amount": "0"}, "more than 0"),
            ({**pay, "token": "BXD"}, "ETH only"),
            ({**pay, "ref": "r" * 33}, "at most 32 bytes"),
        ]:
            status, answer = await bridge(bad)
            assert status == 400 and reason in answer["error"]["message"], answer
        # the app's bot told us another wallet address: the app cannot redirect the money
        with db.transaction() as cur:
            cs.put_peer_address(cur, BOT, anvil.chain_id, secrets.token_bytes(20), 0)
        status, answer = await bridge(pay)
        assert status == 400 and "not the wallet of the app's bot" in answer["error"]["message"]
        with db.transaction() as cur:
            cs.put_peer_address(cur, BOT, anvil.chain_id, seller.address, 0)
        assert rpc.call("eth_getBalance", [checksum_address(escrow.address), "latest"]) == "0x0"
        status, answer = await bridge(pay)
        assert status == 200, answer
        deal = escrow.status(int(answer["result"]["deal"]))
        assert (deal.buyer, deal.seller, deal.amount) == (buyer, seller.address, 2 * 10**15)
        assert (deal.ref, deal.state) == (b"order-7", "open")

        # release: Boxless reads the deal for its dialog, then releases after it
        async def call(method: str, deal_id: object, confirmed: bool = True) -> tuple[int, Any]:
            body = {"method": method, "params": {"deal": deal_id}, "confirmed": confirmed}
            r = await api.post(f"/miniapps/{APP}/bridge", json=body)
            return r.status_code, r.json()

        status, shown = await call("deal", deal.id)
        assert status == 200 and shown["result"] == {
            "deal": deal.id,
            "amount": "0.002",
            "token": "ETH",
            "seller": to,
            "state": "open",
            "ref": "order-7",
        }
        status, answer = await call("release", deal.id, confirmed=False)  # never without it
        assert status == 409 and answer["error"]["code"] == "confirm_first"
        # the app cannot release a deal someone else paid
        stranger = Signer(rpc, secrets.token_bytes(32))
        rpc.call("anvil_setBalance", [checksum_address(stranger.address), hex(10**18)])
        theirs = Escrow(stranger, escrow.address)
        other = await trio.to_thread.run_sync(
            lambda: theirs.pay(seller.address, 1, 2**40, b"not alice's")
        )
        status, answer = await call("release", other)
        assert status == 400 and "not a payment of yours" in answer["error"]["message"]
        # nor a deal of hers to another seller than the app's bot
        from boxless.payments.hdwallet import derive_private_key

        key = derive_private_key(alice.account.keystore.load_wallet_seed())
        mine = Escrow(Signer(rpc, key), escrow.address)
        elsewhere = await trio.to_thread.run_sync(
            lambda: mine.pay(stranger.address, 1, 2**40, b"another shop")
        )
        status, answer = await call("release", elsewhere)
        assert status == 400 and "does not pay this app's bot" in answer["error"]["message"]
        status, answer = await call("release", "1")
        assert status == 422
        earned = int(rpc.call("eth_getBalance", [checksum_address(seller.address), "latest"]), 16)
        status, answer = await call("release", deal.id)
        assert status == 200 and answer["result"]["state"] == "released", answer
        now = int(rpc.call("eth_getBalance", [checksum_address(seller.address), "latest"]), 16)
        assert now - earned == 2 * 10**15  # the seller is paid
        status, answer = await call("release", deal.id)  # once
        assert status == 400 and "released: nothing to release" in answer["error"]["message"]
    rpc.close()
