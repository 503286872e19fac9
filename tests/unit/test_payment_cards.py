"""Who has paid a request: derived from transfer cards, never from what they claim.

An attacker table for ``card_json``'s paid logic (client/payments.py): a member
whose transfer card pays their own address, the wrong amount, the wrong asset,
is not confirmed by the chain, or who owes nothing, does not count as paid."""

from __future__ import annotations

from pathlib import Path

import pytest

from boxless.chat.payment import PayRequest, TransferCard, body_to_proto, split_bill
from boxless.client.payment_card_store import CardRow
from boxless.client.payments import card_json
from boxless.payments.amounts import ETH, Asset
from boxless.payments.transfer import TransferClaim

ALICE, BOB, CAROL, MALLORY = (bytes([i]) * 32 for i in (1, 2, 3, 4))
ALICE_WALLET, BOB_WALLET = b"\xaa" * 20, b"\xbb" * 20
TOKEN = b"\x70" * 20
BILL = PayRequest(b"\x05" * 16, 31337, ALICE_WALLET, None, "ETH", 18, 300,
                  "hotpot", split_bill(300, [ALICE, BOB, CAROL]))  # fmt: skip


def _row(mid: str, author: bytes, body: TransferCard | PayRequest, status: str) -> CardRow:
    kind = "transfer" if isinstance(body, TransferCard) else "request"
    raw = body_to_proto(body).SerializeToString()
    return CardRow(mid, "group:" + "00" * 32, kind, False, author, raw, None,
                   body.request_id, status, "", 0, 0)  # fmt: skip


def _pay(author: bytes, to: bytes = ALICE_WALLET, amount: int = 100, token: bytes | None = None,
         status: str = "received") -> CardRow:  # fmt: skip
    claim = TransferClaim(31337, author[:1] * 32, BOB_WALLET, to, token, amount)
    return _row(f"pay-{author.hex()[:2]}", author, TransferCard(claim, BILL.request_id), status)


def _asset(token: bytes | None) -> Asset:
    return ETH if token is None else Asset("BXD", 6, "0x" + token.hex())


def _paid_by(*payments: CardRow) -> list[str]:
    card = card_json(_row("bill", ALICE, BILL, "open"), BILL, list(payments), ALICE, _asset)
    return list(card["paid_by"])


def test_members_who_paid_their_share_count() -> None:
    card = card_json(
        _row("bill", ALICE, BILL, "open"), BILL, [_pay(BOB), _pay(CAROL)], ALICE, _asset
    )
    assert card["paid"] and sorted(card["paid_by"]) == [BOB.hex(), CAROL.hex()]
    assert card["my_share"] == "100"


@pytest.mark.parametrize(
    "payment",
    [
        _pay(BOB, to=BOB_WALLET),  # "paid" their own address
        _pay(BOB, amount=99),  # less than the share
        _pay(BOB, amount=101),  # not the share either
        _pay(BOB, token=TOKEN),  # another asset
        _pay(BOB, status="pending"),  # the chain has not confirmed it
        _pay(BOB, status="forged"),  # the chain disagrees
        _pay(MALLORY),  # owes nothing: not in the bill
    ],
)
def test_a_payment_that_does_not_settle_the_share_does_not_count(payment: CardRow) -> None:
    assert _paid_by(payment) == []


def test_one_of_two_is_not_paid() -> None:
    card = card_json(_row("bill", ALICE, BILL, "open"), BILL, [_pay(BOB)], ALICE, _asset)
    assert not card["paid"] and card["paid_by"] == [BOB.hex()]


def test_only_the_recipient_can_acknowledge_a_transfer(tmp_path: Path) -> None:
    """A TransferAck marks our card only in the acknowledging contact's own chat: a
    third contact naming the same transaction changes nothing."""
    from boxless.client import payment_card_store as cs
    from boxless.payments.store import PaymentStore
    from boxless.storage.userdb import KdfParams, create_user_db

    db = create_user_db(tmp_path / "u.db", "correct horse battery", kdf=KdfParams(1024, 1, 1))
    PaymentStore(db)  # migrates the payments component
    claim = TransferClaim(31337, b"\x0a" * 32, ALICE_WALLET, BOB_WALLET, None, 5)
    card = _row("sent", ALICE, TransferCard(claim), "confirmed")
    card = CardRow(card.message_id, "contact:" + BOB.hex(), "transfer", True, ALICE, card.body,
                   claim.tx_hash, None, "confirmed", "", 0, 0)  # fmt: skip
    with db.transaction() as cur:
        assert cs.add_card(cur, card)
        assert cs.ack_transfer(cur, "contact:" + MALLORY.hex(), claim.tx_hash) is None
        assert not cs.acked(cur, "sent")
        assert cs.ack_transfer(cur, "contact:" + BOB.hex(), claim.tx_hash) == "sent"
        assert cs.acked(cur, "sent")
    db.close()
