"""The demo's chain: a real anvil with the BXD test token, Alice's and Bob's wallets
funded and set up, stopped with the demo.

anvil comes from npm (``bash scripts/install_chain.sh``, which ``scripts/demo.sh``
runs); :class:`~boxless.payments.devnet.Anvil` starts it on a free loopback port
with ``--prune-history --block-time 1`` and a private HOME. Without anvil the demo
runs without payments and says how to get them.
"""

from __future__ import annotations

from types import TracebackType

from mnemonic import Mnemonic

from boxless.client.core import Client
from boxless.errors import BoxlessError, ConfigError
from boxless.payments.devnet import (
    ANVIL_MNEMONIC,
    TOKEN_DECIMALS,
    TOKEN_SYMBOL,
    Anvil,
    deploy_token,
    find_anvil,
    fund_account,
)
from boxless.payments.hdwallet import derive_private_key
from boxless.payments.rpc import Rpc
from boxless.payments.store import ChainConfig, PaymentStore

__all__ = ["DEMO_ETH", "DEMO_TOKENS", "DemoChain"]

DEMO_ETH = 10 * 10**18
DEMO_TOKENS = 1_000 * 10**TOKEN_DECIMALS
SUPPLY = 10**9 * 10**TOKEN_DECIMALS


class DemoChain:
    """``with DemoChain() as chain:`` anvil + BXD (``chain.anvil`` is None without anvil)."""

    def __init__(self) -> None:
        self.anvil: Anvil | None = None
        self.token: str | None = None
        self.note = ""
        self._funder = derive_private_key(Mnemonic.to_seed(ANVIL_MNEMONIC, ""), "m/44'/60'/0'/0/0")

    def __enter__(self) -> DemoChain:
        try:
            find_anvil()
        except ConfigError as exc:
            self.note = f"payments are off: {exc}"
            return self
        self.anvil = Anvil()
        try:
            self.anvil.start()
            rpc = Rpc(self.anvil.url, self.anvil.chain_id)
            try:
                self.token = deploy_token(rpc, self._funder, SUPPLY)
            finally:
                rpc.close()
        except BoxlessError as exc:  # the chat demo still runs
            self.anvil.stop()
            self.anvil = None
            self.note = f"payments are off: the demo chain did not start ({exc})"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.anvil is not None:
            self.anvil.stop()

    def set_up(self, clients: list[Client]) -> None:
        """Configure each client's wallet for the chain and fund it (blocking: call it
        in a thread). Confirmations: 1, the devnet does not reorg."""
        if self.anvil is None or self.token is None:
            return
        rpc = Rpc(self.anvil.url, self.anvil.chain_id)
        try:
            for client in clients:
                PaymentStore(client.db).set_chain(
                    ChainConfig(self.anvil.url, self.anvil.chain_id, self.token, TOKEN_SYMBOL,
                                TOKEN_DECIMALS, confirmations=1)
                )  # fmt: skip
                address = client.payments.address()
                fund_account(rpc, self._funder, self.token, address, DEMO_ETH, DEMO_TOKENS)
        finally:
            rpc.close()
        self.note = (
            f"payments: anvil at {self.anvil.url} (chain {self.anvil.chain_id}); Alice and Bob "
            f"hold 10 ETH and 1,000 {TOKEN_SYMBOL} each (Me → Wallet; ¥ in a chat)"
        )
