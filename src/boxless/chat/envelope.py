"""The app envelope: :class:`ChatMessage` values and their protobuf codec.

Theory of operation
-------------------
A :class:`ChatMessage` is a header (version, a 16-byte random ``message_id``,
the sender's Lamport clock, the sender's wall-clock time) and one *body*: a
small frozen dataclass per kind (:class:`Text`, :class:`Edit`, ...). Each value
checks its fields when built, so an invalid one cannot exist: building one
locally with bad fields raises :class:`~boxless.errors.UsageError`, and
:func:`decode` turns the same failures on a peer's bytes into
:class:`~boxless.errors.DecodeError` with the same explanation.

Schema evolution (see ``wire/chat.proto``): a body of a kind this version does
not know -- an unknown field numbered 10 or more, or an enum value added later --
decodes to :class:`Unsupported`, never to an error, so the client can still
store a placeholder and acknowledge it. A different ``version`` is an
incompatible change and raises :class:`UnsupportedVersion`.

Size: :data:`MAX_ENCODED_BYTES` (63 KiB) keeps a message, once inside Olm and a
sealed envelope, in the 64 KiB padding bucket, under Waku's 150 KiB message
limit (the next bucket, 256 KiB, would not fit). Larger content (big avatars,
files) belongs in attachments.

Privacy: these values hold plaintext, so their ``repr`` shows sizes and
message-id prefixes, never text, names, emoji, avatars or secrets.
"""

from __future__ import annotations

import enum
import os
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Final

from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.unknown_fields import UnknownFieldSet

from boxless.chat import miniapp, moment, ownsync, payment, redenvelope
from boxless.chat.attachment import Attachments
from boxless.chat.miniapp import AppMessage
from boxless.chat.moment import MomentAct, MomentDelete, MomentKey, MomentRelay
from boxless.chat.ownsync import OwnSync
from boxless.chat.payment import PayRequest, TransferAck, TransferCard, WalletAddress
from boxless.chat.pow import NONCE_BYTES, ProofOfWork
from boxless.chat.redenvelope import RedEnvelopeCard, RedEnvelopeOpened
from boxless.errors import DecodeError, UsageError
from boxless.wire import chat_pb2

__all__ = [
    "CallSignal",
    "CallSignalKind",
    "CONVERSATION_SECRET_BYTES",
    "MAX_AVATAR_BYTES",
    "MAX_COVER_BYTES",
    "MAX_REGION_BYTES",
    "MAX_STATUS_BYTES",
    "MAX_EMOJI_BYTES",
    "MAX_ENCODED_BYTES",
    "MAX_INTRO_BYTES",
    "MAX_LAMPORT",
    "MAX_NAME_CHARS",
    "MAX_RECEIPT_IDS",
    "MAX_SENDER_CARD_BYTES",
    "MAX_TEXT_BYTES",
    "MESSAGE_ID_BYTES",
    "VERSION",
    "Attachments",
    "Body",
    "ChatMessage",
    "ContactRequest",
    "ContactResponse",
    "Decision",
    "Delete",
    "Edit",
    "GroupDelete",
    "GroupEdit",
    "GroupKeyShareBody",
    "GroupOpBody",
    "GroupPin",
    "GroupReaction",
    "GroupRead",
    "MAX_GROUP_CARDS",
    "MAX_GROUP_OPS",
    "MAX_GROUP_OP_BYTES",
    "MAX_MENTIONS",
    "MAX_SDS_ID_CHARS",
    "ProfileUpdate",
    "Reaction",
    "Receipt",
    "ReceiptKind",
    "SAS_BODIES",
    "SAS_BYTES",
    "MAX_FLOW_ID_CHARS",
    "SasCancel",
    "SasCancelReason",
    "SasKey",
    "SasMac",
    "SasRequest",
    "SessionReset",
    "Text",
    "Typing",
    "Unsupported",
    "UnsupportedVersion",
    "decode",
    "encode",
    "is_reliable",
    "new_message",
    "new_message_id",
]

VERSION: Final = 1
MESSAGE_ID_BYTES: Final = 16
MAX_LAMPORT: Final = (1 << 63) - 1
"""Lamport values fit a signed 64-bit SQL integer."""
MAX_ENCODED_BYTES: Final = 63 * 1024
MAX_TEXT_BYTES: Final = 60 * 1024
MAX_EMOJI_BYTES: Final = 32
MAX_RECEIPT_IDS: Final = 500
MAX_INTRO_BYTES: Final = 2048
MAX_SENDER_CARD_BYTES: Final = 4096
CONVERSATION_SECRET_BYTES: Final = 32
MAX_NAME_CHARS: Final = 64
MAX_NAME_BYTES: Final = 256
MAX_AVATAR_BYTES: Final = 48 * 1024
MAX_STATUS_BYTES: Final = 400  # one line
MAX_REGION_BYTES: Final = 200
MAX_COVER_BYTES: Final = 12 * 1024  # with a full avatar, still one message
"""An avatar travels inside one message; bigger pictures must be scaled down by the client."""

MAX_GROUP_OPS: Final = 256
"""Ops in one :class:`GroupOpBody`; a longer log travels in several messages."""
MAX_GROUP_OP_BYTES: Final = 2048
MAX_GROUP_CARDS: Final = 64
MAX_KEY_SHARE_PAYLOAD_BYTES: Final = 1024
MAX_MENTIONS: Final = 50
MAX_SDS_ID_CHARS: Final = 128
MAX_FLOW_ID_CHARS: Final = 64
SAS_BYTES: Final = 32
"""A SAS commitment (SHA-256), public key (X25519) and MAC (HMAC-SHA256) are 32 bytes each."""
_FLOW_ID: Final = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_FLOW_ID_CHARS}}}")
_FIRST_BODY_FIELD: Final = 10
_I64_MAX: Final = (1 << 63) - 1


class UnsupportedVersion(DecodeError):
    """The message uses an envelope version this client does not speak."""

    def __init__(self, version: int) -> None:
        super().__init__(
            f"chat message version {version} is not supported (this client speaks {VERSION})"
        )
        self.version = version


def _utf8_len(name: str, value: str) -> int:
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise UsageError(f"{name} is not valid Unicode") from None


def _check_text(name: str, value: str, limit: int, *, allow_empty: bool = False) -> None:
    size = _utf8_len(name, value)
    if size == 0 and not allow_empty:
        raise UsageError(f"{name} must not be empty")
    if size > limit:
        raise UsageError(f"{name} is {size} bytes; the limit is {limit}")


def _check_id(name: str, value: bytes) -> None:
    if len(value) != MESSAGE_ID_BYTES:
        raise UsageError(f"{name} must be {MESSAGE_ID_BYTES} bytes, not {len(value)}")


def _short(message_id: bytes) -> str:
    return message_id.hex()[:8]


@dataclass(frozen=True, slots=True)
class Text:
    """A text message; ``reply_to`` names the message it answers."""

    text: str = field(repr=False)
    reply_to: bytes | None = None
    mentions: tuple[bytes, ...] = ()
    """Identity keys of the group members the text names (groups only)."""
    mention_all: bool = False
    group_reply_to: str | None = None
    """The SDS message id of the group message this text answers (groups only)."""

    def __post_init__(self) -> None:
        _check_text("text", self.text, MAX_TEXT_BYTES)
        if self.reply_to is not None:
            _check_id("reply_to", self.reply_to)
        if not isinstance(self.mentions, tuple) or len(self.mentions) > MAX_MENTIONS:
            raise UsageError(f"a text mentions at most {MAX_MENTIONS} members")
        if any(len(k) != 32 for k in self.mentions):
            raise UsageError("a mention is a 32-byte identity key")
        if self.group_reply_to is not None:
            _check_sds_id("a replied-to message id", self.group_reply_to)

    def __repr__(self) -> str:
        reply = "" if self.reply_to is None else f", reply_to={_short(self.reply_to)}"
        if self.group_reply_to is not None:
            reply += f", group_reply_to={self.group_reply_to[:8]}"
        return f"Text(<{len(self.text)} chars>{reply})"


@dataclass(frozen=True, slots=True)
class Edit:
    """New text for an earlier :class:`Text` from the same sender."""

    target: bytes
    text: str = field(repr=False)

    def __post_init__(self) -> None:
        _check_id("edit target", self.target)
        _check_text("edited text", self.text, MAX_TEXT_BYTES)

    def __repr__(self) -> str:
        return f"Edit(target={_short(self.target)}, <{len(self.text)} chars>)"


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete for everyone: the sender withdraws one of its messages."""

    target: bytes

    def __post_init__(self) -> None:
        _check_id("delete target", self.target)

    def __repr__(self) -> str:
        return f"Delete(target={_short(self.target)})"


@dataclass(frozen=True, slots=True)
class Reaction:
    """An emoji on a message; ``remove`` takes back an earlier one."""

    target: bytes
    emoji: str = field(repr=False)
    remove: bool = False

    def __post_init__(self) -> None:
        _check_id("reaction target", self.target)
        _check_emoji(self.emoji)

    def __repr__(self) -> str:
        return f"Reaction(target={_short(self.target)}, remove={self.remove})"


def _check_emoji(emoji: str) -> None:
    _check_text("emoji", emoji, MAX_EMOJI_BYTES)
    if any(unicodedata.category(ch) in ("Cc", "Zs", "Zl", "Zp") for ch in emoji):
        raise UsageError("emoji must not contain spaces or control characters")


class ReceiptKind(enum.Enum):
    DELIVERED = chat_pb2.Receipt.DELIVERED
    READ = chat_pb2.Receipt.READ


@dataclass(frozen=True, slots=True)
class Receipt:
    """Delivery or read receipts for 1..MAX_RECEIPT_IDS messages."""

    message_ids: tuple[bytes, ...]
    kind: ReceiptKind

    def __post_init__(self) -> None:
        if not isinstance(self.message_ids, tuple):
            raise UsageError("receipt message_ids must be a tuple")
        if not 1 <= len(self.message_ids) <= MAX_RECEIPT_IDS:
            raise UsageError(
                f"a receipt covers 1..{MAX_RECEIPT_IDS} messages, not {len(self.message_ids)}"
            )
        for message_id in self.message_ids:
            _check_id("receipt message id", message_id)

    def __repr__(self) -> str:
        return f"Receipt({self.kind.name}, {len(self.message_ids)} ids)"


@dataclass(frozen=True, slots=True)
class Typing:
    """Ephemeral typing indicator: never stored, acknowledged or re-sent."""

    typing: bool


@dataclass(frozen=True, slots=True)
class ContactRequest:
    """The first message to a stranger; its proof of work pays for the stranger's attention.

    ``sender_card`` is the sender's encoded contact code (identity/ validates it)
    so the recipient can answer; ``conversation_secret`` is 32 random bytes both
    sides derive the conversation topic from (:func:`boxless.chat.topics.conversation_topic`).
    """

    intro: str = field(repr=False)
    proof: ProofOfWork
    sender_card: bytes = field(repr=False)
    conversation_secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_text("intro", self.intro, MAX_INTRO_BYTES, allow_empty=True)
        if not 0 < len(self.sender_card) <= MAX_SENDER_CARD_BYTES:
            raise UsageError(f"sender card must be 1..{MAX_SENDER_CARD_BYTES} bytes")
        if len(self.conversation_secret) != CONVERSATION_SECRET_BYTES:
            raise UsageError(f"conversation secret must be {CONVERSATION_SECRET_BYTES} bytes")

    def __repr__(self) -> str:
        return f"ContactRequest(<intro {len(self.intro)} chars>, pow_ts={self.proof.timestamp_ms})"


class Decision(enum.Enum):
    ACCEPT = chat_pb2.ContactResponse.ACCEPT
    DECLINE = chat_pb2.ContactResponse.DECLINE


@dataclass(frozen=True, slots=True)
class ContactResponse:
    decision: Decision


@dataclass(frozen=True, slots=True)
class ProfileUpdate:
    """Display name, avatar, status line, region and Moments cover (empty: none);
    for contacts only."""

    name: str = field(repr=False)
    avatar: bytes = field(default=b"", repr=False)
    status: str = field(default="", repr=False)
    region: str = field(default="", repr=False)
    cover: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        _check_text("name", self.name, MAX_NAME_BYTES)
        if len(self.name) > MAX_NAME_CHARS:
            raise UsageError(f"name has {len(self.name)} characters; the limit is {MAX_NAME_CHARS}")
        if len(self.avatar) > MAX_AVATAR_BYTES:
            raise UsageError(f"avatar is {len(self.avatar)} bytes; the limit is {MAX_AVATAR_BYTES}")
        _check_text("status", self.status, MAX_STATUS_BYTES, allow_empty=True)
        _check_text("region", self.region, MAX_REGION_BYTES, allow_empty=True)
        if len(self.cover) > MAX_COVER_BYTES:
            raise UsageError(f"cover is {len(self.cover)} bytes; the limit is {MAX_COVER_BYTES}")

    def __repr__(self) -> str:
        return f"ProfileUpdate(<name>, <avatar {len(self.avatar)} bytes>)"


@dataclass(frozen=True, slots=True)
class SessionReset:
    """The sender could not decrypt something of ours and asks for a new Olm session."""


@dataclass(frozen=True, slots=True)
class GroupKeyShareBody:
    """A Megolm key share (``boxless.crypto.megolm`` bytes, secret): member to member, Olm only."""

    payload: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not 0 < len(self.payload) <= MAX_KEY_SHARE_PAYLOAD_BYTES:
            raise UsageError(f"a group key share is 1..{MAX_KEY_SHARE_PAYLOAD_BYTES} bytes")

    def __repr__(self) -> str:
        return f"GroupKeyShareBody(<{len(self.payload)} bytes>)"


@dataclass(frozen=True, slots=True)
class GroupOpBody:
    """Encoded signed group ops, and contact cards of the members they name.

    The ops and cards are checked by their own decoders (``boxless.groups``,
    ``boxless.identity``) when applied; here only counts and sizes.
    """

    ops: tuple[bytes, ...]
    cards: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.ops, tuple) or not isinstance(self.cards, tuple):
            raise UsageError("group ops and cards must be tuples")
        if not 1 <= len(self.ops) <= MAX_GROUP_OPS:
            raise UsageError(f"a group op body holds 1..{MAX_GROUP_OPS} ops, not {len(self.ops)}")
        if len(self.cards) > MAX_GROUP_CARDS:
            raise UsageError(f"a group op body holds at most {MAX_GROUP_CARDS} cards")
        if any(not 0 < len(op) <= MAX_GROUP_OP_BYTES for op in self.ops):
            raise UsageError(f"a group op is 1..{MAX_GROUP_OP_BYTES} bytes")
        if any(not 0 < len(c) <= MAX_SENDER_CARD_BYTES for c in self.cards):
            raise UsageError(f"a member card is 1..{MAX_SENDER_CARD_BYTES} bytes")

    def __repr__(self) -> str:
        return f"GroupOpBody({len(self.ops)} ops, {len(self.cards)} cards)"


@dataclass(frozen=True, slots=True)
class GroupPin:
    """Pin (or unpin) a group message, named by its SDS message id, for every member."""

    target: str
    pinned: bool = True

    def __post_init__(self) -> None:
        _check_sds_id("a pinned message id", self.target)


def _check_sds_id(name: str, value: str) -> None:
    if not 0 < len(value) <= MAX_SDS_ID_CHARS or not value.isascii():
        raise UsageError(f"{name} is 1..{MAX_SDS_ID_CHARS} ASCII characters")


@dataclass(frozen=True, slots=True)
class GroupEdit:
    """New text for an earlier group text of the same sender, named by its SDS id."""

    target: str
    text: str = field(repr=False)

    def __post_init__(self) -> None:
        _check_sds_id("an edited message id", self.target)
        _check_text("edited text", self.text, MAX_TEXT_BYTES)

    def __repr__(self) -> str:
        return f"GroupEdit(target={self.target[:8]}, <{len(self.text)} chars>)"


@dataclass(frozen=True, slots=True)
class GroupDelete:
    """Delete a group message for everyone (its author, or an admin)."""

    target: str

    def __post_init__(self) -> None:
        _check_sds_id("a deleted message id", self.target)


@dataclass(frozen=True, slots=True)
class GroupReaction:
    """An emoji on a group message; ``remove`` takes back an earlier one."""

    target: str
    emoji: str = field(repr=False)
    remove: bool = False

    def __post_init__(self) -> None:
        _check_sds_id("a reacted-to message id", self.target)
        _check_emoji(self.emoji)

    def __repr__(self) -> str:
        return f"GroupReaction(target={self.target[:8]}, remove={self.remove})"


@dataclass(frozen=True, slots=True)
class GroupRead:
    """A member has read the group's messages up to this SDS Lamport time."""

    lamport: int

    def __post_init__(self) -> None:
        if not 0 <= self.lamport <= MAX_LAMPORT:
            raise UsageError("a read position is a Lamport time in 0..2^63-1")


def _check_flow_id(flow_id: str) -> None:
    if not _FLOW_ID.fullmatch(flow_id):
        raise UsageError(
            f"a SAS flow id is 1..{MAX_FLOW_ID_CHARS} characters of A-Z, a-z, 0-9, _ and -"
        )


def _check_flow(flow_id: str, name: str, value: bytes) -> None:
    _check_flow_id(flow_id)
    if len(value) != SAS_BYTES:
        raise UsageError(f"a SAS {name} must be {SAS_BYTES} bytes, not {len(value)}")


@dataclass(frozen=True, slots=True)
class SasRequest:
    """Emoji verification, initiator to responder: a new flow and the commitment to its key."""

    flow_id: str
    commitment: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_flow(self.flow_id, "commitment", self.commitment)


@dataclass(frozen=True, slots=True)
class SasKey:
    """A SAS public key: the responder's after its user accepted, then the initiator's."""

    flow_id: str
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_flow(self.flow_id, "key", self.key)


@dataclass(frozen=True, slots=True)
class SasMac:
    """The sender's user confirmed matching emoji: its MAC over its own keys."""

    flow_id: str
    mac: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_flow(self.flow_id, "MAC", self.mac)


class SasCancelReason(enum.Enum):
    USER = chat_pb2.SasCancel.USER
    MISMATCH = chat_pb2.SasCancel.MISMATCH
    TIMEOUT = chat_pb2.SasCancel.TIMEOUT
    UNEXPECTED = chat_pb2.SasCancel.UNEXPECTED


@dataclass(frozen=True, slots=True)
class SasCancel:
    """The SAS flow ends without verification, for ``reason``."""

    flow_id: str
    reason: SasCancelReason

    def __post_init__(self) -> None:
        _check_flow_id(self.flow_id)


SAS_BODIES: Final = (SasRequest, SasKey, SasMac, SasCancel)
"""The emoji-verification bodies (``isinstance(body, SAS_BODIES)``)."""


CALL_ID_BYTES: Final = 16
MAX_CALL_SDP_BYTES: Final = 16 * 1024
MAX_CALL_CANDIDATES: Final = 16
MAX_CALL_CANDIDATE_BYTES: Final = 512


class CallSignalKind(enum.Enum):
    OFFER = chat_pb2.CallSignal.OFFER
    ANSWER = chat_pb2.CallSignal.ANSWER
    CANDIDATES = chat_pb2.CallSignal.CANDIDATES
    HANGUP = chat_pb2.CallSignal.HANGUP
    BUSY = chat_pb2.CallSignal.BUSY
    DECLINE = chat_pb2.CallSignal.DECLINE
    KEEPALIVE = chat_pb2.CallSignal.KEEPALIVE
    RING = chat_pb2.CallSignal.RING  # group calls (``group_id`` set): calls/group.py
    JOIN = chat_pb2.CallSignal.JOIN
    LEAVE = chat_pb2.CallSignal.LEAVE


@dataclass(frozen=True, slots=True)
class CallSignal:
    """WebRTC call signalling (ephemeral); the SDP is checked by :mod:`boxless.calls.sdp`."""

    call_id: bytes
    kind: CallSignalKind
    sdp: str = field(default="", repr=False)
    candidates: tuple[str, ...] = field(default=(), repr=False)
    video: bool = False
    group_id: bytes = b""  # a group call's group; empty for a 1:1 call

    def __post_init__(self) -> None:
        if len(self.call_id) != CALL_ID_BYTES:
            raise UsageError(f"a call id must be {CALL_ID_BYTES} bytes")
        if len(self.group_id) > 64:
            raise UsageError("a call's group id is at most 64 bytes")
        _check_text("call SDP", self.sdp, MAX_CALL_SDP_BYTES, allow_empty=True)
        if len(self.candidates) > MAX_CALL_CANDIDATES:
            raise UsageError(f"at most {MAX_CALL_CANDIDATES} ICE candidates per signal")
        for c in self.candidates:
            _check_text("ICE candidate", c, MAX_CALL_CANDIDATE_BYTES)


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A body of a kind a newer client sent; ``detail`` says which (for logs)."""

    detail: str


Body = (
    Text
    | Edit
    | Delete
    | Reaction
    | Receipt
    | Typing
    | ContactRequest
    | ContactResponse
    | ProfileUpdate
    | SessionReset
    | GroupKeyShareBody
    | GroupOpBody
    | GroupPin
    | GroupRead
    | GroupEdit
    | GroupDelete
    | GroupReaction
    | SasRequest
    | SasKey
    | SasMac
    | SasCancel
    | CallSignal
    | Attachments
    | MomentKey
    | MomentDelete
    | MomentAct
    | MomentRelay
    | TransferCard
    | PayRequest
    | WalletAddress
    | TransferAck
    | RedEnvelopeCard
    | RedEnvelopeOpened
    | AppMessage
    | OwnSync
    | Unsupported
)


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One app-level message: header plus one body."""

    message_id: bytes
    lamport: int
    sent_at_ms: int
    body: Body
    version: int = VERSION

    def __post_init__(self) -> None:
        if self.version != VERSION:
            raise UsageError(f"only chat message version {VERSION} can be built")
        _check_id("message_id", self.message_id)
        if not 0 <= self.lamport <= MAX_LAMPORT:
            raise UsageError(f"lamport must be 0..2^63-1, got {self.lamport}")
        if not 0 <= self.sent_at_ms <= _I64_MAX:
            raise UsageError(f"sent_at_ms must be 0..2^63-1, got {self.sent_at_ms}")

    def __repr__(self) -> str:
        return (
            f"ChatMessage(id={_short(self.message_id)}, lamport={self.lamport}, "
            f"sent_at_ms={self.sent_at_ms}, body={self.body!r})"
        )


def new_message_id() -> bytes:
    """Return 16 random bytes for a new message."""
    return os.urandom(MESSAGE_ID_BYTES)


def new_message(
    body: Body, *, lamport: int, sent_at_ms: int, message_id: bytes | None = None
) -> ChatMessage:
    """Build a message with a fresh random id (unless one is given)."""
    if message_id is None:
        message_id = new_message_id()
    return ChatMessage(message_id, lamport, sent_at_ms, body)


def is_reliable(body: Body) -> bool:
    """Whether a body goes through the outbox and is acknowledged with a DELIVERED receipt.

    Receipts and typing indicators are not (acknowledging acknowledgements
    would never end; typing is ephemeral). :class:`Unsupported` bodies are
    acknowledged: they were delivered, only not understood.
    """
    return not isinstance(body, Receipt | Typing | CallSignal)


# --- encoding ---------------------------------------------------------------


def encode(msg: ChatMessage) -> bytes:
    """Serialise ``msg``; :class:`UsageError` if it is Unsupported or too large."""
    pb = chat_pb2.ChatMessage(
        version=msg.version,
        message_id=msg.message_id,
        lamport=msg.lamport,
        sent_at_ms=msg.sent_at_ms,
    )
    _encode_body(pb, msg.body)
    data = pb.SerializeToString()
    if len(data) > MAX_ENCODED_BYTES:
        raise UsageError(f"chat message is {len(data)} bytes; the limit is {MAX_ENCODED_BYTES}")
    return data


def _encode_body(pb: chat_pb2.ChatMessage, body: Body) -> None:
    match body:
        case Text(text, reply_to, mentions, mention_all, group_reply_to):
            pb.text.text = text
            if reply_to is not None:
                pb.text.reply_to = reply_to
            if group_reply_to is not None:
                pb.text.group_reply_to = group_reply_to
            pb.text.mentions.extend(mentions)
            pb.text.mention_all = mention_all
        case Edit(target, text):
            pb.edit.target, pb.edit.text = target, text
        case Delete(target):
            pb.delete.target = target
        case Reaction(target, emoji, remove):
            pb.reaction.target, pb.reaction.emoji, pb.reaction.remove = target, emoji, remove
        case Receipt(message_ids, kind):
            pb.receipt.message_ids.extend(message_ids)
            pb.receipt.kind = kind.value
        case Typing(typing):
            pb.typing.typing = typing
        case ContactRequest(intro, proof, card, secret):
            req = pb.contact_request
            req.intro, req.sender_card, req.conversation_secret = intro, card, secret
            req.pow_nonce, req.pow_timestamp_ms = proof.nonce, proof.timestamp_ms
        case ContactResponse(decision):
            pb.contact_response.decision = decision.value
        case ProfileUpdate(name, avatar, status, region, cover):
            pu = pb.profile_update
            pu.name, pu.avatar, pu.status, pu.region, pu.cover = name, avatar, status, region, cover
        case SessionReset():
            pb.session_reset.SetInParent()
        case GroupKeyShareBody(payload):
            pb.group_key_share.payload = payload
        case GroupOpBody(ops, cards):
            pb.group_ops.ops.extend(ops)
            pb.group_ops.cards.extend(cards)
        case GroupPin(target, pinned):
            pb.group_pin.target, pb.group_pin.pinned = target, pinned
        case GroupRead(lamport):
            pb.group_read.lamport = lamport
        case GroupEdit(target, text):
            pb.group_edit.target, pb.group_edit.text = target, text
        case GroupDelete(target):
            pb.group_delete.target = target
        case GroupReaction(target, emoji, remove):
            g = pb.group_reaction
            g.target, g.emoji, g.remove = target, emoji, remove
        case SasRequest(flow_id, commitment):
            pb.sas_request.flow_id, pb.sas_request.commitment = flow_id, commitment
        case SasKey(flow_id, key):
            pb.sas_key.flow_id, pb.sas_key.key = flow_id, key
        case SasMac(flow_id, mac):
            pb.sas_mac.flow_id, pb.sas_mac.mac = flow_id, mac
        case SasCancel(flow_id, reason):
            pb.sas_cancel.flow_id, pb.sas_cancel.reason = flow_id, reason.value
        case CallSignal(call_id, kind, sdp, candidates, video):
            c = pb.call_signal
            c.call_id, c.kind, c.sdp, c.video = call_id, kind.value, sdp, video
            c.candidates.extend(candidates)
            c.group_id = body.group_id
        case Attachments():
            pb.attachments.CopyFrom(body.to_proto())
        case MomentKey() | MomentDelete() | MomentAct() | MomentRelay():
            pb.moment.CopyFrom(moment.body_to_proto(body))
        case TransferCard() | PayRequest() | WalletAddress() | TransferAck():
            pb.payment.CopyFrom(payment.body_to_proto(body))
        case RedEnvelopeCard() | RedEnvelopeOpened():
            pb.red_envelope.CopyFrom(redenvelope.body_to_proto(body))
        case AppMessage():
            pb.app_message.CopyFrom(miniapp.body_to_proto(body))
        case OwnSync():
            pb.own_sync.CopyFrom(ownsync.body_to_proto(body))
        case Unsupported():
            raise UsageError("an Unsupported body cannot be sent")


# --- decoding ---------------------------------------------------------------


def decode(data: bytes) -> ChatMessage:
    """Parse untrusted bytes into a :class:`ChatMessage`.

    Raises :class:`DecodeError` (or its subclass :class:`UnsupportedVersion`)
    with a message naming what is wrong; never anything else. (A failed check
    while building from peer bytes is reported as a DecodeError by plain
    ``try`` blocks: free when nothing fails, unlike a context manager, on the
    path of every message a catch-up reads.)
    """
    if len(data) > MAX_ENCODED_BYTES:
        raise DecodeError(f"chat message is {len(data)} bytes; the limit is {MAX_ENCODED_BYTES}")
    pb = chat_pb2.ChatMessage()
    try:
        pb.ParseFromString(data)
    except ProtobufDecodeError:
        raise DecodeError("chat message is not valid protobuf") from None
    if pb.version != VERSION:
        if pb.version == 0:
            raise DecodeError("chat message has no version")
        raise UnsupportedVersion(pb.version)
    kind = pb.WhichOneof("body")
    try:
        body = _decode_body(pb, kind)
    except UsageError as exc:
        raise DecodeError(f"chat message {kind or 'body'}: {exc}") from None
    try:
        return ChatMessage(pb.message_id, pb.lamport, pb.sent_at_ms, body)
    except UsageError as exc:
        raise DecodeError(f"chat message: {exc}") from None


def _decode_body(pb: chat_pb2.ChatMessage, kind: str | None) -> Body:
    """The body named by ``kind`` (``pb``'s oneof); a failed check raises UsageError."""
    match kind:
        case "text":
            t = pb.text
            if len(t.mentions) > MAX_MENTIONS:
                raise DecodeError(f"chat message text mentions more than {MAX_MENTIONS}")
            reply = t.reply_to if t.HasField("reply_to") else None
            group_reply = t.group_reply_to if t.HasField("group_reply_to") else None
            return Text(t.text, reply, tuple(t.mentions), t.mention_all, group_reply)
        case "edit":
            return Edit(pb.edit.target, pb.edit.text)
        case "delete":
            return Delete(pb.delete.target)
        case "reaction":
            r = pb.reaction
            return Reaction(r.target, r.emoji, r.remove)
        case "receipt":
            return _decode_receipt(pb.receipt)
        case "typing":
            return Typing(pb.typing.typing)
        case "contact_request":
            return _decode_contact_request(pb.contact_request)
        case "contact_response":
            return _decode_contact_response(pb.contact_response)
        case "profile_update":
            pu = pb.profile_update
            return ProfileUpdate(pu.name, pu.avatar, pu.status, pu.region, pu.cover)
        case "session_reset":
            return SessionReset()
        case "group_key_share":
            return GroupKeyShareBody(pb.group_key_share.payload)
        case "group_ops":
            return _decode_group_ops(pb.group_ops)
        case "group_pin":
            return GroupPin(pb.group_pin.target, pb.group_pin.pinned)
        case "group_read":
            return GroupRead(pb.group_read.lamport)
        case "group_edit":
            return GroupEdit(pb.group_edit.target, pb.group_edit.text)
        case "group_delete":
            return GroupDelete(pb.group_delete.target)
        case "group_reaction":
            g = pb.group_reaction
            return GroupReaction(g.target, g.emoji, g.remove)
        case "sas_request":
            return SasRequest(pb.sas_request.flow_id, pb.sas_request.commitment)
        case "sas_key":
            return SasKey(pb.sas_key.flow_id, pb.sas_key.key)
        case "sas_mac":
            return SasMac(pb.sas_mac.flow_id, pb.sas_mac.mac)
        case "sas_cancel":
            return _decode_sas_cancel(pb.sas_cancel)
        case "call_signal":
            return _decode_call_signal(pb.call_signal)
        case "attachments":
            return Attachments.from_proto(pb.attachments)
        case "moment":
            return moment.decode_body(pb.moment)
        case "payment":
            if pb.payment.WhichOneof("kind") is None:  # a newer client's payment kind
                return Unsupported("payment body of an unknown kind")
            return payment.decode_body(pb.payment)
        case "red_envelope":
            if pb.red_envelope.WhichOneof("kind") is None:  # a newer client's kind
                return Unsupported("red-envelope body of an unknown kind")
            return redenvelope.decode_body(pb.red_envelope)
        case "app_message":
            return miniapp.decode_body(pb.app_message)
        case "own_sync":
            return ownsync.decode_body(pb.own_sync)
        case None:
            return _unknown_body(pb)
        case _:  # a field in chat_pb2 this module forgot: a bug, not the peer's fault
            raise AssertionError(f"unhandled chat body {kind}")


def _unknown_body(pb: chat_pb2.ChatMessage) -> Unsupported:
    unknown = UnknownFieldSet(pb)
    numbers: set[int] = {unknown[i].field_number for i in range(len(unknown))}
    numbers = {n for n in numbers if n >= _FIRST_BODY_FIELD}
    if not numbers:
        raise DecodeError("chat message has no body")
    return Unsupported(f"body field {max(numbers)}")


def _decode_receipt(r: chat_pb2.Receipt) -> Receipt | Unsupported:
    if r.kind == chat_pb2.Receipt.KIND_UNSPECIFIED:
        raise DecodeError("chat message receipt has no kind")
    if r.kind not in {k.value for k in ReceiptKind}:
        return Unsupported(f"receipt kind {r.kind}")
    if len(r.message_ids) > MAX_RECEIPT_IDS:
        raise DecodeError(f"chat message receipt has more than {MAX_RECEIPT_IDS} ids")
    return Receipt(tuple(r.message_ids), ReceiptKind(r.kind))


def _decode_group_ops(g: chat_pb2.GroupOpBody) -> GroupOpBody:
    if len(g.ops) > MAX_GROUP_OPS or len(g.cards) > MAX_GROUP_CARDS:
        raise DecodeError("group op body has too many ops or cards")
    return GroupOpBody(tuple(g.ops), tuple(g.cards))


def _decode_contact_request(r: chat_pb2.ContactRequest) -> ContactRequest:
    if len(r.pow_nonce) != NONCE_BYTES:
        raise DecodeError(f"contact request proof-of-work nonce must be {NONCE_BYTES} bytes")
    proof = ProofOfWork(r.pow_timestamp_ms, r.pow_nonce)
    return ContactRequest(r.intro, proof, r.sender_card, r.conversation_secret)


def _decode_contact_response(r: chat_pb2.ContactResponse) -> ContactResponse | Unsupported:
    if r.decision == chat_pb2.ContactResponse.DECISION_UNSPECIFIED:
        raise DecodeError("contact response has no decision")
    if r.decision not in {d.value for d in Decision}:
        return Unsupported(f"contact response decision {r.decision}")
    return ContactResponse(Decision(r.decision))


def _decode_sas_cancel(c: chat_pb2.SasCancel) -> SasCancel:
    if c.reason == chat_pb2.SasCancel.REASON_UNSPECIFIED:
        raise DecodeError("SAS cancel has no reason")
    # A reason added by a newer client still ends the flow: it reads as UNEXPECTED.
    known = {r.value for r in SasCancelReason}
    reason = SasCancelReason(c.reason) if c.reason in known else SasCancelReason.UNEXPECTED
    return SasCancel(c.flow_id, reason)


def _decode_call_signal(c: chat_pb2.CallSignal) -> CallSignal | Unsupported:
    if c.kind == chat_pb2.CallSignal.KIND_UNSPECIFIED:
        raise DecodeError("call signal has no kind")
    if c.kind not in {k.value for k in CallSignalKind}:
        return Unsupported(f"call signal kind {c.kind}")
    if len(c.candidates) > MAX_CALL_CANDIDATES:
        raise DecodeError(f"call signal has more than {MAX_CALL_CANDIDATES} candidates")
    if len(c.group_id) > 64:
        raise DecodeError("call signal's group id is longer than 64 bytes")
    kind = CallSignalKind(c.kind)
    return CallSignal(c.call_id, kind, c.sdp, tuple(c.candidates), c.video, c.group_id)
