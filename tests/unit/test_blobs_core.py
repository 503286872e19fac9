"""Sans-IO blob cores: CIDs, the dag-pb/UnixFS decoder (property tests: it
only ever raises DecodeError), the streaming DAG builder, the pin codec and the
block store's pins, reference counts, retention, GC and quota."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.blobs.cid import DAG_PB, RAW, Cid
from boxless.blobs.pin import PinRequest, PinResponse
from boxless.blobs.store import BlockStore, QuotaExceeded
from boxless.blobs.unixfs import DagBuilder, decode_file_node, encode_file_node
from boxless.errors import DecodeError, UsageError


@given(st.binary(max_size=300))
def test_file_node_decoder_only_raises_decode_error(data: bytes) -> None:
    try:
        node = decode_file_node(data)
    except DecodeError:
        return
    assert node.filesize == len(node.data) + sum(node.blocksizes)


@given(st.lists(st.tuples(st.binary(min_size=1, max_size=40), st.integers(1, 2**40)), max_size=20))
def test_file_node_round_trip(children: list[tuple[bytes, int]]) -> None:
    links = [(Cid.of(RAW, d), len(d), size) for d, size in children]
    node = decode_file_node(encode_file_node(links))
    assert [link.cid for link in node.links] == [c for c, _, _ in links]
    assert list(node.blocksizes) == [size for _, _, size in links]


@given(st.binary(max_size=80))
def test_cid_decoder_only_raises_decode_error(data: bytes) -> None:
    try:
        cid = Cid.decode(data)
    except DecodeError:
        return
    assert Cid.decode(bytes(cid)) == cid


@given(st.text(max_size=80))
def test_cid_parser_only_raises_decode_error(text: str) -> None:
    try:
        cid = Cid.parse(text)
    except DecodeError:
        return
    assert Cid.parse(str(cid)) == cid


@given(st.binary(max_size=200))
def test_pin_codec_only_raises_decode_error(data: bytes) -> None:
    for decode in (PinRequest.decode, PinResponse.decode):
        try:
            decode(data)
        except DecodeError:
            pass


def test_cid_text_forms_and_v0() -> None:
    empty = Cid.of(RAW, b"")
    assert str(empty) == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    node = Cid.of(DAG_PB, b"x")
    v0 = Cid(0, DAG_PB, node.digest)
    assert str(v0).startswith("Qm") and Cid.parse(str(v0)) == v0
    assert v0.key() == node.key() != Cid(1, RAW, node.digest).key()
    with pytest.raises(DecodeError):
        Cid.parse("bafyNOTbase32!")


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=0, max_size=3000), st.lists(st.integers(1, 700), max_size=10))
def test_builder_root_does_not_depend_on_how_bytes_arrive(data: bytes, cuts: list[int]) -> None:
    whole = DagBuilder(100, 3)
    whole.feed(data)
    whole.finish()
    pieces = DagBuilder(100, 3)
    pos = 0
    for cut in cuts:
        pieces.feed(data[pos : pos + cut])
        pos += cut
    pieces.feed(data[pos:])
    blocks = pieces.finish()
    assert pieces.root == whole.root
    assert blocks[-1][0] == pieces.root


def test_builder_bounds() -> None:
    with pytest.raises(UsageError):
        DagBuilder(3 * 1024 * 1024)
    with pytest.raises(UsageError):
        DagBuilder(1024, 1)


def test_store_pins_refcounts_expiry_gc_and_quota(tmp_path: Path) -> None:
    store = BlockStore(tmp_path, quota=10_000)
    a, b = os.urandom(3000), os.urandom(3000)
    ca, cb = Cid.of(RAW, a), Cid.of(RAW, b)
    store.put(ca, a, now=0)
    store.put(cb, b, now=0)
    with pytest.raises(UsageError):
        store.put(Cid.of(RAW, b"other"), a, now=0)  # bytes must hash to the CID
    with pytest.raises(QuotaExceeded):
        big = os.urandom(5000)
        store.put(Cid.of(RAW, big), big, now=0)
    p1 = store.pin(ca, "alice", [ca, cb], 6000, now=0, retention_s=100)
    p2 = store.pin(cb, "bob", [cb], 3000, now=0, retention_s=None)
    assert store.owner_bytes("alice") == 6000
    assert store.gc(now=1000, grace_s=0) == 0  # both referenced
    assert store.expire(now=50) == 0
    assert store.expire(now=100) == 1  # alice's pin ran out
    assert store.gc(now=1000, grace_s=0) == 3000  # a freed, b still pinned by bob
    assert store.get(ca) is None and store.get(cb) == b
    assert store.unpin(p2) and not store.unpin(p1)
    assert store.gc(now=1000, grace_s=0) == 3000 and store.used == 0
    with pytest.raises(UsageError):
        store.pin(ca, "x", [ca], 1, now=0)  # cannot pin what is not held
    store.close()
    reopened = BlockStore(tmp_path)
    assert reopened.used == 0 and reopened.pins() == []
