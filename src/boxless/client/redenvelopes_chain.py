"""Red envelopes on the chain: create, read, claim (self or relayed), refund.

A thin blocking adapter over :class:`boxless.payments.evmcall.Signer` and the
``RedEnvelope.vy`` contract; the rules live in :mod:`.redenvelopes_core`.
Async callers run it in a thread (``trio.to_thread.run_sync``). Claims are the
sender's tickets (one per member): only a contract object holding the sender's
wallet key (``ticket_key``) can make them; anyone may submit them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from boxless.client.redenvelopes_core import (
    ETH_TOKEN,
    Card,
    ClaimView,
    claim_address,
    nullifier,
    seed_hash,
    sign_ticket,
    split_seed,
)
from boxless.payments.errors import BadRpcResponse
from boxless.payments.evmcall import Receipt, Signer, call_data, decode, topic

ENVELOPE_FIELDS = [
    "address", "address", "bytes32", "bytes32", "uint256", "uint256", "uint256", "uint256",
    "uint256", "uint256", "bool", "bool", "address",
]  # fmt: skip
CREATED = topic("Created(bytes32,address,uint256,uint256,uint256,bool,address)")
CLAIMED = topic("Claimed(bytes32,address,uint256,uint256,address,uint256)")
REFUNDED = topic("Refunded(bytes32,address,uint256)")
# A claim's gas is bounded by its code path (the first claim, which also stores
# the seed, costs the most); the limit leaves room, unused gas is not paid.
CLAIM_GAS_LIMIT = 260_000  # a first token claim is the dearest (seed, nullifier, 2 balances)
RELAY_CHUNK = 14
MAX_PREPARED = 4096  # claims signed ahead and not relayed yet (the oldest go)


CLAIM_SIG = "(bytes32,address,bytes32,bytes32,uint8,bytes32,bytes32)"


def claim_calls(
    card: Card, address: bytes, ticket_key: bytes, member: bytes, recipient: bytes
) -> tuple[bytes, bytes]:
    """``member``'s claim of ``card`` paid to ``recipient`` at the contract ``address``:
    the ``claim`` call data (the sender's ticket, signed with ``ticket_key``) and its
    ``refusal`` check."""
    tag = nullifier(card.secret, member)
    v, r, s = sign_ticket(ticket_key, address, card.chain_id, card.id, tag, recipient)
    args = [card.id, recipient, tag, split_seed(card.secret), v, r, s]
    return call_data("claim" + CLAIM_SIG, args), call_data("refusal" + CLAIM_SIG, args)


Opened = tuple[bytes, bytes]  # (member identity key, recipient address)


class PreparedClaims:
    """Claims signed ahead: the sender's client signs a member's ticket when its
    "opened" notice arrives, so relaying later only dry-runs, signs the transaction
    and sends. Bounded (:data:`MAX_PREPARED`, the oldest dropped); a claim not here
    is signed when relayed."""

    def __init__(self, limit: int = MAX_PREPARED) -> None:
        self._limit = limit
        self._calls: OrderedDict[tuple[bytes, bytes, bytes, bytes], tuple[bytes, bytes]] = (
            OrderedDict()
        )

    def __len__(self) -> int:
        return len(self._calls)

    def prepare(self, card: Card, ticket_key: bytes, opened: Iterable[Opened]) -> None:
        for member, recipient in opened:
            key = (card.contract, card.id, member, recipient)
            if key not in self._calls:
                self._calls[key] = claim_calls(card, card.contract, ticket_key, member, recipient)
            while len(self._calls) > self._limit:
                self._calls.popitem(last=False)

    def take(
        self, card: Card, address: bytes, ticket_key: bytes, member: bytes, recipient: bytes
    ) -> tuple[bytes, bytes]:
        """The claim's calls, signed ahead if they were (and forgotten here)."""
        ready = self._calls.pop((address, card.id, member, recipient), None)
        if ready is not None:
            return ready
        return claim_calls(card, address, ticket_key, member, recipient)


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
    token: bytes = ETH_TOKEN

    @property
    def exists(self) -> bool:
        return self.sender != b"\x00" * 20

    def as_view(self, already_claimed_by_me: bool = False) -> ClaimView:
        return ClaimView(self.exists, self.claimed, self.shares, self.expiry, self.refunded,
                         already_claimed_by_me, self.total, self.lucky, self.token)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Claim:
    recipient: bytes
    index: int
    amount: int
    relayer: bytes
    fee: int


class RedEnvelopeContract:
    """One deployed ``RedEnvelope.vy`` at ``address``, used from ``signer``'s account.
    ``ticket_key`` is the wallet key of the envelopes' sender (the signer's own key
    when we send): it signs members' claims. Without it this object only reads,
    creates, refunds and submits calls made elsewhere."""

    def __init__(self, signer: Signer, address: bytes, ticket_key: bytes | None = None) -> None:
        self.signer = signer
        self.address = address
        self.ticket_key = ticket_key

    @classmethod
    def deploy(cls, signer: Signer, ticket_key: bytes | None = None) -> RedEnvelopeContract:
        return cls(signer, signer.deploy("RedEnvelope"), ticket_key)

    def _key(self) -> bytes:
        if self.ticket_key is None:
            raise ValueError("only the sender's client (its wallet key) signs claims")
        return self.ticket_key

    # -- reads

    def envelope(self, env_id: bytes) -> Envelope:
        raw = self.signer.call(self.address, call_data("envelopes(bytes32)", [env_id]))
        f = decode(ENVELOPE_FIELDS, raw)
        return Envelope(env_id, f[0], f[1], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[12])

    def claimed_amount(self, env_id: bytes, who: bytes) -> int:
        payload = call_data("claimed_amount(bytes32,address)", [env_id, who])
        return int(decode(["uint256"], self.signer.call(self.address, payload))[0])

    def view(self, env_id: bytes, me: bytes) -> ClaimView:
        env = self.envelope(env_id)
        mine = self.claimed_amount(env_id, me) if env.exists else 0
        return env.as_view(mine > 0)

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
        token: bytes = ETH_TOKEN,
    ) -> bytes:
        """Deposit ``total`` (wei, or base units of the ERC-20 ``token``: approved
        first, a second transaction) as an envelope named by ``secret``; return its id
        once mined (a revert says why and moves nothing)."""
        args = [claim_address(secret), seed_hash(secret), shares, lucky, expiry, relay_fee]
        if token == ETH_TOKEN:
            sig = "create(address,bytes32,uint256,bool,uint256,uint256)"
            receipt = self.signer.transact(self.address, call_data(sig, args), value=total)
        else:
            approve = call_data("approve(address,uint256)", [self.address, total])
            self.signer.transact(token, approve)
            sig = "create_token(address,uint256,address,bytes32,uint256,bool,uint256,uint256)"
            receipt = self.signer.transact(self.address, call_data(sig, [token, total, *args]))
        for log in receipt.logs:
            if log.address == self.address and log.topics[:1] == [CREATED]:
                return log.topics[1]
        raise BadRpcResponse("the create transaction logged no Created event")

    def claim_payload(self, card: Card, member: bytes, recipient: bytes) -> bytes:
        return claim_calls(card, self.address, self._key(), member, recipient)[0]

    def submit_claim(self, card: Card, member: bytes, recipient: bytes) -> bytes:
        """Broadcast ``member``'s claim paid to ``recipient`` from this signer; return
        the transaction hash without waiting."""
        return self.signer.submit(self.address, self.claim_payload(card, member, recipient))

    def relay_claims(
        self, card: Card, opened: list[Opened], prepared: PreparedClaims | None = None
    ) -> tuple[list[bytes], list[str]]:
        """Submit the claims of ``opened`` (member, recipient) from this signer, 14 per
        JSON-RPC batch, pipelined: each batch sends the previous chunk's signed
        claims and dry-runs this chunk's (the contract's ``refusal`` view). A claim
        the dry run refuses is not sent (no gas paid for it); its reason is returned
        instead. One claim per member and per address. Claims in ``prepared`` were
        signed ahead. Returns (transaction hashes, refusals)."""
        ready = prepared if prepared is not None else PreparedClaims(0)
        hashes: list[bytes] = []
        refused: list[str] = []
        todo: list[Opened] = []
        members: set[bytes] = set()
        addresses: set[bytes] = set()
        for member, recipient in opened:
            if member in members or recipient in addresses:
                refused.append("already claimed")
                continue
            members.add(member)
            addresses.add(recipient)
            todo.append((member, recipient))
        env = self.envelope(card.id)
        left = max(env.shares - env.claimed, 0)  # the checks cannot see claims in flight
        refused += ["empty"] * max(len(todo) - left, 0)
        todo = todo[:left]
        key = self._key()
        chunks = [
            [ready.take(card, self.address, key, m, r) for m, r in todo[i : i + RELAY_CHUNK]]
            for i in range(0, len(todo), RELAY_CHUNK)
        ]
        if chunks:
            sent, why = self.signer.submit_checked(self.address, chunks, CLAIM_GAS_LIMIT)
            hashes += sent
            refused += why
        return hashes, refused

    def claim(self, card: Card, member: bytes, recipient: bytes) -> Claim:
        """Claim and wait: the share ``recipient`` got (the contract's own log)."""
        receipt = self.signer.wait([self.submit_claim(card, member, recipient)])[0]
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
