"""Claims signed ahead for the relay: the same calls as signed at relay time,
bound to their recipient and contract, bounded however many notices come."""

from __future__ import annotations

import secrets

from boxless.client.redenvelopes_chain import PreparedClaims, claim_calls
from boxless.client.redenvelopes_core import Card


def _card(contract: bytes) -> Card:
    return Card(31337, contract, b"\x01" * 20, secrets.token_bytes(32), "group:" + "00" * 16,
                10**18, 10, True, 2_000_000_000, "")  # fmt: skip


def test_prepared_claims_are_the_claims_signed_at_relay_time() -> None:
    contract = b"\xaa" * 20
    card = _card(contract)
    members = [secrets.token_bytes(20) for _ in range(5)]
    ready = PreparedClaims()
    ready.prepare(card, members)
    ready.prepare(card, members)  # a repeated notice signs nothing twice
    assert len(ready) == 5
    for m in members:
        assert ready.take(card, contract, m) == claim_calls(card, contract, m)
    assert len(ready) == 0  # each used once
    # A claim prepared for one contract is never handed out for another.
    other = b"\xbb" * 20
    ready.prepare(card, members[:1])
    assert ready.take(card, other, members[0]) == claim_calls(card, other, members[0])
    assert ready.take(card, other, members[0]) != claim_calls(card, contract, members[0])
    assert len(ready) == 1


def test_a_flood_of_notices_keeps_the_table_bounded() -> None:
    card = _card(b"\xaa" * 20)
    ready = PreparedClaims(limit=50)
    ready.prepare(card, (secrets.token_bytes(20) for _ in range(200)))
    assert len(ready) == 50
