"""Payments in chat against a real anvil, with real clients over the in-memory network.

Alice pays Bob from the chat (received only once the chain confirms it); Bob
pays Alice while the chain's RPC is down, restarts, and his client re-broadcasts
the saved transaction by itself; a forged card (the chain moved less) and a
replayed card are never "received"; a money request is paid with its own
amount; a bill split in a 3-member group is paid by both other members.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from boxless.chat.payment import TransferCard
from boxless.client.memory_transport import MemoryNetwork
from boxless.client.payments import POLL_S
from boxless.payments.amounts import ETH, Asset
from boxless.payments.devnet import Anvil, deploy_token, free_port, fund_account
from boxless.payments.errors import RpcDown
from boxless.payments.hdwallet import address_bytes, checksum_address
from boxless.payments.rpc import Rpc
from boxless.payments.store import ChainConfig
from boxless.payments.transfer import TransferClaim
from tests.anvil_chat import anvil_rpc, running_people
from tests.memnet_fixtures import (
    Person,
    befriend,
    homes,  # noqa: F401
    make_account,
    running,
    wait_for,
    wall_ns,
)

pytestmark = pytest.mark.slow
GWEI = 10**9
FUND = 10**20
LOOKS = 60
FUNDER = secrets.token_bytes(32)  # this test's own account: no nonce shared with another test
CHAIN: list[Anvil] = []


def _setup(p: Person, chain: Anvil) -> bytes:
    p.client.payments.store.set_chain(ChainConfig(chain.url, chain.chain_id, confirmations=1))
    address = p.client.payments.address()
    anvil_rpc(chain, "anvil_setBalance", [checksum_address(address), hex(FUND)])
    return address


def _card(p: Person, chat: str, message_id: str) -> dict[str, object]:
    return next(c for c in p.client.payments.cards(chat) if c["message_id"] == message_id)


def _status(p: Person, chat: str, message_id: str) -> Callable[[], object]:
    def get() -> object:
        found = [c for c in p.client.payments.cards(chat) if c["message_id"] == message_id]
        return found[0]["status"] if found else None

    return get


async def _until(p: Person, get: Callable[[], object], *wanted: object) -> object:
    """Until ``get()`` is one of ``wanted``: a block is mined (evm_mine) and the
    watchers get a tick between looks (anvil's own 1 s blocks are real time; the
    clients run on virtual time)."""
    for _ in range(LOOKS):
        if get() in wanted:
            return get()
        await trio.to_thread.run_sync(anvil_rpc, CHAIN[0], "evm_mine", [])
        await trio.sleep(POLL_S + 0.5)
    raise AssertionError(f"{p.name}: {get()!r}, not {wanted}: {p.client.payments.card_states()}")


def _send_only(
    p: Person, chat: str, amount: int, request: str | None = None, now_ms: int = 0
) -> TransferCard:
    """What the API does (blocking): target, quote (the user confirms its fee cap), send."""
    payments = p.client.payments
    target = payments.target(chat, request)
    quote = payments.quote(target, amount, ETH)
    return payments.send_quoted(target, amount, ETH, quote.fee_cap, "lunch", now_ms)[1]


def _send_asset(p: Person, chat: str, amount: int, asset: Asset) -> TransferCard:
    payments = p.client.payments
    target = payments.target(chat)
    quote = payments.quote(target, amount, asset)
    return payments.send_quoted(target, amount, asset, quote.fee_cap, "", 0)[1]


async def _pay(p: Person, chat: str, amount: int, request: str | None = None) -> str:
    card = await trio.to_thread.run_sync(_send_only, p, chat, amount, request)
    return await p.client.payments.post(chat, card)


async def test_payments_in_chat(
    homes: Path,  # noqa: F811
    anvil: Anvil,  # noqa: F811
    autojump_clock: trio.testing.MockClock,
) -> None:
    CHAIN[:] = [anvil]
    net = MemoryNetwork(now_ns=wall_ns)
    for name in ("alice", "bob", "carol"):
        make_account(homes / name, name.title())
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        async with running_people(net, homes, ("alice", "carol")) as (alice, carol):
            bob_cm = running(net, homes / "bob", "bob")
            bob = await bob_cm.__aenter__()
            try:
                await befriend(alice, bob)
                await befriend(alice, carol)
                for p in (alice, bob, carol):
                    _setup(p, anvil)
                to_bob, to_alice = f"contact:{bob.me.hex()}", f"contact:{alice.me.hex()}"

                # Alice asks Bob's address; his client answers; she pays from the chat.
                await alice.client.payments.ask_address(bob.me)
                await wait_for(alice, lambda: alice.client.payments.address_of(bob.me) is not None)
                sent = await _pay(alice, to_bob, 2 * GWEI)
                assert await _until(bob, _status(bob, to_alice, sent), "received") == "received"
                # Bob's client acknowledges: Alice's card says "received" too
                assert await _until(alice, _status(alice, to_bob, sent), "received") == "received"
                assert _card(bob, to_alice, sent)["display"] == "0.000000002 ETH"

                # The test token: 1.5 BXD, verified by the token's own Transfer logs.
                rpc = Rpc(anvil.url, anvil.chain_id)
                anvil_rpc(
                    anvil, "anvil_setBalance", [checksum_address(address_bytes(FUNDER)), hex(FUND)]
                )
                token = await trio.to_thread.run_sync(deploy_token, rpc, FUNDER, 10**12)
                for p in (alice, bob):
                    p.client.payments.store.set_chain(
                        ChainConfig(anvil.url, anvil.chain_id, token, "BXD", 6, confirmations=1)
                    )
                await trio.to_thread.run_sync(
                    fund_account, rpc, FUNDER, token, alice.client.payments.address(), FUND, 10**7
                )
                rpc.close()
                bxd = alice.client.payments.asset("BXD")
                card = await trio.to_thread.run_sync(_send_asset, alice, to_bob, 1_500_000, bxd)
                paid_bxd = await alice.client.payments.post(to_bob, card)
                await _until(bob, _status(bob, to_alice, paid_bxd), "received")
                assert _card(bob, to_alice, paid_bxd)["display"] == "1.5 BXD"

                # Bob pays Alice while the RPC is down: saved, not broadcast. He restarts.
                await bob.client.payments.ask_address(alice.me)
                await wait_for(bob, lambda: bob.client.payments.address_of(alice.me) is not None)
                pays = bob.client.payments
                quote = pays.wallet().quote(pays.target(to_alice).address, 3 * GWEI, ETH)
                good = pays.store.chain()
                dead = ChainConfig(
                    f"http://127.0.0.1:{free_port()}", anvil.chain_id, confirmations=1
                )
                pays.store.set_chain(dead)
                wallet = pays.wallet()
                with pytest.raises(RpcDown):
                    wallet.send(quote, 0, "while offline")
                record = pays.store.open_txs(anvil.chain_id)[0]
                claim = TransferClaim(anvil.chain_id, record.hash, wallet.address,
                                      quote.recipient, None, 3 * GWEI, "while offline")  # fmt: skip
                offline = await pays.post(to_alice, TransferCard(claim))
                await wait_for(alice, lambda: _status(alice, to_bob, offline)() is not None)
                await bob_cm.__aexit__(None, None, None)
                assert (
                    anvil_rpc(anvil, "eth_getTransactionByHash", ["0x" + record.hash.hex()]) is None
                )
                bob_cm = running(net, homes / "bob", "bob")
                bob = await bob_cm.__aenter__()
                bob.client.payments.store.set_chain(good)  # the node is back: re-broadcast
                await _until(alice, _status(alice, to_bob, offline), "received")
                await _until(bob, _status(bob, to_alice, offline), "received")  # Alice acked

                # A forged card: a real 1 gwei payment, the card says 50. And a replay.
                honest = await _pay(bob, to_alice, GWEI)
                await _until(alice, _status(alice, to_bob, honest), "received")
                real = bob.client.payments.store.history(anvil.chain_id, 1)[0]
                lie = TransferClaim(anvil.chain_id, real.hash, real.sender, real.recipient, None,
                                    50 * GWEI, "trust me")  # fmt: skip
                forged = await bob.client.payments.post(to_alice, TransferCard(lie))
                assert await _until(alice, _status(alice, to_bob, forged), "forged") == "forged"
                card = _card(alice, to_bob, forged)
                assert "replay" in str(card["reason"])
                # a fresh transaction whose card claims more than it moved
                quiet = await trio.to_thread.run_sync(_send_only, bob, to_alice, GWEI)
                c = quiet.claim
                bigger = TransferClaim(c.chain_id, c.tx_hash, c.sender, c.recipient, None,
                                       50 * GWEI, "")  # fmt: skip
                inflated = await bob.client.payments.post(to_alice, TransferCard(bigger))
                assert (
                    await _until(alice, _status(alice, to_bob, inflated), "forged", "received")
                    == "forged"
                )
                assert "amount" in str(_card(alice, to_bob, inflated)["reason"])

                # A request: Alice asks Bob for 4 gwei; he pays it with one tap.
                asked = await alice.client.payments.request(to_bob, 4 * GWEI, ETH, "tickets")
                await wait_for(bob, lambda: _status(bob, to_alice, asked)() == "open")
                paid = await _pay(bob, to_alice, 1, request=asked)  # the request sets the amount
                await _until(alice, _status(alice, to_bob, paid), "received")
                request_card = _card(alice, to_bob, asked)
                assert request_card["paid"] and request_card["paid_by"] == [bob.me.hex()]
                assert _card(alice, to_bob, paid)["amount"] == str(4 * GWEI)

                # A bill split among 3: each of Bob and Carol pays their share.
                gid = (await alice.client.groups.create("Dinner")).group_id
                for p in (bob, carol):
                    await alice.client.groups.invite(gid, p.me)
                for p in (bob, carol):
                    await wait_for(
                        p, lambda p=p: gid in {g.group_id for g in p.client.groups.groups()}
                    )
                await trio.sleep(30)  # keys and ops settled
                group = f"group:{gid.hex()}"
                bill = await alice.client.payments.request(group, 100 * GWEI, ETH, "dinner")
                for p in (bob, carol):
                    await wait_for(p, lambda p=p: _status(p, group, bill)() == "open")
                shares = {s["member"]: int(s["amount"]) for s in _card(bob, group, bill)["shares"]}  # type: ignore[attr-defined]
                assert sum(shares.values()) == 100 * GWEI
                assert sorted(shares.values()) == [100 * GWEI // 3] * 2 + [100 * GWEI // 3 + 1]
                for p in (bob, carol):
                    await _pay(p, group, 1, request=bill)
                await _until(alice, lambda: bool(_card(alice, group, bill)["paid"]), True)
                assert sorted(_card(alice, group, bill)["paid_by"]) == sorted(  # type: ignore[arg-type]
                    [bob.me.hex(), carol.me.hex()]
                )
            finally:
                await bob_cm.__aexit__(None, None, None)
        nursery.cancel_scope.cancel()
