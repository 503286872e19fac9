"""EIP-681 payment request URIs (``ethereum:<address>@<chain id>?value=<wei>``)."""

from __future__ import annotations

from boxless.payments.amounts import Asset
from boxless.payments.hdwallet import checksum_address


def payment_uri(address: bytes, chain_id: int, amount: int | None, asset: Asset) -> str:
    """A request to pay ``address`` on ``chain_id``: ETH, or ``asset``'s ERC-20 ``transfer``.

    Amounts are integers of base units (EIP-681 allows that form; no float ever).
    """
    to = checksum_address(address)
    if asset.token is None:
        uri = f"ethereum:{to}@{chain_id}"
        return uri if amount is None else f"{uri}?value={amount}"
    uri = f"ethereum:{asset.token}@{chain_id}/transfer?address={to}"
    return uri if amount is None else f"{uri}&uint256={amount}"
