"""Claims signed ahead for the relay: the same calls as signed at relay time,
bound to their member, recipient and contract, bounded however many notices come."""

from __future__ import annotations

import secrets

from boxless.client.redenvelopes_chain import PreparedClaims, claim_calls
from boxless.client.redenvelopes_core import Card


def _card(contract: bytes) -> Card:
    return Card(31337, contract, b"\x01" * 20, secrets.token_bytes(32), "group:" + "00" * 16,
                10**18, 10, True, 2_000_000_000, "")  # fmt: skip


KEY = b"\x07" * 32  # the sender's wallet key: it signs the tickets


def test_prepared_claims_are_the_claims_signed_at_relay_time() -> None:
    contract = b"\xaa" * 20
    card = _card(contract)
    opened = [(secrets.token_bytes(32), secrets.token_bytes(20)) for _ in range(5)]
    ready = PreparedClaims()
    ready.prepare(card, KEY, opened)
    ready.prepare(card, KEY, opened)  # a repeated notice signs nothing twice
    assert len(ready) == 5
    for m, r in opened:
        assert ready.take(card, contract, KEY, m, r) == claim_calls(card, contract, KEY, m, r)
    assert len(ready) == 0  # each used once
    # A claim prepared for one contract is never handed out for another.
    other = b"\xbb" * 20
    (m, r) = opened[0]
    ready.prepare(card, KEY, opened[:1])
    assert ready.take(card, other, KEY, m, r) == claim_calls(card, other, KEY, m, r)
    assert ready.take(card, other, KEY, m, r) != claim_calls(card, contract, KEY, m, r)
    # Nor for another member naming the same address.
    assert claim_calls(card, contract, KEY, opened[1][0], r) != claim_calls(
        card, contract, KEY, m, r
    )
    assert len(ready) == 1


def test_a_flood_of_notices_keeps_the_table_bounded() -> None:
    card = _card(b"\xaa" * 20)
    ready = PreparedClaims(limit=50)
    ready.prepare(
        card, KEY, ((secrets.token_bytes(32), secrets.token_bytes(20)) for _ in range(200))
    )
    assert len(ready) == 50
