"""A group picture as an attachment: the small reference a group op carries.

Theory of operation
-------------------
A group's picture used to travel inline in its signed ``SetAvatar`` op, which
members also pass to each other directly, so it was capped at 1.5 KiB (a
blurry ~96 px JPEG). Now the picture is an ordinary encrypted attachment
(fresh key, STREAM, a UnixFS DAG pinned on service nodes, fetched by Bitswap)
and the op carries only its descriptor: :data:`MAGIC` followed by one
:class:`~boxless.chat.attachment.AttachmentRef` in its protobuf encoding,
with a tiny thumbnail (shown while the picture loads) and a blurhash.

The op is signed by an admin and the group's membership rules refuse a
non-admin's ``SetAvatar`` (``groups.membership``), so only who may change the
picture can point members at a file. Everything in the reference is still
checked as a peer's bytes: the picture is a JPEG, PNG or WebP ``image`` of at
most :data:`MAX_PICTURE_BYTES` (256 KiB) with at most :data:`MAX_PEERS` peers;
the bytes fetched are checked again against the digests and as an image.

Avatars without :data:`MAGIC` are the old inline pictures and stay valid.
"""

from __future__ import annotations

from typing import Final

from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.chat.attachment import AttachmentKind, AttachmentRef
from boxless.errors import DecodeError, UsageError
from boxless.wire import attachment_pb2

__all__ = [
    "MAGIC",
    "MAX_PEERS",
    "MAX_PICTURE_BYTES",
    "MAX_REF_BYTES",
    "PICTURE_MIMES",
    "decode_avatar_ref",
    "encode_avatar_ref",
    "is_avatar_ref",
]

MAGIC: Final = b"BXAV\x01"
MAX_PICTURE_BYTES: Final = 256 * 1024
# what a group op carries (``groups.ops.MAX_AVATAR_BYTES``; a test keeps them equal:
# chat does not import groups)
MAX_REF_BYTES: Final = 1536
MAX_PEERS: Final = 3  # each multiaddr is ~80 bytes: more would leave no room for a thumbnail
PICTURE_MIMES: Final = frozenset({"image/jpeg", "image/png", "image/webp"})


def _check(ref: AttachmentRef) -> None:
    if ref.kind is not AttachmentKind.IMAGE:
        raise UsageError("a group picture must be an image attachment")
    if ref.mime not in PICTURE_MIMES:
        raise UsageError("a group picture is a JPEG, PNG or WebP image")
    if ref.size > MAX_PICTURE_BYTES:
        raise UsageError(
            f"a group picture is at most {MAX_PICTURE_BYTES // 1024} KiB; "
            f"this one claims {ref.size:,} bytes"
        )
    if len(ref.peers) > MAX_PEERS:
        raise UsageError(f"a group picture names at most {MAX_PEERS} peers")


def is_avatar_ref(avatar: bytes) -> bool:
    """Whether a group's avatar bytes are a reference (else an inline picture or none)."""
    return avatar.startswith(MAGIC)


def encode_avatar_ref(ref: AttachmentRef) -> bytes:
    """The ``SetAvatar`` bytes for ``ref``; raises UsageError if it breaks a rule or
    does not fit an op (:data:`MAX_REF_BYTES`)."""
    _check(ref)
    out = MAGIC + ref.to_proto().SerializeToString()
    if len(out) > MAX_REF_BYTES:
        raise UsageError(
            f"the picture's reference is {len(out)} bytes; a group op holds {MAX_REF_BYTES}:"
            " use a smaller thumbnail"
        )
    return out


def decode_avatar_ref(avatar: bytes) -> AttachmentRef | None:
    """The reference in a group's avatar bytes, or None for an inline picture (or none).

    Raises :class:`~boxless.errors.DecodeError` saying what is wrong with a reference.
    """
    if not is_avatar_ref(avatar):
        return None
    if len(avatar) > MAX_REF_BYTES:
        raise DecodeError(f"a group picture reference is at most {MAX_REF_BYTES} bytes")
    pb = attachment_pb2.Attachment()
    try:
        pb.ParseFromString(avatar[len(MAGIC) :])
    except (ProtobufDecodeError, ValueError) as exc:
        raise DecodeError(f"not a group picture reference: {exc}") from None
    try:
        ref = AttachmentRef.from_proto(pb)
        _check(ref)
    except UsageError as exc:
        raise DecodeError(f"a bad group picture reference: {exc}") from None
    return ref
