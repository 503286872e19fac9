"""Red envelopes, sans-IO: the secret, the claim signature, the split, the card.

Theory of operation. The sender's client draws a 32-byte *envelope secret*.
Three values are derived from it one-way:

- the *claim key* ``keccak("boxless red envelope key" ‖ secret)``, whose address
  names the envelope on chain (id = ``keccak(sender ‖ claim address)``);
- the *split seed* ``keccak("boxless red envelope seed" ‖ secret)``, whose hash
  the contract stores at creation;
- a member's *nullifier* ``keccak("boxless red envelope member" ‖ secret ‖
  identity key)``: one per member, unlinkable to the member without the secret.

A claim is the **sender's ticket**: its wallet key's signature over
``keccak(TICKET_TAG ‖ contract ‖ chain id ‖ envelope id ‖ nullifier ‖ recipient)``,
made by the sender's client once per member whose authenticated "opened"
notice reached it. The contract pays each nullifier once (one member, one
share, however many addresses) and the recipient is signed (a submitter cannot
redirect it). A lucky share is drawn when the claim lands:
``draw = keccak(seed ‖ block.prevrandao ‖ nullifier ‖ index)`` and
:func:`share_amount` (the contract's ``_share``), so no member can compute
before claiming which share they will get.

The secret travels only inside the end-to-end encrypted chat message (the
:class:`Card`). A card comes from a peer: :func:`decode_card` is strict
(hypothesis-tested). :func:`may_claim` is the one rule deciding whether this
user may claim a card in a chat.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import coincurve

from boxless.errors import PeerError
from boxless.payments.hdwallet import address_bytes, keccak256

TICKET_TAG = keccak256(b"boxless red envelope ticket v2")
MEMBER_TAG = b"boxless red envelope member"
ETH_TOKEN = b"\x00" * 20  # the card's token for an envelope in ETH
KEY_TAG = b"boxless red envelope key"
SEED_TAG = b"boxless red envelope seed"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
MAX_SHARES = 1000
MAX_GREETING = 200
MAX_CARD_BYTES = 1024
UINT256 = (1 << 256) - 1
DEFAULT_EXPIRY_S = 24 * 3600


class BadCard(PeerError):
    """A red-envelope card from a peer is malformed; it is not shown as claimable."""


def claim_private_key(secret: bytes) -> bytes:
    """The one-time claim key (a valid secp256k1 scalar) derived from ``secret``."""
    if len(secret) != 32:
        raise ValueError("an envelope secret is 32 bytes")
    counter = 0
    while True:  # a miss has probability ~2^-128; bounded in practice by that
        digest = keccak256(KEY_TAG + secret + bytes([counter]))
        if 0 < int.from_bytes(digest, "big") < SECP256K1_N:
            return digest
        counter += 1


def claim_address(secret: bytes) -> bytes:
    return address_bytes(claim_private_key(secret))


def split_seed(secret: bytes) -> bytes:
    return keccak256(SEED_TAG + secret)


def seed_hash(secret: bytes) -> bytes:
    return keccak256(split_seed(secret))


def envelope_id(sender: bytes, claim_key_address: bytes) -> bytes:
    return keccak256(sender + claim_key_address)


def nullifier(secret: bytes, member: bytes) -> bytes:
    """The member's one-claim tag for this envelope (member = identity public key)."""
    return keccak256(MEMBER_TAG + secret + member)


def ticket_digest(
    contract: bytes, chain_id: int, env_id: bytes, member_nullifier: bytes, recipient: bytes
) -> bytes:
    return keccak256(
        TICKET_TAG + contract + chain_id.to_bytes(32, "big") + env_id + member_nullifier + recipient
    )


def sign_ticket(
    sender_key: bytes,
    contract: bytes,
    chain_id: int,
    env_id: bytes,
    member_nullifier: bytes,
    recipient: bytes,
) -> tuple[int, bytes, bytes]:
    """``(v, r, s)``: the sender's authorisation of one member's claim paid to ``recipient``."""
    digest = ticket_digest(contract, chain_id, env_id, member_nullifier, recipient)
    sig = coincurve.PrivateKey(sender_key).sign_recoverable(digest, hasher=None)
    return 27 + sig[64], sig[:32], sig[32:64]


OPENED_TAG = b"boxless red envelope opened v1"


def opened_digest(env_id: bytes, member: bytes) -> bytes:
    return keccak256(OPENED_TAG + env_id + member)


def sign_opened(wallet_key: bytes, env_id: bytes, member: bytes) -> bytes:
    """The wallet key's signature binding its address to ``member`` for this envelope."""
    sig = coincurve.PrivateKey(wallet_key).sign_recoverable(
        opened_digest(env_id, member), hasher=None
    )
    return bytes(sig)


def opened_signer(signature: bytes, env_id: bytes, member: bytes) -> bytes | None:
    """The address that signed an opened notice, or None for a bad signature."""
    try:
        pub = coincurve.PublicKey.from_signature_and_message(
            signature, opened_digest(env_id, member), hasher=None
        )
    except (ValueError, TypeError):
        return None
    return keccak256(pub.format(compressed=False)[1:])[12:]


def draw(seed: bytes, randao: bytes, member_nullifier: bytes, index: int) -> bytes:
    """The lucky draw of claim ``index`` landing in a block whose prevrandao is ``randao``."""
    return keccak256(seed + randao + member_nullifier + index.to_bytes(32, "big"))


def share_amount(remaining: int, left: int, lucky: bool, drawn: bytes) -> int:
    """The share when ``remaining`` units are left for ``left`` shares (the contract's rule)."""
    if left == 1:
        return remaining
    if not lucky:
        return remaining // left
    avg = remaining // left
    if avg <= 1:
        return 1
    return 1 + int.from_bytes(drawn, "big") % (2 * avg - 1)


def split(total: int, shares: int, lucky: bool, draws: list[bytes]) -> list[int]:
    """Every share in claim order for the given draws; sums to ``total`` exactly."""
    if len(draws) != shares:
        raise ValueError("one draw per share")
    out, remaining = [], total
    for i in range(shares):
        amount = share_amount(remaining, shares - i, lucky, draws[i])
        out.append(amount)
        remaining -= amount
    return out


def best_luck(claims: list[tuple[str, int]]) -> str | None:
    """Who got the largest share (the earliest claim wins a tie), or None."""
    best: tuple[int, int, str] | None = None
    for order, (who, amount) in enumerate(claims):
        if best is None or amount > best[0]:
            best = (amount, order, who)
    return None if best is None else best[2]


@dataclass(frozen=True, slots=True)
class Card:
    """What the chat message carries; ``chat`` binds it to one conversation."""

    chain_id: int
    contract: bytes
    sender: bytes
    secret: bytes
    chat: str
    total: int
    shares: int
    lucky: bool
    expiry: int
    greeting: str
    token: bytes = ETH_TOKEN  # the ERC-20 contract, or ETH_TOKEN for ETH

    def __post_init__(self) -> None:
        if not 1 <= self.shares <= MAX_SHARES:
            raise ValueError(f"shares: 1 to {MAX_SHARES}")
        if not self.shares <= self.total <= UINT256:
            raise ValueError("the total is at least one wei per share")
        if len(self.contract) != 20 or len(self.sender) != 20 or len(self.secret) != 32:
            raise ValueError("contract and sender are 20 bytes, the secret 32")
        if len(self.token) != 20:
            raise ValueError("a token is a 20-byte address")
        if len(self.greeting) > MAX_GREETING:
            raise ValueError(f"a greeting has at most {MAX_GREETING} characters")
        if not 0 < self.chain_id < 1 << 64 or not 0 < self.expiry < 1 << 64:
            raise ValueError("chain id and expiry are positive 64-bit numbers")

    @property
    def id(self) -> bytes:
        return envelope_id(self.sender, claim_address(self.secret))

    def encode(self) -> bytes:
        return json.dumps(
            {
                "v": 2,
                "chain_id": self.chain_id,
                "contract": "0x" + self.contract.hex(),
                "sender": "0x" + self.sender.hex(),
                "secret": self.secret.hex(),
                "chat": self.chat,
                "total": str(self.total),
                "shares": self.shares,
                "lucky": self.lucky,
                "expiry": self.expiry,
                "greeting": self.greeting,
                "token": "0x" + self.token.hex(),
            },
            separators=(",", ":"),
        ).encode()


_KEYS = {
    "v", "chain_id", "contract", "sender", "secret", "chat", "total", "shares", "lucky",
    "expiry", "greeting",
}  # fmt: skip
_KEYS_V2 = _KEYS | {"token"}
_ADDR = re.compile(r"0x[0-9a-f]{40}")
_SECRET = re.compile(r"[0-9a-f]{64}")
_DECIMAL = re.compile(r"[1-9][0-9]{0,77}")
_CHAT = re.compile(r"(contact|group):[0-9a-f]{16,128}")


def decode_card(raw: bytes) -> Card:
    """Strictly decode a peer's card: exact keys, types and sizes, or :class:`BadCard`."""
    if len(raw) > MAX_CARD_BYTES:
        raise BadCard(f"a red-envelope card is at most {MAX_CARD_BYTES} bytes")
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadCard("a red-envelope card is not JSON") from exc
    if not isinstance(obj, dict) or (obj.get("v"), set(obj)) not in ((1, _KEYS), (2, _KEYS_V2)):
        raise BadCard("a red-envelope card has unknown or missing fields")
    token = obj.get("token", "0x" + ETH_TOKEN.hex())
    if not isinstance(token, str) or not _ADDR.fullmatch(token):
        raise BadCard("a red-envelope card's token is not a 20-byte hex address")
    ints = ("chain_id", "shares", "expiry")
    if any(type(obj[k]) is not int for k in ints) or type(obj["lucky"]) is not bool:
        raise BadCard("a red-envelope card has a field of the wrong type")
    texts = ("contract", "sender", "secret", "chat", "total", "greeting")
    if any(not isinstance(obj[k], str) for k in texts):
        raise BadCard("a red-envelope card has a field of the wrong type")
    if not (_ADDR.fullmatch(obj["contract"]) and _ADDR.fullmatch(obj["sender"])):
        raise BadCard("a red-envelope card's addresses are not 20-byte hex")
    if not _SECRET.fullmatch(obj["secret"]) or not _DECIMAL.fullmatch(obj["total"]):
        raise BadCard("a red-envelope card's secret or total is malformed")
    if not _CHAT.fullmatch(obj["chat"]):
        raise BadCard("a red-envelope card names no chat")
    try:
        return Card(
            obj["chain_id"],
            bytes.fromhex(obj["contract"][2:]),
            bytes.fromhex(obj["sender"][2:]),
            bytes.fromhex(obj["secret"]),
            obj["chat"],
            int(obj["total"]),
            obj["shares"],
            obj["lucky"],
            obj["expiry"],
            obj["greeting"],
            bytes.fromhex(token[2:]),
        )
    except ValueError as exc:
        raise BadCard(f"a red-envelope card is out of range: {exc}") from exc


# -- who may claim: one rule, tested with a table of attackers


@dataclass(frozen=True, slots=True)
class ClaimView:
    """What the chain says about the envelope, read just before claiming."""

    exists: bool
    claimed: int
    shares: int
    expiry: int
    refunded: bool
    already_claimed_by_me: bool
    total: int  # the deposit, in the envelope's currency's base units
    lucky: bool
    token: bytes  # the ERC-20 the chain pays in, or ETH_TOKEN


ALLOWED = "allowed"


def card_mismatch(card: Card, view: ClaimView) -> str:
    """``""`` or what a card claims that the chain's envelope contradicts. The card
    is the sender's word; the chain is what pays: a card saying "100 ETH" over an
    envelope of 10 units of some token must not be shown or opened as 100 ETH."""
    differs = [
        name
        for name, said, real in (
            ("currency", card.token, view.token),
            ("total", card.total, view.total),
            ("shares", card.shares, view.shares),
            ("kind", card.lucky, view.lucky),
            ("expiry", card.expiry, view.expiry),
        )
        if said != real
    ]
    if not differs:
        return ""
    return (
        f"this envelope's card does not match the chain ({', '.join(differs)}): the sender's "
        "card is wrong, so it cannot be opened"
    )


def may_claim(
    card: Card,
    *,
    arrived_in: str,
    member: bool,
    chain_id: int,
    contract: bytes,
    view: ClaimView,
    now_s: int,
) -> str:
    """``ALLOWED`` or the reason this user may not claim ``card``.

    ``arrived_in`` is the chat the message really came in (not the card's
    claim), ``member`` whether this user is a member of it now."""
    if card.chat != arrived_in:
        return "this envelope was made for another chat"
    if not member:
        return "only members of the chat can open this envelope"
    if card.chain_id != chain_id or card.contract != contract:
        return "this envelope is on another chain or contract than your wallet's"
    if not view.exists:
        return "this envelope is not on the chain (yet, or never was)"
    mismatch = card_mismatch(card, view)
    if mismatch:
        return mismatch
    if view.already_claimed_by_me:
        return "you already opened this envelope"
    if view.refunded or now_s >= view.expiry:
        return "this envelope has expired"
    if view.claimed >= view.shares:
        return "this envelope is empty: every share was taken"
    return ALLOWED


def may_ticket(chat: str, member: bytes, me: bytes, members_now: frozenset[bytes]) -> bool:
    """Whether the sender's client signs ``member``'s ticket for an envelope it made
    in ``chat``: a member of the group now (an ex-member's earlier notice gets
    nothing), or in a 1:1 chat the contact (or us). One ticket per member is the
    store's rule (the first notice per member counts)."""
    if chat.startswith("group:"):
        return member in members_now
    return chat == f"contact:{member.hex()}" or member == me
