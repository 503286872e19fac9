"""A real local EVM chain for tests and demos: anvil (``@foundry-rs/anvil`` from npm).

Started on 127.0.0.1 with ``--prune-history --block-time 1`` and a private HOME
(without them anvil stalls and fills the disk), waited for with a bounded
deadline, stopped with the process. Funded accounts come from anvil's default
mnemonic ("test test ... junk").
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from importlib import resources
from pathlib import Path

import httpx

from boxless.errors import ConfigError, NetworkError
from boxless.payments.hdwallet import address_bytes, checksum_address
from boxless.payments.rpc import Rpc, data, quantity
from boxless.payments.tx import UnsignedTx, erc20_transfer_data, suggest_fees, tx_hash

DEVNET_CHAIN_ID = 31337
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
START_TIMEOUT_S = 20.0
_REPO_ANVIL = Path(__file__).resolve().parents[3] / "tests" / "chain" / "node_modules" / ".bin"


def find_anvil() -> str:
    """``$BOXLESS_ANVIL``, the repo's npm install (tests/chain), or anvil on PATH."""
    env = os.environ.get("BOXLESS_ANVIL")
    if env:
        return env
    local = _REPO_ANVIL / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if found is None:
        raise ConfigError(
            "anvil is not installed: run `bash scripts/install_chain.sh` (npm @foundry-rs/anvil)"
            " or set BOXLESS_ANVIL to its path"
        )
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Anvil:
    """One anvil process; use as a context manager."""

    def __init__(self, port: int | None = None, chain_id: int = DEVNET_CHAIN_ID) -> None:
        self.port = port or free_port()
        self.chain_id = chain_id
        self.url = f"http://127.0.0.1:{self.port}"
        self._home = tempfile.TemporaryDirectory(prefix="boxless-anvil-")
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = [
            find_anvil(),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--prune-history",
            "--block-time", "1",
            "--silent",
        ]  # fmt: skip
        env = {**os.environ, "HOME": self._home.name}
        self._proc = subprocess.Popen(
            cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise NetworkError(f"anvil exited with {self._proc.returncode} at start")
            try:
                httpx.post(self.url, json=body, timeout=1.0).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise NetworkError(f"anvil did not answer on {self.url} within {START_TIMEOUT_S} s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._proc = None
        self._home.cleanup()

    def __enter__(self) -> Anvil:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


TOKEN_SYMBOL = "BXD"
TOKEN_DECIMALS = 6
DEPLOY_TIMEOUT_S = 15.0


def token_bytecode() -> bytes:
    """The compiled TestToken.vy (vyper 0.4.3; a test recompiles and compares)."""
    text = resources.files("boxless.payments").joinpath("contracts/TestToken.bin").read_text()
    return bytes.fromhex(text.strip().removeprefix("0x"))


def deploy_token(rpc: Rpc, private_key: bytes, supply: int) -> str:
    """Deploy the test token from ``private_key``'s account (which gets ``supply``);
    return the contract's checksummed address once mined (bounded wait)."""
    sender = checksum_address(address_bytes(private_key))
    code = token_bytecode() + supply.to_bytes(32, "big")
    receipt = _send_and_wait(
        rpc, private_key, None, code, {"from": sender, "data": "0x" + code.hex()}
    )
    return checksum_address(data(receipt.get("contractAddress"), "contract address", 20))


def _send_and_wait(
    rpc: Rpc, key: bytes, to: bytes | None, payload: bytes, call: dict[str, str]
) -> dict[str, object]:
    sender = call["from"]
    block = rpc.call("eth_getBlockByNumber", ["latest", False])
    fees = suggest_fees(
        quantity(block["baseFeePerGas"], "base fee"),
        quantity(rpc.call("eth_maxPriorityFeePerGas", []), "priority fee"),
        quantity(rpc.call("eth_estimateGas", [call]), "gas estimate"),
    )
    nonce = quantity(rpc.call("eth_getTransactionCount", [sender, "pending"]), "nonce")
    raw = UnsignedTx(rpc.chain_id, nonce, to, 0, payload, fees).sign(key)
    rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()])
    deadline = time.monotonic() + DEPLOY_TIMEOUT_S
    while time.monotonic() < deadline:
        receipt = rpc.call("eth_getTransactionReceipt", ["0x" + tx_hash(raw).hex()])
        if isinstance(receipt, dict):
            if quantity(receipt.get("status"), "receipt status") != 1:
                raise NetworkError("a devnet setup transaction reverted")
            return receipt
        time.sleep(0.1)
    raise NetworkError(f"a devnet setup transaction was not mined within {DEPLOY_TIMEOUT_S} s")


def fund_account(rpc: Rpc, key: bytes, token: str, account: bytes, eth: int, tokens: int) -> None:
    """Give ``account`` ``eth`` wei (anvil_setBalance) and ``tokens`` of the test token,
    sent from ``key``'s account (bounded wait for the transfer to be mined)."""
    rpc.call("anvil_setBalance", [checksum_address(account), hex(eth)])
    sender = checksum_address(address_bytes(key))
    payload = erc20_transfer_data(account, tokens)
    call = {"from": sender, "to": token, "data": "0x" + payload.hex()}
    _send_and_wait(rpc, key, bytes.fromhex(token[2:]), payload, call)
