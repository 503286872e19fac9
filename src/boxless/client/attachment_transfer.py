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
from boxless.blobs.cid import Cid
from boxless.chat.attachment import MAX_FILE_BYTES, AttachmentKind, AttachmentRef, sanitise_name
from boxless.crypto.attachments import (
    AttachmentDecryptError,
    AttachmentDecryptor,
    AttachmentEncryptor,
    ciphertext_size,
    new_key,
)
from boxless.errors import NetworkError, UsageError

__all__ = ["AttachmentTooLarge", "AttachmentTransfer", "UploadNotPinned"]

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


class AttachmentTransfer:
    """Upload and fetch attachments over a running blob service."""

    def __init__(self, blobs: BlobClient, service_peers: Sequence[str] = ()) -> None:
        self.blobs = blobs
        self.service_peers = list(service_peers)

    async def _dial(self, addrs: Sequence[str]) -> dict[ID, str]:
        """Connect to each address (concurrently, bounded by a timeout); the ones reached."""
        reached: dict[ID, str] = {}

        async def one(addr: str) -> None:
            try:
                info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
            except Exception as exc:  # multiaddr raises many types for bad text
                logger.info("attachments: skipping peer address (%s)", type(exc).__name__)
                return
            if info.peer_id == self.blobs.host.get_id():
                return
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
        reached = await self._dial(self.service_peers)
        pinned: list[str] = []
        errors: dict[str, str] = {}
        if reached:
            result = await self.blobs.pin(put.root, list(reached))
            pinned = [reached[p] for p in result.pinned_by]
            errors = {str(p): why for p, why in result.errors.items()}
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
            peers=tuple(pinned),
            waveform=info.waveform,
        )

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
            peers = list(await self._dial([*ref.peers, *extra_peers]))
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
