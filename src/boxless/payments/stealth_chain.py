"""Stealth payments on the chain: the ERC-6538 registry, the ERC-5564 announcer,
paying, scanning announcements, spending from a stealth address.

Gas for a fresh stealth address: an ETH payment funds the address itself, so
:func:`spend` pays its own fee out of the balance it sweeps (the payer can add
a little ETH for that when paying a token). Blocking; async callers use a thread.
"""

from __future__ import annotations

from boxless.payments.errors import BadRpcResponse, InsufficientFunds
from boxless.payments.evmcall import Log, Signer, call_data, decode, parse_log, topic
from boxless.payments.rpc import Rpc, quantity
from boxless.payments.stealth import (
    SCHEME_ID,
    Announcement,
    BadAnnouncement,
    BadMetaAddress,
    MetaAddress,
    StealthKeys,
    StealthPayment,
    eth_metadata,
    generate,
    parse_announcement,
    stealth_private_key,
)
from boxless.payments.tx import ETH_TRANSFER_GAS, UnsignedTx, suggest_fees, tx_hash

ANNOUNCEMENT = topic("Announcement(uint256,address,address,bytes,bytes)")
LOG_CHUNK = 5_000  # blocks per eth_getLogs


class Registry:
    """ERC-6538: who publishes which stealth meta-address."""

    def __init__(self, signer: Signer, address: bytes) -> None:
        self.signer, self.address = signer, address

    @classmethod
    def deploy(cls, signer: Signer) -> Registry:
        return cls(signer, signer.deploy("StealthRegistry"))

    def register(self, meta: MetaAddress) -> None:
        payload = call_data("registerKeys(uint256,bytes)", [SCHEME_ID, meta.raw])
        self.signer.transact(self.address, payload)

    def lookup(self, account: bytes) -> MetaAddress | None:
        """``account``'s registered meta-address, None if none; a malformed one raises."""
        payload = call_data("stealthMetaAddressOf(address,uint256)", [account, SCHEME_ID])
        raw = decode(["bytes"], self.signer.call(self.address, payload))[0]
        if not raw:
            return None
        try:
            if len(raw) != 66:
                raise BadMetaAddress(f"{len(raw)} bytes, not 66")
            return MetaAddress(raw[:33], raw[33:])
        except BadMetaAddress as exc:
            raise BadRpcResponse(f"the registry holds a malformed meta-address: {exc}") from exc


class Announcer:
    """ERC-5564 announcer: pay-and-announce, and read announcements."""

    def __init__(self, signer: Signer, address: bytes) -> None:
        self.signer, self.address = signer, address

    @classmethod
    def deploy(cls, signer: Signer) -> Announcer:
        return cls(signer, signer.deploy("StealthAnnouncer"))

    def pay(self, meta: MetaAddress, amount: int) -> StealthPayment:
        """Send ``amount`` wei to a fresh stealth address of ``meta`` and announce it,
        in one transaction (the announcer forwards the value)."""
        payment = generate(meta)
        payload = call_data(
            "announce(uint256,address,bytes,bytes)",
            [
                SCHEME_ID,
                payment.address,
                payment.ephemeral_public,
                eth_metadata(payment.view_tag, amount),
            ],
        )
        self.signer.transact(self.address, payload, value=amount)
        return payment

    def announcements(self, from_block: int = 0, to_block: int | None = None) -> list[Announcement]:
        """Every well-formed scheme-1 announcement in the range (malformed ones are
        skipped: anyone can announce anything)."""
        head = quantity(self.signer.rpc.call("eth_blockNumber", []), "block number")
        last = head if to_block is None else min(to_block, head)
        out: list[Announcement] = []
        for start in range(from_block, last + 1, LOG_CHUNK):
            end = min(start + LOG_CHUNK - 1, last)
            query = {
                "address": "0x" + self.address.hex(),
                "fromBlock": hex(start),
                "toBlock": hex(end),
                "topics": ["0x" + ANNOUNCEMENT.hex(), "0x" + SCHEME_ID.to_bytes(32, "big").hex()],
            }
            answer = self.signer.rpc.call("eth_getLogs", [query])
            if not isinstance(answer, list):
                raise BadRpcResponse("eth_getLogs did not answer a list")
            for entry in answer:
                ann = _announcement(parse_log(entry))
                if ann is not None:
                    out.append(ann)
        return out


def _announcement(log: Log) -> Announcement | None:
    if len(log.topics) != 4 or log.topics[0] != ANNOUNCEMENT:
        return None
    try:
        ephemeral, metadata = decode(["bytes", "bytes"], log.data)
        ann = parse_announcement(
            int.from_bytes(log.topics[1], "big"), log.topics[2][12:], ephemeral, metadata
        )
    except (BadRpcResponse, BadAnnouncement):
        return None
    return Announcement(
        ann.stealth_address, ann.ephemeral_public, ann.metadata, log.block_number, log.tx_hash
    )


def spend(rpc: Rpc, keys: StealthKeys, ann: Announcement, to: bytes) -> tuple[bytes, int]:
    """Sweep the stealth address of ``ann`` (ours) to ``to``; the fee comes out of
    the balance. Returns (transaction hash, amount sent)."""
    key = stealth_private_key(keys, ann.ephemeral_public)
    me = "0x" + ann.stealth_address.hex()
    balance, block, tip, nonce = rpc.batch(
        [
            ("eth_getBalance", [me, "latest"]),
            ("eth_getBlockByNumber", ["latest", False]),
            ("eth_maxPriorityFeePerGas", []),
            ("eth_getTransactionCount", [me, "pending"]),
        ]
    )
    if not isinstance(block, dict):
        raise BadRpcResponse("the node's latest block is not an object")
    fees = suggest_fees(
        quantity(block.get("baseFeePerGas"), "base fee"),
        quantity(tip, "priority fee"),
        ETH_TRANSFER_GAS,
    )
    amount = quantity(balance, "balance") - fees.max_cost
    if amount <= 0:
        raise InsufficientFunds(
            "the stealth address holds less than the fee to move it; nothing was sent"
        )
    tx = UnsignedTx(rpc.chain_id, quantity(nonce, "nonce"), to, amount, b"", fees)
    raw = tx.sign(key)
    rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()])
    return tx_hash(raw), amount
