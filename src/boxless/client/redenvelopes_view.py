"""What the UI sees of a red envelope: one JSON object per card (never the secret).

Amounts and "who opened which" come from the chain's ``Claimed`` logs (the
``claims``), matched to members through their signed "opened" notices; the
best luck is decided only once every share is taken or the envelope expired.
"""

from __future__ import annotations

from typing import Any

from boxless.client import redenvelope_store as rs
from boxless.client.redenvelopes_chain import Claim
from boxless.client.redenvelopes_core import ETH_TOKEN, Card, best_luck, decode_card
from boxless.payments.hdwallet import checksum_address


def preview(card: Card) -> str:
    """The message text a card shows as (and the web UI recognises)."""
    kind = "lucky" if card.lucky else "equal"
    greeting = f": {card.greeting}" if card.greeting else ""
    plural = "" if card.shares == 1 else "s"
    return f"🧧 Red envelope ({card.shares} {kind} share{plural}){greeting}"


def envelope_json(
    row: rs.EnvelopeRow,
    opened: list[tuple[bytes, bytes, bool]],
    claims: list[Claim],
    chain_now: int,
    known_token: tuple[str | None, str | None, int | None] = (None, None, None),
) -> dict[str, Any]:
    """``row`` for the API: ``status`` open | empty | expired | refused, our share,
    who opened which, best luck, members whose relayed claim is not mined yet, and
    the currency (``known_token``: the wallet's configured token address, symbol and
    decimals; a card's token is named only if it is that one)."""
    card = decode_card(row.card)
    by_address = {addr: member for member, addr, _ in opened}
    claimed = {c.recipient for c in claims}
    people = [
        {
            "member": by_address[c.recipient].hex() if c.recipient in by_address else None,
            "address": checksum_address(c.recipient),
            "amount": str(c.amount),
            "index": c.index,
        }
        for c in claims
    ]
    empty = len(claims) >= card.shares
    expired = (row.state == "done" and not empty) or (0 < card.expiry <= chain_now)
    status = "empty" if empty else "expired" if expired else "open"
    luck = best_luck([(checksum_address(c.recipient), c.amount) for c in claims])
    return {
        "envelope_id": row.envelope_id.hex(),
        "message_id": row.message_id,
        "chat": row.chat,
        "outgoing": row.outgoing,
        "author": row.author.hex(),
        "greeting": card.greeting,
        "total": str(card.total),
        "shares": card.shares,
        "lucky": card.lucky,
        "expiry": card.expiry,
        "status": "refused" if row.reason else status,
        "reason": row.reason,
        "my_amount": None if row.my_amount is None else str(row.my_amount),
        "opened": people,
        "claimed": len(claims),
        "best_luck": luck if empty or expired else None,
        "pending_relays": [member.hex() for member, addr, _ in opened if addr not in claimed],
        **currency(card, known_token),
    }


def currency(card: Card, known: tuple[str | None, str | None, int | None]) -> dict[str, Any]:
    """``token`` (address or None for ETH), ``symbol`` and ``decimals`` of a card. The
    card is a peer's: its token is named by our wallet's configuration only, never by
    the card (a stranger's token could call itself anything)."""
    if card.token == ETH_TOKEN:
        return {"token": None, "symbol": "ETH", "decimals": 18}
    address = checksum_address(card.token)
    token, symbol, decimals = known
    if token is not None and token.lower() == address.lower() and symbol and decimals is not None:
        return {"token": address, "symbol": symbol, "decimals": decimals}
    return {"token": address, "symbol": f"units of token {address[:10]}…", "decimals": 0}
