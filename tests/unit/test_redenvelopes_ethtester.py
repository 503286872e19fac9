"""The red-envelope contract on an embedded eth-tester (py-evm) chain, driven by the
client's own code: a 10-share lucky envelope whose shares are drawn from each
landing block's prevrandao (each share recomputed from it by the client's rule;
the old seed-only predictor misses every one; the sum is exact), a member's second
address refused by the nullifier, a ticket forged with the card's claim key refused;
a bot front-running a claim gets no relay fee, a relayed 1-unit share is paid whole.
eth-tester runs transactions with prevrandao 0 (its random mix hash goes only on
the sealed header), so evm_steps.py sets a random one per block, as a beacon
chain would; anvil's own per-block values are checked in the anvil test.

eth-tester lives in the tool venv (tests/chain/.venv, scripts/install_chain.sh):
it cannot share Boxless's venv (pycryptodome pins), so the transactions are built
here and run there by tests/chain/evm_steps.py."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from boxless.client.redenvelopes_chain import claim_calls
from boxless.client.redenvelopes_core import (
    Card,
    claim_address,
    claim_private_key,
    draw,
    nullifier,
    seed_hash,
    share_amount,
    split_seed,
)
from boxless.payments.evmcall import artifact, call_data, decode, topic
from boxless.payments.hdwallet import address_bytes, keccak256

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / "tests/chain/.venv/bin/python"
KEY = (1).to_bytes(32, "big")  # eth-tester's first account
CHAIN_ID = 131277322940537  # eth-tester's py-evm chain (a ticket binds the chain id)
CLAIMED = topic("Claimed(bytes32,address,uint256,uint256,address,uint256)")


def _has_eth_tester() -> bool:
    if not PYTHON.exists():
        return False
    probe = [str(PYTHON), "-c", "import eth_tester"]
    return subprocess.run(probe, capture_output=True, timeout=60).returncode == 0


def _run(steps: list[dict[str, object]]) -> list[dict[str, object]]:
    out = subprocess.run(
        [str(PYTHON), str(ROOT / "tests/chain/evm_steps.py")],
        input=json.dumps({"steps": steps}),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _old_predictor(remaining: int, left: int, seed: bytes, index: int) -> int:
    """Share ``index`` as the old contract fixed it (keccak(seed ‖ i)): what a member
    holding the card computed to time their claim."""
    r = int.from_bytes(keccak256(seed + index.to_bytes(32, "big")), "big")
    return 1 + r % (2 * (remaining // left) - 1)


def test_lucky_shares_drawn_per_block_and_one_share_per_member() -> None:
    """... and the relay-fee attackers of :func:`_relay_fee_attack` in the same run."""
    if not _has_eth_tester():
        if os.environ.get("CI"):
            raise AssertionError(
                "eth-tester missing from tests/chain/.venv: scripts/install_chain.sh"
            )
        pytest.skip("eth-tester not in the tool venv: bash scripts/install_chain.sh")
    sender = address_bytes(KEY)
    contract = keccak256(b"\xd6\x94" + sender + b"\x80")[12:]  # CREATE at nonce 0
    secret, total, shares = secrets.token_bytes(32), 10**18 + 7, 10
    expiry = int(time.time()) + 7200
    card = Card(
        CHAIN_ID, contract, sender, secret, "group:" + "ab" * 16, total, shares, True, expiry, ""
    )
    members = [(secrets.token_bytes(32), secrets.token_bytes(20)) for _ in range(shares)]
    create = call_data(
        "create(address,bytes32,uint256,bool,uint256,uint256)",
        [claim_address(secret), seed_hash(secret), shares, True, expiry, 0],
    )
    # A member's forged ticket: signed with the claim key every card holder knows.
    forged = claim_calls(card, contract, claim_private_key(secret), *members[1])[0]
    second = (members[0][0], secrets.token_bytes(20))  # member 0's second address
    steps: list[dict[str, object]] = [
        {"to": None, "data": "0x" + artifact("RedEnvelope").hex()},
        {"to": "contract", "data": "0x" + create.hex(), "value": total},
        {"to": "contract", "data": "0x" + claim_calls(card, contract, KEY, *members[0])[0].hex()},
        {"to": "contract", "data": "0x" + claim_calls(card, contract, KEY, *second)[0].hex()},
        {"to": "contract", "data": "0x" + forged.hex()},
    ] + [
        {"to": "contract", "data": "0x" + claim_calls(card, contract, KEY, m, r)[0].hex()}
        for m, r in members[1:]
    ]
    attack, check_attack = _relay_fee_attack(contract)  # one eth-tester run for both
    result = _run(steps + attack)
    check_attack(result[len(steps) :])
    result = result[: len(steps)]
    assert result[0]["ok"] and bytes.fromhex(str(result[0]["contract"])[2:]) == contract
    assert result[1]["ok"]
    assert not result[3]["ok"] and "member already claimed" in str(result[3]["error"])
    assert not result[4]["ok"] and "bad claim signature" in str(result[4]["error"])
    claims = [result[2], *result[5:]]
    assert all(c["ok"] for c in claims)

    seed, remaining, amounts, old_misses = split_seed(secret), total, [], 0
    previous_randao: set[bytes] = set()
    for i, (c, (member, _)) in enumerate(zip(claims, members, strict=True)):
        (log,) = [lg for lg in c["logs"] if bytes.fromhex(lg["topics"][0][2:]) == CLAIMED]  # type: ignore[attr-defined, index]
        index, amount, _, _ = decode(
            ["uint256", "uint256", "address", "uint256"], bytes.fromhex(log["data"][2:])
        )
        randao = bytes.fromhex(str(c["prevrandao"])[2:])
        assert index == i and randao not in previous_randao  # a fresh prevrandao per block
        previous_randao.add(randao)
        left = shares - i
        assert amount == share_amount(
            remaining, left, True, draw(seed, randao, nullifier(secret, member), i)
        )
        if left > 1:
            old_misses += amount != _old_predictor(remaining, left, seed, i)
            assert amount <= 2 * (remaining // left) - 1  # "double average"
        amounts.append(amount)
        remaining -= amount
    assert old_misses == shares - 1  # the seed alone predicts none of them
    assert sum(amounts) == total and min(amounts) >= 1


def _fee_of(result: dict[str, object]) -> tuple[bytes, int, int]:
    """(relayer, amount, fee) of a claim step's Claimed log."""
    (log,) = [lg for lg in result["logs"] if bytes.fromhex(lg["topics"][0][2:]) == CLAIMED]  # type: ignore[attr-defined]
    _, amount, relayer, fee = decode(
        ["uint256", "uint256", "address", "uint256"], bytes.fromhex(log["data"][2:])
    )
    return relayer, amount, fee


def _relay_fee_attack(
    contract: bytes,
) -> tuple[list[dict[str, object]], Callable[[list[dict[str, object]]], None]]:
    """Attackers on the relay fee (steps after the contract is deployed, and their
    check): a bot that copies a member's claim from the mempool and submits it first
    takes no fee (it used to take the sender's), and a lucky 1-unit share relayed by
    the sender pays its member in full (the fee used to take all of it: 0 for the
    member)."""
    sender, bot = address_bytes(KEY), address_bytes((2).to_bytes(32, "big"))
    secret, total, shares, fee = secrets.token_bytes(32), 4, 2, 1  # 1 * 2 <= 4 // 2
    expiry = int(time.time()) + 7200
    card = Card(CHAIN_ID, contract, sender, secret, "group:" + "ab" * 16, total, shares, True,
                expiry, "")  # fmt: skip
    (m0, r0), (m1, r1) = [(secrets.token_bytes(32), secrets.token_bytes(20)) for _ in range(2)]
    # The block the first claim lands in draws the smallest share, 1 unit (p = 1/3).
    tag = nullifier(secret, m0)
    randao = next(
        rd
        for rd in (secrets.token_bytes(32) for _ in range(200))
        if share_amount(total, shares, True, draw(split_seed(secret), rd, tag, 0)) == 1
    )
    create = call_data(
        "create(address,bytes32,uint256,bool,uint256,uint256)",
        [claim_address(secret), seed_hash(secret), shares, True, expiry, fee],
    )
    claim0 = claim_calls(card, contract, KEY, m0, r0)[0]
    claim1 = claim_calls(card, contract, KEY, m1, r1)[0]  # as the sender would relay it...
    steps: list[dict[str, object]] = [
        {"to": "contract", "data": "0x" + create.hex(), "value": total},
        {"to": "contract", "data": "0x" + claim0.hex(), "randao": "0x" + randao.hex()},
        {"to": "contract", "data": "0x" + claim1.hex(), "from": 1},  # ...copied by a bot
    ]

    def check(result: list[dict[str, object]]) -> None:
        assert all(r["ok"] for r in result), result
        assert _fee_of(result[1]) == (sender, 1, 0)  # the 1-unit share reaches its member
        assert _fee_of(result[2]) == (bot, 3, 0)  # the front-runner earns nothing

    return steps, check
