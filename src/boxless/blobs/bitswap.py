"""Bitswap 1.2 on a py-libp2p host: serve our blocks, fetch the blocks we want.

Theory of operation
-------------------
Each side of a Bitswap connection *sends* on a stream it opened itself and
*reads* the streams the other side opened (the spec, and what Helia does: it
closes the read side of its own stream, so a reply written there is lost —
py-libp2p's stock client does exactly that). :class:`Bitswap` keeps one
outbound stream per peer (:class:`_Outbox`, reopened once if it broke) and
reads every inbound stream in :meth:`Bitswap._handle` until it ends.

An inbound message can carry three things, each handled on its own:

* a *wantlist*: for ``want-have`` we answer HAVE (or DONT_HAVE when asked), for
  ``want-block`` the block (or DONT_HAVE); replies are split into messages of
  about :data:`REPLY_BYTES` and written with backpressure, so a peer flooding
  wants is slowed by its own reading. A message may carry at most
  :data:`MAX_ENTRIES` entries; more is a violation and the stream is reset.
* *blocks*: a block is taken only if a local fetch is waiting for exactly that
  CID — codec included, the CID being rebuilt from the block's prefix and the
  hash of its bytes — so unrequested or mislabelled blocks are dropped and counted.
* *presences*: HAVE/DONT_HAVE wake the fetch waiting on that CID at once (the
  stock client only woke on a block or a 1 s timer).

Fetching is :class:`DagFetcher`: an ordered depth-first walk of a UnixFS DAG
with a window of wants in flight, every block checked against its CID, the
CID's codec deciding how it is decoded, and limits on depth, fan-out, blocks and
bytes so a hostile DAG ends in a :class:`BadDag` error with bounded memory.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from itertools import islice

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.network.stream.exceptions import StreamEOF, StreamError
from libp2p.peer.id import ID

from boxless.blobs.cid import DAG_PB, RAW, Cid, cid_from_prefix
from boxless.blobs.store import BlockStore
from boxless.blobs.unixfs import MAX_BLOCK, decode_file_node
from boxless.errors import DecodeError, NetworkError, PeerError
from boxless.node.bitswap_shim import Message, decode_message
from boxless.node.libp2p_shims import DIAL_ERRORS
from boxless.node.streams import close_quietly, reset_quietly, write_frame
from boxless.wire.framing import FrameDecoder

logger = logging.getLogger(__name__)

BITSWAP_120 = "/ipfs/bitswap/1.2.0"
BITSWAP_110 = "/ipfs/bitswap/1.1.0"
PROTOCOLS = (BITSWAP_120, BITSWAP_110)
MAX_MESSAGE = 4 * 1024 * 1024 + 64 * 1024
MAX_ENTRIES = 1024
REPLY_BYTES = 1024 * 1024
IDLE_TIMEOUT = 300.0
OPEN_TIMEOUT = 10.0
MAX_OUTBOXES = 1024
MAX_INBOUND_PER_PEER = 64  # open inbound streams one peer may hold (Helia opens one per message)
MAX_INBOUND = 2048  # all peers together
READ_SIZE = 256 * 1024

Violation = Callable[[ID, str], Awaitable[None]]


class BlobUnavailable(NetworkError):
    """No peer we asked sent the block in time (or all said they don't have it)."""


class BadDag(PeerError):
    """A peer's DAG breaks a rule: a block that does not decode as its CID's codec
    says, a size lie, or a DAG deeper, wider or bigger than the limits."""


@dataclass
class BitswapStats:
    served_blocks: int = 0
    served_bytes: int = 0
    received_blocks: int = 0
    received_bytes: int = 0
    unrequested_blocks: int = 0
    bad_blocks: int = 0
    violations: int = 0
    refused_streams: int = 0


@dataclass
class _Want:
    cid: Cid
    users: int = 0
    block: bytes | None = None
    have: set[ID] = field(default_factory=set)
    dont_have: set[ID] = field(default_factory=set)
    changed: trio.Event = field(default_factory=trio.Event)

    def wake(self) -> None:
        self.changed.set()
        self.changed = trio.Event()


class _Outbox:
    def __init__(self) -> None:
        self.lock = trio.Lock()
        self.stream: INetStream | None = None


class Bitswap:
    """Bitswap 1.2 serving ``store``'s blocks over ``host``; see the module docstring."""

    def __init__(
        self, host: IHost, store: BlockStore, *, on_violation: Violation | None = None
    ) -> None:
        self.host = host
        self.store = store
        self.on_violation = on_violation
        self.stats = BitswapStats()
        self._wants: dict[bytes, _Want] = {}
        self._outboxes: dict[ID, _Outbox] = {}
        self._inbound: dict[ID, int] = {}

    def register(self) -> None:
        for proto in PROTOCOLS:
            self.host.set_stream_handler(TProtocol(proto), self._handle)

    # ---- sending, on our own stream -------------------------------------------
    async def send(self, peer: ID, msg: Message) -> None:
        """Send one message to ``peer`` on our stream; :class:`NetworkError` if
        it cannot be delivered after reopening the stream once."""
        box = self._outboxes.get(peer)
        if box is None:
            if len(self._outboxes) >= MAX_OUTBOXES:
                old_peer = next(iter(self._outboxes))
                old = self._outboxes.pop(old_peer)
                if old.stream is not None and not old.lock.locked():
                    await close_quietly(old.stream)
            box = self._outboxes[peer] = _Outbox()
        payload = msg.SerializeToString()
        async with box.lock:
            for attempt in (1, 2):
                if box.stream is None:
                    box.stream = await self._open(peer)
                try:
                    await write_frame(box.stream, payload)
                    return
                except NetworkError:
                    await reset_quietly(box.stream)
                    box.stream = None
                    if attempt == 2:
                        raise

    async def _open(self, peer: ID) -> INetStream:
        with trio.move_on_after(OPEN_TIMEOUT):
            try:
                return await self.host.new_stream(peer, [TProtocol(p) for p in PROTOCOLS])
            except DIAL_ERRORS as exc:
                raise NetworkError(f"cannot open bitswap to {peer}: {exc}") from exc
        raise NetworkError(f"opening bitswap to {peer} timed out")

    # ---- receiving ------------------------------------------------------------
    async def _handle(self, stream: INetStream) -> None:
        peer = stream.muxed_conn.peer_id
        open_now = self._inbound.get(peer, 0)
        if open_now >= MAX_INBOUND_PER_PEER or sum(self._inbound.values()) >= MAX_INBOUND:
            self.stats.refused_streams += 1
            await reset_quietly(stream)
            return
        self._inbound[peer] = open_now + 1
        try:
            await self._read(peer, stream)
        finally:
            self._inbound[peer] -= 1
            if not self._inbound[peer]:
                del self._inbound[peer]

    async def _read(self, peer: ID, stream: INetStream) -> None:
        try:
            async for frame in _frames(stream):
                msg = decode_message(frame)
                if len(msg.wantlist.entries) > MAX_ENTRIES:
                    raise DecodeError(f"wantlist of {len(msg.wantlist.entries)} entries")
                self._take_blocks(msg)
                self._take_presences(peer, msg)
                if msg.wantlist.entries:
                    await self._answer(peer, msg)
        except DecodeError as exc:
            logger.info("bad bitswap message from %s: %s", peer, exc)
            self.stats.violations += 1
            await reset_quietly(stream)
            if self.on_violation is not None:
                await self.on_violation(peer, BITSWAP_120)
        except NetworkError as exc:  # ended, idle or broken: not the peer's fault
            logger.debug("bitswap stream from %s ended: %s", peer, exc)
            await close_quietly(stream)
        else:
            await close_quietly(stream)

    def _take_blocks(self, msg: Message) -> None:
        pairs = [(b.prefix, b.data) for b in msg.payload]
        pairs += [(b"\x00\x70\x12\x20", data) for data in msg.blocks]  # 1.0: CIDv0
        for prefix, data in pairs:
            try:
                cid = cid_from_prefix(prefix, data)
            except DecodeError:
                self.stats.bad_blocks += 1
                continue
            want = self._wants.get(cid.key())
            if want is None or want.block is not None or len(data) > MAX_BLOCK:
                self.stats.unrequested_blocks += 1
                continue
            self.stats.received_blocks += 1
            self.stats.received_bytes += len(data)
            want.block = data
            want.wake()

    def _take_presences(self, peer: ID, msg: Message) -> None:
        for presence in msg.blockPresences:
            try:
                cid = Cid.decode(presence.cid)
            except DecodeError:
                continue
            want = self._wants.get(cid.key())
            if want is None:
                continue
            (want.have if presence.type == Message.Have else want.dont_have).add(peer)
            want.wake()

    async def _answer(self, peer: ID, msg: Message) -> None:
        reply = Message()
        size = 0
        for entry in msg.wantlist.entries:
            if entry.cancel:
                continue
            try:
                cid = Cid.decode(entry.block)
            except DecodeError:
                continue
            if entry.wantType == Message.Wantlist.Have:
                if self.store.has(cid):
                    reply.blockPresences.add(cid=entry.block, type=Message.Have)
                elif entry.sendDontHave:
                    reply.blockPresences.add(cid=entry.block, type=Message.DontHave)
                continue
            data = self.store.get(cid)
            if data is None:
                if entry.sendDontHave:
                    reply.blockPresences.add(cid=entry.block, type=Message.DontHave)
                continue
            reply.payload.add(prefix=cid.prefix(), data=data)
            self.stats.served_blocks += 1
            self.stats.served_bytes += len(data)
            size += len(data)
            if size >= REPLY_BYTES:
                await self._send_reply(peer, reply)
                reply, size = Message(), 0
        if reply.payload or reply.blockPresences:
            await self._send_reply(peer, reply)

    async def _send_reply(self, peer: ID, reply: Message) -> None:
        try:
            await self.send(peer, reply)
        except NetworkError as exc:
            logger.debug("could not answer %s: %s", peer, exc)

    # ---- wants ----------------------------------------------------------------
    def expect(self, cid: Cid) -> _Want:
        """Register interest in ``cid`` (blocks for it will be accepted)."""
        want = self._wants.get(cid.key())
        if want is None:
            want = self._wants[cid.key()] = _Want(cid)
        want.users += 1
        return want

    def release(self, cid: Cid) -> None:
        want = self._wants.get(cid.key())
        if want is not None:
            want.users -= 1
            if want.users <= 0:
                del self._wants[cid.key()]


async def _frames(stream: INetStream) -> AsyncIterator[bytes]:
    """The length-prefixed messages of a long-lived stream, until it ends.

    One decoder for the whole stream (a read may carry the end of one message
    and the start of the next). :class:`DecodeError` for a bad or oversized
    frame; :class:`NetworkError` after :data:`IDLE_TIMEOUT` of silence.
    """
    decoder = FrameDecoder(MAX_MESSAGE)
    while True:
        while (frame := decoder.next_frame()) is not None:
            yield frame
        with trio.move_on_after(IDLE_TIMEOUT) as scope:
            try:
                chunk = await stream.read(READ_SIZE)
            except StreamEOF:
                chunk = b""
            except StreamError as exc:
                raise NetworkError(f"stream broke: {exc}") from exc
        if scope.cancelled_caught:
            raise NetworkError(f"idle for {IDLE_TIMEOUT:.0f}s")
        if not chunk:
            decoder.eof()
            return
        decoder.feed(chunk)


def want_message(cids: Sequence[Cid], *, have: bool = False, cancel: bool = False) -> Message:
    msg = Message()
    for cid in cids:
        msg.wantlist.entries.add(
            block=bytes(cid),
            priority=1,
            cancel=cancel,
            wantType=Message.Wantlist.Have if have else Message.Wantlist.Block,
            sendDontHave=not cancel,
        )
    return msg


@dataclass(frozen=True)
class DagLimits:
    """What a fetch accepts: file bytes, blocks, depth and links per node."""

    max_bytes: int = 2 * 1024**3
    max_blocks: int = 1_000_000
    max_depth: int = 8
    max_links: int = 1024


@dataclass(slots=True, eq=False)
class _Item:
    cid: Cid
    depth: int
    expect: int | None  # file bytes the parent says this subtree holds
    want: _Want | None = None
    peer: ID | None = None  # the peer asked now
    tried: set[ID] = field(default_factory=set)
    sent: bool = False
    start: int = 0  # the file offset of this subtree's first byte


class DagFetcher:
    """Walk the UnixFS file DAG at a root in file order, fetching what is not local.

    ``blocks()`` yields ``(cid, block, file_data)`` for every block, where
    ``file_data`` is the part of the file the block carries (raw leaf bytes, or
    a dag-pb node's inline data). At most ``window`` blocks are wanted or
    buffered at once. With ``offset``/``end`` only the blocks on the path to the
    bytes ``[offset, end)`` and the leaves holding them are fetched (a seek: a
    subtree's span comes from its parent's ``blocksizes``, checked when it
    arrives), and ``file_data`` is cut to that span.
    Peers are asked one at a time per block: a DONT_HAVE or
    ``block_timeout`` of silence moves that block to the next peer; after the
    last, :class:`BlobUnavailable`. Cancelling the iteration sends cancels.
    """

    def __init__(
        self,
        bitswap: Bitswap,
        peers: Sequence[ID],
        *,
        window: int = 32,
        block_timeout: float = 15.0,
        limits: DagLimits = DagLimits(),
    ) -> None:
        self.bitswap = bitswap
        self.peers = list(peers)
        self.window = window
        self.block_timeout = block_timeout
        self.limits = limits
        self.blocks_seen = 0
        self.bytes_seen = 0
        self.file_size: int | None = None
        self._asked: list[_Item] = []  # items wanted from a peer, block not yet taken

    async def rank_peers(self, root: Cid) -> None:
        """Ask every peer for a HAVE of ``root``; put those who have it first.
        Returns as soon as one says HAVE (or sends it), at most ``block_timeout``."""
        if len(self.peers) < 2 or self.bitswap.store.has(root):
            return
        want = self.bitswap.expect(root)
        try:
            for peer in self.peers:
                try:
                    await self.bitswap.send(peer, want_message([root], have=True))
                except NetworkError:
                    want.dont_have.add(peer)
            with trio.move_on_after(self.block_timeout):
                while not want.have and want.block is None:
                    if len(want.dont_have) >= len(self.peers):
                        break
                    await want.changed.wait()
            self.peers.sort(key=lambda p: (p not in want.have, p in want.dont_have))
        finally:
            self.bitswap.release(root)

    async def blocks(
        self, root: Cid, *, offset: int = 0, end: int | None = None
    ) -> AsyncGenerator[tuple[Cid, bytes, bytes], None]:
        if not self.peers and not self.bitswap.store.has(root):
            raise BlobUnavailable(f"{root} is not held here and no peer was given")
        if offset < 0 or (end is not None and end < offset):
            raise ValueError("a byte range needs 0 <= offset <= end")
        frontier: deque[_Item] = deque([_Item(root, 0, None)])
        try:
            while frontier:
                await self._top_up(frontier)
                item = frontier.popleft()
                block = await self._wait(item)
                children, data = self._check(item, block)
                pos = item.start + len(data)
                wanted = []
                for child in children:
                    assert child.expect is not None
                    child.start, pos = pos, pos + child.expect
                    if pos > offset and (end is None or child.start < end):
                        wanted.append(child)
                frontier.extendleft(reversed(wanted))
                if offset > item.start or (end is not None and end < item.start + len(data)):
                    lo = max(offset - item.start, 0)
                    hi = len(data) if end is None else max(min(end - item.start, len(data)), 0)
                    data = data[lo:hi] if lo < hi else b""
                yield item.cid, block, data
        finally:
            pending = [i for i in frontier if i.want is not None]
            for i in pending:
                self.bitswap.release(i.cid)
            sent = [i for i in pending if i.sent]
            if sent:
                with trio.move_on_after(1.0) as scope:
                    scope.shield = True
                    await self._cancel(sent)

    async def _cancel(self, items: list[_Item]) -> None:
        by_peer: dict[ID, list[Cid]] = {}
        for i in items:
            if i.peer is not None:
                by_peer.setdefault(i.peer, []).append(i.cid)
        for peer, cids in by_peer.items():
            try:
                await self.bitswap.send(peer, want_message(cids, cancel=True))
            except NetworkError:
                pass

    async def _top_up(self, frontier: deque[_Item]) -> None:
        batch: dict[ID, list[Cid]] = {}
        for item in islice(frontier, self.window):
            if item.want is not None or self.bitswap.store.has(item.cid):
                continue
            item.want = self.bitswap.expect(item.cid)
            if item.want.block is None and (peer := self._pick(item)) is not None:
                batch.setdefault(peer, []).append(item.cid)
                item.sent = True
        for peer, cids in batch.items():
            await self._send_wants(peer, cids)

    def _pick(self, item: _Item) -> ID | None:
        """The next peer to ask for ``item`` (peers that failed a block go last)."""
        item.peer = next((p for p in self.peers if p not in item.tried), None)
        if item.peer is not None:
            item.tried.add(item.peer)
            if item not in self._asked:
                self._asked.append(item)
        return item.peer

    async def _demote(self, peer: ID) -> None:
        """``peer`` failed a block: it goes last, and every other block asked of
        it is asked of the next peer now (not after its own timeout)."""
        if peer in self.peers:
            self.peers.remove(peer)
            self.peers.append(peer)
        moved: dict[ID, list[Cid]] = {}
        for item in self._asked:
            want = item.want
            if item.peer == peer and want is not None and want.block is None:
                if (nxt := self._pick(item)) is not None:
                    moved.setdefault(nxt, []).append(item.cid)
        for nxt, cids in moved.items():
            await self._send_wants(nxt, cids)

    async def _send_wants(self, peer: ID, cids: list[Cid]) -> None:
        try:
            await self.bitswap.send(peer, want_message(cids))
        except NetworkError as exc:
            logger.info("peer %s unreachable for wants: %s", peer, exc)

    async def _wait(self, item: _Item) -> bytes:
        if item.want is None:
            local = self.bitswap.store.get(item.cid)
            if local is not None and item.cid.matches(local):
                return local
            item.want = self.bitswap.expect(item.cid)
            item.sent = True
            if item.want.block is None and (peer := self._pick(item)) is not None:
                await self._send_wants(peer, [item.cid])
        want = item.want
        try:
            while want.block is None:
                peer = item.peer
                if peer is None:
                    lacking = len(want.dont_have & item.tried)
                    raise BlobUnavailable(
                        f"no peer sent block {item.cid}: {lacking} of {len(item.tried)} "
                        f"asked said they do not have it, the others were silent "
                        f"for {self.block_timeout:.0f}s"
                    )
                changed = want.changed
                with trio.move_on_after(self.block_timeout) as scope:
                    if peer not in want.dont_have:
                        await changed.wait()
                if want.block is None and (scope.cancelled_caught or peer in want.dont_have):
                    if item.peer == peer:  # not already moved on by another block's failure
                        await self._demote(peer)
                        if item.peer == peer and (nxt := self._pick(item)) is not None:
                            await self._send_wants(nxt, [item.cid])
            return want.block
        finally:
            if item in self._asked:
                self._asked.remove(item)
            self.bitswap.release(item.cid)
            item.want = None

    def _check(self, item: _Item, block: bytes) -> tuple[list[_Item], bytes]:
        """Validate a verified block against its CID's codec and the DAG limits."""
        lim = self.limits
        self.blocks_seen += 1
        self.bytes_seen += len(block)
        if self.blocks_seen > lim.max_blocks:
            raise BadDag(f"DAG has more than {lim.max_blocks} blocks")
        if item.cid.codec == RAW:
            if item.expect is not None and len(block) != item.expect:
                raise BadDag(
                    f"block {item.cid} holds {len(block)} bytes, parent said {item.expect}"
                )
            if item.depth == 0:
                if len(block) > lim.max_bytes:
                    raise BadDag(f"file of {len(block)} bytes is over the {lim.max_bytes} limit")
                self.file_size = len(block)
            return [], block
        assert item.cid.codec == DAG_PB
        try:
            node = decode_file_node(block, max_links=lim.max_links)
        except DecodeError as exc:
            raise BadDag(f"block {item.cid} is not a UnixFS file node: {exc}") from exc
        if item.expect is not None and node.filesize != item.expect:
            raise BadDag(f"node {item.cid} holds {node.filesize} bytes, parent said {item.expect}")
        if item.depth == 0:
            if node.filesize > lim.max_bytes:
                raise BadDag(f"file of {node.filesize} bytes is over the {lim.max_bytes} limit")
            self.file_size = node.filesize
        if node.links and item.depth + 1 > lim.max_depth:
            raise BadDag(f"DAG deeper than {lim.max_depth}")
        if any(size == 0 for size in node.blocksizes):
            raise BadDag(f"node {item.cid} links an empty child")
        children = [
            _Item(link.cid, item.depth + 1, size)
            for link, size in zip(node.links, node.blocksizes, strict=True)
        ]
        return children, node.data
