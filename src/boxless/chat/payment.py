"""Payments on the wire: transfer cards and money requests (1:1 and in groups).

A :class:`TransferCard` says "I paid you": it carries a
:class:`~boxless.payments.transfer.TransferClaim` that the receiver checks
against the chain before it ever shows "received". A :class:`PayRequest` says
"please pay me": one amount to an address (1:1), or a bill split among group
members (one :class:`PayShare` per member, in integer base units, summing to
the total: :func:`split_bill` assigns the remainder deterministically).

Every field comes from a peer: building a value checks it and raises
:class:`~boxless.errors.UsageError`; the envelope turns that into a
:class:`~boxless.errors.DecodeError` for peer bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from boxless.errors import UsageError
from boxless.payments.amounts import MAX_UINT256
from boxless.payments.transfer import TransferClaim, decode_claim, encode_claim
from boxless.wire import payment_pb2

__all__ = [
    "MAX_NOTE_CHARS",
    "MAX_SHARES",
    "PayRequest",
    "PayShare",
    "PaymentBody",
    "TransferAck",
    "TransferCard",
    "WalletAddress",
    "body_to_proto",
    "decode_body",
    "split_bill",
]

MAX_NOTE_CHARS = 200
MAX_SHARES = 256
MAX_SYMBOL_CHARS = 11
MAX_AMOUNT_DIGITS = 78


def _amount(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > MAX_AMOUNT_DIGITS:
        raise UsageError(f"a payment request's {what} is not a decimal integer")
    value = int(text)
    if not 0 < value <= MAX_UINT256:
        raise UsageError(f"a payment request's {what} is out of range")
    return value


@dataclass(frozen=True, slots=True)
class TransferCard:
    claim: TransferClaim
    request_id: bytes | None = None

    def __post_init__(self) -> None:
        if self.request_id is not None and len(self.request_id) != 16:
            raise UsageError("a transfer card's request id must be 16 bytes")


@dataclass(frozen=True, slots=True)
class PayShare:
    member: bytes
    amount: int

    def __post_init__(self) -> None:
        if len(self.member) != 32:
            raise UsageError("a share's member must be a 32-byte identity key")
        if not 0 < self.amount <= MAX_UINT256:
            raise UsageError("a share's amount is out of range")


@dataclass(frozen=True, slots=True)
class PayRequest:
    request_id: bytes
    chain_id: int
    to: bytes
    token: bytes | None
    symbol: str
    decimals: int
    amount: int
    note: str = ""
    shares: tuple[PayShare, ...] = ()

    def __post_init__(self) -> None:
        if len(self.request_id) != 16:
            raise UsageError("a payment request's id must be 16 bytes")
        if not 0 < self.chain_id < 2**64:
            raise UsageError("a payment request's chain id is out of range")
        if len(self.to) != 20:
            raise UsageError("a payment request's address must be 20 bytes")
        if self.token is not None and len(self.token) != 20:
            raise UsageError("a payment request's token must be a 20-byte address")
        if not (
            0 < len(self.symbol) <= MAX_SYMBOL_CHARS
            and self.symbol.isascii()
            and self.symbol.isalnum()
        ):
            raise UsageError("a payment request's symbol must be 1-11 letters or digits")
        if not 0 <= self.decimals <= 36:
            raise UsageError("a payment request's decimals are out of range")
        if not 0 < self.amount <= MAX_UINT256:
            raise UsageError("a payment request's amount is out of range")
        if len(self.note) > MAX_NOTE_CHARS:
            raise UsageError(f"a payment request's note is longer than {MAX_NOTE_CHARS} characters")
        if len(self.shares) > MAX_SHARES:
            raise UsageError(f"a bill is split among at most {MAX_SHARES} members")
        if self.shares:
            if len({s.member for s in self.shares}) != len(self.shares):
                raise UsageError("a bill names a member twice")
            if sum(s.amount for s in self.shares) != self.amount:
                raise UsageError("a bill's shares do not add up to its total")

    def share_of(self, member: bytes) -> int | None:
        """What ``member`` owes: the whole amount in 1:1, their share in a split."""
        if not self.shares:
            return self.amount
        return next((s.amount for s in self.shares if s.member == member), None)


@dataclass(frozen=True, slots=True)
class WalletAddress:
    chain_id: int
    address: bytes
    want_reply: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.chain_id < 2**64:
            raise UsageError("a wallet address's chain id is out of range")
        if len(self.address) != 20:
            raise UsageError("a wallet address must be 20 bytes")


@dataclass(frozen=True, slots=True)
class TransferAck:
    tx_hash: bytes

    def __post_init__(self) -> None:
        if len(self.tx_hash) != 32:
            raise UsageError("a transfer acknowledgement names a 32-byte transaction hash")


PaymentBody = TransferCard | PayRequest | WalletAddress | TransferAck


def split_bill(total: int, members: list[bytes]) -> tuple[PayShare, ...]:
    """``total`` base units split among ``members`` as evenly as integers allow.

    Every member owes ``total // n``; the remainder (fewer than n units) goes one
    unit each to the members whose identity keys sort first, so every client
    computes the same split from the same bill."""
    unique = sorted(set(members))
    if not unique:
        raise UsageError("split a bill among at least one member")
    if len(unique) > MAX_SHARES:
        raise UsageError(f"a bill is split among at most {MAX_SHARES} members")
    base, rest = divmod(total, len(unique))
    if base == 0:
        raise UsageError("the total is too small to give every member a share")
    return tuple(PayShare(m, base + (1 if i < rest else 0)) for i, m in enumerate(unique))


def body_to_proto(body: PaymentBody) -> payment_pb2.PaymentBody:
    pb = payment_pb2.PaymentBody()
    match body:
        case TransferCard(claim, request_id):
            pb.transfer.claim = encode_claim(claim)
            if request_id is not None:
                pb.transfer.request_id = request_id
        case PayRequest():
            r = pb.request
            r.request_id, r.chain_id, r.to = body.request_id, body.chain_id, body.to
            r.token = body.token or b""
            r.symbol, r.decimals, r.amount = body.symbol, body.decimals, str(body.amount)
            r.note = body.note
            for share in body.shares:
                r.shares.add(member=share.member, amount=str(share.amount))
        case WalletAddress(chain_id, address, want_reply):
            a = pb.address
            a.chain_id, a.address, a.want_reply = chain_id, address, want_reply
        case TransferAck(tx_hash):
            pb.ack.tx_hash = tx_hash
    return pb


def decode_body(pb: payment_pb2.PaymentBody) -> PaymentBody:
    """A peer's payment body, checked. Raises UsageError or DecodeError on any bad field."""
    match pb.WhichOneof("kind"):
        case "transfer":
            t = pb.transfer
            request_id = t.request_id if t.HasField("request_id") else None
            return TransferCard(decode_claim(t.claim), request_id)
        case "request":
            r = pb.request
            if len(r.shares) > MAX_SHARES:
                raise UsageError(f"a bill is split among at most {MAX_SHARES} members")
            shares = tuple(PayShare(s.member, _amount(s.amount, "share")) for s in r.shares)
            return PayRequest(
                r.request_id,
                r.chain_id,
                r.to,
                r.token or None,
                r.symbol,
                r.decimals,
                _amount(r.amount, "amount"),
                r.note,
                shares,
            )
        case "address":
            a = pb.address
            return WalletAddress(a.chain_id, a.address, a.want_reply)
        case "ack":
            return TransferAck(pb.ack.tx_hash)
        case _:
            raise UsageError("a payment body of no known kind")
