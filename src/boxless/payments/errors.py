"""Payment errors, by who caused them (see :mod:`boxless.errors`)."""

from __future__ import annotations

from boxless.errors import NetworkError, PeerError, UsageError


class BadAmount(UsageError):
    """An amount the user typed is not an exact non-negative number of base units."""


class WalletNotConfigured(UsageError):
    """No chain is configured for the wallet yet."""


class InsufficientFunds(UsageError):
    """The account cannot pay the amount plus the fee."""


class RpcDown(NetworkError):
    """The JSON-RPC endpoint could not be reached or answered garbage at the HTTP level."""


class WrongChain(PeerError):
    """The RPC endpoint serves another chain than the one configured (or lies about it)."""


class RpcRefused(PeerError):
    """The node answered a call with a JSON-RPC error (a rejected transaction, ...)."""


class BadRpcResponse(PeerError):
    """The node's answer is malformed (not the type or size the method returns)."""
