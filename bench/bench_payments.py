"""ETH transfers per second on a real anvil: the wallet's whole path vs the bare chain.

App path, per transfer: ``Wallet.quote`` (balances, nonces and fees from one
consistent read, reused for 1 s; reservations; the nonce from the SQLCipher user
DB) then ``Wallet.send_pipelined`` (sign, store in SQLCipher *before* the
broadcast, queue it: a worker sends what is queued in JSON-RPC batches, each
checked against the chain id), one account; every broadcast's acceptance is
awaited, then ``refresh`` until all are confirmed. Bare chain: the same number
of transfers signed beforehand and sent one ``eth_sendRawTransaction`` each on
the same HTTP transport. Rounds alternate which goes first (the machine is
shared); medians are printed, and the send phase and send-until-mined.

    python bench/bench_payments.py [--n 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from mnemonic import Mnemonic

from boxless.payments.devnet import ANVIL_MNEMONIC, Anvil
from boxless.payments.hdwallet import address_bytes, checksum_address, derive_private_key
from boxless.payments.rpc import Rpc, http_client, quantity
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


def bare(chain: Anvil, n: int, r: int = 0) -> tuple[float, float]:
    key = derive_private_key(SEED, f"m/44'/60'/0'/0/{1 + 2 * r}")
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
    for i, raw in enumerate(raws):
        body = {"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction",
                "params": ["0x" + raw.hex()]}  # fmt: skip
        client.post(chain.url, json=body).raise_for_status()
    sent = time.perf_counter() - t0
    _wait_mined(rpc, address, start_nonce + n)
    return sent, time.perf_counter() - t0


def app(chain: Anvil, n: int, home: Path, r: int = 0) -> tuple[float, float]:
    db = create_user_db(home / "user.db", "bench passphrase")
    store = PaymentStore(db)
    store.set_chain(ChainConfig(chain.url, chain.chain_id, confirmations=1))
    wallet = Wallet(store, store.chain(), derive_private_key(SEED, f"m/44'/60'/0'/0/{2 + 2 * r}"))
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
    parser.add_argument("--rounds", type=int, default=3, help="bare/app pairs, order alternating")
    args = parser.parse_args()
    bare_runs, app_runs = [], []
    with Anvil() as chain, tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            home = Path(tmp) / f"r{r}"
            home.mkdir()
            if r % 2 == 0:
                bare_runs.append(bare(chain, args.n, r))
                app_runs.append(app(chain, args.n, home, r))
            else:
                app_runs.append(app(chain, args.n, home, r))
                bare_runs.append(bare(chain, args.n, r))
    b_sent, b_total = (
        statistics.median(x[0] for x in bare_runs),
        statistics.median(x[1] for x in bare_runs),
    )
    a_sent, a_total = (
        statistics.median(x[0] for x in app_runs),
        statistics.median(x[1] for x in app_runs),
    )
    print(f"{args.n} ETH transfers on anvil (block time 1 s), median of {args.rounds} rounds")
    print(
        "per round, send/s bare vs app: "
        + ", ".join(
            f"{args.n / b[0]:.0f} vs {args.n / a[0]:.0f}"
            for b, a in zip(bare_runs, app_runs, strict=True)
        )
    )
    print(f"bare chain: send {args.n / b_sent:8.0f}/s   send+mined {args.n / b_total:6.0f}/s")
    print(f"app path:   send {args.n / a_sent:8.0f}/s   send+confirmed {args.n / a_total:6.0f}/s")
    print(f"app/bare send rate: {b_sent / a_sent:.0%}")


if __name__ == "__main__":
    main()
