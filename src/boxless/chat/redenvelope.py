"""Red envelopes on the wire: the card (with the envelope secret) and "opened".

A :class:`RedEnvelopeCard` carries a :class:`~boxless.client.redenvelopes_core.Card`
(strict JSON codec there); :class:`RedEnvelopeOpened` says which address the
message's sender claimed with, so the chat can show who opened which share —
the amounts always come from the chain's own logs, never from this message.
Every field comes from a peer: building a value checks it and raises
:class:`~boxless.errors.UsageError`; the envelope turns that into a DecodeError.
"""

from __future__ import annotations

from dataclasses import dataclass

from boxless.errors import UsageError
from boxless.wire import redenvelope_pb2

__all__ = [
    "MAX_CARD_BYTES",
    "RedEnvelopeCard",
    "RedEnvelopeOpened",
    "body_to_proto",
    "decode_body",
]

MAX_CARD_BYTES = 1024


@dataclass(frozen=True, slots=True)
class RedEnvelopeCard:
    card: bytes  # the card's JSON; decoded by client.redenvelopes_core.decode_card

    def __post_init__(self) -> None:
        if not 0 < len(self.card) <= MAX_CARD_BYTES:
            raise UsageError(f"a red-envelope card is 1 to {MAX_CARD_BYTES} bytes")

    def __repr__(self) -> str:
        return "RedEnvelopeCard(<secret>)"


@dataclass(frozen=True, slots=True)
class RedEnvelopeOpened:
    """``recipient``'s key signed (envelope, the notice's sender's identity key):
    nobody can name another member's address as theirs (checked on receipt)."""

    envelope_id: bytes
    recipient: bytes
    signature: bytes

    def __post_init__(self) -> None:
        if len(self.envelope_id) != 32 or len(self.recipient) != 20:
            raise UsageError("an opened notice names a 32-byte envelope and a 20-byte address")
        if len(self.signature) != 65:
            raise UsageError("an opened notice carries a 65-byte signature")


RedEnvelopeBody = RedEnvelopeCard | RedEnvelopeOpened


def body_to_proto(body: RedEnvelopeBody) -> redenvelope_pb2.RedEnvelopeBody:
    pb = redenvelope_pb2.RedEnvelopeBody()
    match body:
        case RedEnvelopeCard(card):
            pb.card = card
        case RedEnvelopeOpened(envelope_id, recipient, signature):
            o = pb.opened
            o.envelope_id, o.recipient, o.signature = envelope_id, recipient, signature
    return pb


def decode_body(pb: redenvelope_pb2.RedEnvelopeBody) -> RedEnvelopeBody:
    """A peer's red-envelope body, checked (UsageError on a bad field)."""
    match pb.WhichOneof("kind"):
        case "card":
            return RedEnvelopeCard(pb.card)
        case "opened":
            o = pb.opened
            return RedEnvelopeOpened(o.envelope_id, o.recipient, o.signature)
    raise UsageError("a red-envelope body of no known kind")
