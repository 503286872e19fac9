"""ETH transfers per second on a real anvil: the wallet's whole path vs the bare chain.

App path, per transfer: ``Wallet.quote`` (balances, nonces and fees from one
consistent read, reused for 1 s; reservations; the nonce from the SQLCipher user
DB) then ``Wallet.send_pipelined`` (sign and queue; a worker stores what is
queued in one SQLCipher transaction *before* broadcasting it as one JSON-RPC
batch, checked against the chain id), one account; every broadcast's acceptance is
awaited, then ``refresh`` until all are confirmed. Bare chain: the same number
of transfers signed beforehand and sent one ``eth_sendRawTransaction`` each on
the same HTTP transport; "bare batched" posts them 32 to a JSON-RPC batch (the
chain's ceiling). Rounds rotate which goes first (the machine is
shared); medians are printed, and the send phase and send-until-mined.

    python bench/bench_payments.py [--n 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from mnemonic import Mnemonic

from boxless.payments.devnet import ANVIL_MNEMONIC, Anvil
from boxless.payments.hdwallet import address_bytes, checksum_address, derive_private_key
from boxless.payments.rpc import MAX_BATCH, Rpc, http_client, quantity
from boxless.payments.store import ChainConfig, PaymentStore
from boxless.payments.tracker import CONFIRMED
from boxless.payments.tx import ETH_TRANSFER_GAS, UnsignedTx, suggest_fees
from boxless.payments.wallet import Wallet
from boxless.storage.userdb import create_user_db

SEED = Mnemonic.to_seed(ANVIL_MNEMONIC, "")
TIMEOUT_S = 120.0


def _wait_mined(rpc: Rpc, address: str, nonce: int) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if quantity(rpc.call("eth_getTransactionCount", [address, "latest"]), "n") >= nonce:
            return
        time.sleep(0.02)
    raise TimeoutError("transfers not mined in time")


def bare(chain: Anvil, n: int, r: int = 0, batched: bool = False) -> tuple[float, float]:
    key = derive_private_key(SEED, f"m/44'/60'/0'/0/{1 + 3 * r + (2 if batched else 0)}")
    rpc = Rpc(chain.url, chain.chain_id)
    address = checksum_address(address_bytes(key))
    rpc.call("anvil_setBalance", [address, hex(10**21)])
    start_nonce = quantity(rpc.call("eth_getTransactionCount", [address, "pending"]), "n")
    block = rpc.call("eth_getBlockByNumber", ["latest", False])
    fees = suggest_fees(quantity(block["baseFeePerGas"], "b"), 10**9, ETH_TRANSFER_GAS)
    raws = [
        UnsignedTx(chain.chain_id, start_nonce + i, b"\x42" * 20, 1, b"", fees).sign(key)
        for i in range(n)
    ]
    client = http_client(10)  # the same transport as the wallet's: a fair bare rate
    t0 = time.perf_counter()
    bodies = [{"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction",
               "params": ["0x" + raw.hex()]} for i, raw in enumerate(raws)]  # fmt: skip
    step = MAX_BATCH if batched else 1
    for i in range(0, n, step):
        client.post(chain.url, json=bodies[i] if step == 1 else bodies[i : i + step])
    sent = time.perf_counter() - t0
    _wait_mined(rpc, address, start_nonce + n)
    return sent, time.perf_counter() - t0


def app(chain: Anvil, n: int, home: Path, r: int = 0) -> tuple[float, float]:
    db = create_user_db(home / "user.db", "bench passphrase")
    store = PaymentStore(db)
    store.set_chain(ChainConfig(chain.url, chain.chain_id, confirmations=1))
    wallet = Wallet(store, store.chain(), derive_private_key(SEED, f"m/44'/60'/0'/0/{2 + 3 * r}"))
    wallet.rpc.call("anvil_setBalance", [checksum_address(wallet.address), hex(10**21)])
    t0 = time.perf_counter()
    futures = [
        wallet.send_pipelined(wallet.quote(b"\x43" * 20, 1), int(time.time() * 1000))
        for _ in range(n)
    ]
    for future in futures:
        future.result()  # every broadcast accepted
    sent = time.perf_counter() - t0
    deadline = time.monotonic() + TIMEOUT_S
    while store.open_txs(chain.chain_id) and time.monotonic() < deadline:
        wallet.refresh(int(time.time() * 1000))
    assert all(t.state == CONFIRMED for t in store.history(chain.chain_id, n))
    total = time.perf_counter() - t0
    wallet.close()
    db.close()
    return sent, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="rounds, order rotating")
    args = parser.parse_args()
    runs: dict[str, list[tuple[float, float]]] = {"bare": [], "bare batched": [], "app": []}
    with Anvil() as chain, tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            home = Path(tmp) / f"r{r}"
            home.mkdir()
            jobs: list[tuple[str, Callable[[], tuple[float, float]]]] = [
                ("bare", partial(bare, chain, args.n, r)),
                ("bare batched", partial(bare, chain, args.n, r, batched=True)),
                ("app", partial(app, chain, args.n, home, r)),
            ]
            for name, job in jobs[r % 3 :] + jobs[: r % 3]:
                runs[name].append(job())
    print(f"{args.n} ETH transfers on anvil (block time 1 s), median of {args.rounds} rounds")
    rate = {}
    for name, results in runs.items():
        sent = statistics.median(x[0] for x in results)
        total = statistics.median(x[1] for x in results)
        rate[name] = args.n / sent
        rounds = ", ".join(f"{args.n / x[0]:.0f}" for x in results)
        print(
            f"{name:13} send {args.n / sent:6.0f}/s  send+mined {args.n / total:5.0f}/s  ({rounds})"
        )
    print(f"app/bare send rate: {rate['app'] / rate['bare']:.0%}; "
          f"app/bare batched: {rate['app'] / rate['bare batched']:.0%}")  # fmt: skip


if __name__ == "__main__":
    main()
