"""The block store's lost blocks: found by the presence and size of their files,
forgotten, written again by a later put with their pins' reference counts."""

from __future__ import annotations

from pathlib import Path

from boxless.blobs.cid import RAW, Cid
from boxless.blobs.store import BlockStore


def _block(i: int) -> tuple[Cid, bytes]:
    data = bytes([i]) * (100 + i)
    return Cid.of(RAW, data), data


def _file(store: BlockStore, cid: Cid) -> Path:
    name = str(cid)
    return store.root / "blocks" / name[-2:] / name


def test_lost_blocks_are_found_forgotten_and_written_again(tmp_path: Path) -> None:
    store = BlockStore(tmp_path)
    blocks = [_block(i) for i in range(4)]
    for cid, data in blocks:
        store.put(cid, data, 0.0)
    root = blocks[0][0]
    store.pin(root, "alice", [c for c, _ in blocks], 1000, 0.0, None)
    store.pin(root, "bob", [c for c, _ in blocks[:2]], 500, 0.0, None)
    listed = store.pin_blocks_of(root, 100)
    assert len(listed) == 4 and store.lost_names(listed) == []
    assert len(store.pin_blocks_of(root, 2)) == 2  # bounded

    (cid0, data0), (cid1, data1), (cid2, _), _ = blocks
    _file(store, cid0).unlink()  # gone
    _file(store, cid1).write_bytes(b"short")  # damaged: another size
    lost = store.lost_names(store.pin_blocks_of(root, 100))
    assert sorted(lost) == sorted([str(cid0), str(cid1)])
    used = store.used
    assert store.forget(lost) == len(data0) + len(data1) and store.used == used - len(data0) - len(
        data1
    )
    assert not store.has(cid0) and not store.has(cid1) and not _file(store, cid1).exists()
    assert sorted(store.lost_names(store.pin_blocks_of(root, 100))) == sorted(lost)  # rows gone

    # a put writes them again; their reference counts come back from the pins
    store.put(cid0, data0, 1.0)
    store.put(cid1, data1, 1.0)
    assert store.lost_names(store.pin_blocks_of(root, 100)) == [] and store.used == used
    alice, bob = (p[0] for p in sorted(store.pins(root), key=lambda p: p[2]))
    store.unpin(alice)
    assert store.gc(now=1e9, grace_s=0) == len(blocks[2][1]) + len(blocks[3][1])  # bob's stay
    assert store.get(cid0) == data0 and store.get(cid1) == data1 and store.get(cid2) is None
    store.unpin(bob)
    assert store.gc(now=1e9, grace_s=0) == len(data0) + len(data1) and store.used == 0


def test_a_put_rewrites_a_file_lost_before_any_check(tmp_path: Path) -> None:
    store = BlockStore(tmp_path)
    cid, data = _block(7)
    store.put(cid, data, 0.0)
    store.pin(cid, "me", [cid], len(data), 0.0, None)
    _file(store, cid).unlink()
    assert store.get(cid) is None and store.has(cid)
    store.put(cid, data, 1.0)  # the same block put again (a re-upload): written again
    assert store.get(cid) == data and store.used == len(data)
    assert store.block_sizes("", 10) == [(str(cid), len(data))]
    assert store.gc(now=1e9, grace_s=0) == 0  # still pinned: refs rebuilt


def test_forget_keeps_a_block_written_again_since_the_check(tmp_path: Path) -> None:
    store = BlockStore(tmp_path)
    (cid, data), (bad, bad_data) = _block(1), _block(2)
    for c, d in ((cid, data), (bad, bad_data)):
        store.put(c, d, 0.0)
    _file(store, cid).unlink()
    lost = store.lost_names(store.block_sizes("", 10))  # a check in a worker thread...
    assert lost == [str(cid)]
    store.put(cid, data, 1.0)  # ... while a put wrote it again
    assert store.forget(lost) == 0 and store.get(cid) == data and store.has(cid)
    # a re-hash found a file of the right size with the wrong bytes: forgotten as named
    _file(store, bad).write_bytes(bytes(len(bad_data)))
    assert store.forget([str(bad)]) == 0  # not lost by presence and size
    assert store.forget([str(bad)], recheck=False) == len(bad_data)
    assert not store.has(bad) and not _file(store, bad).exists()
