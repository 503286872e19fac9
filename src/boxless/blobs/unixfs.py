"""UnixFS files as dag-pb DAGs: a strict decoder and a streaming builder (sans-IO).

Decoder: a dag-pb block is a protobuf ``PBNode`` (``Links``=2 repeated
``PBLink{Hash=1, Name=2, Tsize=3}``, ``Data``=1 holding a UnixFS ``Data``
message: ``Type``=1, ``Data``=2, ``filesize``=3, ``blocksizes``=4, …). The bytes
are attacker-controlled, so :func:`decode_file_node` is hand-written with
explicit bounds (links, varint length, nesting) and raises
:class:`~boxless.errors.DecodeError` for anything that is not a UnixFS *file*
node whose ``blocksizes`` agree with its links and ``filesize``.

Builder: :class:`DagBuilder` turns a stream of bytes into the same DAG Helia
(ipfs-unixfs-importer) makes with ``rawLeaves: true, cidVersion: 1``, a fixed
chunk size and ``balanced({maxChildrenPerNode})``: leaves are raw blocks; every
batch of up to ``max_links`` nodes gets a parent, *including a batch of one*
(that is where py-libp2p's ``balanced_layout`` differs at 175 leaves); a file of
one chunk is that raw leaf itself. Link ``Tsize`` is the leaf's length for raw
leaves and the subtree's total encoded size for parents (py-libp2p writes 0 for
raw leaves). It keeps at most ``max_links`` pending entries per level, so memory
is bounded by one chunk plus ``depth × max_links`` small tuples.
"""

from __future__ import annotations

from dataclasses import dataclass

from boxless.blobs.cid import DAG_PB, RAW, Cid, decode_uvarint, encode_uvarint
from boxless.errors import DecodeError, UsageError

DEFAULT_CHUNK = 256 * 1024
DEFAULT_MAX_LINKS = 174
MAX_BLOCK = 2 * 1024 * 1024  # Bitswap's spec limit on one block
UNIXFS_FILE = 2
UNIXFS_RAW = 0


@dataclass(frozen=True, slots=True)
class Link:
    cid: Cid
    tsize: int


@dataclass(frozen=True, slots=True)
class FileNode:
    """A decoded UnixFS file node: inline data, then links with their sizes."""

    data: bytes
    links: tuple[Link, ...]
    blocksizes: tuple[int, ...]
    filesize: int


def pb_fields(buf: bytes) -> list[tuple[int, int, bytes | int]]:
    """Split a protobuf message into (field, wire type, value); strict."""
    out: list[tuple[int, int, bytes | int]] = []
    pos = 0
    while pos < len(buf):
        tag, pos = decode_uvarint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if field == 0:
            raise DecodeError("protobuf field 0")
        if wire == 0:
            value, pos = decode_uvarint(buf, pos)
            out.append((field, wire, value))
        elif wire == 2:
            length, pos = decode_uvarint(buf, pos)
            if pos + length > len(buf):
                raise DecodeError("protobuf field runs past the block")
            out.append((field, wire, bytes(buf[pos : pos + length])))
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise DecodeError(f"protobuf wire type {wire} not allowed")
        if pos > len(buf):
            raise DecodeError("protobuf field runs past the block")
    return out


def decode_file_node(block: bytes, *, max_links: int = 1024) -> FileNode:
    """Decode an untrusted dag-pb block that must be a UnixFS file node."""
    links: list[Link] = []
    unixfs: bytes | None = None
    for field, wire, value in pb_fields(block):
        if field == 2 and wire == 2:
            assert isinstance(value, bytes)
            if len(links) >= max_links:
                raise DecodeError(f"node has more than {max_links} links")
            links.append(_decode_link(value))
        elif field == 1 and wire == 2:
            assert isinstance(value, bytes)
            unixfs = value
        else:
            raise DecodeError(f"unexpected dag-pb field {field}")
    if unixfs is None:
        raise DecodeError("dag-pb node has no UnixFS data")
    kind, data, filesize, sizes = _decode_unixfs(unixfs)
    if kind not in (UNIXFS_FILE, UNIXFS_RAW):
        raise DecodeError(f"UnixFS node type {kind} is not a file")
    if len(sizes) != len(links):
        raise DecodeError("UnixFS blocksizes do not match the links")
    total = len(data) + sum(sizes)
    if filesize is not None and filesize != total:
        raise DecodeError(f"UnixFS filesize {filesize} but parts add up to {total}")
    return FileNode(data, tuple(links), tuple(sizes), total)


def _decode_link(buf: bytes) -> Link:
    cid: Cid | None = None
    tsize = 0
    for field, wire, value in pb_fields(buf):
        if field == 1 and wire == 2:
            assert isinstance(value, bytes)
            cid = Cid.decode(value)
        elif field == 3 and wire == 0:
            assert isinstance(value, int)
            tsize = value
        elif field == 2 and wire == 2:
            pass  # names are empty in file nodes; ignored
        else:
            raise DecodeError(f"unexpected dag-pb link field {field}")
    if cid is None:
        raise DecodeError("dag-pb link without a hash")
    return Link(cid, tsize)


def _decode_unixfs(buf: bytes) -> tuple[int, bytes, int | None, list[int]]:
    kind: int | None = None
    data = b""
    filesize: int | None = None
    sizes: list[int] = []
    for field, wire, value in pb_fields(buf):
        if field == 1 and wire == 0:
            assert isinstance(value, int)
            kind = value
        elif field == 2 and wire == 2:
            assert isinstance(value, bytes)
            data = value
        elif field == 3 and wire == 0:
            assert isinstance(value, int)
            filesize = value
        elif field == 4 and wire == 0:
            assert isinstance(value, int)
            sizes.append(value)
        elif field == 4 and wire == 2:  # packed blocksizes
            assert isinstance(value, bytes)
            pos = 0
            while pos < len(value):
                size, pos = decode_uvarint(value, pos)
                sizes.append(size)
        elif field in (5, 6, 7, 8):
            pass  # hashType, fanout, mode, mtime: not used by files
        else:
            raise DecodeError(f"unexpected UnixFS field {field}")
    if kind is None:
        raise DecodeError("UnixFS data without a type")
    return kind, data, filesize, sizes


def pb_bytes(field: int, payload: bytes) -> bytes:
    return encode_uvarint(field << 3 | 2) + encode_uvarint(len(payload)) + payload


def pb_varint(field: int, value: int) -> bytes:
    return encode_uvarint(field << 3) + encode_uvarint(value)


def encode_file_node(links: list[tuple[Cid, int, int]]) -> bytes:
    """A UnixFS file node over ``(cid, tsize, file bytes)`` children, byte-exact
    with ipfs-unixfs + @ipld/dag-pb (links first, then data; unpacked sizes)."""
    unixfs = pb_varint(1, UNIXFS_FILE) + pb_varint(3, sum(n for _, _, n in links))
    unixfs += b"".join(pb_varint(4, n) for _, _, n in links)
    body = b"".join(
        pb_bytes(2, pb_bytes(1, bytes(c)) + pb_bytes(2, b"") + pb_varint(3, t)) for c, t, _ in links
    )
    return body + pb_bytes(1, unixfs)


@dataclass(slots=True)
class _Entry:
    cid: Cid
    tsize: int  # the link's Tsize: bytes of the subtree's blocks
    filesize: int


class DagBuilder:
    """Streaming UnixFS file builder. Feed bytes, take the blocks it emits, finish.

    ``feed(data)`` returns the new blocks as ``(cid, bytes)`` in order (leaves
    before their parent); ``finish()`` returns the last blocks and sets ``root``.
    """

    def __init__(self, chunk_size: int = DEFAULT_CHUNK, max_links: int = DEFAULT_MAX_LINKS) -> None:
        if not 1 <= chunk_size <= MAX_BLOCK:
            raise UsageError(f"chunk size must be 1..{MAX_BLOCK} bytes")
        if not 2 <= max_links <= 1024:
            raise UsageError("max links per node must be 2..1024")
        self.chunk_size = chunk_size
        self.max_links = max_links
        self._buf = bytearray()
        self._levels: list[list[_Entry]] = [[]]
        self._leaves = 0
        self.size = 0
        self.root: Cid | None = None

    def feed(self, data: bytes) -> list[tuple[Cid, bytes]]:
        out: list[tuple[Cid, bytes]] = []
        self._buf += data
        self.size += len(data)
        while len(self._buf) >= self.chunk_size:
            chunk = bytes(self._buf[: self.chunk_size])
            del self._buf[: self.chunk_size]
            self._leaf(chunk, out)
        return out

    def _leaf(self, chunk: bytes, out: list[tuple[Cid, bytes]]) -> None:
        cid = Cid.of(RAW, chunk)
        out.append((cid, chunk))
        self._leaves += 1
        self._push(0, _Entry(cid, len(chunk), len(chunk)), out)

    def _push(self, level: int, entry: _Entry, out: list[tuple[Cid, bytes]]) -> None:
        if level == len(self._levels):
            self._levels.append([])
        pending = self._levels[level]
        pending.append(entry)
        if len(pending) == self.max_links:
            self._levels[level] = []
            self._push(level + 1, self._parent(pending, out), out)

    @staticmethod
    def _parent(children: list[_Entry], out: list[tuple[Cid, bytes]]) -> _Entry:
        block = encode_file_node([(c.cid, c.tsize, c.filesize) for c in children])
        cid = Cid.of(DAG_PB, block)
        out.append((cid, block))
        return _Entry(
            cid, len(block) + sum(c.tsize for c in children), sum(c.filesize for c in children)
        )

    def finish(self) -> list[tuple[Cid, bytes]]:
        out: list[tuple[Cid, bytes]] = []
        if self._buf or self._leaves == 0:
            self._leaf(bytes(self._buf), out)
            self._buf.clear()
        if self._leaves == 1:  # reduceSingleLeafToSelf
            self.root = self._levels[0][0].cid
            return out
        level = 0
        while True:
            pending = self._levels[level]
            higher = any(self._levels[level + 1 :])
            if not higher and len(pending) == 1:
                self.root = pending[0].cid
                return out
            if pending:
                self._levels[level] = []
                self._push(level + 1, self._parent(pending, out), out)
            level += 1
