"""Boxless blobs against Helia (helia 7 + @helia/unixfs 8, pinned in package.json):
identical root CIDs for the same chunking, Helia fetching a blob a Boxless
service node pinned, and Boxless fetching a file Helia added. One Helia process
serves the module (importing Helia takes seconds)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from boxless.blobs import Cid, DagBuilder, PinPolicy
from tests.blob_fixtures import addr_of, aiter_chunks, blob_node, connect
from tests.interop.jsrun import Event, JsScript

MiB = 1024 * 1024


class Helia:
    def __init__(self, js: JsScript, ready: Event) -> None:
        self.js = js
        self.addr = f"{ready['addrs'][0]}"
        if "/p2p/" not in self.addr:
            self.addr += f"/p2p/{ready['peerId']}"

    def run(self, cmd: str, timeout: float = 30, **args: object) -> Event:
        """Run one command in the Helia process and return its event."""
        assert self.js.proc.stdin is not None
        self.js.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.js.proc.stdin.flush()
        return self.js.expect({"add": "added", "fetch": "fetched"}[cmd], timeout)


@pytest.fixture(scope="module")
def helia() -> Iterator[Helia]:
    with JsScript("blobs.mjs", {}, timeout=120) as js:
        yield Helia(js, js.expect("ready", 60))


def builder_root(data: bytes, chunk: int, links: int) -> str:
    b = DagBuilder(chunk, links)
    b.feed(data)
    b.finish()
    return str(b.root)


@pytest.mark.parametrize(
    ("size", "chunk", "links"),
    [
        (1024, 256 * 1024, 174),  # one raw leaf
        (300 * 1024, 256 * 1024, 174),  # two leaves
        (5 * MiB, 256 * 1024, 174),
        (175 * 16 * 1024, 16 * 1024, 174),  # 175 leaves: a lone last leaf gets a parent
        (16 * 64 + 1, 64, 4),  # 17 leaves of 4 links: a lone node wrapped on two levels
        (3 * MiB + 5, MiB, 1024),  # Helia's unixfs-v1-2025 profile: 1 MiB chunks
    ],
)
def test_root_cids_equal_helias(
    helia: Helia, tmp_path: Path, size: int, chunk: int, links: int
) -> None:
    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    theirs = helia.run("add", file=str(path), chunkSize=chunk, maxLinks=links)["cid"]
    assert builder_root(data, chunk, links) == theirs


@pytest.mark.trio
async def test_helia_fetches_a_blob_boxless_pinned(helia: Helia, tmp_path: Path) -> None:
    data = os.urandom(5 * MiB - 7)
    async with (
        blob_node(tmp_path / "alice") as alice,
        blob_node(tmp_path / "svc", pin_policy=PinPolicy()) as svc,
    ):
        put = await alice.client.put(aiter_chunks(data))
        info = await connect(alice, addr_of(svc))
        assert (await alice.client.pin(put.root, [info.peer_id])).pinned_by == [info.peer_id]
        got = await trio.to_thread.run_sync(
            lambda: helia.run("fetch", addr=addr_of(svc), cid=str(put.root))
        )
        assert got["bytes"] == len(data)
        assert got["sha256"] == hashlib.sha256(data).hexdigest()
        assert svc.bitswap.stats.served_blocks >= 21


@pytest.mark.trio
async def test_boxless_fetches_a_file_helia_added(helia: Helia, tmp_path: Path) -> None:
    data = os.urandom(5 * MiB + 3)
    path = tmp_path / "f"
    path.write_bytes(data)
    cid = Cid.parse(helia.run("add", file=str(path))["cid"])
    async with blob_node(tmp_path / "bob") as bob:
        info = await connect(bob, helia.addr)
        with trio.fail_after(30):
            got = b"".join([c async for c in bob.client.get(cid, [info.peer_id])])
        assert got == data
        assert bob.bitswap.stats.unrequested_blocks == 0
