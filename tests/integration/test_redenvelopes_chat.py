"""Red envelopes in chat with real clients over the in-memory network and a real
anvil: Alice sends a lucky envelope in a 3-member group; Bob (with ETH) and Carol
(zero ETH) open it and Alice's client signs their tickets and relays their claims;
Bob's second address (a notice for it) gets nothing; both see who opened which
with the chain's amounts and the best luck; an envelope in BXD (the devnet's
ERC-20) pays both in BXD and is named BXD; a late opener
of a one-share envelope is told it's empty; an envelope nobody opens is refunded
to Alice by her own client after expiry, and so is one of hers on the contract
shipped before an upgrade; a stranger's forwarded card is never
openable, nor one whose card lies about the chain or names another contract."""

from __future__ import annotations

import secrets
from dataclasses import replace
from pathlib import Path

import pytest
import trio
import trio.testing

from boxless.chat.redenvelope import RedEnvelopeCard, RedEnvelopeOpened
from boxless.client import redenvelope_store as rs
from boxless.client.memory_transport import MemoryNetwork
from boxless.client.redenvelopes import POLL_S
from boxless.client.redenvelopes_chain import RedEnvelopeContract
from boxless.client.redenvelopes_core import Card, sign_opened
from boxless.errors import UsageError
from boxless.payments.devnet import Anvil, deploy_token, fund_account
from boxless.payments.errors import RpcRefused
from boxless.payments.evmcall import call_data, decode
from boxless.payments.hdwallet import address_bytes, checksum_address, derive_private_key
from boxless.payments.rpc import Rpc
from boxless.payments.store import ChainConfig
from tests.anvil_chat import anvil_rpc, running_people
from tests.chain_blocks import fast_blocks
from tests.memnet_fixtures import (
    Person,
    befriend,
    homes,  # noqa: F401
    make_account,
    wait_for,
    wall_ns,
)

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
ETH = 10**18
LOOKS = 60


def _setup(p: Person, chain: Anvil, fund: int, token: str | None = None) -> bytes:
    config = ChainConfig(chain.url, chain.chain_id, token, "BXD", 6, confirmations=1)
    p.client.payments.store.set_chain(
        config if token else ChainConfig(chain.url, chain.chain_id, confirmations=1)
    )
    address = p.client.redenvelopes.address()
    anvil_rpc(chain, "anvil_setBalance", [checksum_address(address), hex(fund)])
    return address


def _envelope(p: Person, chat: str, message_id: str) -> dict[str, object] | None:
    found = [e for e in p.client.redenvelopes.envelopes(chat) if e["message_id"] == message_id]
    return found[0] if found else None


async def _until(chain: Anvil, p: Person, chat: str, mid: str, pred: object) -> dict[str, object]:
    """Until ``pred(envelope)``: a block is mined between looks, watchers get a tick."""
    for _ in range(LOOKS):
        e = _envelope(p, chat, mid)
        if e is not None and pred(e):  # type: ignore[operator]
            return e
        await trio.to_thread.run_sync(anvil_rpc, chain, "evm_mine", [])
        await trio.sleep(POLL_S + 0.5)
    raise AssertionError(f"{p.name}: {_envelope(p, chat, mid)}")


def _token_balance(rpc: Rpc, token: str, who: bytes) -> int:
    """BXD held by ``who``; a read of "latest" that raced a new block on anvil
    --prune-history (BlockOutOfRangeError) is read again, as the app's reads are."""
    payload = call_data("balanceOf(address)", [who])
    for attempt in range(5):
        try:
            raw = rpc.call("eth_call", [{"to": token, "data": "0x" + payload.hex()}, "latest"])
            return int(decode(["uint256"], bytes.fromhex(raw[2:]))[0])
        except RpcRefused as exc:
            if "BlockOutOfRange" not in str(exc) or attempt == 4:
                raise
    raise AssertionError("unreachable")


async def test_red_envelope_in_a_group(
    homes: Path,  # noqa: F811
    anvil: Anvil,  # noqa: F811
    autojump_clock: trio.testing.MockClock,
) -> None:
    with fast_blocks(anvil.url):
        await _scenario(homes, anvil)


async def _scenario(homes: Path, anvil: Anvil) -> None:  # noqa: F811
    net = MemoryNetwork(now_ns=wall_ns)
    for name in ("alice", "bob", "carol", "mallory"):
        make_account(homes / name, name.title())
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        async with running_people(net, homes, ("alice", "bob", "carol", "mallory")) as people:
            alice, bob, carol, mallory = people
            rpc = Rpc(anvil.url, anvil.chain_id)
            minter = secrets.token_bytes(32)  # this test's own BXD
            anvil_rpc(
                anvil, "anvil_setBalance", [checksum_address(address_bytes(minter)), hex(ETH)]
            )
            bxd = await trio.to_thread.run_sync(deploy_token, rpc, minter, 10**12)
            alice_addr = _setup(alice, anvil, 100 * ETH, bxd)
            await trio.to_thread.run_sync(
                fund_account, rpc, minter, bxd, alice_addr, 100 * ETH, 10**9
            )
            bob_addr = _setup(bob, anvil, ETH, bxd)
            carol_addr = _setup(carol, anvil, 0, bxd)
            _setup(mallory, anvil, ETH)
            for p in (bob, carol):
                await befriend(alice, p)
            await befriend(mallory, bob)
            gid = (await alice.client.groups.create("Family")).group_id
            for p in (bob, carol):
                await alice.client.groups.invite(gid, p.me)
            for p in (bob, carol):
                await wait_for(p, lambda p=p: gid in {g.group_id for g in p.client.groups.groups()})
            await trio.sleep(30)  # keys and ops settled
            group = f"group:{gid.hex()}"

            # Alice remembers a contract that is not the shipped one (an old version):
            # sending deploys a genuine one instead of calling the old ABI.
            with alice.client.db.transaction() as cur:
                rs.set_contract(cur, anvil.chain_id, bytes.fromhex(bxd[2:]))
            mid = await alice.client.redenvelopes.send(group, ETH // 10 + 3, 2, True, "恭喜发财")
            with alice.client.db.transaction() as cur:
                assert rs.contract(cur, anvil.chain_id) not in (None, bytes.fromhex(bxd[2:]))
            for p in (bob, carol):
                await wait_for(p, lambda p=p: _envelope(p, group, mid) is not None)
            card = _envelope(bob, group, mid)
            assert card is not None and card["status"] == "open" and card["greeting"] == "恭喜发财"
            assert "secret" not in str(card)
            env_id = bytes.fromhex(str(card["envelope_id"]))

            assert await bob.client.redenvelopes.open(env_id) == {"relayed": True}
            # Bob asks for a second share for a second address of his (its key signs
            # the notice): Alice's client signs one ticket per member, so it is ignored.
            other_key = b"\x5a" * 32
            again = RedEnvelopeOpened(env_id, address_bytes(other_key),
                                      sign_opened(other_key, env_id, bob.me))  # fmt: skip
            await bob.client.redenvelopes._post(group, again, "🧧 opened a red envelope")
            with pytest.raises(UsageError, match="already opened"):
                await bob.client.redenvelopes.open(env_id)
            assert await carol.client.redenvelopes.open(env_id) == {"relayed": True}
            done = await _until(anvil, carol, group, mid, lambda e: e["my_amount"] is not None)
            bobs = await _until(anvil, bob, group, mid, lambda e: e["my_amount"] is not None)
            assert int(str(done["my_amount"])) + int(str(bobs["my_amount"])) == ETH // 10 + 3
            assert done["symbol"] == "ETH" and done["token"] is None
            assert (
                anvil_rpc(anvil, "eth_getBalance", [checksum_address(carol_addr), "latest"])
                != "0x0"
            )
            seen = await _until(anvil, alice, group, mid, lambda e: len(e["opened"]) == 2)  # type: ignore[arg-type]
            who = {o["member"]: (o["address"], int(o["amount"])) for o in seen["opened"]}  # type: ignore[attr-defined]
            assert who[bob.me.hex()][0] == checksum_address(bob_addr)
            assert who[carol.me.hex()][0] == checksum_address(carol_addr)
            best = max(who.values(), key=lambda v: v[1])[0]
            assert seen["best_luck"] == best and seen["status"] == "empty"

            # One share, two openers: the second is told it's empty.
            one = await alice.client.redenvelopes.send(group, ETH // 100, 1, False, "")
            for p in (bob, carol):
                await wait_for(p, lambda p=p: _envelope(p, group, one) is not None)
            one_id = bytes.fromhex(str(_envelope(bob, group, one)["envelope_id"]))  # type: ignore[index]
            await bob.client.redenvelopes.open(one_id)
            await _until(anvil, bob, group, one, lambda e: e["my_amount"] is not None)
            with pytest.raises(Exception, match="empty|already"):
                await carol.client.redenvelopes.open(one_id)
            # Carol claims Bob's share as hers in the chat: her key did not sign for Bob's
            # address, so nobody records it (Alice's list still says Bob).
            carol_key = derive_private_key(carol.client.account.keystore.load_wallet_seed())
            lie = RedEnvelopeOpened(one_id, bob_addr, sign_opened(carol_key, one_id, carol.me))
            await carol.client.redenvelopes._post(group, lie, "🧧 opened a red envelope")
            await trio.sleep(10)
            listed = await _until(anvil, alice, group, one, lambda e: len(e["opened"]) == 1)  # type: ignore[arg-type]
            assert [o["member"] for o in listed["opened"]] == [bob.me.hex()]  # type: ignore[index, union-attr]

            # 1:1: Alice to Bob; Bob opens it.
            to_bob, to_alice = f"contact:{bob.me.hex()}", f"contact:{alice.me.hex()}"
            solo = await alice.client.redenvelopes.send(to_bob, ETH // 50, 1, False, "for you")
            await wait_for(bob, lambda: _envelope(bob, to_alice, solo) is not None)
            solo_id = bytes.fromhex(str(_envelope(bob, to_alice, solo)["envelope_id"]))  # type: ignore[index]
            assert await bob.client.redenvelopes.open(solo_id) == {"relayed": True}
            mine = await _until(anvil, bob, to_alice, solo, lambda e: e["my_amount"] is not None)
            assert mine["my_amount"] == str(ETH // 50)

            # Mallory forwards to Bob 1:1 a card made for another chat: never openable.
            made = await trio.to_thread.run_sync(
                mallory.client.redenvelopes.create, group, ETH // 100, 1, True, "", 3600
            )
            evil = await mallory.client.redenvelopes._post(
                f"contact:{bob.me.hex()}", RedEnvelopeCard(made.encode()), "🧧 Red envelope"
            )
            to_mallory = f"contact:{mallory.me.hex()}"
            await wait_for(bob, lambda: _envelope(bob, to_mallory, evil) is not None)
            forged = _envelope(bob, to_mallory, evil)
            assert forged is not None and forged["status"] == "refused"
            with pytest.raises(UsageError, match="another chat"):
                await bob.client.redenvelopes.open(made.id)
            # Mallory's card lies about her envelope (100 ETH over the chain's 0.001 ETH),
            # and another names a contract that is not the red-envelope contract (BXD's):
            # Bob can open neither, and his watcher marks both refused.
            real = await trio.to_thread.run_sync(
                mallory.client.redenvelopes.create, to_bob, ETH // 1000, 1, False, "", 3600
            )
            lying = replace(real, total=100 * ETH)
            fake = replace(real, contract=bytes.fromhex(bxd[2:]), secret=secrets.token_bytes(32))
            refused = []
            for card_ in (lying, fake):
                posted = await mallory.client.redenvelopes._post(
                    to_bob, RedEnvelopeCard(card_.encode()), "🧧 Red envelope"
                )
                refused.append(posted)
                await wait_for(bob, lambda m=posted: _envelope(bob, to_mallory, m) is not None)
            with pytest.raises(UsageError, match="does not match the chain .total"):
                await bob.client.redenvelopes.open(lying.id)
            for posted, why in zip(refused, ("does not match", "not the Boxless"), strict=True):
                e = await _until(anvil, bob, to_mallory, posted, lambda e: e["reason"] != "")
                assert e["status"] == "refused" and why in str(e["reason"])

            # In BXD (an ERC-20): approve + deposit; claims paid in BXD, named by the wallet.
            assert alice.client.redenvelopes.currency_of("bxd") == (bytes.fromhex(bxd[2:]), 6)
            with pytest.raises(UsageError, match="ETH or BXD"):
                alice.client.redenvelopes.currency_of("USDC")
            tok = await alice.client.redenvelopes.send(group, 2_500_001, 2, True, "bxd",
                                                       token=bytes.fromhex(bxd[2:]))  # fmt: skip
            for p in (bob, carol):
                await wait_for(p, lambda p=p: _envelope(p, group, tok) is not None)
            tok_id = bytes.fromhex(str(_envelope(bob, group, tok)["envelope_id"]))  # type: ignore[index]
            for p in (bob, carol):
                assert await p.client.redenvelopes.open(tok_id) == {"relayed": True}
            shares = []
            for p, addr in ((bob, bob_addr), (carol, carol_addr)):
                e = await _until(anvil, p, group, tok, lambda e: e["my_amount"] is not None)
                assert (e["symbol"], e["decimals"], e["token"]) == ("BXD", 6, bxd)
                held = await trio.to_thread.run_sync(_token_balance, rpc, bxd, addr)
                assert held == int(str(e["my_amount"])) > 0
                shares.append(held)
            assert sum(shares) == 2_500_001
            assert _envelope(mallory, group, tok) is None  # not a member: never saw it
            rpc.close()

            # Nobody opens this one: after expiry Alice's client refunds it by itself.
            def balance() -> int:
                me = checksum_address(alice.client.redenvelopes.address())
                return int(str(anvil_rpc(anvil, "eth_getBalance", [me, "latest"])), 16)

            # An envelope of Alice's on the contract shipped before an upgrade (its code
            # is not today's): her client still refunds it after expiry, then lets it be.
            signer = alice.client.redenvelopes.signer()
            old_code = (ROOT / "tests/chain/RedEnvelopePrevious.bin").read_text().strip()
            deployed = await trio.to_thread.run_sync(
                signer.transact, None, bytes.fromhex(old_code[2:])
            )
            assert deployed.contract_address is not None
            previous = RedEnvelopeContract(signer, deployed.contract_address)
            head = anvil_rpc(anvil, "eth_getBlockByNumber", ["latest", False])
            old_secret, old_expiry = secrets.token_bytes(32), int(head["timestamp"], 16) + 60  # type: ignore[index]
            await trio.to_thread.run_sync(
                previous.create, old_secret, ETH // 20, 2, True, old_expiry
            )
            old_card = Card(anvil.chain_id, previous.address, signer.address, old_secret, group,
                            ETH // 20, 2, True, old_expiry, "")  # fmt: skip
            with alice.client.db.transaction() as cur:
                rs.add(cur, rs.EnvelopeRow(old_card.id, group, "m-old", alice.me, True,
                                           old_card.encode(), "open", None, "", 1))  # fmt: skip

            before = balance()
            late = await alice.client.redenvelopes.send(group, 2 * ETH, 3, True, "", expiry_s=60)
            assert balance() < before - 2 * ETH + ETH // 100
            await trio.to_thread.run_sync(anvil_rpc, anvil, "evm_increaseTime", [hex(61)])
            await _until(anvil, alice, group, late, lambda e: e["status"] == "expired")
            for _ in range(LOOKS):
                if balance() > before - ETH // 100:
                    break  # the 2 ETH came back (minus gas)
                await trio.to_thread.run_sync(anvil_rpc, anvil, "evm_mine", [])
                await trio.sleep(POLL_S + 0.5)
            assert balance() > before - ETH // 100
            for _ in range(LOOKS):  # refunded by Alice's client
                old = anvil_rpc(
                    anvil, "eth_getBalance", [checksum_address(previous.address), "latest"]
                )
                if old == "0x0":
                    break
                await trio.to_thread.run_sync(anvil_rpc, anvil, "evm_mine", [])
                await trio.sleep(POLL_S + 0.5)
            assert old == "0x0"
            # The refund is mined before Alice's client sees its receipt and marks the
            # row: wait for the mark itself, not for the balance that precedes it.
            for _ in range(LOOKS):
                with alice.client.db.transaction() as cur:
                    old_row = rs.get(cur, old_card.id)
                if old_row is not None and old_row.reason:
                    break
                await trio.to_thread.run_sync(anvil_rpc, anvil, "evm_mine", [])
                await trio.sleep(POLL_S + 0.5)
            assert old_row is not None and "previous" in old_row.reason
        nursery.cancel_scope.cancel()
