"""The wallet against a real anvil: send + confirmations, restart mid-transaction
(nonce kept, re-broadcast), a reorg puts a transaction back, wrong chain id and
insufficient funds refused. One anvil for the module (tests/anvil.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mnemonic import Mnemonic

from boxless.payments.amounts import parse_amount
from boxless.payments.devnet import Anvil, free_port
from boxless.payments.errors import (
    BadRpcResponse,
    InsufficientFunds,
    RpcDown,
    RpcRefused,
    WrongChain,
)
from boxless.payments.hdwallet import (
    address_bytes,
    checksum_address,
    derive_private_key,
    parse_address,
)
from boxless.payments.store import ChainConfig, PaymentStore
from boxless.payments.tracker import CONFIRMED, INCLUDED, PENDING
from boxless.payments.wallet import Wallet
from boxless.storage.userdb import KdfParams, UserDB, create_user_db, open_user_db
from tests.anvil_chat import anvil_rpc

pytestmark = pytest.mark.slow
FAST_KDF = KdfParams(memory_kib=1024, time_cost=1, parallelism=1)
PASS = "correct horse battery staple"
SEED = Mnemonic.to_seed("test test test test test test test test test test test junk", "")
DEADLINE_S = 15.0


@pytest.fixture
def db(tmp_path: Path) -> Iterator[UserDB]:
    database = create_user_db(tmp_path / "user.db", PASS, kdf=FAST_KDF)
    yield database
    database.close()


def _wallet(
    db: UserDB, chain: Anvil, account: int, url: str | None = None, confirmations: int = 2
) -> Wallet:
    store = PaymentStore(db)
    store.set_chain(ChainConfig(url or chain.url, chain.chain_id, confirmations=confirmations))
    return Wallet(store, store.chain(), derive_private_key(SEED, f"m/44'/60'/0'/0/{account}"))


def _until(wallet: Wallet, *states: str) -> str:
    """Refresh until the wallet's newest transaction reaches ``state``, mining a block
    (evm_mine) after each look instead of waiting for anvil's 1 s block time."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        wallet.refresh(int(time.time() * 1000))
        current = wallet.store.history(wallet.config.chain_id, 1)[0].state
        if current in states:
            return current
        httpx.post(
            wallet.config.rpc_url,
            json={"jsonrpc": "2.0", "id": 1, "method": "evm_mine", "params": []},
            timeout=5,
        )
        time.sleep(0.05)
    raise AssertionError(f"still {current}, not {states}, after {DEADLINE_S} s")


def test_send_counts_confirmations_and_moves_exact_amounts(anvil: Anvil, db: UserDB) -> None:  # noqa: F811
    alice = _wallet(db, anvil, 3)
    bob = parse_address("0x" + "b0" * 20)
    before = alice.balance()
    quote = alice.quote(bob, 123_456_789)
    assert quote.describe()[1] == "amount:  0.000000000123456789 ETH"
    record = alice.send(quote, int(time.time() * 1000), note="lunch")
    _until(alice, CONFIRMED)
    receipt = anvil_rpc(anvil, "eth_getTransactionReceipt", ["0x" + record.hash.hex()])
    assert isinstance(receipt, dict)
    fee = int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
    assert alice.balance() == before - 123_456_789 - fee
    assert (
        int(str(anvil_rpc(anvil, "eth_getBalance", ["0x" + bob.hex(), "latest"])), 16)
        >= 123_456_789
    )
    [row] = alice.store.history(anvil.chain_id)
    assert (row.state, row.note, row.amount) == (CONFIRMED, "lunch", 123_456_789)
    alice.close()


def test_restart_mid_transaction_keeps_the_nonce_and_rebroadcasts(
    anvil: Anvil,  # noqa: F811
    tmp_path: Path,
    db: UserDB,
) -> None:
    wallet = _wallet(db, anvil, 4)
    quote = wallet.quote(parse_address("0x" + "c0" * 20), 10**15)
    # The node goes away between signing and broadcasting: the tx is kept, pending.
    dead = _wallet(db, anvil, 4, url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RpcDown, match="unreachable"):
        dead.send(quote, int(time.time() * 1000))
    dead.close()
    wallet.close()
    db.close()
    # restart: reopen the database; the chain never saw the transaction
    reopened = open_user_db(tmp_path / "user.db", PASS)
    try:
        wallet = _wallet(reopened, anvil, 4)
        [pending] = wallet.store.open_txs(anvil.chain_id)
        assert pending.state == PENDING
        assert wallet.quote(parse_address("0x" + "c0" * 20), 1).tx.nonce == pending.nonce + 1
        assert _until(wallet, CONFIRMED) == CONFIRMED  # re-broadcast, then mined
        wallet.close()
    finally:
        reopened.close()


def test_a_reorg_puts_the_transaction_back(anvil: Anvil, db: UserDB) -> None:  # noqa: F811
    # A reorg deeper than the confirmations asked for is out of scope by definition;
    # ask for 50 so the block can be taken away while the transaction is "included".
    wallet = _wallet(db, anvil, 5, confirmations=50)
    snapshot = anvil_rpc(anvil, "evm_snapshot", [])
    wallet.send(wallet.quote(parse_address("0x" + "d0" * 20), 10**15), int(time.time() * 1000))
    _until(wallet, INCLUDED)
    assert anvil_rpc(anvil, "evm_revert", [snapshot]) is True  # the block with our tx is gone
    wallet.refresh(int(time.time() * 1000))
    assert wallet.store.history(anvil.chain_id, 1)[0].state == PENDING
    assert _until(wallet, INCLUDED) == INCLUDED  # re-broadcast and mined again
    wallet.close()


def test_wrong_chain_and_insufficient_funds_are_refused(anvil: Anvil, db: UserDB) -> None:  # noqa: F811
    store = PaymentStore(db)
    store.set_chain(ChainConfig(anvil.url, 1))  # mainnet's id; the node serves 31337
    liar = Wallet(store, store.chain(), derive_private_key(SEED, "m/44'/60'/0'/0/6"))
    with pytest.raises(WrongChain, match="serves chain 31337"):
        liar.balance()
    liar.close()
    poor = _wallet(db, anvil, 0)
    poor = Wallet(poor.store, poor.config, derive_private_key(b"\x07" * 64))
    with pytest.raises(InsufficientFunds, match="nothing was sent"):
        poor.quote(parse_address("0x" + "e0" * 20), 1)
    assert poor.store.history(anvil.chain_id) == []
    poor.close()


def test_cli_wallet(anvil: Anvil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from typer.testing import CliRunner

    from boxless.cli.main import app
    from boxless.identity.account import create_account
    from boxless.identity.keys import Identity
    from boxless.identity.profile import Profile
    from boxless.identity.seed import generate_phrase
    from boxless.payments.hdwallet import wallet_address

    phrase = generate_phrase()
    home = tmp_path / "user"
    home.mkdir()
    create_account(home, PASS, Identity.from_phrase(phrase), Profile("Alice"), 1, FAST_KDF).close()
    monkeypatch.setenv("BOXLESS_PASSPHRASE", PASS)
    runner = CliRunner()

    def run(*argv: str, answer: str | None = None) -> tuple[int, str]:
        result = runner.invoke(app, [*argv, "--home", str(home)], input=answer)
        return result.exit_code, result.output

    address = wallet_address(Mnemonic.to_seed(phrase, ""))
    assert run("wallet", "address") == (0, address + "\n")
    code, out = run("wallet", "balance")
    assert code == 2 and "boxless wallet config" in out
    code, out = run("wallet", "config", "--rpc", anvil.url, "--chain-id", "1")
    assert code == 2 and "serves chain 31337" in out
    assert run("wallet", "config", "--rpc", anvil.url, "--chain-id", "31337")[0] == 0
    anvil_rpc(anvil, "anvil_setBalance", [address, hex(10**18)])
    assert run("wallet", "balance") == (0, "1 ETH\n")
    bob = "0x" + "f0" * 20
    code, out = run("wallet", "send", bob, "0.5", answer="n\n")
    assert code == 1 and "amount:  0.5 ETH" in out and "fee:" in out and "total:" in out
    assert "nothing was sent" in out
    code, out = run("wallet", "send", bob, "0.5", "--yes", "--note", "rent")
    assert code == 0 and "sent: 0x" in out, out
    code, out = run("wallet", "send", bob, "0.6", "--yes")
    assert code == 2 and "nothing was sent" in " ".join(out.split())
    code, out = run("wallet", "receive", "0.25")
    assert code == 0 and f"ethereum:{address}@31337?value=250000000000000000" in out
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        code, out = run("wallet", "history")
        if "confirmed" in out:
            break
        anvil_rpc(anvil, "evm_mine", [])
    assert "confirmed" in out and "0.5 ETH" in out and "rent" in out, out


def test_erc20_token_transfer(anvil: Anvil, db: UserDB) -> None:  # noqa: F811
    from boxless.payments.amounts import Asset
    from boxless.payments.devnet import TOKEN_DECIMALS, TOKEN_SYMBOL, deploy_token, fund_account
    from boxless.payments.rpc import Rpc

    rpc = Rpc(anvil.url, anvil.chain_id)
    owner = derive_private_key(SEED, "m/44'/60'/0'/0/7")
    token = deploy_token(rpc, owner, 10**12)
    alice_key = derive_private_key(b"\x21" * 64)  # a fresh account, funded below
    alice_addr = checksum_address(address_bytes(alice_key))
    fund_account(rpc, owner, token, parse_address(alice_addr), 10**18, 5_000_000)
    rpc.close()
    store = PaymentStore(db)
    store.set_chain(ChainConfig(anvil.url, anvil.chain_id, token, TOKEN_SYMBOL, TOKEN_DECIMALS))
    wallet = Wallet(store, store.chain(), alice_key)
    bxd = wallet.assets()["BXD"]
    assert bxd == Asset("BXD", 6, token)
    assert wallet.balance(bxd) == 5_000_000
    bob = parse_address("0x" + "a1" * 20)
    quote = wallet.quote(bob, parse_amount("1.25", 6), bxd)
    assert "amount:  1.25 BXD" in quote.describe()
    wallet.send(quote, int(time.time() * 1000))
    with pytest.raises(InsufficientFunds, match="BXD"):  # 3.75 left once 1.25 is mined
        wallet.quote(bob, parse_amount("3.76", 6), bxd)
    wallet.quote(bob, parse_amount("3.75", 6), bxd)
    _until(wallet, CONFIRMED)
    assert wallet.balance(bxd) == 3_750_000
    # A contract that is not an ERC-20 (an EOA has no code: empty answer) → clear error
    fake = Wallet(
        store, ChainConfig(anvil.url, anvil.chain_id, "0x" + "a5" * 20, "X", 6), alice_key
    )
    with pytest.raises(BadRpcResponse, match="really an ERC-20"):
        fake.balance(fake.assets()["X"])
    fake.close()
    wallet.close()


def test_transfer_card_verified_against_the_chain(anvil: Anvil, db: UserDB) -> None:  # noqa: F811
    from dataclasses import replace

    from boxless.payments.rpc import Rpc
    from boxless.payments.transfer import (
        FORGED,
        PENDING,
        RECEIVED,
        TransferClaim,
        fetch_facts,
        verify,
    )

    wallet = _wallet(db, anvil, 8)
    bob = parse_address("0x" + "b8" * 20)
    record = wallet.send(wallet.quote(bob, 777), int(time.time() * 1000))
    card = TransferClaim(anvil.chain_id, record.hash, wallet.address, bob, None, 777, "hi")
    rpc = Rpc(anvil.url, anvil.chain_id)
    assert verify(card, fetch_facts(rpc, record.hash), 2).status == PENDING
    _until(wallet, CONFIRMED)
    facts = fetch_facts(rpc, record.hash)
    assert verify(card, facts, 2).status == RECEIVED
    assert verify(replace(card, amount=7770), facts, 2).status == FORGED
    assert verify(replace(card, recipient=b"\x01" * 20), facts, 2).status == FORGED
    unknown = b"\x5a" * 32
    assert verify(replace(card, tx_hash=unknown), fetch_facts(rpc, unknown), 2).status == PENDING
    rpc.close()
    wallet.close()


async def test_wallet_api(anvil: Anvil, tmp_path: Path) -> None:  # noqa: F811
    import trio

    from boxless.api.app import build_app
    from tests.memnet_fixtures import memnet

    async with memnet(tmp_path, ("alice",)) as (_net, (peer,)):
        app = build_app(peer.client, "t" * 32, "http://127.0.0.1:9", lambda: {"ok": True})
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://127.0.0.1:9/api/v1",
            headers={"Authorization": "Bearer " + "t" * 32},
        )
        alice = _Api(http)
        me = await alice.call("GET", "/wallet")
        assert me["chain"] is None and me["path"] == "m/44'/60'/0'/0/0"
        address = me["address"]
        wrong = await alice.request("PUT", "/wallet/chain", {"rpc_url": anvil.url, "chain_id": 5})
        assert wrong.status_code == 502 and "serves chain 31337" in wrong.json()["error"]["message"]
        chain = {"rpc_url": anvil.url, "chain_id": anvil.chain_id}
        assert (await alice.call("PUT", "/wallet/chain", chain))["chain_id"] == 31337
        await trio.to_thread.run_sync(anvil_rpc, anvil, "anvil_setBalance", [address, hex(10**18)])
        me = await alice.call("GET", "/wallet")
        assert me["balances"] == [
            {"symbol": "ETH", "amount": str(10**18), "decimals": 18, "display": "1 ETH"}
        ]
        to = "0x" + "c3" * 20
        bad = await alice.request("POST", "/wallet/quote", {"to": to, "amount": "0.1e1"})
        assert bad.status_code == 422
        quote = await alice.call("POST", "/wallet/quote", {"to": to, "amount": "0.25"})
        assert quote["amount"] == str(25 * 10**16)
        assert int(quote["total"]) == 25 * 10**16 + int(quote["fee_cap"])
        # a fee cap lower than the node now needs: refused, nothing sent
        low = {"to": to, "amount": "0.25", "max_fee_cap": "1"}
        refused = await alice.request("POST", "/wallet/send", low)
        assert (
            refused.status_code == 409 and "nothing was sent" in refused.json()["error"]["message"]
        )
        ok = {"to": to, "amount": "0.25", "max_fee_cap": quote["fee_cap"], "note": "books"}
        sent = await alice.call("POST", "/wallet/send", ok)
        assert sent["state"] == "pending" and sent["note"] == "books"
        poor = await alice.request("POST", "/wallet/quote", {"to": to, "amount": "0.8"})
        assert poor.status_code == 400 and "nothing was sent" in poor.json()["error"]["message"]
        card = {
            "chain_id": 31337,
            "tx": sent["hash"][2:],
            "from": address[2:].lower(),
            "to": to[2:],
            "token": None,
            "amount": str(25 * 10**16),
            "note": "",
        }
        for _ in range(40):
            await trio.to_thread.run_sync(anvil_rpc, anvil, "evm_mine", [])
            history = await alice.call("GET", "/wallet/history")
            if history["transactions"][0]["state"] == "confirmed":
                break
        assert history["transactions"][0]["state"] == "confirmed"
        verdict = await alice.call("POST", "/wallet/verify", {"card": card})
        assert verdict["status"] == "received"
        forged = await alice.call(
            "POST", "/wallet/verify", {"card": {**card, "amount": str(10**18)}}
        )
        assert forged["status"] == "forged"
        junk = await alice.request("POST", "/wallet/verify", {"card": {"tx": 1}})
        assert junk.status_code == 502


class _Api:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def request(self, method: str, path: str, body: object = None) -> httpx.Response:
        return await self.http.request(method, path, json=body)

    async def call(self, method: str, path: str, body: object = None) -> Any:
        response = await self.request(method, path, body)
        assert response.status_code < 400, f"{method} {path}: {response.text}"
        return response.json()


def test_pipelined_sends_batch_and_a_refused_one_is_forgotten(anvil: Anvil, db: UserDB) -> None:  # noqa: F811
    """Five sends queued while earlier ones go out in batches: all accepted, nonces in
    order, and a reused read never overdraws: a sixth for more than what is left is
    refused before signing. A second transaction on a taken nonce (same fees: the node
    refuses it as an underpriced replacement) settles its future with RpcRefused and
    leaves no row."""
    alice = _wallet(db, anvil, 9)
    anvil_rpc(anvil, "anvil_setBalance", [checksum_address(alice.address), hex(10**18)])
    bob = parse_address("0x" + "b1" * 20)
    futures = [alice.send_pipelined(alice.quote(bob, 10**17), 0) for _ in range(5)]
    nonces = [f.result(timeout=10).nonce for f in futures]
    assert nonces == sorted(nonces) and len(set(nonces)) == 5
    with pytest.raises(InsufficientFunds):
        alice.quote(bob, 5 * 10**17)  # 1 ETH - 5 x 0.1 - fees < 0.5: the view reserved them
    first, twin = alice.quote(bob, 1), alice.quote(bob, 2)  # the same nonce
    assert first.tx.nonce == twin.tx.nonce
    ok = alice.send_pipelined(first, 0)
    refused = alice.send_pipelined(twin, 0)
    assert ok.result(timeout=10).nonce == first.tx.nonce
    with pytest.raises(RpcRefused):
        refused.result(timeout=10)
    assert len(alice.store.history(anvil.chain_id, 50)) == 6
    alice.close()


def test_a_broadcast_the_node_already_has_is_not_forgotten(anvil: Anvil, db: UserDB) -> None:  # noqa: F811
    """The watcher may re-broadcast a stored transaction before the sender's own
    broadcast: the node's "already imported" means it is out, so the row stays."""
    alice = _wallet(db, anvil, 8)
    record = alice.send(alice.quote(parse_address("0x" + "b2" * 20), 7), 0)
    assert alice._broadcast(alice.rpc, record) == record  # the second broadcast of it
    assert [t.hash for t in alice.store.open_txs(anvil.chain_id)] == [record.hash]
    alice.close()
