"""Transfer cards: the strict decoder (property test) and the verdict table —
a card is "received" only when the chain agrees on every field."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxless.errors import DecodeError
from boxless.payments.transfer import (
    FAILED,
    FORGED,
    PENDING,
    RECEIVED,
    ChainFacts,
    TokenLog,
    TransferClaim,
    decode_claim,
    encode_claim,
    verify,
)

ALICE, BOB, MALLORY = b"\xa1" * 20, b"\xb0" * 20, b"\x66" * 20
TOKEN, FAKE_TOKEN = b"\x70" * 20, b"\x71" * 20
ETH_CARD = TransferClaim(31337, b"\x01" * 32, ALICE, BOB, None, 10**17, "lunch")
TOKEN_CARD = TransferClaim(31337, b"\x02" * 32, ALICE, BOB, TOKEN, 1_250_000)


def test_round_trip() -> None:
    for card in (ETH_CARD, TOKEN_CARD):
        assert decode_claim(encode_claim(card)) == card


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 1.5},
        {"amount": "1e18"},
        {"amount": "-5"},
        {"amount": "0"},
        {"amount": "٣"},
        {"amount": "9" * 79},
        {"chain_id": "1"},
        {"chain_id": True},
        {"tx": "zz" * 32},
        {"to": "b0" * 19},
        {"token": 7},
        {"note": "x" * 201},
        {"extra": 1},
    ],
)
def test_malformed_cards_are_refused(change: dict[str, object]) -> None:
    fields = json.loads(encode_claim(ETH_CARD))
    fields.update(change)
    with pytest.raises(DecodeError):
        decode_claim(json.dumps(fields).encode())


@given(st.binary(max_size=1100))
def test_decoder_never_crashes(raw: bytes) -> None:
    try:
        decode_claim(raw)
    except DecodeError:
        pass


@given(
    st.dictionaries(
        st.sampled_from(["chain_id", "tx", "from", "to", "token", "amount", "note"]),
        st.one_of(st.none(), st.integers(), st.text(max_size=70), st.booleans()),
    )
)
def test_decoder_never_crashes_on_json(fields: dict[str, object]) -> None:
    try:
        decode_claim(json.dumps(fields).encode())
    except DecodeError:
        pass


def facts(**kw: object) -> ChainFacts:
    base: dict[str, object] = {
        "chain_id": 31337,
        "sender": ALICE,
        "to": BOB,
        "value": 10**17,
        "success": True,
        "confirmations": 3,
        "logs": (),
    }
    base.update(kw)
    return ChainFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("card", "chain", "status"),
    [
        (ETH_CARD, facts(), RECEIVED),
        (ETH_CARD, facts(confirmations=1), PENDING),
        (ETH_CARD, facts(sender=None, success=None), PENDING),  # not seen yet
        (ETH_CARD, facts(success=None), PENDING),  # in the mempool
        (ETH_CARD, facts(success=False), FAILED),
        (ETH_CARD, facts(value=10**16), FORGED),  # the card inflates the amount
        (ETH_CARD, facts(to=MALLORY), FORGED),  # paid someone else
        (ETH_CARD, facts(sender=MALLORY), FORGED),  # someone else's payment, re-used
        (ETH_CARD, facts(chain_id=1), PENDING),  # a card for another chain
        (TOKEN_CARD, facts(to=TOKEN, value=0, logs=(TokenLog(TOKEN, ALICE, BOB, 1_250_000),)),
         RECEIVED),
        # a fake token emitting the same Transfer log does not count
        (TOKEN_CARD, facts(to=FAKE_TOKEN, value=0,
                           logs=(TokenLog(FAKE_TOKEN, ALICE, BOB, 1_250_000),)), FORGED),
        (TOKEN_CARD, facts(to=TOKEN, value=0, logs=(TokenLog(TOKEN, ALICE, BOB, 1),)), FORGED),
        (TOKEN_CARD, facts(to=TOKEN, value=0,
                           logs=(TokenLog(TOKEN, ALICE, MALLORY, 1_250_000),)), FORGED),
    ],
)  # fmt: skip
def test_verdicts(card: TransferClaim, chain: ChainFacts, status: str) -> None:
    assert verify(card, chain, needed=2).status == status
