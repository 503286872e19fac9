"""Bob's Coffee end to end at process level (issue 16): the shop bot on the SDK
over memnet, a real escrow contract on anvil. Alice orders in the app's
protocol, pays into escrow (as her Boxless does for the app's ``pay``), tells
the shop the deal; the bot believes only the chain, confirms, brews, tells her
it is ready; she releases; the seller is paid and the bot thanks her. A deal
paying too little does not pay the order; a deal id that is not the shop's is
read once and forgotten (a user cannot make the bot poll the chain for it)."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from boxless.bot import Bot
from boxless.client.escrow import Escrow
from boxless.payments.devnet import Anvil
from boxless.payments.evmcall import Signer
from boxless.payments.hdwallet import checksum_address
from boxless.payments.rpc import Rpc
from examples.coffee import bot as coffee
from tests.memnet_fixtures import Person, homes, memnet, wait_for
from tests.unit.test_bot_examples import example_bundle

__all__ = ["homes"]  # a fixture
pytestmark = pytest.mark.slow
FUND = 10**20


class MiningSigner(Signer):
    """Mines a block after each send (no waiting for anvil's block time)."""

    def submit(
        self, to: bytes | None, payload: bytes, value: int = 0, gas: int | None = None
    ) -> bytes:
        h = super().submit(to, payload, value, gas)
        self.rpc.call("evm_mine", [])
        return h


def funded(rpc: Rpc) -> MiningSigner:
    signer = MiningSigner(rpc, secrets.token_bytes(32))  # this test's own accounts
    rpc.call("anvil_setBalance", [checksum_address(signer.address), hex(FUND)])
    return signer


def balance(rpc: Rpc, address: bytes) -> int:
    return int(rpc.call("eth_getBalance", [checksum_address(address), "latest"]), 16)


async def until(pred: Callable[[], bool]) -> None:
    """Until ``pred()`` holds, looked at each virtual second (``pushes`` is filled by
    another task, so a client event may come before the list has it)."""
    with trio.fail_after(600):
        while not pred():  # noqa: ASYNC110
            await trio.sleep(1)


async def ask(user: Person, shop: Person, payload: Any) -> Any:
    rid = os.urandom(16)
    async with user.client.events() as events:
        data = json.dumps(payload).encode()
        await user.client.miniapps.send_app_message(shop.me, coffee.APP_ID, "request", rid, data)
        with trio.fail_after(600):
            async for e in events:
                if e.type == "app_message" and e.request_id == rid.hex():
                    return e.payload
    raise AssertionError("no answer")


async def test_order_a_coffee_pay_by_escrow_the_bot_confirms_and_the_seller_is_paid(
    homes: Path,
    tmp_path: Path,
    anvil: Anvil,  # noqa: F811
    autojump_clock: trio.testing.MockClock,
) -> None:
    rpc = Rpc(anvil.url, anvil.chain_id)
    seller, buyer = funded(rpc), funded(rpc)
    shop_escrow = await trio.to_thread.run_sync(Escrow.deploy, seller)
    as_buyer = Escrow(buyer, shop_escrow.address)
    pushes: list[dict[str, Any]] = []
    async with memnet(homes, ("shop", "alice")) as (_, (shop, alice)):
        async with trio.open_nursery() as nursery:
            bot = await nursery.start(Bot(coffee.app, shop.client, escrow=shop_escrow).run)
            await alice.client.add_contact(shop.link())
            await wait_for(alice, lambda: alice.state(shop) == "accepted")
            alice.client.miniapps.install(example_bundle("coffee", shop.me, tmp_path))

            async def listen() -> None:
                async with alice.client.events() as events:
                    async for e in events:
                        if e.type == "app_message" and e.kind == "push":
                            pushes.append(e.payload)

            nursery.start_soon(listen)
            menu = await ask(alice, shop, {"op": "menu"})
            assert menu["seller"] == "0x" + seller.address.hex()
            order = await ask(alice, shop, {"op": "order", "items": {"flat-white": 1}})
            amount, ref = int(order["amount"]), bytes.fromhex(order["order"])
            deadline = int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
            deadline += 3600
            # a deal for the order's reference but too little money pays nothing
            cheap = await trio.to_thread.run_sync(
                as_buyer.pay, seller.address, amount - 1, deadline, ref
            )
            assert (await ask(alice, shop, {"op": "paid", "order": order["order"], "deal": cheap}))[
                "state"
            ] == "ordered"
            # a deal id that is nobody's (or someone else's) is read once, then forgotten
            await ask(alice, shop, {"op": "paid", "order": order["order"], "deal": 10**9})
            with trio.fail_after(600):  # virtual; the chain is read in a thread, in real time
                while 10**9 in bot._deals or bot._deals.get(cheap) != "open":  # noqa: ASYNC110
                    await trio.sleep(1)
            assert (await ask(alice, shop, {"op": "status", "order": order["order"]}))[
                "state"
            ] == "ordered"
            deal = await trio.to_thread.run_sync(
                as_buyer.pay, seller.address, amount, deadline, ref
            )
            await ask(alice, shop, {"op": "paid", "order": order["order"], "deal": deal})
            await until(lambda: any(p.get("state") == "ready" for p in pushes))
            assert [p["state"] for p in pushes][:2] == ["paid", "ready"]
            assert any("is ready at Bob's Coffee" in t for t in alice.texts(shop))
            before = balance(rpc, seller.address)
            await trio.to_thread.run_sync(as_buyer.release, deal)
            await until(lambda: any(p.get("state") == "done" for p in pushes))
            assert balance(rpc, seller.address) == before + amount
            assert deal not in bot._deals  # settled: no longer read from the chain
            await wait_for(alice, lambda: any("is paid. Enjoy" in t for t in alice.texts(shop)))
            nursery.cancel_scope.cancel()
    rpc.close()
