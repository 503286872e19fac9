"""Moving an attachment: encrypt -> put -> pin on service peers; fetch -> verify -> decrypt.

Theory of operation
-------------------
:meth:`AttachmentTransfer.upload` encrypts a byte stream as it reads it
(:mod:`boxless.crypto.attachments`, a fresh key per file), hands the
ciphertext to the local :class:`~boxless.blobs.BlobClient` (which makes the
UnixFS DAG and keeps it pinned locally), then asks every configured service
peer at once to fetch and pin it. The descriptor names the peers that did;
if none did, the upload fails with what each said (nothing is sent in a
message a recipient could never fetch).

:meth:`AttachmentTransfer.open` streams a received attachment: it dials the
descriptor's peers (a bounded number, each with a timeout), fetches the DAG
through Bitswap (every block checked against its CID; a DAG bigger than the
descriptor's size allows is refused by the fetcher's limits) and decrypts as
blocks arrive. Plaintext is yielded chunk by chunk, each chunk authenticated;
only a stream that *ends without an error* is the whole file (truncation is
detected at the end, as are digest and size lies). The fetched ciphertext
blocks are kept in the local block store: that is the cache (ciphertext on
disk, the key only in the encrypted user database), and a restarted fetch
asks the network only for the blocks it still lacks.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import multiaddr
import trio
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr

from boxless.blobs import BlobClient, DagLimits
from boxless.blobs.cid import RAW, Cid
from boxless.chat.attachment import MAX_FILE_BYTES, AttachmentKind, AttachmentRef, sanitise_name
from boxless.crypto.attachments import (
    HEADER_SIZE,
    AttachmentDecryptError,
    AttachmentDecryptor,
    AttachmentEncryptor,
    ciphertext_size,
    new_key,
    segment_span,
)
from boxless.errors import BoxlessError, NetworkError, UsageError

__all__ = ["AttachmentTooLarge", "AttachmentTransfer", "UploadNotPinned", "check_info"]

logger = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]
DIAL_TIMEOUT_S = 10.0
MIN_CHUNK = 1024  # the smallest chunk a sender may choose: the most overhead a DAG may carry


class AttachmentTooLarge(UsageError):
    """The file is over the attachment size limit (2 GiB)."""


class UploadNotPinned(NetworkError):
    """No service peer pinned the upload; retry when one is reachable."""


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What the sender says about a file besides its bytes."""

    name: str
    mime: str = "application/octet-stream"
    kind: AttachmentKind = AttachmentKind.FILE
    width: int = 0
    height: int = 0
    duration_ms: int = 0
    thumbnail: bytes = b""
    waveform: bytes = b""
    blurhash: str = ""
    animated: bool = False


_PROBE_CID = bytes(Cid.of(RAW, b""))  # the CID of no bytes: only for the check


def check_info(info: FileInfo) -> None:
    """Raise :class:`~boxless.errors.UsageError` if a descriptor could not carry ``info``."""
    AttachmentRef(
        cid=_PROBE_CID,
        key=bytes(32),
        plaintext_sha256=bytes(32),
        ciphertext_sha256=bytes(32),
        size=0,
        mime=info.mime,
        name=sanitise_name(info.name),
        kind=info.kind,
        width=info.width,
        height=info.height,
        duration_ms=info.duration_ms,
        thumbnail=info.thumbnail,
        blurhash=info.blurhash,
        waveform=info.waveform,
        animated=info.animated,
    )


MIN_PINS = 2  # service nodes that should keep a sent file (when that many are configured)


class AttachmentTransfer:
    """Upload and fetch attachments over a running blob service."""

    def __init__(self, blobs: BlobClient, service_peers: Sequence[str] = ()) -> None:
        self.blobs = blobs
        self.service_peers = list(service_peers)

    @property
    def wanted_pins(self) -> int:
        """How many service nodes should keep each sent file: 2, or all if fewer."""
        return min(MIN_PINS, len(self.service_peers))

    async def _pin_on(
        self, cid: Cid, addrs: Sequence[str], *, retry: bool = False
    ) -> tuple[list[str], dict[str, str]]:
        """Ask each reachable address to pin ``cid`` (fetching it from us), all at once."""
        reached = await self._dial(addrs, retry=retry)
        if not reached:
            return [], {}
        result = await self.blobs.pin(cid, list(reached))
        pinned = [reached[p] for p in result.pinned_by]
        return pinned, {str(p): why for p, why in result.errors.items()}

    async def pin_more(self, cid: bytes, pinned_by: Sequence[str]) -> tuple[list[str], str]:
        """Re-pin a sent file on the service peers that do not keep it yet.

        Returns every peer now known to keep it and why the others did not.
        Needs the file in the local store (a sender keeps what it sent).
        """
        root = Cid.decode(cid)
        if not self.blobs.store.pins(root):
            return list(pinned_by), "the file is no longer in the local store"
        others = [a for a in self.service_peers if a not in pinned_by]
        pinned, errors = await self._pin_on(root, others, retry=True)
        why = "; ".join(errors.values()) or ("" if pinned or not others else "none reachable")
        return [*pinned_by, *pinned], why

    async def pin_again(self, cid: bytes, *, max_peers: int) -> tuple[str, ...]:
        """Pin a sent file again on every service peer (a recipient asked: the network
        lost it; a node that still records the pin repairs it); the peers that keep it
        now, at most ``max_peers`` (empty: none, or the error is logged)."""
        try:
            pinned, why = await self.pin_more(cid, [])
        except BoxlessError as exc:
            logger.info("attachments: re-pin on request failed: %s", exc)
            return ()
        if not pinned:
            logger.info("attachments: re-pin on request: no node keeps it (%s)", why)
            return ()
        logger.info("attachments: pinned a sent file again on request (%d nodes)", len(pinned))
        return tuple(pinned[:max_peers])

    async def _dial(self, addrs: Sequence[str], *, retry: bool = False) -> dict[ID, str]:
        """Connect to each address (concurrently, bounded by a timeout); the ones reached.

        ``retry`` first forgets that a peer failed recently (py-libp2p's swarm
        refuses to dial such a peer for a while: a restarted node would wait)."""
        reached: dict[ID, str] = {}

        async def one(addr: str) -> None:
            try:
                info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
            except Exception as exc:  # multiaddr raises many types for bad text
                logger.info("attachments: skipping peer address (%s)", type(exc).__name__)
                return
            if info.peer_id == self.blobs.host.get_id():
                return
            if retry:
                # a restarted node: forget its failure and the addresses it had before
                # (py-libp2p 0.8 dialled only a stale identify-learned address)
                unblock = getattr(self.blobs.host.get_network(), "unblock_peer", None)
                if unblock is not None:
                    unblock(info.peer_id)
                if self.blobs.host.get_network().get_connections(info.peer_id) == []:
                    self.blobs.host.get_peerstore().clear_addrs(info.peer_id)
            with trio.move_on_after(DIAL_TIMEOUT_S):
                try:
                    await self.blobs.host.connect(info)
                except Exception as exc:  # py-libp2p's dial errors have no common base
                    logger.info(
                        "attachments: could not reach %s (%s)", info.peer_id, type(exc).__name__
                    )
                    return
                reached[info.peer_id] = addr

        async with trio.open_nursery() as nursery:
            for addr in addrs:
                nursery.start_soon(one, addr)
        return reached

    async def upload(
        self,
        chunks: AsyncIterable[bytes],
        info: FileInfo,
        *,
        progress: Progress | None = None,
        max_bytes: int = MAX_FILE_BYTES,
    ) -> AttachmentRef:
        """Encrypt, store and pin a file; returns the descriptor to send.

        Raises :class:`AttachmentTooLarge` past ``max_bytes`` and
        :class:`UploadNotPinned` if no service peer kept it. Cancellation leaves
        unpinned local blocks that the store's GC removes.
        """
        check_info(info)  # bad metadata is refused before anything is uploaded
        key = new_key()
        enc = AttachmentEncryptor(key)

        async def ciphertext() -> AsyncIterator[bytes]:
            async for piece in chunks:
                if enc.plaintext_size + len(piece) > max_bytes:
                    raise AttachmentTooLarge(
                        f"the file is over {max_bytes // 1024**2} MiB; send a smaller one"
                    )
                out = enc.feed(piece)
                if out:
                    yield out
            yield enc.finish()

        put = await self.blobs.put(ciphertext(), progress=progress)
        # every service peer at once: one that dies during the pin costs nothing but its copy
        pinned, errors = await self._pin_on(put.root, self.service_peers)
        if not pinned:
            raise UploadNotPinned(
                "no service node kept the file "
                f"({'; '.join(errors.values()) or 'none reachable'}); try again when one is online"
            )
        return AttachmentRef(
            cid=bytes(put.root),
            key=key,
            plaintext_sha256=enc.plaintext_sha256,
            ciphertext_sha256=enc.ciphertext_sha256,
            size=enc.plaintext_size,
            mime=info.mime,
            name=sanitise_name(info.name),
            kind=info.kind,
            width=info.width,
            height=info.height,
            duration_ms=info.duration_ms,
            thumbnail=info.thumbnail,
            blurhash=info.blurhash,
            peers=tuple(pinned),
            waveform=info.waveform,
            animated=info.animated,
        )

    def _sources(self, ref: AttachmentRef, extra: Sequence[str]) -> list[str]:
        """Where to fetch from: the peers the descriptor names, then our own service
        peers (the sender may have re-pinned there after a listed node died)."""
        return list(dict.fromkeys([*ref.peers, *extra, *self.service_peers]))

    def is_cached(self, ref: AttachmentRef) -> bool:
        """Whether the whole encrypted file is in the local block store."""
        cid = Cid.decode(ref.cid)
        return bool(self.blobs.store.pins(cid))

    async def open(
        self,
        ref: AttachmentRef,
        *,
        extra_peers: Sequence[str] = (),
        progress: Progress | None = None,
        block_timeout: float = 15.0,
    ) -> AsyncIterator[bytes]:
        """Stream the file's plaintext, fetching what is not cached; see the module doc.

        Raises :class:`~boxless.crypto.attachments.AttachmentDecryptError` (a
        wrong key, tampering, truncation, a digest or size lie),
        :class:`~boxless.blobs.BadDag` (the DAG breaks a rule) or
        :class:`~boxless.blobs.BlobUnavailable` (nobody sent it).
        """
        cid = Cid.decode(ref.cid)
        peers: list[ID] = []
        if not self.is_cached(ref):
            peers = list(await self._dial(self._sources(ref, extra_peers), retry=True))
        limits = DagLimits(max_bytes=ciphertext_size(ref.size, MIN_CHUNK))
        dec = AttachmentDecryptor(ref.key, max_plaintext=ref.size)
        try:
            async for piece in self.blobs.get(
                cid, peers, limits=limits, progress=progress, block_timeout=block_timeout
            ):
                out = dec.feed(piece)
                if out:
                    yield out
            tail = dec.finish()
            if dec.ciphertext_sha256 != ref.ciphertext_sha256:
                raise AttachmentDecryptError(
                    "the attachment's digest does not match its message; ask for it again"
                )
            if dec.plaintext_size != ref.size or dec.plaintext_sha256 != ref.plaintext_sha256:
                raise AttachmentDecryptError(
                    "the attachment is not the size or content its message says"
                )
        except AttachmentDecryptError:
            self.forget(ref)  # a cached copy that does not open is no cache
            raise
        if tail:
            yield tail

    async def open_range(
        self,
        ref: AttachmentRef,
        first: int,
        last: int,
        *,
        extra_peers: Sequence[str] = (),
        block_timeout: float = 15.0,
    ) -> AsyncIterator[bytes]:
        """Stream the plaintext bytes ``first..last`` (inclusive) without reading
        the file from its start: the header, then only the STREAM segments that
        cover the range, each fetched (from the cache or the peers) by a seek in
        the DAG and authenticated by its tag. The whole-file digests are not
        checked (that needs every byte); a size lie or a short DAG fails.
        """
        if not 0 <= first <= last < ref.size:
            raise UsageError(f"bytes {first}-{last} are not within the {ref.size}-byte file")
        cid = Cid.decode(ref.cid)
        peers: list[ID] = []
        if not self.is_cached(ref):
            peers = list(await self._dial(self._sources(ref, extra_peers), retry=True))
        limits = DagLimits(max_bytes=ciphertext_size(ref.size, MIN_CHUNK))

        def fetch(offset: int, length: int) -> AsyncIterator[bytes]:
            return self.blobs.get(
                cid, peers, limits=limits, block_timeout=block_timeout, offset=offset,
                length=length,
            )  # fmt: skip

        header = b""
        async for piece in fetch(0, HEADER_SIZE):
            header += piece
        dec = AttachmentDecryptor.seek(ref.key, header, 0, max_plaintext=ref.size)
        chunk = dec.chunk_size
        segment, start, end, final = segment_span(first, last, ref.size, chunk)
        dec = AttachmentDecryptor.seek(ref.key, header, segment, max_plaintext=ref.size)
        pos = segment * chunk  # the plaintext offset of what the decryptor yields next

        def cut(plain: bytes) -> bytes:
            nonlocal pos
            lo, pos = pos, pos + len(plain)
            return plain[max(first - lo, 0) : max(last + 1 - lo, 0)]

        async for piece in fetch(start, end - start):
            if out := cut(dec.feed(piece)):
                yield out
        if out := cut(dec.finish() if final else dec.end_range()):
            yield out
        if pos <= last:
            raise AttachmentDecryptError("the attachment is shorter than its message says")

    def forget(self, ref: AttachmentRef) -> int:
        """Drop the local copy's pins (GC then deletes its blocks); how many."""
        pins = self.blobs.store.pins(Cid.decode(ref.cid))
        for pin_id, *_ in pins:
            self.blobs.store.unpin(pin_id)
        return len(pins)

    async def fetch(self, ref: AttachmentRef, *, progress: Progress | None = None) -> None:
        """Download and verify the whole file into the cache; the plaintext is dropped."""
        async for _ in self.open(ref, progress=progress):
            await trio.lowlevel.checkpoint()
