"""The attachment descriptor a message carries: values, validation and codec.

Theory of operation
-------------------
An :class:`AttachmentRef` says where an encrypted file is (its CID and the
peers that pinned it), how to open it (its key) and how to check it (both
SHA-256 digests and its size), plus what to show before it is fetched (kind,
MIME type, name, dimensions, a thumbnail or a blurhash). An
:class:`Attachments` body holds one file or an album of up to
:data:`MAX_ALBUM` images and videos, with an optional caption.

Every field comes from a peer. Building a value checks it (a bad one raises
:class:`~boxless.errors.UsageError`); :func:`decode_attachments` turns the
same failures into :class:`~boxless.errors.DecodeError`. The file name is
*sanitised*, not refused: path parts, control and bidi characters, leading
dots and reserved device names go, and it is cut to 255 bytes keeping its
extension. The MIME type is the sender's claim: :attr:`AttachmentRef.inline`
is true only for the allowlisted media types a browser may show inline
(never SVG or HTML), everything else is offered as a download.

Size: a message must stay under the envelope's 63 KiB, so one thumbnail is at
most 8 KiB and an album's thumbnails together at most :data:`MAX_ALBUM_THUMBS`.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Final

import multiaddr
from google.protobuf.message import DecodeError as ProtobufDecodeError

from boxless.blobs.cid import Cid
from boxless.errors import DecodeError, UsageError
from boxless.wire import attachment_pb2

__all__ = [
    "INLINE_MIME_TYPES",
    "MAX_ALBUM",
    "MAX_ALBUM_THUMBS",
    "MAX_FILE_BYTES",
    "MAX_THUMBNAIL_BYTES",
    "AttachmentAsk",
    "AttachmentKind",
    "AttachmentRef",
    "AttachmentRepinned",
    "Attachments",
    "decode_attachments",
    "sanitise_name",
]

MAX_FILE_BYTES: Final = 2 * 1024**3
MAX_VIDEO_BYTES: Final = 1024**3
MAX_ALBUM: Final = 9
MAX_THUMBNAIL_BYTES: Final = 8 * 1024
MAX_ALBUM_THUMBS: Final = 36 * 1024
MAX_CAPTION_BYTES: Final = 4096
MAX_NAME_BYTES: Final = 255
MAX_PEERS: Final = 8
MAX_PEER_CHARS: Final = 300
MAX_DIMENSION: Final = 65535
MAX_DURATION_MS: Final = 24 * 3600 * 1000
MAX_WAVEFORM: Final = 100
MAX_BLURHASH: Final = 100
MAX_CID_BYTES: Final = 64
MAX_ENCODED_BYTES: Final = 60 * 1024
GROUP_ID_BYTES: Final = 32
GROUP_MESSAGE_ID_BYTES: Final = 32  # a group (SDS) message id: hex SHA-256 on screen

INLINE_MIME_TYPES: Final = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "video/mp4",
        "video/webm",
        "audio/ogg",
        "audio/webm",
        "audio/mpeg",
        "audio/mp4",
    }
)
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}")
_BLURHASH = re.compile(r"[0-9A-Za-z#$%*+,\-.:;=?@\[\]^_{|}~]{6,100}")
_RESERVED = re.compile(r"(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?", re.IGNORECASE)
# bidi overrides/isolates and marks: they make "gpj.exe" read as "exe.jpg"
_BIDI = set("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c")


class AttachmentKind(enum.IntEnum):
    FILE = 0
    IMAGE = 1
    VIDEO = 2
    VOICE = 3
    STICKER = 4


def sanitise_name(name: str) -> str:
    """A file name safe to show and to save: never a path, never misleading."""
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(
        ch
        for ch in name
        if ch not in _BIDI and unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp")
    )
    name = name.strip(" .\t")
    if _RESERVED.fullmatch(name):
        name = "_" + name
    if len(name.encode()) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        if not dot or len(ext.encode()) > 16:
            stem, ext = name, ""
        tail = f".{ext}" if ext else ""
        budget = MAX_NAME_BYTES - len(tail.encode())
        stem = stem.encode()[:budget].decode(errors="ignore").rstrip(" .")
        name = stem + tail
    return name or "file"


def _check_bytes(what: str, value: bytes, size: int) -> None:
    if len(value) != size:
        raise UsageError(f"{what} is {size} bytes, not {len(value)}")


def _check_range(what: str, value: int, limit: int) -> None:
    if not 0 <= value <= limit:
        raise UsageError(f"{what} must be from 0 to {limit}, not {value}")


def _check_peer(addr: str) -> None:
    if len(addr) > MAX_PEER_CHARS:
        raise UsageError(f"a peer address is longer than {MAX_PEER_CHARS} characters")
    try:
        ma = multiaddr.Multiaddr(addr)
        ma.value_for_protocol("p2p")
    except Exception as exc:  # multiaddr raises many unrelated types for bad text
        raise UsageError(
            f"a peer address is not a multiaddr with /p2p/: {type(exc).__name__}"
        ) from None


@dataclass(frozen=True, slots=True)
class AttachmentRef:
    """One encrypted file: where it is, how to open it, what to show meanwhile."""

    cid: bytes
    key: bytes = field(repr=False)
    plaintext_sha256: bytes = field(repr=False)
    ciphertext_sha256: bytes = field(repr=False)
    size: int
    mime: str
    name: str = field(repr=False)
    kind: AttachmentKind = AttachmentKind.FILE
    width: int = 0
    height: int = 0
    duration_ms: int = 0
    thumbnail: bytes = field(default=b"", repr=False)
    blurhash: str = field(default="", repr=False)
    peers: tuple[str, ...] = ()
    waveform: bytes = field(default=b"", repr=False)
    animated: bool = False

    def __post_init__(self) -> None:
        if not 0 < len(self.cid) <= MAX_CID_BYTES:
            raise UsageError("an attachment CID is missing or too long")
        try:
            Cid.decode(self.cid)
        except DecodeError as exc:
            raise UsageError(f"an attachment CID is invalid: {exc}") from None
        _check_bytes("an attachment key", self.key, 32)
        _check_bytes("a plaintext digest", self.plaintext_sha256, 32)
        _check_bytes("a ciphertext digest", self.ciphertext_sha256, 32)
        limit = MAX_VIDEO_BYTES if self.kind is AttachmentKind.VIDEO else MAX_FILE_BYTES
        _check_range("an attachment's size", self.size, limit)
        if not isinstance(self.kind, AttachmentKind):
            raise UsageError("unknown attachment kind")
        if not _MIME.fullmatch(self.mime):
            raise UsageError("an attachment's MIME type is not type/subtype in lower case")
        if self.name != sanitise_name(self.name):
            raise UsageError("an attachment's name must be sanitised (sanitise_name)")
        _check_range("a width", self.width, MAX_DIMENSION)
        _check_range("a height", self.height, MAX_DIMENSION)
        _check_range("a duration", self.duration_ms, MAX_DURATION_MS)
        if len(self.thumbnail) > MAX_THUMBNAIL_BYTES:
            raise UsageError(f"a thumbnail is at most {MAX_THUMBNAIL_BYTES} bytes")
        if self.blurhash and not _BLURHASH.fullmatch(self.blurhash):
            raise UsageError("a blurhash is 6 to 100 base-83 characters")
        if not isinstance(self.peers, tuple) or len(self.peers) > MAX_PEERS:
            raise UsageError(f"an attachment names at most {MAX_PEERS} peers")
        for addr in self.peers:
            _check_peer(addr)
        if len(self.waveform) > MAX_WAVEFORM:
            raise UsageError(f"a waveform has at most {MAX_WAVEFORM} samples")
        if self.waveform and self.kind is not AttachmentKind.VOICE:
            raise UsageError("only a voice note has a waveform")
        if self.animated and self.kind is not AttachmentKind.STICKER:
            raise UsageError("only a sticker is animated")

    @property
    def inline(self) -> bool:
        """May a viewer show it inline? Only allowlisted media types (never SVG/HTML)."""
        return self.mime in INLINE_MIME_TYPES

    @property
    def cid_text(self) -> str:
        return str(Cid.decode(self.cid))

    def to_proto(self) -> attachment_pb2.Attachment:
        return attachment_pb2.Attachment(
            cid=self.cid,
            key=self.key,
            plaintext_sha256=self.plaintext_sha256,
            ciphertext_sha256=self.ciphertext_sha256,
            size=self.size,
            mime=self.mime,
            name=self.name,
            kind=int(self.kind),  # type: ignore[arg-type]
            width=self.width,
            height=self.height,
            duration_ms=self.duration_ms,
            thumbnail=self.thumbnail,
            blurhash=self.blurhash,
            peers=list(self.peers),
            waveform=self.waveform,
            animated=self.animated,
        )

    @classmethod
    def from_proto(cls, pb: attachment_pb2.Attachment) -> AttachmentRef:
        """A peer's descriptor, checked; the name sanitised. Raises UsageError."""
        waveform, animated = pb.waveform, pb.animated
        try:
            kind = AttachmentKind(pb.kind)
        except ValueError:
            kind = AttachmentKind.FILE  # a kind added later is shown as a plain file
            waveform, animated = b"", False
        return cls(
            cid=pb.cid,
            key=pb.key,
            plaintext_sha256=pb.plaintext_sha256,
            ciphertext_sha256=pb.ciphertext_sha256,
            size=pb.size,
            mime=pb.mime,
            name=sanitise_name(pb.name),
            kind=kind,
            width=pb.width,
            height=pb.height,
            duration_ms=pb.duration_ms,
            thumbnail=pb.thumbnail,
            blurhash=pb.blurhash,
            peers=tuple(pb.peers),
            waveform=waveform,
            animated=animated,
        )


@dataclass(frozen=True, slots=True)
class AttachmentAsk:
    """Recipient -> sender: file ``index`` of message ``message_id`` is gone; send it again.

    ``group_id`` set: a file sent to that group, ``message_id`` the group message's
    32-byte id (its hex is the id the group shows); else a 1:1 message's 16 bytes."""

    message_id: bytes
    index: int
    group_id: bytes = b""

    def __post_init__(self) -> None:
        if self.group_id and len(self.group_id) != GROUP_ID_BYTES:
            raise UsageError(f"a note names a {GROUP_ID_BYTES}-byte group id")
        want = GROUP_MESSAGE_ID_BYTES if self.group_id else 16
        if len(self.message_id) != want:
            raise UsageError(f"an ask names a {want}-byte message id")
        _check_range("an attachment index", self.index, MAX_ALBUM - 1)


@dataclass(frozen=True, slots=True)
class AttachmentRepinned:
    """Sender -> recipient: that file is pinned again on ``peers``."""

    message_id: bytes
    index: int
    peers: tuple[str, ...]
    group_id: bytes = b""

    def __post_init__(self) -> None:
        AttachmentAsk(self.message_id, self.index, self.group_id)
        if not isinstance(self.peers, tuple) or not 1 <= len(self.peers) <= MAX_PEERS:
            raise UsageError(f"a re-pin names 1 to {MAX_PEERS} peers")
        for addr in self.peers:
            _check_peer(addr)


@dataclass(frozen=True, slots=True)
class Attachments:
    """A message's files: one, or an album of up to 9 images/videos; or, with no
    items, an :class:`AttachmentAsk` or :class:`AttachmentRepinned` note."""

    items: tuple[AttachmentRef, ...]
    caption: str = field(default="", repr=False)
    reply_to: bytes | None = None
    ask: AttachmentAsk | None = None
    repinned: AttachmentRepinned | None = None

    @property
    def is_note(self) -> bool:
        return self.ask is not None or self.repinned is not None

    def __post_init__(self) -> None:
        if self.is_note:
            if self.items or self.caption or self.reply_to is not None:
                raise UsageError("a note about a file carries no files, caption or reply")
            if self.ask is not None and self.repinned is not None:
                raise UsageError("a note is an ask or a re-pin, not both")
            return
        if not isinstance(self.items, tuple) or not 1 <= len(self.items) <= MAX_ALBUM:
            raise UsageError(f"a message carries 1 to {MAX_ALBUM} attachments")
        if len(self.items) > 1:
            if any(i.kind not in (AttachmentKind.IMAGE, AttachmentKind.VIDEO) for i in self.items):
                raise UsageError("an album holds only images and videos")
            if sum(len(i.thumbnail) for i in self.items) > MAX_ALBUM_THUMBS:
                raise UsageError(
                    f"an album's thumbnails are at most {MAX_ALBUM_THUMBS} bytes together"
                )
        if len(self.caption.encode()) > MAX_CAPTION_BYTES:
            raise UsageError(f"a caption is at most {MAX_CAPTION_BYTES} bytes")
        if self.reply_to is not None and len(self.reply_to) != 16:
            raise UsageError("reply_to is a 16-byte message id")

    def to_proto(self) -> attachment_pb2.Attachments:
        pb = attachment_pb2.Attachments(
            items=[i.to_proto() for i in self.items], caption=self.caption
        )
        if self.reply_to is not None:
            pb.reply_to = self.reply_to
        if self.ask is not None:
            a = self.ask
            pb.ask.message_id, pb.ask.index, pb.ask.group_id = a.message_id, a.index, a.group_id
        if self.repinned is not None:
            r = self.repinned
            pb.repinned.message_id, pb.repinned.index = r.message_id, r.index
            pb.repinned.peers.extend(r.peers)
            pb.repinned.group_id = r.group_id
        return pb

    @classmethod
    def from_proto(cls, pb: attachment_pb2.Attachments) -> Attachments:
        """A peer's body, checked. Raises UsageError on any bad field."""
        if len(pb.items) > MAX_ALBUM:
            raise UsageError(f"a message carries 1 to {MAX_ALBUM} attachments")
        if len(pb.repinned.peers) > MAX_PEERS:
            raise UsageError(f"a re-pin names 1 to {MAX_PEERS} peers")
        return cls(
            items=tuple(AttachmentRef.from_proto(i) for i in pb.items),
            caption=pb.caption,
            reply_to=pb.reply_to if pb.HasField("reply_to") else None,
            ask=AttachmentAsk(pb.ask.message_id, pb.ask.index, pb.ask.group_id)
            if pb.HasField("ask")
            else None,
            repinned=AttachmentRepinned(
                pb.repinned.message_id,
                pb.repinned.index,
                tuple(pb.repinned.peers),
                pb.repinned.group_id,
            )
            if pb.HasField("repinned")
            else None,
        )

    def encode(self) -> bytes:
        return self.to_proto().SerializeToString()


def decode_attachments(raw: bytes) -> Attachments:
    """Decode a peer's descriptor bytes; :class:`DecodeError` says what was wrong."""
    if len(raw) > MAX_ENCODED_BYTES:
        raise DecodeError(
            f"an attachments body is {len(raw)} bytes; the limit is {MAX_ENCODED_BYTES}"
        )
    pb = attachment_pb2.Attachments()
    try:
        pb.ParseFromString(raw)
    except (ProtobufDecodeError, ValueError) as exc:  # ValueError: invalid UTF-8 in a string
        raise DecodeError(f"not an attachments body: {exc}") from None
    try:
        return Attachments.from_proto(pb)
    except UsageError as exc:
        raise DecodeError(str(exc)) from None
