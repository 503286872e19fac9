"""Integrity check of a block store (a service node's ``--blobs`` directory or a
user's ``HOME/blobs``): which blocks are lost, which pins they break.

A running node already checks a batch of blocks per GC round (presence and size
of the files) and every pin request of a root it holds checks that root's blocks;
this is the whole store at once, for an operator after a disk incident, and with
``--rehash`` it also reads every block and checks it hashes to its name (slow:
it reads everything). By default it only reports; ``--forget`` drops the rows of
lost or damaged blocks (their files too), so the next re-pin of each broken pin
("Ask again" in a chat, or the sender's re-pin) fetches them again. Run
``--forget`` on a stopped node (a running one counts its bytes in memory and
would over-count until it restarts).

    python bench/blobs_check.py DIR [--rehash] [--forget] [--batch 5000]

Prints the blocks and bytes checked, lost, damaged, the pins that lack blocks,
and the speed (blocks/s).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from boxless.blobs.cid import Cid
from boxless.blobs.store import BlockStore
from boxless.errors import DecodeError


def damaged(store: BlockStore, names: list[str]) -> list[str]:
    """Those blocks whose bytes do not hash to their name (each file read once)."""
    bad = []
    for name in names:
        data = store.get(Cid.parse(name))
        try:
            ok = data is not None and Cid.parse(name).matches(data)
        except DecodeError:
            ok = False
        if not ok:
            bad.append(name)
    return bad


def check(store: BlockStore, *, rehash: bool, forget: bool, batch: int) -> dict[str, float]:
    checked = nbytes = 0
    lost: list[str] = []
    bad: list[str] = []
    after = ""
    start = time.perf_counter()
    while True:
        rows = store.block_sizes(after, batch)
        if not rows:
            break
        after = rows[-1][0]
        checked += len(rows)
        nbytes += sum(size or 0 for _, size in rows)
        missing = set(store.lost_names(rows))
        lost += sorted(missing)
        if rehash:
            bad += damaged(store, [n for n, _ in rows if n not in missing])
    elapsed = time.perf_counter() - start
    gone = set(lost) | set(bad)
    broken = {
        pin_id
        for pin_id, root, *_ in store.pins()
        for name, size in store.pin_blocks_of(Cid.parse(root), 10**9)
        if size is None or name in gone
    }
    if forget:
        store.forget(lost)
        store.forget(bad, recheck=False)  # the right size, the wrong bytes
    return {
        "blocks": checked,
        "bytes": nbytes,
        "lost": len(lost),
        "damaged": len(bad),
        "broken_pins": len(broken),
        "seconds": elapsed,
        "blocks_per_s": checked / elapsed if elapsed else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path, help="the block store's directory (holds blobs.db)")
    ap.add_argument("--rehash", action="store_true", help="read and hash every block too")
    ap.add_argument("--forget", action="store_true", help="forget lost and damaged blocks")
    ap.add_argument("--batch", type=int, default=5000)
    args = ap.parse_args()
    if not (args.dir / "blobs.db").exists():
        raise SystemExit(f"{args.dir} holds no block store (no blobs.db): give its directory")
    store = BlockStore(args.dir)
    try:
        r = check(store, rehash=args.rehash, forget=args.forget, batch=args.batch)
    finally:
        store.close()
    print(
        f"{r['blocks']:.0f} blocks ({r['bytes'] / 2**20:.1f} MiB) checked in {r['seconds']:.2f} s "
        f"({r['blocks_per_s']:,.0f} blocks/s): {r['lost']:.0f} lost, {r['damaged']:.0f} damaged,"
        f" {r['broken_pins']:.0f} pins lack blocks"
        + (" (forgotten: a re-pin fetches them again)" if args.forget else "")
    )


if __name__ == "__main__":
    main()
