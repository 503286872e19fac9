"""The py-libp2p 0.8.1 ``libp2p.bitswap`` bugs that ``node/bitswap_shim.py``
lists, each shown on the stock code (a stock ``BitswapClient`` on a real,
unstarted host where a host is needed), next to what Boxless does instead."""

from __future__ import annotations

import os

import multiaddr
from libp2p.bitswap import config as stock_config
from libp2p.bitswap.block_store import MemoryBlockStore
from libp2p.bitswap.cid import CODEC_RAW, compute_cid_v1, parse_cid
from libp2p.bitswap.client import BitswapClient
from libp2p.bitswap.config import BITSWAP_PROTOCOL_V120
from libp2p.bitswap.dag_pb import balanced_layout, is_file_node
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID

from boxless.blobs.cid import RAW, Cid
from boxless.blobs.unixfs import MAX_BLOCK, DagBuilder, encode_file_node
from boxless.node.bitswap_shim import Message, decode_message
from boxless.node.host import build_host
from boxless.wire.framing import FrameDecoder

CHUNK = 256 * 1024


class RecordingStream:
    """Stands in for the inbound stream the stock server is handed; keeps writes."""

    def __init__(self) -> None:
        self.written = b""

    async def write(self, data: bytes) -> None:
        self.written += data


def stock_client() -> BitswapClient:
    addr = multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")
    return BitswapClient(build_host(create_new_key_pair(), [addr]), MemoryBlockStore())


def messages(raw: bytes) -> list[Message]:
    dec = FrameDecoder(8 << 20)
    dec.feed(raw)
    out = []
    while (frame := dec.next_frame()) is not None:
        out.append(decode_message(frame))
    return out


async def test_bugs_1_and_2_stock_replies_on_the_requesters_stream_and_sends_blocks_for_want_have() -> (
    None
):
    client = stock_client()
    data = b"hello blocks"
    cid = compute_cid_v1(data, codec=CODEC_RAW)
    await client.block_store.put_block(parse_cid(cid), data)
    peer = ID(b"\x00\x01x")
    client._peer_protocols[peer] = BITSWAP_PROTOCOL_V120
    wants = Message()
    wants.wantlist.entries.add(block=cid, wantType=Message.Wantlist.Have, sendDontHave=True)
    inbound = RecordingStream()
    await client._process_wantlist(wants.wantlist, peer, inbound)  # type: ignore[arg-type]
    replies = messages(inbound.written)
    # 1: the answer went onto the stream the requester opened (Helia never reads it)
    assert replies
    # 2: a want-have was answered with the whole block instead of a HAVE
    assert [b.data for r in replies for b in r.payload] == [data]
    assert not [p for r in replies for p in r.blockPresences]


async def test_bug_5_stock_stores_blocks_nobody_asked_for() -> None:
    client = stock_client()
    junk = os.urandom(1000)
    block = Message.Block(prefix=Cid.of(RAW, junk).prefix(), data=junk)
    await client._process_blocks_v110([block], ID(b"\x00\x01y"))
    assert await client.block_store.has_block(compute_cid_v1(junk, codec=CODEC_RAW))


def test_bug_4_stock_decides_the_codec_from_the_bytes() -> None:
    # file bytes (e.g. ciphertext) that happen to parse as a UnixFS node
    crafted = encode_file_node([(Cid.of(RAW, b"elsewhere"), 9, 9)])
    assert is_file_node(crafted)  # stock fetch_file would follow its link
    b = DagBuilder()
    b.feed(crafted)
    b.finish()
    assert b.root is not None and b.root.codec == RAW  # ours: a raw CID is file bytes


def test_bug_6_stock_layout_roots_differ_from_helias() -> None:
    data = os.urandom(300 * 1024)
    chunks = [data[:CHUNK], data[CHUNK:]]
    # what stock add_bytes passes: leaf bytes None, so each raw leaf's Tsize is 0
    leaves = [(compute_cid_v1(c, codec=CODEC_RAW), None, len(c)) for c in chunks]
    stock_root = Cid.decode(balanced_layout(leaves)[0])
    ours = DagBuilder()
    ours.feed(data)
    ours.finish()
    assert stock_root != ours.root  # ours equals Helia's (tests/interop)


def test_bug_6b_stock_leaves_a_lone_last_leaf_without_a_parent() -> None:
    chunks = [os.urandom(16) for _ in range(175)]
    leaves = [(compute_cid_v1(c, codec=CODEC_RAW), c, len(c)) for c in chunks]
    stock_root = Cid.decode(balanced_layout(leaves, max_links=174)[0])
    ours = DagBuilder(16, 174)
    ours.feed(b"".join(chunks))
    ours.finish()
    assert stock_root != ours.root


def test_bug_7_stock_caps_blocks_below_helias_default_chunk() -> None:
    assert stock_config.MAX_BLOCK_SIZE < 1024 * 1024 <= MAX_BLOCK
