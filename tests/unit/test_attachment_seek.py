"""Random access into an attachment: STREAM segments and UnixFS subtrees seeked, not read.

Hypothesis picks files and byte ranges; every answer is checked against the
plaintext. The DAG walk runs over a real block store (no network: every block
is local), and counts the blocks it read to show the seek skips the rest.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from libp2p.crypto.ed25519 import create_new_key_pair

from boxless.blobs.bitswap import Bitswap, DagFetcher
from boxless.blobs.cid import Cid
from boxless.blobs.store import BlockStore
from boxless.blobs.unixfs import DagBuilder
from boxless.crypto.attachments import (
    HEADER_SIZE,
    AttachmentDecryptError,
    AttachmentDecryptor,
    encrypt_chunks,
    segment_span,
)
from boxless.crypto.errors import CryptoUsageError
from boxless.node.host import build_host

CHUNK = 1024
KEY = bytes(range(32))


@st.composite
def file_and_range(draw: st.DrawFn, max_size: int = 9000) -> tuple[bytes, int, int]:
    size = draw(st.integers(1, max_size))
    data = draw(st.binary(min_size=size, max_size=size)) if size < 200 else os.urandom(size)
    first = draw(st.integers(0, size - 1))
    last = draw(st.integers(first, size - 1))
    return data, first, last


def _read_range(cipher: bytes, size: int, first: int, last: int, split: int) -> bytes:
    """What a seeking reader does: the header, then only the covering segments."""
    dec = AttachmentDecryptor.seek(KEY, cipher[:HEADER_SIZE], 0)
    seg, start, end, final = segment_span(first, last, size, dec.chunk_size)
    dec = AttachmentDecryptor.seek(KEY, cipher[:HEADER_SIZE], seg, max_plaintext=size)
    part = cipher[start:end]
    out = b"".join(dec.feed(part[i : i + split]) for i in range(0, len(part), split))
    out += dec.finish() if final else dec.end_range()
    lo = seg * CHUNK
    return out[first - lo : last + 1 - lo]


@settings(max_examples=150, deadline=None)
@given(file_and_range(), st.integers(1, 3000))
def test_a_seek_decrypts_exactly_the_range(case: tuple[bytes, int, int], split: int) -> None:
    data, first, last = case
    cipher = b"".join(encrypt_chunks(KEY, [data], chunk_size=CHUNK))
    assert _read_range(cipher, len(data), first, last, split) == data[first : last + 1]


@settings(max_examples=60, deadline=None)
@given(file_and_range(max_size=6000))
def test_a_seek_refuses_a_wrong_segment_a_cut_and_a_final_flag_lie(
    case: tuple[bytes, int, int],
) -> None:
    data, first, last = case
    size = len(data)
    cipher = b"".join(encrypt_chunks(KEY, [data], chunk_size=CHUNK))
    seg, start, end, final = segment_span(first, last, size, CHUNK)
    header = cipher[:HEADER_SIZE]
    # the segments fed under another counter (a peer serving bytes of elsewhere)
    dec = AttachmentDecryptor.seek(KEY, header, seg + 1)
    with pytest.raises(AttachmentDecryptError):
        dec.feed(cipher[start:end])
        dec.finish() if final else dec.end_range()
    # cut short by one byte
    dec = AttachmentDecryptor.seek(KEY, header, seg)
    with pytest.raises(AttachmentDecryptError):
        dec.feed(cipher[start : end - 1])
        dec.finish() if final else dec.end_range()
    # a size lie: a range past the real end is opened as if it were not the last segment
    if final:
        dec = AttachmentDecryptor.seek(KEY, header, seg)
        with pytest.raises(AttachmentDecryptError):
            dec.feed(cipher[start:end])
            dec.end_range()
    # a changed header fails every tag
    bad = header[:-1] + bytes([header[-1] ^ 1])
    dec = AttachmentDecryptor.seek(KEY, bad, seg)
    with pytest.raises(AttachmentDecryptError):
        dec.feed(cipher[start:end])
        dec.finish() if final else dec.end_range()


def test_segment_span_bounds() -> None:
    assert segment_span(0, 0, 1, CHUNK) == (0, HEADER_SIZE, HEADER_SIZE + 1 + 16, True)
    seg = CHUNK + 16
    assert segment_span(CHUNK, CHUNK, 3 * CHUNK, CHUNK) == (
        1,
        HEADER_SIZE + seg,
        HEADER_SIZE + 2 * seg,
        False,
    )
    for first, last, size in ((0, 5, 5), (-1, 0, 5), (3, 2, 5)):
        with pytest.raises(CryptoUsageError):
            segment_span(first, last, size, CHUNK)
    with pytest.raises(AttachmentDecryptError):
        AttachmentDecryptor.seek(KEY, b"BXA", 0)


# -- the DAG walk: only the blocks on the way to the range ------------------------------------


class _Dag:
    """One block store holding a deep DAG (1 KiB leaves, 4 links per node)."""

    def __init__(self) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="seek-")
        self.store = BlockStore(Path(self.dir.name))
        self.bitswap = Bitswap(build_host(create_new_key_pair(), []), self.store)
        self.data = os.urandom(37 * 1024 + 123)
        builder = DagBuilder(1024, 4)
        blocks = [*builder.feed(self.data), *builder.finish()]
        for cid, block in blocks:
            self.store.put(cid, block, 0.0)
        assert builder.root is not None
        self.root: Cid = builder.root
        self.total_blocks = len(blocks)


_DAG: _Dag | None = None


def _dag() -> _Dag:
    global _DAG
    if _DAG is None:
        _DAG = _Dag()
    return _DAG


async def _walk(dag: _Dag, offset: int, end: int | None) -> tuple[bytes, int]:
    fetcher = DagFetcher(dag.bitswap, [])
    out = []
    blocks: AsyncIterator[tuple[Cid, bytes, bytes]] = fetcher.blocks(
        dag.root, offset=offset, end=end
    )
    async for _cid, _block, data in blocks:
        out.append(data)
    return b"".join(out), fetcher.blocks_seen


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_the_dag_walk_seeks_to_any_range(draw: st.DataObject) -> None:
    dag = _dag()
    size = len(dag.data)
    offset = draw.draw(st.integers(0, size + 10))
    end = draw.draw(st.none() | st.integers(offset, size + 10))
    got, seen = trio.run(_walk, dag, offset, end)
    assert got == dag.data[offset:end]
    if end is not None and end - offset <= 1024:
        # a small range reads one path down the tree (depth 4 here) and two leaves at most
        assert seen <= 4 + 2 < dag.total_blocks


def test_the_dag_walk_refuses_a_backwards_range() -> None:
    with pytest.raises(ValueError):
        trio.run(_walk, _dag(), 10, 5)
