"""Attachment costs: the encryption alone, and a whole send/fetch over real hosts.

1. STREAM/ChaCha20-Poly1305 encrypt and decrypt of an N MiB file (64 KiB chunks,
   fed in 1 MiB pieces), MiB/s, in this process.
2. One process, three real py-libp2p hosts on loopback (Alice, a service node
   with pins, Bob): ``AttachmentTransfer.upload`` (encrypt -> put -> pin on the
   service node, which fetches the DAG from Alice) then Bob's ``open`` (fetch from
   the service node, verify, decrypt) to nowhere. Wall time and MiB/s of each
   step, and the process's peak RSS growth (all three hosts share it). The file is
   made and checked in 1 MiB pieces (never held whole), so RSS is the pipeline's.
3. Range seeks (a video player's first request after a seek): Bob asks for 64 KiB
   at 50 % and at 99 % of the file, first with nothing cached (the blocks come
   from the service node), then with the file cached: time to the first byte.
4. With ``--helia``: Helia → Helia moving the same-size file (bench/bench_blobs.py's
   pair, two Node processes), the reference, in the same run.

    python bench/bench_attachments.py [--mib 64] [--helia]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from boxless.blobs import PinPolicy  # noqa: E402
from boxless.client.attachment_transfer import AttachmentTransfer, FileInfo  # noqa: E402
from boxless.crypto.attachments import AttachmentDecryptor, AttachmentEncryptor, new_key  # noqa: E402
from tests.blob_fixtures import addr_of, blob_node  # noqa: E402

PIECE = 1024 * 1024


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def crypto(data: bytes) -> None:
    key = new_key()
    t0 = time.perf_counter()
    enc = AttachmentEncryptor(key)
    parts = [enc.feed(data[i : i + PIECE]) for i in range(0, len(data), PIECE)] + [enc.finish()]
    t1 = time.perf_counter()
    blob = b"".join(parts)
    t2 = time.perf_counter()
    dec = AttachmentDecryptor(key)
    for i in range(0, len(blob), PIECE):
        dec.feed(blob[i : i + PIECE])
    dec.finish()
    t3 = time.perf_counter()
    mib = len(data) / 2**20
    print(f"encrypt {mib / (t1 - t0):8.0f} MiB/s   decrypt {mib / (t3 - t2):8.0f} MiB/s")


def _piece(i: int) -> bytes:
    """Piece ``i`` of the bench file: 1 MiB, the same every time it is asked for."""
    return hashlib.shake_128(i.to_bytes(8, "big")).digest(PIECE)


async def transfer(mib: int, root: Path) -> None:
    want = hashlib.sha256()
    for i in range(mib):
        want.update(_piece(i))
    size = mib * PIECE

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(mib):
            yield _piece(i)

    async with (
        blob_node(root / "alice") as alice,
        blob_node(root / "svc", pin_policy=PinPolicy()) as svc,
        blob_node(root / "bob") as bob,
    ):
        before = rss_mib()
        t0 = time.perf_counter()
        ref = await AttachmentTransfer(alice.client, [addr_of(svc)]).upload(
            chunks(), FileInfo("f.bin")
        )
        t1 = time.perf_counter()
        receiver = AttachmentTransfer(bob.client)
        # seeks before anything is cached: the first byte of 64 KiB at 50 % and 99 %
        ttfb = []
        for frac in (0.5, 0.99):
            first = int(size * frac)
            ts = time.perf_counter()
            async for piece in receiver.open_range(ref, first, first + 65535):
                ttfb.append(time.perf_counter() - ts)
                assert piece == (_piece(first // PIECE) * 2)[first % PIECE :][: len(piece)]
                break
        t1b = time.perf_counter()
        got = hashlib.sha256()
        async for piece in receiver.open(ref):
            got.update(piece)
        t2 = time.perf_counter()
        assert got.digest() == want.digest() == ref.plaintext_sha256
        cached = []
        for frac in (0.5, 0.99):
            first = int(size * frac)
            ts = time.perf_counter()
            async for _ in receiver.open_range(ref, first, first + 65535):
                cached.append(time.perf_counter() - ts)
                break
        print(
            f"upload+pin {t1 - t0:6.2f} s ({mib / (t1 - t0):5.1f} MiB/s)   "
            f"fetch+verify+decrypt {t2 - t1b:6.2f} s ({mib / (t2 - t1b):5.1f} MiB/s)   "
            f"peak RSS +{rss_mib() - before:.0f} MiB (3 hosts in one process)"
        )
        print(
            "Range 64 KiB, time to first byte: not cached "
            + ", ".join(f"{t * 1000:.0f} ms" for t in ttfb)
            + " (at 50 %, 99 %); cached "
            + ", ".join(f"{t * 1000:.0f} ms" for t in cached)
        )


def helia_pair(mib: int) -> None:
    """Helia → Helia on a file of the same size (bench/bench_blobs.py's processes)."""
    import bench_blobs

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        path = tmp / "file"
        h = hashlib.sha256()
        with path.open("wb") as f:
            for i in range(mib):
                h.update(_piece(i))
                f.write(_piece(i))
        got = bench_blobs.attempt(path, tmp, "helia", "helia", h.hexdigest())
        print(
            f"Helia → Helia fetch {got['ms'] / 1000:6.2f} s ({mib / (got['ms'] / 1000):5.1f} MiB/s)"
            f"   fetcher peak RSS {got['rss_peak']:.0f} MiB"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--helia", action="store_true", help="also Helia → Helia (needs interop)")
    args = ap.parse_args()
    print(f"{args.mib} MiB, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(transfer, args.mib, Path(tmp))
    print(f"process peak RSS {rss_mib():.0f} MiB (3 hosts, the file streamed in 1 MiB pieces)")
    crypto(os.urandom(min(args.mib, 64) * 2**20))  # after: its buffers would hide the above
    if args.helia:
        helia_pair(args.mib)


if __name__ == "__main__":
    main()
