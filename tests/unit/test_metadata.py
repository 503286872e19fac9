"""66/WAKU2-METADATA codec and the cluster rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxless.errors import DecodeError
from boxless.waku import metadata as md


def test_shards_are_encoded_unpacked() -> None:
    # field 2, wire type 0 (varint), once per shard: js-waku rejects the packed form
    data = md.encode_response(md.ClusterInfo(42, (0, 1, 7)))
    assert data == bytes([0x08, 42, 0x10, 0, 0x10, 1, 0x10, 7])


def test_packed_shards_are_still_accepted() -> None:
    packed = bytes([0x08, 42, 0x12, 3, 0, 1, 7])  # field 2 length-delimited
    assert md.decode_response(packed) == md.ClusterInfo(42, (0, 1, 7))


def test_roundtrip_request_and_response() -> None:
    info = md.ClusterInfo(7, (3, 5))
    assert md.decode_request(md.encode_request(info)) == info
    assert md.decode_response(md.encode_response(info)) == info
    assert md.decode_response(md.encode_response(md.ClusterInfo(None, ()))) == md.ClusterInfo(
        None, ()
    )


@pytest.mark.parametrize(
    ("remote", "ok"),
    [
        (md.ClusterInfo(42, (0,)), True),
        (md.ClusterInfo(None, ()), True),
        (md.ClusterInfo(0, (0,)), False),
        (md.ClusterInfo(1, (0,)), False),
    ],
)
def test_cluster_compatibility(remote: md.ClusterInfo, ok: bool) -> None:
    assert md.is_compatible(42, remote) is ok


def test_oversized_and_out_of_range_are_rejected() -> None:
    with pytest.raises(DecodeError):
        md.decode_request(b"\x10" * (md.MAX_METADATA_SIZE + 1))
    with pytest.raises(DecodeError):
        md.decode_request(bytes([0x10, 0x80, 0x10]))  # shard 2048


@given(st.binary(max_size=512))
def test_garbage_only_raises_decode_error(data: bytes) -> None:
    for decode in (md.decode_request, md.decode_response):
        try:
            info = decode(data)
        except DecodeError:
            continue
        assert all(0 <= s <= md.MAX_SHARD for s in info.shards)
