"""Red envelopes, escrow and stealth payments against a real anvil (its own process: these tests
move the chain's clock). A 10-share envelope in a 12-member group: 10 claim
(members with zero ETH, the sender's tickets relayed), 2 are told it's empty, the
sums are exact, expiry refunds; a member who knows the seed cannot predict her
share; a member with a second address, a forged ticket, a non-member's claim, a
replayed claim and a redirected claim are refused. BXD envelopes and escrow.
Escrow: release, refund, timeout. A stealth payment is found and spent by its
recipient only."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mnemonic import Mnemonic

from boxless.client.escrow import Escrow, NotEscrow, WrongCurrency
from boxless.client.redenvelopes_chain import RedEnvelopeContract, due_refunds
from boxless.client.redenvelopes_core import (
    ALLOWED,
    Card,
    claim_private_key,
    draw,
    may_claim,
    nullifier,
    share_amount,
    split_seed,
)
from boxless.errors import ConfigError
from boxless.payments.devnet import Anvil, find_anvil, token_bytecode
from boxless.payments.evmcall import ContractReverted, Signer, call_data, decode
from boxless.payments.hdwallet import address_bytes, derive_private_key, keccak256
from boxless.payments.rpc import Rpc
from boxless.payments.stealth import Scanner, StealthKeys, stealth_private_key
from boxless.payments.stealth_chain import Announcer, Registry, spend

pytestmark = pytest.mark.slow
SEED = Mnemonic.to_seed("test test test test test test test test test test test junk", "")
ETH = 10**18
GROUP = "group:" + "ab" * 16


class MiningSigner(Signer):
    """A signer on a real anvil that mines a block after each send (anvil's
    1 s block time would otherwise make every receipt wait)."""

    def submit(
        self, to: bytes | None, payload: bytes, value: int = 0, gas: int | None = None
    ) -> bytes:
        h = super().submit(to, payload, value, gas)
        self.rpc.call("evm_mine", [])
        return h


@pytest.fixture(scope="module")
def chain() -> Iterator[Anvil]:
    try:
        find_anvil()
    except ConfigError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    with Anvil() as node:
        yield node


@pytest.fixture(scope="module")
def rpc(chain: Anvil) -> Iterator[Rpc]:
    client = Rpc(chain.url, chain.chain_id)
    yield client
    client.close()


def _funded(rpc: Rpc, account: int) -> MiningSigner:
    return MiningSigner(rpc, derive_private_key(SEED, f"m/44'/60'/0'/0/{account}"))


def _now(rpc: Rpc) -> int:
    block = rpc.call("eth_getBlockByNumber", ["latest", False])
    return int(block["timestamp"], 16)


def _travel(rpc: Rpc, seconds: int) -> None:
    rpc.call("evm_increaseTime", [hex(seconds)])
    rpc.call("evm_mine", [])


def _randao(rpc: Rpc, block: int | str) -> bytes:
    """The prevrandao a block's transactions saw (anvil: the header's mixHash)."""
    tag = block if isinstance(block, str) else hex(block)
    return bytes.fromhex(rpc.call("eth_getBlockByNumber", [tag, False])["mixHash"][2:])


def _token(rpc: Rpc, owner: MiningSigner, supply: int) -> bytes:
    receipt = owner.transact(None, token_bytecode() + supply.to_bytes(32, "big"))
    assert receipt.contract_address is not None
    return receipt.contract_address


def _token_balance(signer: Signer, token: bytes, who: bytes) -> int:
    return int(decode(["uint256"], signer.call(token, call_data("balanceOf(address)", [who])))[0])


def test_ten_shares_twelve_members(rpc: Rpc) -> None:
    alice = _funded(rpc, 1)
    contract = RedEnvelopeContract.deploy(alice, alice._key)
    members = [MiningSigner(rpc, secrets.token_bytes(32)) for _ in range(12)]
    ids = [secrets.token_bytes(32) for _ in members]  # their identity keys
    assert all(alice.balance(m.address) == 0 for m in members)
    secret = secrets.token_bytes(32)
    total, fee = 10 * ETH + 7, 10**15  # not a multiple of 10: the split is still exact
    expiry = _now(rpc) + 24 * 3600
    env_id = contract.create(secret, total, 10, True, expiry, relay_fee=fee)
    card = Card(rpc.chain_id, contract.address, alice.address, secret, GROUP, total, 10, True,
                expiry, "恭喜发财")  # fmt: skip
    assert card.id == env_id

    # Members with zero ETH: the sender's client signs their tickets and relays.
    got = []
    for i, (m, who) in enumerate(zip(members[:3], ids, strict=False)):
        view = contract.view(env_id, m.address)
        assert may_claim(card, arrived_in=GROUP, member=True, chain_id=rpc.chain_id,
                         contract=contract.address, view=view, now_s=_now(rpc)) == ALLOWED  # fmt: skip
        claim = contract.claim(card, who, m.address)
        assert (claim.index, claim.recipient, claim.fee) == (i, m.address, fee)
        assert alice.balance(m.address) == claim.amount - fee
        got.append(claim.amount)
    # A replayed claim is refused by the contract's check: nothing is sent.
    assert contract.relay_claims(card, [(ids[0], members[0].address)]) == (
        [],
        ["already claimed"],
    )
    # The rest in one relayed batch: the two beyond the tenth share are refused.
    rest = [(who, m.address) for who, m in zip(ids[3:], members[3:], strict=True)]
    hashes, refused = contract.relay_claims(card, rest)
    assert len(hashes) == 7 and refused == ["empty", "empty"]
    alice.wait(hashes)
    claims = contract.claims(env_id)
    assert [c.recipient for c in claims] == [m.address for m in members[:10]]
    for c, m in zip(claims[3:], members[3:10], strict=True):
        assert alice.balance(m.address) == c.amount - fee
    got += [c.amount for c in claims[3:]]
    assert sum(got) == total and min(got) >= 1 and len(set(got)) > 1

    # The two late members are told it's empty, and the chain agrees.
    for who, m in zip(ids[10:], members[10:], strict=True):
        view = contract.view(env_id, m.address)
        reason = may_claim(card, arrived_in=GROUP, member=True, chain_id=rpc.chain_id,
                           contract=contract.address, view=view, now_s=_now(rpc))  # fmt: skip
        assert "empty" in reason
        with pytest.raises(ContractReverted, match="empty"):
            contract.claim(card, who, m.address)
    env = contract.envelope(env_id)
    assert (env.claimed, env.remaining) == (10, 0)


def _old_predictor(remaining: int, left: int, seed: bytes, index: int) -> int:
    """What a member who knows the seed computed against the old contract (share i
    fixed by keccak(seed ‖ i)): the attack the per-block draw stops."""
    avg = remaining // left
    r = int.from_bytes(keccak256(seed + index.to_bytes(32, "big")), "big")
    return 1 + r % (2 * avg - 1)


def test_a_member_who_knows_the_seed_cannot_predict_their_share(rpc: Rpc) -> None:
    """Mallory holds the card (the seed) and the head block; she predicts her share
    before her claim lands, with the old rule and with the head's prevrandao. Both
    miss: the share is drawn from the prevrandao of the block the claim lands in
    (checked after the fact), and anvil draws a fresh one per block."""
    alice = _funded(rpc, 9)
    contract = RedEnvelopeContract.deploy(alice, alice._key)
    total, shares = 1000 * ETH, 100
    missed_old = missed_head = 0
    for _ in range(3):
        secret = secrets.token_bytes(32)
        contract.create(secret, total, shares, True, _now(rpc) + 3600)
        card = Card(rpc.chain_id, contract.address, alice.address, secret, GROUP, total,
                    shares, True, _now(rpc) + 3600, "")  # fmt: skip
        mallory_id, mallory = secrets.token_bytes(32), secrets.token_bytes(20)
        seed, tag = split_seed(secret), nullifier(secret, mallory_id)
        old_guess = _old_predictor(total, shares, seed, 0)
        head = _randao(rpc, "latest")
        head_guess = share_amount(total, shares, True, draw(seed, head, tag, 0))
        claim = contract.claim(card, mallory_id, mallory)
        block = contract.signer.logs(contract.address, [None, card.id])[-1].block_number
        landed = _randao(rpc, block)
        assert landed != head  # a new block, a new prevrandao
        assert claim.amount == share_amount(total, shares, True, draw(seed, landed, tag, 0))
        missed_old += claim.amount != old_guess
        missed_head += claim.amount != head_guess
    assert missed_old == 3 and missed_head == 3


def test_one_member_one_share_and_attackers(rpc: Rpc) -> None:
    alice, mallory = _funded(rpc, 2), _funded(rpc, 3)
    contract = RedEnvelopeContract.deploy(alice, alice._key)
    secret = secrets.token_bytes(32)
    expiry = _now(rpc) + 3600
    env_id = contract.create(secret, 3 * ETH, 3, False, expiry)
    card = Card(rpc.chain_id, contract.address, alice.address, secret, GROUP, 3 * ETH, 3, False,
                expiry, "")  # fmt: skip
    mallory_id = secrets.token_bytes(32)
    # A member forges her own ticket with the key the card gives everyone: refused.
    as_member = RedEnvelopeContract(mallory, contract.address, claim_private_key(secret))
    with pytest.raises(ContractReverted, match="bad claim signature"):
        as_member.claim(card, mallory_id, mallory.address)
    # Mallory's first address gets her share (the sender's ticket, relayed)...
    first = secrets.token_bytes(20)
    assert contract.claim(card, mallory_id, first).amount == ETH
    # ...a second address of hers is refused on chain even with a genuine ticket
    # (the sender's client would not sign it: one ticket per member identity).
    second = secrets.token_bytes(20)
    ticket = contract.claim_payload(card, mallory_id, second)
    with pytest.raises(ContractReverted, match="member already claimed"):
        mallory.submit(contract.address, ticket)
    assert contract.relay_claims(card, [(mallory_id, second)])[1] == ["member already claimed"]
    # A watcher redirects Bob's ticket to itself: the recipient is signed.
    bob_id, bob = secrets.token_bytes(32), b"\x0b" * 20
    bobs = contract.claim_payload(card, bob_id, bob)
    redirected = bobs[:36] + mallory.address.rjust(32, b"\x00") + bobs[68:]
    with pytest.raises(ContractReverted, match="bad claim signature"):
        mallory.submit(contract.address, redirected)
    mallory.wait([mallory.submit(contract.address, bobs)])  # anyone may submit it as is
    with pytest.raises(ContractReverted, match="already claimed"):
        mallory.submit(contract.address, bobs)  # replayed
    # A non-member guessing a secret has neither the seed nor a ticket.
    stranger = Card(card.chain_id, card.contract, card.sender, secrets.token_bytes(32), GROUP,
                    card.total, 3, False, expiry, "")  # fmt: skip
    forged = RedEnvelopeContract(mallory, contract.address, mallory._key).claim_payload(
        stranger, mallory_id, mallory.address
    )
    forged = forged[:4] + card.id + forged[36:]  # aim it at the real envelope
    with pytest.raises(ContractReverted, match="wrong seed|bad claim signature|member already"):
        mallory.submit(contract.address, forged)
    # A card forwarded into another chat, or opened by an ex-member: refused locally.
    view = contract.view(env_id, mallory.address)
    now = _now(rpc)
    args = {"chain_id": rpc.chain_id, "contract": contract.address, "view": view, "now_s": now}
    assert "another chat" in may_claim(card, arrived_in="group:" + "cd" * 16, member=True, **args)
    assert "only members" in may_claim(card, arrived_in=GROUP, member=False, **args)

    # Refund before expiry is refused; after it, anyone triggers it, Alice is paid.
    as_mallory = RedEnvelopeContract(mallory, contract.address)
    with pytest.raises(ContractReverted, match="not expired"):
        as_mallory.refund(env_id)
    _travel(rpc, 3601)
    assert due_refunds([contract.envelope(env_id)], _now(rpc)) == [env_id]
    before = alice.balance(alice.address)
    assert as_mallory.refund(env_id) == ETH
    assert alice.balance(alice.address) == before + ETH
    with pytest.raises(ContractReverted, match="expired"):
        contract.claim(card, secrets.token_bytes(32), alice.address)
    assert due_refunds([contract.envelope(env_id)], _now(rpc)) == []


def test_token_envelope_and_escrow(rpc: Rpc) -> None:
    """BXD (the devnet's ERC-20): approve + deposit; claims, refund and every escrow
    way out paid in the token; an ETH escrow client refuses a token deal."""
    alice, shop = (MiningSigner(rpc, secrets.token_bytes(32)) for _ in range(2))
    for who in (alice, shop):
        rpc.call("anvil_setBalance", ["0x" + who.address.hex(), hex(ETH)])
    token = _token(rpc, alice, 10**12)
    contract = RedEnvelopeContract.deploy(alice, alice._key)
    secret, total = secrets.token_bytes(32), 5_000_001
    expiry = _now(rpc) + 600
    env_id = contract.create(secret, total, 4, True, expiry, token=token)
    card = Card(rpc.chain_id, contract.address, alice.address, secret, GROUP, total, 4, True,
                expiry, "", token)  # fmt: skip
    assert contract.envelope(env_id).token == token
    assert _token_balance(alice, token, contract.address) == total
    people = [(secrets.token_bytes(32), secrets.token_bytes(20)) for _ in range(3)]
    hashes, refused = contract.relay_claims(card, people)
    assert refused == []
    alice.wait(hashes)
    got = [_token_balance(alice, token, r) for _, r in people]
    assert [c.amount for c in contract.claims(env_id)] == got and min(got) >= 1
    assert all(alice.balance(r) == 0 for _, r in people)  # paid in BXD, not ETH
    _travel(rpc, 601)
    before = _token_balance(alice, token, alice.address)
    assert contract.refund(env_id) == total - sum(got)
    assert _token_balance(alice, token, alice.address) == before + total - sum(got)
    assert _token_balance(alice, token, contract.address) == 0

    # Escrow in BXD: pay (approve + pay_token), release to the seller; reclaim after the deadline.
    buyer = Escrow.deploy(alice, token)
    deal = buyer.pay(shop.address, 250_000, _now(rpc) + 600, b"order-7")
    assert buyer.status(deal).token == token and buyer.status(deal).amount == 250_000
    with pytest.raises(WrongCurrency):  # a seller selling for ETH never counts it as paid
        Escrow(shop, buyer.address).status(deal)
    buyer.release(deal)
    assert _token_balance(alice, token, shop.address) == 250_000
    deal2 = buyer.pay(shop.address, 1_000, _now(rpc) + 600, b"order-8")
    _travel(rpc, 601)
    before = _token_balance(alice, token, alice.address)
    buyer.reclaim(deal2)
    assert _token_balance(alice, token, alice.address) == before + 1_000
    assert [e for e, _ in buyer.events(deal2)] == ["paid", "reclaimed"]

    # A look-alike escrow (here BXD's address: any code but the shipped escrow's) that
    # a scam shop talks the buyer into: nothing is paid, no deal reads as funded.
    fake = Escrow(alice, token)
    before = alice.balance(alice.address)
    with pytest.raises(NotEscrow, match="not the Boxless escrow"):
        fake.pay(shop.address, ETH // 10, _now(rpc) + 600, b"scam")
    with pytest.raises(NotEscrow):
        Escrow(shop, token).status(1)
    assert alice.balance(alice.address) == before


def test_escrow_release_refund_timeout(rpc: Rpc) -> None:
    buyer, seller, other = _funded(rpc, 4), _funded(rpc, 5), _funded(rpc, 6)
    as_buyer = Escrow.deploy(buyer)
    as_seller = Escrow(seller, as_buyer.address)
    as_other = Escrow(other, as_buyer.address)
    now = _now(rpc)

    deal = as_buyer.pay(seller.address, ETH, now + 600, b"order-1")
    assert as_buyer.status(deal).state == "open"
    with pytest.raises(ContractReverted, match="only the buyer"):
        as_other.release(deal)
    before = buyer.balance(seller.address)
    as_buyer.release(deal)
    assert buyer.balance(seller.address) == before + ETH
    assert as_buyer.status(deal).state == "released"
    with pytest.raises(ContractReverted, match="not open"):
        as_buyer.release(deal)

    deal2 = as_buyer.pay(seller.address, ETH, now + 600, b"order-2")
    with pytest.raises(ContractReverted, match="only the seller"):
        as_buyer.refund(deal2)
    as_seller.refund(deal2)
    assert as_buyer.status(deal2).state == "refunded"

    deal3 = as_buyer.pay(seller.address, ETH, now + 600, b"order-3")
    with pytest.raises(ContractReverted, match="deadline not reached"):
        as_buyer.reclaim(deal3)
    _travel(rpc, 601)
    with pytest.raises(ContractReverted, match="only the buyer"):
        as_seller.reclaim(deal3)
    as_buyer.reclaim(deal3)
    status = as_buyer.status(deal3)
    assert (status.state, status.amount, status.buyer, status.seller) == (
        "reclaimed",
        ETH,
        buyer.address,
        seller.address,
    )
    assert [e for e, _ in as_buyer.events(deal3)] == ["paid", "reclaimed"]
    assert address_bytes(derive_private_key(SEED, "m/44'/60'/0'/0/4")) == buyer.address


def test_stealth_payment_found_and_spent_only_by_the_recipient(rpc: Rpc) -> None:
    payer = _funded(rpc, 7)
    registry = Registry.deploy(payer)
    announcer = Announcer.deploy(payer)
    bob_keys = StealthKeys.from_seed(secrets.token_bytes(64))
    eve_keys = StealthKeys.from_seed(secrets.token_bytes(64))
    # Bob registers his meta-address from an account with gas.
    bob_account = _funded(rpc, 8)
    Registry(bob_account, registry.address).register(bob_keys.meta)
    assert registry.lookup(bob_account.address) == bob_keys.meta
    assert registry.lookup(b"\x42" * 20) is None

    start = int(rpc.call("eth_blockNumber", []), 16)
    payment = announcer.pay(registry.lookup(bob_account.address) or bob_keys.meta, ETH // 10)
    announcer.pay(eve_keys.meta, ETH // 20)  # noise: someone else's payment
    # Garbage announcement from an attacker (not a curve point): skipped.
    junk = call_data(
        "announce(uint256,address,bytes,bytes)",
        [1, b"\x01" * 20, b"\x02" + b"\xff" * 32, b"\x07"],
    )
    payer.transact(announcer.address, junk)
    anns = announcer.announcements(start)
    assert len(anns) == 3
    mine = Scanner.for_keys(bob_keys).scan(anns)
    assert [a.stealth_address for a in mine] == [payment.address]
    assert [a.stealth_address for a in Scanner.for_keys(eve_keys).scan(anns)] != [payment.address]
    assert payer.balance(payment.address) == ETH // 10

    # Eve cannot spend Bob's: her derived key controls another address.
    assert address_bytes(stealth_private_key(eve_keys, mine[0].ephemeral_public)) != payment.address
    # Bob sweeps it to a fresh address, the fee out of the swept balance.
    dest = b"\x77" * 20
    tx, amount = spend(rpc, bob_keys, mine[0], dest)
    payer.wait([tx])
    assert payer.balance(dest) == amount and 0 < ETH // 10 - amount < 10**15


def test_cli_stealth(
    chain: Anvil, rpc: Rpc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """boxless stealth address|deploy|register|pay|scan|sweep, two accounts."""
    from typer.testing import CliRunner

    from boxless.cli.main import app
    from boxless.identity.account import create_account
    from boxless.identity.keys import Identity
    from boxless.identity.profile import Profile
    from boxless.identity.seed import generate_phrase
    from boxless.payments.hdwallet import checksum_address, wallet_address
    from boxless.storage.userdb import KdfParams

    monkeypatch.setenv("BOXLESS_PASSPHRASE", "pass phrase")
    runner = CliRunner()
    homes = {}
    for name in ("payer", "payee"):
        phrase = generate_phrase()
        home = tmp_path / name
        home.mkdir()
        create_account(home, "pass phrase", Identity.from_phrase(phrase), Profile(name), 1,
                       KdfParams(memory_kib=1024, time_cost=1, parallelism=1)).close()  # fmt: skip
        homes[name] = home
        address = wallet_address(Mnemonic.to_seed(phrase, ""))
        rpc.call("anvil_setBalance", [address, hex(ETH)])

    def run(who: str, *argv: str) -> str:
        result = runner.invoke(app, [*argv, "--home", str(homes[who])])
        assert result.exit_code == 0, result.output
        return result.output

    for who in homes:
        run(who, "wallet", "config", "--rpc", chain.url, "--chain-id", str(chain.chain_id))
    meta = run("payee", "stealth", "address").strip()
    assert meta.startswith("st:eth:0x") and len(meta) == 9 + 132
    lines = run("payer", "stealth", "deploy").split()
    registry, announcer = lines[1], lines[3]
    run("payee", "stealth", "register", "--registry", registry)
    payee_address = run("payee", "wallet", "address").strip()
    out = run("payer", "stealth", "pay", payee_address, "0.2", "--announcer", announcer,
              "--registry", registry, "--yes")  # fmt: skip
    assert out.startswith("pay 0.2 ETH") and "paid 0x" in out
    stealth = out.split("paid ")[1].split()[0]
    assert "0 of 1 announcements are yours" in run(
        "payer", "stealth", "scan", "--announcer", announcer
    )
    found = run("payee", "stealth", "scan", "--announcer", announcer)
    assert f"{stealth}  0.2 ETH" in found and "1 of 1" in found
    dest = checksum_address(b"\x66" * 20)
    run("payee", "stealth", "sweep", "--announcer", announcer, "--to", dest, "--yes")
    deadline = time.monotonic() + 15
    while int(rpc.call("eth_getBalance", [dest, "latest"]), 16) == 0:
        assert time.monotonic() < deadline, "the sweep was not mined"
        time.sleep(0.05)


HOSTILE = Path(__file__).resolve().parents[1] / "chain/HostileToken.bin"


def _hostile(rpc: Rpc, owner: MiningSigner, mode: int) -> bytes:
    """A token that attacks its caller (tests/chain/HostileToken.vy): 1 fee on
    transfer, 2 returns false, 3 re-enters ``target`` with ``payload``."""
    code = bytes.fromhex(HOSTILE.read_text().strip()[2:])
    receipt = owner.transact(None, code + mode.to_bytes(32, "big") + (10**12).to_bytes(32, "big"))
    assert receipt.contract_address is not None
    return receipt.contract_address


def test_hostile_tokens_move_nothing_they_should_not(rpc: Rpc) -> None:
    """A sender or buyer's token that takes a fee on transfer or returns false is
    refused at deposit (envelope and escrow); a token that re-enters the envelope
    contract while paying a claim (a second claim from inside the first) is stopped
    by the reentrancy lock, and the second claim still works on its own."""
    alice, shop = (MiningSigner(rpc, secrets.token_bytes(32)) for _ in range(2))
    for who in (alice, shop):
        rpc.call("anvil_setBalance", ["0x" + who.address.hex(), hex(ETH)])
    contract = RedEnvelopeContract.deploy(alice, alice._key)
    escrow = Escrow.deploy(alice)
    expiry = _now(rpc) + 600
    for mode, reason in ((1, "delivered another amount"), (2, "token transfer failed")):
        token = _hostile(rpc, alice, mode)
        with pytest.raises(ContractReverted, match=reason):
            contract.create(secrets.token_bytes(32), 1_000, 2, True, expiry, token=token)
        with pytest.raises(ContractReverted, match=reason):
            Escrow(alice, escrow.address, token).pay(shop.address, 1_000, expiry, b"x")
        assert _token_balance(alice, token, contract.address) == 0
        assert _token_balance(alice, token, escrow.address) == 0

    token = _hostile(rpc, alice, 3)
    secret = secrets.token_bytes(32)
    env_id = contract.create(secret, 1_000, 2, False, expiry, token=token)
    card = Card(rpc.chain_id, contract.address, alice.address, secret, GROUP, 1_000, 2, False,
                expiry, "", token)  # fmt: skip
    (m1, r1), (m2, r2) = [(secrets.token_bytes(32), secrets.token_bytes(20)) for _ in range(2)]
    inner = contract.claim_payload(card, m2, r2)  # a genuine ticket, replayed from inside
    alice.transact(token, call_data("arm(address,bytes)", [contract.address, inner]))
    assert contract.claim(card, m1, r1).amount == 500  # the outer claim pays
    reentered = alice.call(token, call_data("reentered()", []))
    assert decode(["bool"], reentered) == [False]  # the inner claim was refused
    assert [c.recipient for c in contract.claims(env_id)] == [r1]
    alice.transact(token, call_data("arm(address,bytes)", [b"\x00" * 20, b""]))
    assert contract.claim(card, m2, r2).amount == 500  # on its own it works
    assert _token_balance(alice, token, contract.address) == 0
