"""Amounts as integers of base units (wei, or a token's smallest unit), end to end.

Text is parsed with integer arithmetic only: ``"0.1"`` with 18 decimals is
``100000000000000000`` exactly. A float never touches an amount.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from boxless.payments.errors import BadAmount

MAX_UINT256 = 2**256 - 1
_NUMBER = re.compile(r"([0-9]{1,78})(?:\.([0-9]{1,78}))?")  # ASCII digits only


@dataclass(frozen=True, slots=True)
class Asset:
    """What an amount counts: ETH (``token`` None) or an ERC-20 token at ``token``."""

    symbol: str
    decimals: int
    token: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.decimals <= 36:
            raise BadAmount(f"{self.decimals} decimals is out of range (0..36)")


ETH = Asset("ETH", 18)


def parse_amount(text: str, decimals: int) -> int:
    """``text`` (like ``"0.1"``) in base units; BadAmount says what is wrong."""
    match = _NUMBER.fullmatch(text.strip())
    if match is None:
        raise BadAmount(
            f"{text.strip()[:40]!r} is not an amount: write digits with an optional "
            "decimal point, like 0.25"
        )
    whole, frac = match.group(1), match.group(2) or ""
    if len(frac) > decimals:
        raise BadAmount(
            f"{text.strip()} has {len(frac)} decimal places; this asset has only {decimals}"
        )
    value = int(whole) * int(10**decimals) + int(frac.ljust(decimals, "0") or "0")
    if value > MAX_UINT256:
        raise BadAmount(f"{text.strip()[:40]} is larger than any amount the chain can hold")
    return value


def parse_value(text: str, assets: dict[str, Asset]) -> tuple[int, Asset]:
    """``"0.1 ETH"`` → (base units, asset); the symbol must be one of ``assets``."""
    parts = text.split()
    if len(parts) != 2:
        raise BadAmount(f"write an amount and a symbol, like '0.1 ETH' (not {text[:40]!r})")
    asset = assets.get(parts[1].upper())
    if asset is None:
        known = ", ".join(sorted(assets))
        raise BadAmount(f"unknown asset {parts[1][:12]!r}; this wallet knows {known}")
    return parse_amount(parts[0], asset.decimals), asset


def format_amount(value: int, decimals: int) -> str:
    """Base units as a decimal string with no trailing zeros (``10**17`` → ``"0.1"``)."""
    if value < 0:
        return "-" + format_amount(-value, decimals)
    whole, frac = divmod(value, 10**decimals)
    text = str(frac).rjust(decimals, "0").rstrip("0") if decimals else ""
    return f"{whole}.{text}" if text else str(whole)
