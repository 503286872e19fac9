"""Red envelopes on the chain: create, read, claim (self or relayed), refund.

A thin blocking adapter over :class:`boxless.payments.evmcall.Signer` and the
``RedEnvelope.vy`` contract; the rules live in :mod:`.redenvelopes_core`.
Async callers run it in a thread (``trio.to_thread.run_sync``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from boxless.client.redenvelopes_core import (
    Card,
    ClaimView,
    claim_address,
    seed_hash,
    sign_claim,
    split_seed,
)
from boxless.payments.errors import BadRpcResponse
from boxless.payments.evmcall import Receipt, Signer, call_data, decode, topic

ENVELOPE_FIELDS = [
    "address", "address", "bytes32", "bytes32", "uint256", "uint256", "uint256", "uint256",
    "uint256", "uint256", "bool", "bool",
]  # fmt: skip
CREATED = topic("Created(bytes32,address,uint256,uint256,uint256,bool)")
CLAIMED = topic("Claimed(bytes32,address,uint256,uint256,address,uint256)")
REFUNDED = topic("Refunded(bytes32,address,uint256)")
# A claim's gas is bounded by its code path (the first claim, which also stores
# the seed, costs the most); the limit leaves room, unused gas is not paid.
CLAIM_GAS_LIMIT = 220_000  # the first claim measures 161,415 (anvil, fresh recipient)
RELAY_CHUNK = 14
MAX_PREPARED = 4096  # claims signed ahead and not relayed yet (the oldest go)


def claim_calls(card: Card, address: bytes, recipient: bytes) -> tuple[bytes, bytes]:
    """A claim of ``card`` for ``recipient`` at the contract ``address``: the
    ``claim`` call data (signed with the card's claim key) and its ``refusal`` check."""
    v, r, s = sign_claim(card.secret, address, card.chain_id, card.id, recipient)
    args = [card.id, recipient, split_seed(card.secret), v, r, s]
    return (
        call_data("claim(bytes32,address,bytes32,uint8,bytes32,bytes32)", args),
        call_data("refusal(bytes32,address,bytes32,uint8,bytes32,bytes32)", args),
    )


class PreparedClaims:
    """Claims signed ahead: the relayer signs a member's claim when its "opened"
    notice arrives, so relaying later only dry-runs, signs the transaction and
    sends. Bounded (:data:`MAX_PREPARED`, the oldest dropped); a claim not here is
    signed when relayed. Holds nothing the card's holder could not compute."""

    def __init__(self, limit: int = MAX_PREPARED) -> None:
        self._limit = limit
        self._calls: OrderedDict[tuple[bytes, bytes, bytes], tuple[bytes, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._calls)

    def prepare(self, card: Card, recipients: Iterable[bytes]) -> None:
        for recipient in recipients:
            key = (card.contract, card.id, recipient)
            if key not in self._calls:
                self._calls[key] = claim_calls(card, card.contract, recipient)
            while len(self._calls) > self._limit:
                self._calls.popitem(last=False)

    def take(self, card: Card, address: bytes, recipient: bytes) -> tuple[bytes, bytes]:
        """The claim's calls, signed ahead if they were (and forgotten here)."""
        ready = self._calls.pop((address, card.id, recipient), None)
        return ready if ready is not None else claim_calls(card, address, recipient)


@dataclass(frozen=True, slots=True)
class Envelope:
    id: bytes
    sender: bytes
    claim_key: bytes
    total: int
    remaining: int
    relay_fee: int
    shares: int
    claimed: int
    expiry: int
    lucky: bool
    refunded: bool

    @property
    def exists(self) -> bool:
        return self.sender != b"\x00" * 20


@dataclass(frozen=True, slots=True)
class Claim:
    recipient: bytes
    index: int
    amount: int
    relayer: bytes
    fee: int


class RedEnvelopeContract:
    """One deployed ``RedEnvelope.vy`` at ``address``, used from ``signer``'s account."""

    def __init__(self, signer: Signer, address: bytes) -> None:
        self.signer = signer
        self.address = address

    @classmethod
    def deploy(cls, signer: Signer) -> RedEnvelopeContract:
        return cls(signer, signer.deploy("RedEnvelope"))

    # -- reads

    def envelope(self, env_id: bytes) -> Envelope:
        raw = self.signer.call(self.address, call_data("envelopes(bytes32)", [env_id]))
        f = decode(ENVELOPE_FIELDS, raw)
        return Envelope(env_id, f[0], f[1], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11])

    def claimed_amount(self, env_id: bytes, who: bytes) -> int:
        payload = call_data("claimed_amount(bytes32,address)", [env_id, who])
        return int(decode(["uint256"], self.signer.call(self.address, payload))[0])

    def view(self, env_id: bytes, me: bytes) -> ClaimView:
        env = self.envelope(env_id)
        mine = self.claimed_amount(env_id, me) if env.exists else 0
        return ClaimView(env.exists, env.claimed, env.shares, env.expiry, env.refunded, mine > 0)

    def claims(self, env_id: bytes, from_block: int = 0) -> list[Claim]:
        """Every claim of ``env_id`` in chain order (for "who opened which")."""
        out = []
        for log in self.signer.logs(self.address, [CLAIMED, env_id], from_block):
            if len(log.topics) != 3:
                raise BadRpcResponse("a Claimed log has the wrong number of topics")
            index, amount, relayer, fee = decode(
                ["uint256", "uint256", "address", "uint256"], log.data
            )
            out.append(Claim(log.topics[2][12:], index, amount, relayer, fee))
        return sorted(out, key=lambda c: c.index)

    # -- writes

    def create(
        self,
        secret: bytes,
        total: int,
        shares: int,
        lucky: bool,
        expiry: int,
        relay_fee: int = 0,
    ) -> bytes:
        """Deposit ``total`` wei as an envelope whose claims ``secret`` authorises;
        return its id once mined (a revert says why and moves nothing)."""
        payload = call_data(
            "create(address,bytes32,uint256,bool,uint256,uint256)",
            [claim_address(secret), seed_hash(secret), shares, lucky, expiry, relay_fee],
        )
        receipt = self.signer.transact(self.address, payload, value=total)
        for log in receipt.logs:
            if log.address == self.address and log.topics[:1] == [CREATED]:
                return log.topics[1]
        raise BadRpcResponse("the create transaction logged no Created event")

    def claim_payload(self, card: Card, recipient: bytes) -> bytes:
        return self._claim_and_check(card, recipient)[0]

    def _claim_and_check(self, card: Card, recipient: bytes) -> tuple[bytes, bytes]:
        return claim_calls(card, self.address, recipient)

    def submit_claim(self, card: Card, recipient: bytes) -> bytes:
        """Broadcast a claim paid to ``recipient`` from this signer (who may be a
        relayer); return the transaction hash without waiting."""
        return self.signer.submit(self.address, self.claim_payload(card, recipient))

    def relay_claims(
        self, card: Card, recipients: list[bytes], prepared: PreparedClaims | None = None
    ) -> tuple[list[bytes], list[str]]:
        """Submit the claims of ``recipients`` from this signer (the relayer), 14 per
        JSON-RPC batch, pipelined: each batch sends the previous chunk's signed
        claims and dry-runs this chunk's (the contract's ``refusal`` view). A claim
        the dry run refuses is not sent (the relayer pays no gas for it); its
        reason is returned instead. Claims in ``prepared`` were signed ahead.
        Returns (transaction hashes, refusals)."""
        ready = prepared if prepared is not None else PreparedClaims(0)
        hashes: list[bytes] = []
        refused: list[str] = []
        todo = list(dict.fromkeys(recipients))  # one claim per address
        refused += ["already claimed"] * (len(recipients) - len(todo))
        env = self.envelope(card.id)
        left = max(env.shares - env.claimed, 0)  # the checks cannot see claims in flight
        refused += ["empty"] * max(len(todo) - left, 0)
        todo = todo[:left]
        chunks = [
            [ready.take(card, self.address, r) for r in todo[i : i + RELAY_CHUNK]]
            for i in range(0, len(todo), RELAY_CHUNK)
        ]
        if chunks:
            sent, why = self.signer.submit_checked(self.address, chunks, CLAIM_GAS_LIMIT)
            hashes += sent
            refused += why
        return hashes, refused

    def claim(self, card: Card, recipient: bytes) -> Claim:
        """Claim and wait: the share ``recipient`` got (the contract's own log)."""
        receipt = self.signer.wait([self.submit_claim(card, recipient)])[0]
        return self._claim_from(receipt, card.id)

    def _claim_from(self, receipt: Receipt, env_id: bytes) -> Claim:
        for log in receipt.logs:
            if log.address == self.address and log.topics[:2] == [CLAIMED, env_id]:
                index, amount, relayer, fee = decode(
                    ["uint256", "uint256", "address", "uint256"], log.data
                )
                return Claim(log.topics[2][12:], index, amount, relayer, fee)
        raise BadRpcResponse("the claim transaction logged no Claimed event")

    def refund(self, env_id: bytes) -> int:
        """After expiry: send what is left back to the sender (anyone may); the amount."""
        receipt = self.signer.transact(self.address, call_data("refund(bytes32)", [env_id]))
        for log in receipt.logs:
            if log.address == self.address and log.topics[:2] == [REFUNDED, env_id]:
                return int(decode(["uint256"], log.data)[0])
        raise BadRpcResponse("the refund transaction logged no Refunded event")


def due_refunds(mine: list[Envelope], now_s: int) -> list[bytes]:
    """Sans-IO: which of the sender's envelopes to refund now (expired, money left)."""
    return [
        e.id for e in mine if e.exists and not e.refunded and e.remaining > 0 and now_s >= e.expiry
    ]
