"""Attachment costs: the encryption alone, and a whole send/fetch over real hosts.

1. STREAM/ChaCha20-Poly1305 encrypt and decrypt of an N MiB file (64 KiB chunks,
   fed in 1 MiB pieces), MiB/s, in this process.
2. One process, three real py-libp2p hosts on loopback (Alice, a service node
   with pins, Bob): ``AttachmentTransfer.upload`` (encrypt -> put -> pin on the
   service node, which fetches the DAG from Alice) then Bob's ``open`` (fetch from
   the service node, verify, decrypt) to nowhere. Wall time and MiB/s of each
   step, and the process's peak RSS growth (all three hosts share it).

    python bench/bench_attachments.py [--mib 64]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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


async def transfer(data: bytes, root: Path) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(data), PIECE):
            yield data[i : i + PIECE]

    async with (
        blob_node(root / "alice") as alice,
        blob_node(root / "svc", pin_policy=PinPolicy()) as svc,
        blob_node(root / "bob") as bob,
    ):
        before = rss_mib()
        mib = len(data) / 2**20
        t0 = time.perf_counter()
        ref = await AttachmentTransfer(alice.client, [addr_of(svc)]).upload(
            chunks(), FileInfo("f.bin")
        )
        t1 = time.perf_counter()
        got = 0
        async for piece in AttachmentTransfer(bob.client).open(ref):
            got += len(piece)
        t2 = time.perf_counter()
        assert got == len(data)
        print(
            f"upload+pin {t1 - t0:6.2f} s ({mib / (t1 - t0):5.1f} MiB/s)   "
            f"fetch+verify+decrypt {t2 - t1:6.2f} s ({mib / (t2 - t1):5.1f} MiB/s)   "
            f"peak RSS +{rss_mib() - before:.0f} MiB (3 hosts in one process)"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=64)
    args = ap.parse_args()
    data = os.urandom(args.mib * 2**20)
    print(f"{args.mib} MiB, load average {os.getloadavg()[0]:.1f}")
    crypto(data)
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(transfer, data, Path(tmp))


if __name__ == "__main__":
    main()
