"""Payment bodies on the wire: round trips, the bill split's arithmetic, and a
property test of the decoder (any bytes: a clean DecodeError or a valid body)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxless.chat import envelope as env
from boxless.chat.payment import (
    PayRequest,
    PayShare,
    TransferAck,
    TransferCard,
    WalletAddress,
    split_bill,
)
from boxless.errors import DecodeError, UsageError
from boxless.payments.transfer import TransferClaim
from boxless.wire import chat_pb2

CLAIM = TransferClaim(31337, b"\x01" * 32, b"\xa1" * 20, b"\xb0" * 20, None, 10**17, "lunch")
MEMBERS = [bytes([i]) * 32 for i in (3, 1, 2)]


def _round(body: env.Body) -> env.Body:
    return env.decode(env.encode(env.new_message(body, lamport=1, sent_at_ms=1))).body


def test_round_trips() -> None:
    request = PayRequest(b"\x05" * 16, 31337, b"\xb0" * 20, b"\x70" * 20, "BXD", 6, 100, "dinner",
                         split_bill(100, MEMBERS))  # fmt: skip
    address = WalletAddress(31337, b"\xa1" * 20, True)
    for body in (
        TransferCard(CLAIM),
        TransferCard(CLAIM, b"\x07" * 16),
        request,
        address,
        TransferAck(b"\x09" * 32),
    ):
        assert _round(body) == body


@pytest.mark.parametrize(
    ("total", "n", "expected"),
    [(100, 3, [34, 33, 33]), (99, 3, [33, 33, 33]), (5, 5, [1] * 5), (7, 2, [4, 3])],
)
def test_split_is_exact_and_deterministic(total: int, n: int, expected: list[int]) -> None:
    members = [bytes([9 - i]) * 32 for i in range(n)]
    shares = split_bill(total, members)
    assert [s.amount for s in shares] == expected
    assert sum(s.amount for s in shares) == total
    assert [s.member for s in shares] == sorted(members)  # remainder to the lowest keys
    assert split_bill(total, list(reversed(members))) == shares


def test_split_refuses_a_total_too_small() -> None:
    with pytest.raises(UsageError):
        split_bill(2, MEMBERS)


@pytest.mark.parametrize(
    "change",
    [
        {"request_id": b"\x05" * 15},
        {"to": b"\xb0" * 19},
        {"symbol": "B D"},
        {"amount": 0},
        {"shares": (PayShare(MEMBERS[0], 60), PayShare(MEMBERS[1], 30))},  # sums to 90
        {"shares": (PayShare(MEMBERS[0], 50), PayShare(MEMBERS[0], 50))},  # a member twice
        {"note": "x" * 201},
    ],
)
def test_a_bad_request_is_refused(change: dict[str, object]) -> None:
    fields: dict[str, object] = dict(
        request_id=b"\x05" * 16, chain_id=1, to=b"\xb0" * 20, token=None, symbol="ETH",
        decimals=18, amount=100,
    )  # fmt: skip
    fields.update(change)
    with pytest.raises(UsageError):
        PayRequest(**fields)  # type: ignore[arg-type]


def test_a_forged_share_sum_on_the_wire_is_a_decode_error() -> None:
    pb = chat_pb2.ChatMessage(version=1, message_id=b"\x01" * 16, lamport=1)
    r = pb.payment.request
    r.request_id, r.chain_id, r.to, r.symbol, r.decimals, r.amount = (
        b"\x05" * 16, 1, b"\xb0" * 20, "ETH", 18, "100",
    )  # fmt: skip
    r.shares.add(member=MEMBERS[0], amount="99")
    with pytest.raises(DecodeError):
        env.decode(pb.SerializeToString())


def test_an_unknown_payment_kind_is_unsupported_not_an_error() -> None:
    pb = chat_pb2.ChatMessage(version=1, message_id=b"\x01" * 16, lamport=1)
    pb.payment.SetInParent()
    assert isinstance(env.decode(pb.SerializeToString()).body, env.Unsupported)


def _varint(n: int) -> bytes:
    out = b""
    while n >= 0x80:
        out, n = out + bytes([n & 0x7F | 0x80]), n >> 7
    return out + bytes([n])


@given(st.binary(max_size=600))
def test_payment_decoder_never_crashes(raw: bytes) -> None:
    head = chat_pb2.ChatMessage(version=1, message_id=b"\x01" * 16, lamport=1)
    wire = head.SerializeToString() + _varint(34 << 3 | 2) + _varint(len(raw)) + raw
    try:
        body = env.decode(wire).body
    except DecodeError:
        return
    assert isinstance(
        body, TransferCard | PayRequest | WalletAddress | TransferAck | env.Unsupported
    )


@given(
    st.recursive(
        st.binary(max_size=80) | st.integers(min_value=0, max_value=2**256),
        lambda inner: st.lists(inner, max_size=6),
        max_leaves=20,
    )
)
def test_the_transaction_rlp_encoder_matches_the_rlp_package(item: object) -> None:
    import rlp

    from boxless.payments.tx import rlp_encode

    assert rlp_encode(item) == rlp.encode(item)
