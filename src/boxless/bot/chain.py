"""The bot's escrow contract, from the account's wallet (its chain settings and key)."""

from __future__ import annotations

from boxless.client.escrow import Escrow
from boxless.identity.account import LocalAccount
from boxless.payments.evmcall import Signer
from boxless.payments.hdwallet import derive_private_key, parse_address
from boxless.payments.rpc import Rpc
from boxless.payments.store import PaymentStore


def wallet_signer(account: LocalAccount) -> Signer:
    """This account's wallet on the chain its wallet is set up for
    (WalletNotConfigured says how to set one up)."""
    config = PaymentStore(account.db).chain()
    key = derive_private_key(account.keystore.load_wallet_seed())
    return Signer(Rpc(config.rpc_url, config.chain_id), key)


def escrow_for(account: LocalAccount, address: str) -> Escrow:
    """The escrow at ``address`` (0x…), used from this account's wallet."""
    return Escrow(wallet_signer(account), parse_address(address))
