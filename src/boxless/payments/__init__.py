"""Payments on an EVM chain: the account's wallet key, amounts, chain access, tracking.

Sans-IO cores (:mod:`.amounts`, :mod:`.hdwallet`, :mod:`.tx`, :mod:`.tracker`) and
thin adapters (:mod:`.rpc` JSON-RPC, :mod:`.store` SQL, :mod:`.wallet`,
:mod:`.devnet` anvil). See docs/payments.md.
"""

from boxless.payments.amounts import ETH, Asset, format_amount, parse_amount, parse_value
from boxless.payments.errors import (
    BadAmount,
    BadRpcResponse,
    InsufficientFunds,
    RpcDown,
    RpcRefused,
    WalletNotConfigured,
    WrongChain,
)
from boxless.payments.hdwallet import WALLET_PATH, derive_private_key, wallet_address

__all__ = [
    "ETH",
    "WALLET_PATH",
    "Asset",
    "BadAmount",
    "BadRpcResponse",
    "InsufficientFunds",
    "RpcDown",
    "RpcRefused",
    "WalletNotConfigured",
    "WrongChain",
    "derive_private_key",
    "format_amount",
    "parse_amount",
    "parse_value",
    "wallet_address",
]
