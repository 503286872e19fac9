"""Red-envelope claims per second (app path vs bare chain) and stealth scan rate.

Claims, on one real anvil (``--prune-history --block-time 1``), one relayer
submitting every claim of one N-share envelope (members hold zero ETH):

- bare chain: claim transactions built and signed beforehand (the sender's
  ticket per member, ABI, EIP-1559 signature), posted with ``eth_sendRawTransaction``
  in JSON-RPC batches of 14 (the app's batch size);
- app path: :meth:`RedEnvelopeContract.relay_claims` — per claim the ticket
  (signed ahead as each notice arrives, like the client) and ABI encoding; per 14 claims one JSON-RPC batch, pipelined: the
  previous chunk's signed claims, then chain id, fees, nonce, and the contract's
  ``refusal`` view of each claim (a claim that would revert is never sent).

Both are timed for the send phase and until the last claim is mined.

Stealth scan: N announcements (1 % ours), :meth:`Scanner.scan` in one process,
then split across processes (one per core).

    python bench/bench_redenvelopes.py [--shares 300] [--announcements 40000]
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import resource
import secrets
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import httpx
from mnemonic import Mnemonic

from boxless.client.redenvelopes_chain import PreparedClaims, RedEnvelopeContract
from boxless.client.redenvelopes_core import Card, nullifier, sign_ticket, split_seed
from boxless.payments.devnet import ANVIL_MNEMONIC, Anvil
from boxless.payments.evmcall import Signer, call_data
from boxless.payments.hdwallet import derive_private_key
from boxless.payments.rpc import Rpc, quantity
from boxless.payments.stealth import Announcement, Scanner, StealthKeys, generate
from boxless.payments.tx import UnsignedTx, suggest_fees

SEED = Mnemonic.to_seed(ANVIL_MNEMONIC, "")
CLAIM_GAS = 0  # set from the node's estimate of the first claim
TIMEOUT_S = 120.0
BATCH = 14


def _envelope(
    chain: Anvil, rpc: Rpc, signer: Signer, shares: int
) -> tuple[RedEnvelopeContract, Card]:
    contract = RedEnvelopeContract.deploy(signer, signer._key)
    secret = secrets.token_bytes(32)
    now = int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    total = shares * 10**15
    contract.create(secret, total, shares, True, now + 3600)
    card = Card(chain.chain_id, contract.address, signer.address, secret, "group:" + "00" * 16,
                total, shares, True, now + 3600, "")  # fmt: skip
    return contract, card


def _wait_nonce(rpc: Rpc, address: str, nonce: int) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if quantity(rpc.call("eth_getTransactionCount", [address, "latest"]), "n") >= nonce:
            return
        time.sleep(0.02)
    raise TimeoutError("claims not mined in time")


def bare(chain: Anvil, shares: int) -> tuple[float, float]:
    rpc = Rpc(chain.url, chain.chain_id)
    signer = Signer(rpc, derive_private_key(SEED, "m/44'/60'/0'/0/2"))
    contract, card = _envelope(chain, rpc, signer, shares)
    members = [(secrets.token_bytes(32), secrets.token_bytes(20)) for _ in range(shares)]
    nonce = quantity(rpc.call("eth_getTransactionCount", [signer.hex_address, "pending"]), "n")
    block = rpc.call("eth_getBlockByNumber", ["latest", False])
    fees = suggest_fees(quantity(block["baseFeePerGas"], "b"), 10**9, CLAIM_GAS)
    raws = []
    for i, (who, m) in enumerate(members):
        tag = nullifier(card.secret, who)
        v, r, s = sign_ticket(signer._key, contract.address, card.chain_id, card.id, tag, m)
        payload = call_data(
            "claim(bytes32,address,bytes32,bytes32,uint8,bytes32,bytes32)",
            [card.id, m, tag, split_seed(card.secret), v, r, s],
        )
        if i == 0:  # the node's estimate once (the first claim also stores the seed)
            request = {"from": signer.hex_address, "to": "0x" + contract.address.hex(),
                       "data": "0x" + payload.hex()}  # fmt: skip
            gas = quantity(rpc.call("eth_estimateGas", [request]), "gas") * 6 // 5
            fees = suggest_fees(quantity(block["baseFeePerGas"], "b"), 10**9, gas)
        raws.append(
            UnsignedTx(chain.chain_id, nonce + i, contract.address, 0, payload, fees).sign(
                signer._key
            )
        )
    client = httpx.Client(timeout=10)
    t0 = time.perf_counter()
    for i in range(0, len(raws), BATCH):  # the same JSON-RPC batching as the app
        body = [
            {
                "jsonrpc": "2.0",
                "id": j,
                "method": "eth_sendRawTransaction",
                "params": ["0x" + raw.hex()],
            }
            for j, raw in enumerate(raws[i : i + BATCH])
        ]
        for answer in client.post(chain.url, json=body).json():
            if "error" in answer:
                raise RuntimeError(answer["error"])
    sent = time.perf_counter() - t0
    _wait_nonce(rpc, signer.hex_address, nonce + shares)
    mined = time.perf_counter() - t0
    assert contract.envelope(card.id).claimed == shares
    return shares / sent, shares / mined


def app(chain: Anvil, shares: int, sign_ahead: bool = True) -> tuple[float, float]:
    rpc = Rpc(chain.url, chain.chain_id)
    signer = Signer(rpc, derive_private_key(SEED, "m/44'/60'/0'/0/3"))
    contract, card = _envelope(chain, rpc, signer, shares)
    members = [(secrets.token_bytes(32), secrets.token_bytes(20)) for _ in range(shares)]
    prepared = PreparedClaims()
    if sign_ahead:  # what the client does as each member's "opened" notice arrives
        prepared.prepare(card, signer._key, members)
    t0 = time.perf_counter()
    hashes, refused = contract.relay_claims(card, members, prepared)
    assert not refused, refused
    sent = time.perf_counter() - t0
    signer.wait(hashes, timeout=TIMEOUT_S)
    mined = time.perf_counter() - t0
    assert contract.envelope(card.id).claimed == shares
    return shares / sent, shares / mined


def _scan_chunk(args: tuple[bytes, bytes, list[tuple[bytes, bytes, bytes]]]) -> int:
    viewing, spending_pub, rows = args
    scanner = Scanner(viewing, spending_pub)
    return len(scanner.scan(Announcement(a, e, m) for a, e, m in rows))


def stealth(n: int) -> tuple[float, float, int]:
    me = StealthKeys.from_seed(os.urandom(64))
    other = StealthKeys.from_seed(os.urandom(64))
    anns = []
    for i in range(n):
        p = generate(me.meta if i % 100 == 0 else other.meta)
        anns.append(Announcement(p.address, p.ephemeral_public, bytes([p.view_tag])))
    scanner = Scanner.for_keys(me)
    pooled = "workers" in inspect.signature(scanner.scan).parameters  # Scanner's own pool
    t0 = time.perf_counter()
    found = len(scanner.scan(anns, workers=1) if pooled else scanner.scan(anns))
    one = n / (time.perf_counter() - t0)
    workers = os.cpu_count() or 1
    if pooled:  # pool start-up inside the timed span, as a caller pays it
        t0 = time.perf_counter()
        found_par = len(scanner.scan(anns))
        par = n / (time.perf_counter() - t0)
    else:  # the code before the Scanner had a pool: the bench's own, warmed up
        rows = [(a.stealth_address, a.ephemeral_public, a.metadata) for a in anns]
        chunks = [rows[i::workers] for i in range(workers)]
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_scan_chunk, [(me.viewing, me.meta.spending, rows[:10])] * workers))
            t0 = time.perf_counter()
            found_par = sum(
                pool.map(_scan_chunk, [(me.viewing, me.meta.spending, c) for c in chunks])
            )
            par = n / (time.perf_counter() - t0)
    assert found == found_par == (n + 99) // 100
    return one, par, workers


def _children_cpu() -> float:
    """CPU seconds of the ended child processes (a pool's workers, once joined)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def stealth_vs(n: int, baseline_src: str, rounds: int) -> None:
    """The scanner of ``baseline_src`` (a checkout's ``src``) and this one, one
    process, alternating on the same announcements: per round the rate by wall
    clock and by this process's CPU time (less sensitive to a loaded machine)."""
    spec = importlib.util.spec_from_file_location(
        "baseline_stealth", f"{baseline_src}/boxless/payments/stealth.py"
    )
    assert spec is not None and spec.loader is not None
    base = importlib.util.module_from_spec(spec)
    sys.modules["baseline_stealth"] = base  # dataclasses look their module up
    spec.loader.exec_module(base)
    me = StealthKeys.from_seed(os.urandom(64))
    other = StealthKeys.from_seed(os.urandom(64))
    anns = []
    for i in range(n):
        p = generate(me.meta if i % 100 == 0 else other.meta)
        anns.append(Announcement(p.address, p.ephemeral_public, bytes([p.view_tag])))
    sides = {
        "baseline": lambda: base.Scanner(me.viewing, me.meta.spending).scan(
            [base.Announcement(a.stealth_address, a.ephemeral_public, a.metadata) for a in anns]
        ),
        "new, 1 process": lambda: Scanner.for_keys(me).scan(anns, workers=1),
        "new, pool": lambda: Scanner.for_keys(me).scan(anns),
    }
    got: dict[str, list[tuple[float, float]]] = {k: [] for k in sides}
    for r in range(rounds):
        for name, run in sides.items():
            w, c, k = time.perf_counter(), time.process_time(), _children_cpu()
            assert len(run()) == (n + 99) // 100
            cpu = time.process_time() - c + _children_cpu() - k  # the pool's workers too
            got[name].append((n / (time.perf_counter() - w), n / cpu))
        print(f"round {r + 1}: load {os.getloadavg()[0]:.1f}", flush=True)
    for name, rs in got.items():
        wall = statistics.median(x for x, _ in rs)
        cpu = statistics.median(y for _, y in rs)
        print(f"  {name:15s} median {wall:8.0f}/s wall  {cpu:8.0f}/s per CPU second")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shares", type=int, default=300)
    parser.add_argument("--announcements", type=int, default=40_000)
    parser.add_argument("--stealth-only", action="store_true", help="skip the claims")
    parser.add_argument("--baseline-src", help="compare the stealth scanner with this src dir")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.baseline_src:
        stealth_vs(args.announcements, args.baseline_src, args.rounds)
        return
    if args.stealth_only:
        one, par, workers = stealth(args.announcements)
        print(f"stealth {one:.0f} {par:.0f} {workers} load {os.getloadavg()[0]:.1f}")
        return
    runs: dict[str, list[tuple[float, float]]] = {"bare": [], "app": [], "app, signs in path": []}
    with Anvil() as chain:
        for r in range(args.rounds):  # alternating on one chain, so load hits all alike
            runs["bare"].append(bare(chain, args.shares))
            runs["app"].append(app(chain, args.shares))
            runs["app, signs in path"].append(app(chain, args.shares, sign_ahead=False))
            row = "  ".join(f"{k} {s:.0f}/{m:.0f}" for k, v in runs.items() for s, m in v[-1:])
            print(f"round {r + 1} (load {os.getloadavg()[0]:.1f}), sent/mined per s: {row}")
    med = {
        k: (statistics.median(s for s, _ in v), statistics.median(m for _, m in v))
        for k, v in runs.items()
    }
    print(f"claims, {args.shares} shares, one relayer, medians of {args.rounds} rounds")
    for k, (s, m) in med.items():
        ratio = f"{s / med['bare'][0]:5.0%} / {m / med['bare'][1]:5.0%} of bare"
        print(f"  {k:19s} {s:7.0f}/s sent  {m:7.0f}/s sent+mined  {ratio}")
    one, par, workers = stealth(args.announcements)
    print(f"stealth scan, {args.announcements} announcements (1 % ours)")
    print(f"  1 process:  {one:9.0f}/s")
    print(f"  {workers} processes: {par:9.0f}/s")
    print(f"  load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
