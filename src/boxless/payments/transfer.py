"""Transfer cards: what a chat message claims about a payment, and whether the
chain agrees.

A card (:class:`TransferClaim`) arrives from a contact, so every field is
attacker-controlled. :func:`decode_claim` parses it strictly; :func:`verify` is
the one pure rule that decides what the UI may say: ``received`` only when the
transaction exists, was sent by the claimed sender, succeeded, is buried under
enough blocks, and moved exactly the claimed amount of the claimed asset to the
claimed recipient (for an ERC-20, by the token's ``Transfer`` logs, not the call
data). Anything contradicting the chain is ``forged``; anything not yet
provable is ``pending``. :func:`fetch_facts` is the thin I/O half.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from boxless.errors import DecodeError
from boxless.payments.amounts import MAX_UINT256
from boxless.payments.hdwallet import keccak256
from boxless.payments.rpc import Rpc, data, quantity

TRANSFER_TOPIC = keccak256(b"Transfer(address,address,uint256)")
MAX_CARD_BYTES = 1024
MAX_NOTE_CHARS = 200
MAX_LOGS = 256

RECEIVED = "received"
PENDING = "pending"
FORGED = "forged"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class TransferClaim:
    chain_id: int
    tx_hash: bytes
    sender: bytes
    recipient: bytes
    token: bytes | None  # None: ETH
    amount: int
    note: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.chain_id < 2**64:
            raise DecodeError("a transfer card's chain id is out of range")
        if len(self.tx_hash) != 32:
            raise DecodeError("a transfer card's transaction hash must be 32 bytes")
        for name, value in (("sender", self.sender), ("recipient", self.recipient)):
            if len(value) != 20:
                raise DecodeError(f"a transfer card's {name} must be a 20-byte address")
        if self.token is not None and len(self.token) != 20:
            raise DecodeError("a transfer card's token must be a 20-byte address")
        if not 0 < self.amount <= MAX_UINT256:
            raise DecodeError("a transfer card's amount is out of range")
        if len(self.note) > MAX_NOTE_CHARS:
            raise DecodeError(f"a transfer card's note is longer than {MAX_NOTE_CHARS} characters")


def encode_claim(claim: TransferClaim) -> bytes:
    fields = {
        "chain_id": claim.chain_id,
        "tx": claim.tx_hash.hex(),
        "from": claim.sender.hex(),
        "to": claim.recipient.hex(),
        "token": None if claim.token is None else claim.token.hex(),
        "amount": str(claim.amount),
        "note": claim.note,
    }
    return json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()


def _hex(value: object, name: str, size: int) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size:
        raise DecodeError(f"a transfer card's {name} is not {size} bytes of hex")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise DecodeError(f"a transfer card's {name} is not hex") from None


def decode_claim(raw: bytes) -> TransferClaim:
    """Parse a card from a peer; DecodeError on anything but the exact shape."""
    if len(raw) > MAX_CARD_BYTES:
        raise DecodeError(f"a transfer card is larger than {MAX_CARD_BYTES} bytes")
    try:
        fields = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise DecodeError("a transfer card is not UTF-8 JSON") from None
    keys = {"chain_id", "tx", "from", "to", "token", "amount", "note"}
    if not isinstance(fields, dict) or set(fields) != keys:
        raise DecodeError("a transfer card must have exactly: " + ", ".join(sorted(keys)))
    chain_id, amount, note = fields["chain_id"], fields["amount"], fields["note"]
    if type(chain_id) is not int:
        raise DecodeError("a transfer card's chain id is not an integer")
    if not isinstance(amount, str) or not amount.isascii() or not amount.isdigit():
        raise DecodeError("a transfer card's amount is not a decimal integer string")
    if len(amount) > 78:
        raise DecodeError("a transfer card's amount is out of range")
    if not isinstance(note, str):
        raise DecodeError("a transfer card's note is not text")
    token = None if fields["token"] is None else _hex(fields["token"], "token", 20)
    return TransferClaim(
        chain_id,
        _hex(fields["tx"], "transaction hash", 32),
        _hex(fields["from"], "sender", 20),
        _hex(fields["to"], "recipient", 20),
        token,
        int(amount),
        note,
    )


@dataclass(frozen=True, slots=True)
class TokenLog:
    contract: bytes
    sender: bytes
    recipient: bytes
    amount: int


@dataclass(frozen=True, slots=True)
class ChainFacts:
    """What the chain says about a transaction hash (None fields: not found yet)."""

    chain_id: int
    sender: bytes | None
    to: bytes | None
    value: int
    success: bool | None  # None: no receipt yet
    confirmations: int
    logs: tuple[TokenLog, ...] = ()


@dataclass(frozen=True, slots=True)
class Verdict:
    status: str
    reason: str


def verify(claim: TransferClaim, facts: ChainFacts, needed: int) -> Verdict:
    """What the UI may show for ``claim`` given ``facts`` (see the module docstring)."""
    if facts.chain_id != claim.chain_id:
        return Verdict(PENDING, f"the card is for chain {claim.chain_id}; the wallet is on another")
    if facts.sender is None:
        return Verdict(PENDING, "the chain does not know this transaction (yet)")
    if facts.sender != claim.sender:
        return Verdict(FORGED, "the transaction was sent by another account than the card says")
    if facts.success is None:
        return Verdict(PENDING, "waiting for the transaction to be mined")
    if not facts.success:
        return Verdict(FAILED, "the transaction failed on chain: nothing was paid")
    if claim.token is None:
        if facts.to != claim.recipient:
            return Verdict(FORGED, "the transaction paid another address than the card says")
        if facts.value != claim.amount:
            return Verdict(FORGED, "the amount on chain differs from the card's")
    else:
        moved = sum(
            log.amount
            for log in facts.logs
            if log.contract == claim.token
            and log.sender == claim.sender
            and log.recipient == claim.recipient
        )
        if moved != claim.amount:
            return Verdict(FORGED, "the token amount moved on chain differs from the card's")
    if facts.confirmations < needed:
        return Verdict(PENDING, f"{facts.confirmations} of {needed} confirmations")
    return Verdict(RECEIVED, f"confirmed by {facts.confirmations} blocks")


def _token_logs(receipt: dict[str, object]) -> tuple[TokenLog, ...]:
    logs = receipt.get("logs")
    if not isinstance(logs, list) or len(logs) > MAX_LOGS:
        return ()
    found = []
    for log in logs:
        if not isinstance(log, dict):
            continue
        topics = log.get("topics")
        if not isinstance(topics, list) or len(topics) != 3:
            continue
        if data(topics[0], "log topic", 32) != TRANSFER_TOPIC:
            continue
        amount = data(log.get("data"), "log data")
        if len(amount) != 32:
            continue
        found.append(
            TokenLog(
                data(log.get("address"), "log address", 20),
                data(topics[1], "log topic", 32)[12:],
                data(topics[2], "log topic", 32)[12:],
                int.from_bytes(amount, "big"),
            )
        )
    return tuple(found)


def fetch_facts(rpc: Rpc, tx_hash: bytes) -> ChainFacts:
    """Read the transaction and its receipt (the RPC checks the chain id)."""
    h = "0x" + tx_hash.hex()
    tx = rpc.call("eth_getTransactionByHash", [h])
    if not isinstance(tx, dict):
        return ChainFacts(rpc.chain_id, None, None, 0, None, 0)
    sender = data(tx.get("from"), "transaction sender", 20)
    to = None if tx.get("to") is None else data(tx.get("to"), "transaction recipient", 20)
    value = quantity(tx.get("value"), "transaction value")
    receipt = rpc.call("eth_getTransactionReceipt", [h])
    if not isinstance(receipt, dict):
        return ChainFacts(rpc.chain_id, sender, to, value, None, 0)
    number = quantity(receipt.get("blockNumber"), "receipt block number")
    block = rpc.call("eth_getBlockByNumber", [hex(number), False])
    canonical = isinstance(block, dict) and block.get("hash") == receipt.get("blockHash")
    if not canonical:  # reorged away: not proven
        return ChainFacts(rpc.chain_id, sender, to, value, None, 0)
    head = quantity(rpc.call("eth_blockNumber", []), "block number")
    success = quantity(receipt.get("status"), "receipt status") == 1
    return ChainFacts(
        rpc.chain_id, sender, to, value, success, max(0, head - number + 1), _token_logs(receipt)
    )
