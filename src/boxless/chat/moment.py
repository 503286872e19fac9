"""Moments on the wire: key shares, acts, relays, and the encrypted post content.

Theory of operation
-------------------
A post's :class:`MomentContent` is encrypted once under a fresh 32-byte post
key (:func:`seal_content` / :func:`open_content`: ChaCha20-Poly1305, a random
nonce, the post id as associated data) and published as one Waku message on
:func:`content_topic` — a topic derived from the key, so only key holders can
name it. The other values are 1:1 bodies (inside Olm): :class:`MomentKey`
(poster to each audience member), :class:`MomentDelete`, :class:`MomentAct`
(a like, unlike, comment or comment delete, to the poster) and
:class:`MomentRelay` (the poster passing an act on). :func:`contact_tag` is
the blinded contact set's element (docs/moments.md).

Every field comes from a peer: building a value checks it and raises
:class:`~boxless.errors.UsageError`; the envelope turns that into a
:class:`~boxless.errors.DecodeError` for peer bytes.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.chat.attachment import MAX_ALBUM, AttachmentKind, AttachmentRef
from boxless.chat.topics import APPLICATION, ENCODING, TOPIC_VERSION
from boxless.errors import DecodeError, UsageError
from boxless.waku.sharding import ContentTopic
from boxless.wire import moment_pb2

__all__ = [
    "MAX_COMMENT_CHARS",
    "MAX_MENTIONS",
    "MAX_PLACE_CHARS",
    "MAX_TAGS",
    "MAX_TEXT_CHARS",
    "ActKind",
    "MomentAct",
    "MomentBody",
    "MomentContent",
    "MomentDelete",
    "MomentKey",
    "MomentReader",
    "MomentRelay",
    "body_to_proto",
    "contact_tag",
    "content_topic",
    "decode_body",
    "open_content",
    "seal_content",
]

ID_BYTES: Final = 16
KEY_BYTES: Final = 32
HASH_BYTES: Final = 32
TAG_BYTES: Final = 8
MAX_TAGS: Final = 4000
MAX_TEXT_CHARS: Final = 2000
MAX_COMMENT_CHARS: Final = 1000
MAX_PLACE_CHARS: Final = 100
MAX_MENTIONS: Final = 20
MAX_CONTENT_BYTES: Final = 60 * 1024
MAX_BLOB_REF_BYTES: Final = 1536
_I64: Final = (1 << 63) - 1
_TOPIC_INFO: Final = b"boxless moment topic v1"
_NONCE: Final = 12


class ActKind(enum.IntEnum):
    LIKE = 1
    UNLIKE = 2
    COMMENT = 3
    UNCOMMENT = 4


def _check_len(what: str, value: bytes, size: int) -> None:
    if len(value) != size:
        raise UsageError(f"{what} is {size} bytes, not {len(value)}")


def _check_time(what: str, value: int) -> None:
    if not 0 <= value <= _I64:
        raise UsageError(f"{what} must be 0..2^63-1")


def _clean(text: str) -> bool:
    return not any(ord(c) < 32 and c not in "\n\t" for c in text)


@dataclass(frozen=True, slots=True)
class MomentReader:
    """A poster's long-lived keys for one reader (see :mod:`boxless.chat.moment_shares`)."""

    reader_key: bytes
    feed_secret: bytes
    epoch: int

    def __post_init__(self) -> None:
        _check_len("a reader key", self.reader_key, KEY_BYTES)
        _check_len("a feed secret", self.feed_secret, KEY_BYTES)
        if not 0 <= self.epoch < 1 << 32:
            raise UsageError("a feed epoch is 0..2^32-1")


@dataclass(frozen=True, slots=True)
class MomentKey:
    """Poster to an audience member: the post key and where the content is (and, when
    the poster (re)issues it, our reader key for its later posts)."""

    post_id: bytes
    key: bytes
    message_hash: bytes
    posted_at_ms: int
    visible_until_ms: int = 0
    content_blob: bytes = b""
    reader: MomentReader | None = None

    def __post_init__(self) -> None:
        _check_len("a post id", self.post_id, ID_BYTES)
        _check_len("a post key", self.key, KEY_BYTES)
        _check_len("a message hash", self.message_hash, HASH_BYTES)
        _check_time("posted_at_ms", self.posted_at_ms)
        _check_time("visible_until_ms", self.visible_until_ms)
        if len(self.content_blob) > MAX_BLOB_REF_BYTES:
            raise UsageError(f"a content blob descriptor is at most {MAX_BLOB_REF_BYTES} bytes")

    def to_proto(self) -> moment_pb2.MomentKey:
        k = moment_pb2.MomentKey(
            post_id=self.post_id,
            key=self.key,
            message_hash=self.message_hash,
            posted_at_ms=self.posted_at_ms,
            visible_until_ms=self.visible_until_ms,
            content_blob=self.content_blob,
        )
        if self.reader is not None:
            r = self.reader
            k.reader.reader_key, k.reader.feed_secret = r.reader_key, r.feed_secret
            k.reader.epoch = r.epoch
        return k

    @classmethod
    def from_proto(cls, k: moment_pb2.MomentKey) -> MomentKey:
        reader = None
        if k.HasField("reader"):
            reader = MomentReader(k.reader.reader_key, k.reader.feed_secret, k.reader.epoch)
        return cls(
            k.post_id, k.key, k.message_hash, k.posted_at_ms, k.visible_until_ms,
            k.content_blob, reader,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class MomentDelete:
    """Poster to an audience member: the post is deleted."""

    post_id: bytes

    def __post_init__(self) -> None:
        _check_len("a post id", self.post_id, ID_BYTES)


@dataclass(frozen=True, slots=True)
class MomentAct:
    """A like, unlike, comment or comment delete on a post, sent to its poster."""

    post_id: bytes
    act_id: bytes
    kind: ActKind
    text: str = ""
    reply_to: bytes | None = None
    target: bytes | None = None
    contact_tags: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        _check_len("a post id", self.post_id, ID_BYTES)
        _check_len("an act id", self.act_id, ID_BYTES)
        if self.kind == ActKind.COMMENT:
            if not 0 < len(self.text) <= MAX_COMMENT_CHARS or not self.text.strip():
                raise UsageError(f"a comment is 1 to {MAX_COMMENT_CHARS} characters")
            if not _clean(self.text):
                raise UsageError("a comment may not hold control characters")
        elif self.text or self.reply_to is not None:
            raise UsageError("only a comment has text or replies to a comment")
        if self.reply_to is not None:
            _check_len("a reply's comment id", self.reply_to, ID_BYTES)
        if (self.kind == ActKind.UNCOMMENT) != (self.target is not None):
            raise UsageError("a comment delete, and only it, names the comment it deletes")
        if self.target is not None:
            _check_len("a deleted comment's id", self.target, ID_BYTES)
        if len(self.contact_tags) > MAX_TAGS:
            raise UsageError(f"an act carries at most {MAX_TAGS} contact tags")
        for tag in self.contact_tags:
            _check_len("a contact tag", tag, TAG_BYTES)

    def to_proto(self) -> moment_pb2.MomentAct:
        pb = moment_pb2.MomentAct(
            post_id=self.post_id,
            act_id=self.act_id,
            kind=int(self.kind),  # type: ignore[arg-type]
            text=self.text,
            contact_tags=list(self.contact_tags),
        )
        if self.reply_to is not None:
            pb.reply_to = self.reply_to
        if self.target is not None:
            pb.target = self.target
        return pb

    @classmethod
    def from_proto(cls, pb: moment_pb2.MomentAct) -> MomentAct:
        try:
            kind = ActKind(pb.kind)
        except ValueError:
            raise UsageError(f"unknown act kind {pb.kind}") from None
        if len(pb.contact_tags) > MAX_TAGS:
            raise UsageError(f"an act carries at most {MAX_TAGS} contact tags")
        return cls(
            pb.post_id,
            pb.act_id,
            kind,
            pb.text,
            pb.reply_to if pb.HasField("reply_to") else None,
            pb.target if pb.HasField("target") else None,
            tuple(pb.contact_tags),
        )


@dataclass(frozen=True, slots=True)
class MomentRelay:
    """Poster to an audience member: an act by ``author`` (a contact of the member)."""

    author: bytes
    act: MomentAct
    at_ms: int

    def __post_init__(self) -> None:
        _check_len("an identity key", self.author, KEY_BYTES)
        _check_time("at_ms", self.at_ms)
        if self.act.contact_tags:
            raise UsageError("a relayed act carries no contact tags")


MomentBody = MomentKey | MomentDelete | MomentAct | MomentRelay


def body_to_proto(body: MomentBody) -> moment_pb2.MomentBody:
    pb = moment_pb2.MomentBody()
    match body:
        case MomentKey():
            pb.key.CopyFrom(body.to_proto())
        case MomentDelete(post_id):
            pb.delete.post_id = post_id
        case MomentAct():
            pb.act.CopyFrom(body.to_proto())
        case MomentRelay(author, act, at_ms):
            pb.relay.author, pb.relay.at_ms = author, at_ms
            pb.relay.act.CopyFrom(act.to_proto())
    return pb


def decode_body(pb: moment_pb2.MomentBody) -> MomentBody:
    """A peer's moment body, checked. Raises UsageError on any bad field."""
    match pb.WhichOneof("kind"):
        case "key":
            return MomentKey.from_proto(pb.key)
        case "delete":
            return MomentDelete(pb.delete.post_id)
        case "act":
            return MomentAct.from_proto(pb.act)
        case "relay":
            return MomentRelay(pb.relay.author, MomentAct.from_proto(pb.relay.act), pb.relay.at_ms)
        case _:
            raise UsageError("a moment body of no known kind")


@dataclass(frozen=True, slots=True)
class MomentContent:
    """A post: text, up to 9 photos or one video, a place, mentions."""

    post_id: bytes
    poster: bytes
    text: str
    place: str = ""
    mentions: tuple[bytes, ...] = ()
    media: tuple[AttachmentRef, ...] = ()
    posted_at_ms: int = 0

    def __post_init__(self) -> None:
        _check_len("a post id", self.post_id, ID_BYTES)
        _check_len("an identity key", self.poster, KEY_BYTES)
        if len(self.text) > MAX_TEXT_CHARS:
            raise UsageError(f"a post's text is at most {MAX_TEXT_CHARS} characters")
        if not _clean(self.text) or not _clean(self.place) or "\n" in self.place:
            raise UsageError("a post may not hold control characters")
        if len(self.place) > MAX_PLACE_CHARS:
            raise UsageError(f"a place name is at most {MAX_PLACE_CHARS} characters")
        if not self.text.strip() and not self.media:
            raise UsageError("a post needs text or a photo or video")
        if len(self.mentions) > MAX_MENTIONS or len(set(self.mentions)) != len(self.mentions):
            raise UsageError(f"a post mentions at most {MAX_MENTIONS} different contacts")
        for key in self.mentions:
            _check_len("a mentioned identity key", key, KEY_BYTES)
        videos = sum(1 for m in self.media if m.kind == AttachmentKind.VIDEO)
        photos = sum(1 for m in self.media if m.kind == AttachmentKind.IMAGE)
        if videos + photos != len(self.media):
            raise UsageError("a post carries photos or a video, no other files")
        if videos > 1 or (videos and photos) or photos > MAX_ALBUM:
            raise UsageError(f"a post carries up to {MAX_ALBUM} photos or one video")
        _check_time("posted_at_ms", self.posted_at_ms)

    def encode(self) -> bytes:
        pb = moment_pb2.MomentContent(
            post_id=self.post_id,
            poster=self.poster,
            text=self.text,
            place=self.place,
            mentions=list(self.mentions),
            media=[m.to_proto() for m in self.media],
            posted_at_ms=self.posted_at_ms,
        )
        return pb.SerializeToString()

    @classmethod
    def decode(cls, raw: bytes) -> MomentContent:
        """Decode a peer's content bytes; :class:`DecodeError` says what was wrong."""
        if len(raw) > MAX_CONTENT_BYTES:
            raise DecodeError(f"a post is {len(raw)} bytes; the limit is {MAX_CONTENT_BYTES}")
        pb = moment_pb2.MomentContent()
        try:
            pb.ParseFromString(raw)
        except (ProtobufDecodeError, ValueError) as exc:
            raise DecodeError(f"not a post: {exc}") from None
        try:
            if len(pb.media) > MAX_ALBUM or len(pb.mentions) > MAX_MENTIONS:
                raise UsageError("too many photos or mentions")
            return cls(
                pb.post_id,
                pb.poster,
                pb.text,
                pb.place,
                tuple(pb.mentions),
                tuple(AttachmentRef.from_proto(m) for m in pb.media),
                pb.posted_at_ms,
            )
        except UsageError as exc:
            raise DecodeError(f"post: {exc}") from None


def content_topic(key: bytes) -> str:
    """The content topic of a post: derived from its key, so it names nothing."""
    _check_len("a post key", key, KEY_BYTES)
    hkdf = HKDF(algorithm=SHA256(), length=16, salt=None, info=_TOPIC_INFO)
    name = "moment-" + hkdf.derive(key).hex()
    return str(ContentTopic(APPLICATION, TOPIC_VERSION, name, ENCODING))


def seal_content(key: bytes, content: MomentContent) -> bytes:
    """The post encrypted under its key: nonce || ChaCha20-Poly1305(content, aad=post id)."""
    _check_len("a post key", key, KEY_BYTES)
    nonce = os.urandom(_NONCE)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, content.encode(), content.post_id)


def open_content(key: bytes, post_id: bytes, sealed: bytes) -> MomentContent:
    """Open and decode a post; :class:`DecodeError` if it is not this post under this key."""
    if len(sealed) < _NONCE + 16 or len(sealed) > MAX_CONTENT_BYTES + _NONCE + 16:
        raise DecodeError("not a sealed post")
    try:
        raw = ChaCha20Poly1305(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], post_id)
    except InvalidTag:
        raise DecodeError("the post does not open under its key") from None
    content = MomentContent.decode(raw)
    if content.post_id != post_id:
        raise DecodeError("the post names another post id")
    return content


def contact_tag(key: bytes, identity_key: bytes) -> bytes:
    """One element of a blinded contact set: HMAC-SHA256(post key, identity key)[:8]."""
    return hmac.new(key, identity_key, hashlib.sha256).digest()[:TAG_BYTES]
