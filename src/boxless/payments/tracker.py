"""Where a sent transaction stands: one pure function from what the chain says now.

Theory of operation: the wallet never trusts its own memory of a transaction's
fate. On every refresh it asks the node for the receipt, the canonical hash of
the receipt's block, the head, whether the node still knows the transaction,
and the sender's mined nonce; :func:`decide` turns that into a state. So a
reorg that removes the block puts the transaction back to ``pending`` (and it
is re-broadcast if the node forgot it), and a nonce used by another transaction
marks it ``replaced``. No I/O here; tests feed observations in a table.
"""

from __future__ import annotations

from dataclasses import dataclass

PENDING = "pending"
INCLUDED = "included"  # in a canonical block, fewer confirmations than needed
CONFIRMED = "confirmed"
FAILED = "failed"  # mined but reverted: the nonce and fee are spent, the value is not
REPLACED = "replaced"  # another transaction took its nonce; it can never be mined
FINAL = frozenset({CONFIRMED, FAILED, REPLACED})
DEFAULT_CONFIRMATIONS = 2


@dataclass(frozen=True, slots=True)
class Receipt:
    block_number: int
    block_hash: bytes
    success: bool


@dataclass(frozen=True, slots=True)
class Observation:
    """What the node says now about one transaction of ours."""

    receipt: Receipt | None
    canonical_hash: bytes | None  # hash of the canonical block at receipt.block_number
    head: int
    known: bool  # eth_getTransactionByHash found it (mempool or chain)
    mined_nonce: int  # the sender's nonce at the latest block


@dataclass(frozen=True, slots=True)
class Decision:
    state: str
    block_number: int | None
    block_hash: bytes | None
    confirmations: int
    rebroadcast: bool


def decide(nonce: int, obs: Observation, needed: int = DEFAULT_CONFIRMATIONS) -> Decision:
    """The state of our transaction with ``nonce`` given ``obs``."""
    receipt = obs.receipt
    if receipt is not None and obs.canonical_hash == receipt.block_hash:
        confirmations = max(0, obs.head - receipt.block_number + 1)
        if not receipt.success:
            state = FAILED
        else:
            state = CONFIRMED if confirmations >= needed else INCLUDED
        return Decision(state, receipt.block_number, receipt.block_hash, confirmations, False)
    if obs.mined_nonce > nonce and receipt is None and not obs.known:
        # Our nonce is spent, and the node knows nothing of our transaction. (A receipt
        # pointing at a non-canonical block, or a known transaction, means the node's
        # view is mid-reorg: look again rather than give it up for good.)
        return Decision(REPLACED, None, None, 0, False)
    return Decision(PENDING, None, None, 0, not obs.known and obs.mined_nonce <= nonce)
