"""Group operations: signed membership changes, their invite tokens, and the codec.

Theory of operation
-------------------
A group's membership is a log of :class:`GroupOp` values forming a DAG: each
op names the ops its author had seen (``parents``, the author's DAG heads),
carries a Lamport clock larger than its parents', and one *body*
(:class:`Create`, :class:`Invite`, :class:`Join`, ...). :mod:`boxless.groups.membership`
folds the DAG into a state; this module only makes, checks and encodes ops.

Signing. Protobuf bytes are not canonical, so they are never signed (the same
rule as :mod:`boxless.identity.keys`). An op is signed over
:func:`op_signing_bytes`, a fixed layout any implementation can rebuild::

    "boxless group op v1\\0" || u32 version || lp(group_id, or empty for Create)
    || lp(author) || u64 lamport || u32 n || lp(parent)*n || i64 created_at_ms
    || u8 kind (the body's protobuf field number) || body fields

where ``lp(x)`` is a u32 big-endian length then ``x``, strings are UTF-8,
booleans one byte, and body fields come in their ``.proto`` order (a Join's
body is its token's signing bytes then ``lp(token signature)``). The
``op_id`` is SHA-256 of those bytes, so an id names exactly one op: dedup by
id is safe, parents cannot be swapped, and the DAG cannot have a cycle. The
Create op's id *is* the group id (its signing bytes leave the group id
empty; a random nonce makes every group distinct), so a group has exactly one
genesis and nobody can forge another.

Values check their fields when built, so an invalid one cannot exist: a local
mistake raises :class:`~boxless.errors.UsageError`, and :func:`decode_op`
turns the same failures on a peer's bytes into
:class:`~boxless.errors.DecodeError`. :func:`decode_op` checks shape and the
op id; :func:`verify_op` checks the author's (and a Join token's issuer's)
signature and raises :class:`InvalidOpSignature`.

Size: :data:`MAX_OP_BYTES` (63 KiB) keeps an op inside one Waku message once
encrypted; avatars are capped at :data:`MAX_AVATAR_BYTES` (1.5 KiB: members also
pass ops to each other directly, where ``chat.envelope.MAX_GROUP_OP_BYTES``
allows 2,048 bytes per op; the web UI shrinks a picture to a ~1.4 KB JPEG;
larger images belong in attachments, with the op carrying a small thumbnail).
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.errors import DecodeError, UsageError, ValidationError
from boxless.identity.keys import Identity, verify_ed25519
from boxless.wire import group_pb2

VERSION: Final = 1
KEY_BYTES: Final = 32
OP_ID_BYTES: Final = 32
SIGNATURE_BYTES: Final = 64
NONCE_BYTES: Final = 16
TOKEN_ID_BYTES: Final = 16
MAX_PARENTS: Final = 32
MAX_TOKEN_HEADS: Final = 16
MAX_NAME_CHARS: Final = 100
MAX_DESCRIPTION_CHARS: Final = 2000
MAX_AVATAR_BYTES: Final = 1536  # + ~215 bytes of op and 8+ parents < 2,048 (see above)
MAX_OP_BYTES: Final = 63 * 1024
MAX_U63: Final = 2**63 - 1

_OP_TAG = b"boxless group op v1\x00"
_TOKEN_TAG = b"boxless group invite token v1\x00"
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


class InvalidOpSignature(ValidationError):
    """A group op (or the invite token in a Join) is not signed by who it names."""


# ------------------------------------------------------------------ checks


def _check_key(name: str, value: bytes) -> None:
    if len(value) != KEY_BYTES:
        raise UsageError(f"{name} must be a {KEY_BYTES}-byte identity key, not {len(value)} bytes")


def _check_text(name: str, value: str, limit: int, *, empty_ok: bool, multiline: bool) -> None:
    if not empty_ok and not value.strip():
        raise UsageError(f"the {name} is empty")
    if len(value) > limit:
        raise UsageError(f"the {name} has {len(value)} characters; the limit is {limit}")
    allowed = "\n" if multiline else ""
    if any(
        (unicodedata.category(ch) == "Cc" and ch not in allowed) or ch in _BIDI_CONTROLS
        for ch in value
    ):
        raise UsageError(f"the {name} contains control characters")
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise UsageError(f"the {name} is not valid Unicode")


def validate_group_name(name: str) -> None:
    """Raise UsageError unless ``name`` is a usable group name (1..100 characters, no controls)."""
    _check_text("group name", name, MAX_NAME_CHARS, empty_ok=False, multiline=False)


def _check_avatar(avatar: bytes) -> None:
    if len(avatar) > MAX_AVATAR_BYTES:
        raise UsageError(
            f"the group picture is {len(avatar):,} bytes; the limit is {MAX_AVATAR_BYTES:,}: "
            "shrink it to about 96x96 px (the web UI does it for you)"
        )


def _check_ids(name: str, ids: tuple[bytes, ...], limit: int) -> None:
    if len(ids) > limit:
        raise UsageError(f"{name} has {len(ids)} op ids; the limit is {limit}")
    if any(len(i) != OP_ID_BYTES for i in ids):
        raise UsageError(f"{name} must be {OP_ID_BYTES}-byte op ids")
    if list(ids) != sorted(set(ids)):
        raise UsageError(f"{name} must be sorted and without duplicates")


# --------------------------------------------------------------- encoding


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def _u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


def _lp(value: bytes) -> bytes:
    return _u32(len(value)) + value


def _lps(value: str) -> bytes:
    return _lp(value.encode("utf-8"))


def _ids(ids: tuple[bytes, ...]) -> bytes:
    return _u32(len(ids)) + b"".join(_lp(i) for i in ids)


# ------------------------------------------------------------ invite token


@dataclass(frozen=True, slots=True)
class InviteToken:
    """An admin's signed permission to join a group, until ``expires_at_ms``.

    ``heads`` and ``lamport`` are the issuer's view of the log when issuing: a
    joiner, who cannot read the log yet, uses them as its Join op's parents, so
    the Join is judged against a state in which the issuer was an admin.
    ``invitee`` (optional) restricts the token to one identity.
    """

    group_id: bytes
    issuer: bytes
    token_id: bytes
    expires_at_ms: int
    invitee: bytes | None
    heads: tuple[bytes, ...]
    lamport: int
    signature: bytes

    def __post_init__(self) -> None:
        if len(self.group_id) != OP_ID_BYTES:
            raise UsageError(f"group_id must be {OP_ID_BYTES} bytes")
        _check_key("issuer", self.issuer)
        if self.invitee is not None:
            _check_key("invitee", self.invitee)
        if len(self.token_id) != TOKEN_ID_BYTES:
            raise UsageError(f"token_id must be {TOKEN_ID_BYTES} bytes")
        if not 0 < self.expires_at_ms <= MAX_U63:
            raise UsageError("expires_at_ms is out of range")
        if not 0 <= self.lamport < MAX_U63:
            raise UsageError("lamport is out of range")
        if not self.heads:
            raise UsageError("an invite token needs the issuer's heads")
        _check_ids("heads", self.heads, MAX_TOKEN_HEADS)
        if len(self.signature) != SIGNATURE_BYTES:
            raise UsageError(f"signature must be {SIGNATURE_BYTES} bytes")

    @staticmethod
    def signing_bytes(
        group_id: bytes,
        issuer: bytes,
        token_id: bytes,
        expires_at_ms: int,
        invitee: bytes | None,
        heads: tuple[bytes, ...],
        lamport: int,
    ) -> bytes:
        return (
            _TOKEN_TAG
            + _u32(VERSION)
            + _lp(group_id)
            + _lp(issuer)
            + _lp(token_id)
            + _u64(expires_at_ms)
            + _lp(invitee or b"")
            + _ids(heads)
            + _u64(lamport)
        )

    def signed_bytes(self) -> bytes:
        return self.signing_bytes(
            self.group_id,
            self.issuer,
            self.token_id,
            self.expires_at_ms,
            self.invitee,
            self.heads,
            self.lamport,
        )

    def is_signed(self) -> bool:
        return verify_ed25519(self.issuer, self.signed_bytes(), self.signature)

    def to_proto(self) -> group_pb2.InviteToken:
        return group_pb2.InviteToken(
            version=VERSION,
            group_id=self.group_id,
            issuer=self.issuer,
            token_id=self.token_id,
            expires_at_ms=self.expires_at_ms,
            invitee=self.invitee or b"",
            heads=list(self.heads),
            lamport=self.lamport,
            signature=self.signature,
        )

    @classmethod
    def from_proto(cls, pb: group_pb2.InviteToken) -> InviteToken:
        """Build from a decoded message; raises UsageError on bad shape (not signature)."""
        if pb.version != VERSION:
            raise UsageError(f"invite token version {pb.version} is unsupported")
        return cls(
            group_id=pb.group_id,
            issuer=pb.issuer,
            token_id=pb.token_id,
            expires_at_ms=pb.expires_at_ms,
            invitee=pb.invitee or None,
            heads=tuple(pb.heads),
            lamport=pb.lamport,
            signature=pb.signature,
        )

    def __repr__(self) -> str:
        return f"InviteToken(id={self.token_id.hex()[:8]}, expires_at_ms={self.expires_at_ms})"


def issue_token(
    identity: Identity,
    group_id: bytes,
    heads: Iterable[bytes],
    lamport: int,
    expires_at_ms: int,
    invitee: bytes | None = None,
    token_id: bytes | None = None,
) -> InviteToken:
    """An invite token signed by ``identity`` (who must be an admin for it to work)."""
    head_ids = tuple(sorted(set(heads)))
    tid = secrets.token_bytes(TOKEN_ID_BYTES) if token_id is None else token_id
    message = InviteToken.signing_bytes(
        group_id, identity.public_key, tid, expires_at_ms, invitee, head_ids, lamport
    )
    return InviteToken(
        group_id=group_id,
        issuer=identity.public_key,
        token_id=tid,
        expires_at_ms=expires_at_ms,
        invitee=invitee,
        heads=head_ids,
        lamport=lamport,
        signature=identity.sign(message),
    )


# ------------------------------------------------------------------ bodies


@dataclass(frozen=True, slots=True)
class Create:
    """The genesis op: the group's first name, description and avatar."""

    name: str
    description: str = ""
    avatar: bytes = b""
    nonce: bytes = b""

    def __post_init__(self) -> None:
        validate_group_name(self.name)
        _check_text(
            "description", self.description, MAX_DESCRIPTION_CHARS, empty_ok=True, multiline=True
        )
        _check_avatar(self.avatar)
        if len(self.nonce) != NONCE_BYTES:
            raise UsageError(f"the Create nonce must be {NONCE_BYTES} random bytes")

    def __repr__(self) -> str:
        return f"Create(name={len(self.name)} chars, avatar={len(self.avatar)} B)"


@dataclass(frozen=True, slots=True)
class Invite:
    """An admin adds ``member`` (role member). ``name`` is the inviter's label for them."""

    member: bytes
    name: str = ""

    def __post_init__(self) -> None:
        _check_key("member", self.member)
        _check_text("member name", self.name, MAX_NAME_CHARS, empty_ok=True, multiline=False)


@dataclass(frozen=True, slots=True)
class Join:
    """The author joins with an admin's invite token."""

    token: InviteToken


@dataclass(frozen=True, slots=True)
class Leave:
    """The author leaves the group."""


@dataclass(frozen=True, slots=True)
class Remove:
    """An admin removes ``member`` (never the creator)."""

    member: bytes

    def __post_init__(self) -> None:
        _check_key("member", self.member)


@dataclass(frozen=True, slots=True)
class Promote:
    """An admin makes ``member`` an admin."""

    member: bytes

    def __post_init__(self) -> None:
        _check_key("member", self.member)


@dataclass(frozen=True, slots=True)
class Demote:
    """An admin makes admin ``member`` a plain member (only the creator demotes the creator)."""

    member: bytes

    def __post_init__(self) -> None:
        _check_key("member", self.member)


@dataclass(frozen=True, slots=True)
class Rename:
    name: str

    def __post_init__(self) -> None:
        validate_group_name(self.name)

    def __repr__(self) -> str:
        return f"Rename({len(self.name)} chars)"


@dataclass(frozen=True, slots=True)
class SetAvatar:
    avatar: bytes

    def __post_init__(self) -> None:
        _check_avatar(self.avatar)

    def __repr__(self) -> str:
        return f"SetAvatar({len(self.avatar)} B)"


@dataclass(frozen=True, slots=True)
class SetDescription:
    description: str

    def __post_init__(self) -> None:
        _check_text(
            "description", self.description, MAX_DESCRIPTION_CHARS, empty_ok=True, multiline=True
        )

    def __repr__(self) -> str:
        return f"SetDescription({len(self.description)} chars)"


@dataclass(frozen=True, slots=True)
class SetAnnouncementsOnly:
    """Only admins may post messages while ``on`` (enforced by the chat layer)."""

    on: bool


@dataclass(frozen=True, slots=True)
class SetHistorySharing:
    """Whether new members receive message history from before their join."""

    on: bool


Body = (
    Create
    | Invite
    | Join
    | Leave
    | Remove
    | Promote
    | Demote
    | Rename
    | SetAvatar
    | SetDescription
    | SetAnnouncementsOnly
    | SetHistorySharing
)

# The body's kind byte in the signing bytes is its field number in group.proto.
_KIND: Final[dict[type[Body], int]] = {
    Create: 10,
    Invite: 11,
    Join: 12,
    Leave: 13,
    Remove: 14,
    Promote: 15,
    Demote: 16,
    Rename: 17,
    SetAvatar: 18,
    SetDescription: 19,
    SetAnnouncementsOnly: 20,
    SetHistorySharing: 21,
}


def _body_bytes(body: Body) -> bytes:
    match body:
        case Create():
            return _lps(body.name) + _lps(body.description) + _lp(body.avatar) + _lp(body.nonce)
        case Invite():
            return _lp(body.member) + _lps(body.name)
        case Join():
            return body.token.signed_bytes() + _lp(body.token.signature)
        case Leave():
            return b""
        case Remove() | Promote() | Demote():
            return _lp(body.member)
        case Rename():
            return _lps(body.name)
        case SetAvatar():
            return _lp(body.avatar)
        case SetDescription():
            return _lps(body.description)
        case SetAnnouncementsOnly() | SetHistorySharing():
            return b"\x01" if body.on else b"\x00"


def op_signing_bytes(
    group_id: bytes,
    author: bytes,
    lamport: int,
    parents: tuple[bytes, ...],
    created_at_ms: int,
    body: Body,
) -> bytes:
    """The bytes an op's author signs; SHA-256 of them is the op id.

    ``group_id`` is ignored for a Create (it would be its own hash).
    """
    gid = b"" if isinstance(body, Create) else group_id
    return (
        _OP_TAG
        + _u32(VERSION)
        + _lp(gid)
        + _lp(author)
        + _u64(lamport)
        + _ids(parents)
        + created_at_ms.to_bytes(8, "big", signed=True)
        + bytes([_KIND[type(body)]])
        + _body_bytes(body)
    )


# ---------------------------------------------------------------------- op


@dataclass(frozen=True, slots=True)
class GroupOp:
    """One signed membership change. ``op_id`` must be the hash of its signing bytes."""

    group_id: bytes
    op_id: bytes
    author: bytes
    lamport: int
    parents: tuple[bytes, ...]
    created_at_ms: int
    body: Body
    signature: bytes

    def __post_init__(self) -> None:
        _check_key("author", self.author)
        if not 0 <= self.lamport < MAX_U63:
            raise UsageError(f"lamport must be 0..2^63-2, got {self.lamport}")
        if not -MAX_U63 <= self.created_at_ms <= MAX_U63:
            raise UsageError("created_at_ms is out of range")
        _check_ids("parents", self.parents, MAX_PARENTS)
        if isinstance(self.body, Create):
            if self.parents:
                raise UsageError("a Create op has no parents")
        elif not self.parents:
            raise UsageError("every op but Create has parents")
        if len(self.signature) != SIGNATURE_BYTES:
            raise UsageError(f"signature must be {SIGNATURE_BYTES} bytes")
        expected = hashlib.sha256(self.signed_bytes()).digest()
        if self.op_id != expected:
            raise UsageError("op_id is not the hash of the op's contents")
        if isinstance(self.body, Create) and self.group_id != self.op_id:
            raise UsageError("a Create op's group_id must be its op_id")
        if len(self.group_id) != OP_ID_BYTES:
            raise UsageError(f"group_id must be {OP_ID_BYTES} bytes")

    def signed_bytes(self) -> bytes:
        return op_signing_bytes(
            self.group_id, self.author, self.lamport, self.parents, self.created_at_ms, self.body
        )

    def __repr__(self) -> str:
        return (
            f"GroupOp({type(self.body).__name__}, id={self.op_id.hex()[:8]}, "
            f"author={self.author.hex()[:8]}, lamport={self.lamport})"
        )


def sign_op(
    identity: Identity,
    group_id: bytes,
    body: Body,
    parents: Iterable[bytes],
    lamport: int,
    created_at_ms: int,
) -> GroupOp:
    """A new op by ``identity``. For a :class:`Create`, ``group_id`` is ignored
    (pass ``b""``): the op's id becomes the group id."""
    parent_ids = tuple(sorted(set(parents)))
    _check_ids("parents", parent_ids, MAX_PARENTS)
    message = op_signing_bytes(
        group_id, identity.public_key, lamport, parent_ids, created_at_ms, body
    )
    op_id = hashlib.sha256(message).digest()
    return GroupOp(
        group_id=op_id if isinstance(body, Create) else group_id,
        op_id=op_id,
        author=identity.public_key,
        lamport=lamport,
        parents=parent_ids,
        created_at_ms=created_at_ms,
        body=body,
        signature=identity.sign(message),
    )


def create_op(
    identity: Identity,
    name: str,
    created_at_ms: int,
    description: str = "",
    avatar: bytes = b"",
) -> GroupOp:
    """The genesis op of a new group (its ``op_id`` is the new group's id)."""
    body = Create(name, description, avatar, secrets.token_bytes(NONCE_BYTES))
    return sign_op(identity, b"", body, (), 1, created_at_ms)


def verify_op(op: GroupOp) -> None:
    """Raise :class:`InvalidOpSignature` unless the author (and a Join token's issuer) signed."""
    if not verify_ed25519(op.author, op.signed_bytes(), op.signature):
        raise InvalidOpSignature(f"{op!r} is not signed by its author")
    if isinstance(op.body, Join) and not op.body.token.is_signed():
        raise InvalidOpSignature(f"{op!r} carries an invite token its issuer did not sign")


# ------------------------------------------------------------------- codec


def _body_to_proto(body: Body, pb: group_pb2.GroupOp) -> None:
    match body:
        case Create():
            pb.create.name = body.name
            pb.create.description = body.description
            pb.create.avatar = body.avatar
            pb.create.nonce = body.nonce
        case Invite():
            pb.invite.member = body.member
            pb.invite.name = body.name
        case Join():
            pb.join.token.CopyFrom(body.token.to_proto())
        case Leave():
            pb.leave.SetInParent()
        case Remove():
            pb.remove.member = body.member
        case Promote():
            pb.promote.member = body.member
        case Demote():
            pb.demote.member = body.member
        case Rename():
            pb.rename.name = body.name
        case SetAvatar():
            pb.set_avatar.avatar = body.avatar
        case SetDescription():
            pb.set_description.description = body.description
        case SetAnnouncementsOnly():
            pb.set_announcements_only.on = body.on
        case SetHistorySharing():
            pb.set_history_sharing.on = body.on


def encode_op(op: GroupOp) -> bytes:
    """The op as a ``GroupOp`` protobuf."""
    pb = group_pb2.GroupOp(
        version=VERSION,
        group_id=op.group_id,
        op_id=op.op_id,
        author=op.author,
        lamport=op.lamport,
        parents=list(op.parents),
        created_at_ms=op.created_at_ms,
        signature=op.signature,
    )
    _body_to_proto(op.body, pb)
    return pb.SerializeToString()


def _body_from_proto(pb: group_pb2.GroupOp) -> Body:
    kind = pb.WhichOneof("body")
    match kind:
        case "create":
            c = pb.create
            return Create(c.name, c.description, c.avatar, c.nonce)
        case "invite":
            return Invite(pb.invite.member, pb.invite.name)
        case "join":
            if not pb.join.HasField("token"):
                raise UsageError("the Join has no invite token")
            return Join(InviteToken.from_proto(pb.join.token))
        case "leave":
            return Leave()
        case "remove":
            return Remove(pb.remove.member)
        case "promote":
            return Promote(pb.promote.member)
        case "demote":
            return Demote(pb.demote.member)
        case "rename":
            return Rename(pb.rename.name)
        case "set_avatar":
            return SetAvatar(pb.set_avatar.avatar)
        case "set_description":
            return SetDescription(pb.set_description.description)
        case "set_announcements_only":
            return SetAnnouncementsOnly(pb.set_announcements_only.on)
        case "set_history_sharing":
            return SetHistorySharing(pb.set_history_sharing.on)
        case None:
            raise UsageError("the op has no body (or one this version does not know)")
        case _:
            raise AssertionError(f"unhandled group op body {kind}")


@contextmanager
def _peer_input(what: str) -> Iterator[None]:
    """Turn the UsageError of a value check on a peer's bytes into a DecodeError."""
    try:
        yield
    except UsageError as exc:
        raise DecodeError(f"{what}: {exc}") from None


def decode_op(data: bytes) -> GroupOp:
    """Decode a peer's ``GroupOp`` bytes; checks shape and op id, not the signature.

    Raises :class:`~boxless.errors.DecodeError` (only) for anything malformed.
    """
    if len(data) > MAX_OP_BYTES:
        raise DecodeError(f"group op is {len(data)} bytes; the limit is {MAX_OP_BYTES}")
    pb = group_pb2.GroupOp()
    try:
        pb.ParseFromString(data)
    except (ProtobufDecodeError, RecursionError):
        raise DecodeError("group op is not valid protobuf") from None
    if pb.version != VERSION:
        raise DecodeError(f"group op version {pb.version} is unsupported")
    with _peer_input("malformed group op"):
        body = _body_from_proto(pb)
        return GroupOp(
            group_id=pb.group_id,
            op_id=pb.op_id,
            author=pb.author,
            lamport=pb.lamport,
            parents=tuple(pb.parents),
            created_at_ms=pb.created_at_ms,
            body=body,
            signature=pb.signature,
        )
