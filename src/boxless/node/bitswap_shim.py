"""What Boxless takes from py-libp2p 0.8.1's ``libp2p.bitswap``, and why not more.

Taken as is: the Bitswap protobuf (``libp2p.bitswap.pb.bitswap_pb2.Message``,
the spec's schema, so messages are byte-compatible with Helia/kubo) and the
host's stream API. Everything else is in ``boxless.blobs``, because the stock
client and DAG code carry these bugs (issue 12). ``tests/unit/test_bitswap_shim.py``
shows 1, 2, 4, 5, 6 and 7 on the stock code; 3 and 8 are timing and memory
behaviour measured in the issue (our side: ``tests/integration/test_blobs*.py``
and ``bench/bench_blobs.py``):

1. **Replies on the requester's stream** (``client.py`` ``_process_wantlist`` →
   ``_send_wantlist_responses_inline``). Bitswap peers read on the streams the
   *other* side opened; Helia closes the read side of its stream, so Helia can
   never fetch from a stock host ("Want was aborted"). Ours: replies go on our
   own stream (``boxless.blobs.bitswap.Bitswap.send``).
2. **HAVE answered with the whole block** (``_process_wantlist``): a
   ``want-have`` gets the block, wasting the bandwidth want-have exists to save.
   Ours answers HAVE.
3. **A HAVE does not wake a fetch** (``session.py``/``dag.py``): only a block or
   a 1 s timer does; the per-peer stream is closed early by the reply reader
   and a batch is dropped, not re-queued (``message_queue.py``). Ours: presences
   wake the waiting fetch; a broken stream is reopened and the message resent;
   a silent peer's wants move to the next peer.
4. **Codec from the bytes** (``dag.py`` ``fetch_file`` uses ``is_file_node(data)``):
   a raw block (ciphertext) that happens to parse as dag-pb is followed as a
   DAG. Ours decodes by the CID's codec only (``DagFetcher._check``).
5. **Unrequested blocks stored** (``_process_blocks_v110``): any peer can fill
   our disk. Ours accepts a block only for a CID a fetch is waiting on.
6. **Tsize 0 for raw leaves** (``dag.py`` ``add_bytes`` passes no leaf bytes to
   ``dag_pb.balanced_layout``) and **no parent for a lone last batch**
   (``balanced_layout`` at 175 leaves): root CIDs differ from Helia's for the
   same chunking. Ours: ``boxless.blobs.unixfs.DagBuilder``.
7. **512 KiB block cap** (``config.MAX_BLOCK_SIZE``): Helia's default 1 MiB
   chunks cannot be made. Ours allows the spec's 2 MiB.
8. **Whole file in memory** (``fetch_file`` returns one ``bytes``): ours streams.

Offered upstream: items 1–7 are small, separate patches (reply via the message
queue's stream; presence type for want-have; wake the session on presences;
pass the CID codec into ``fetch_file``; drop blocks not in the wantlist; leaf
sizes into ``balanced_layout`` and always reduce a batch; raise the cap).
"""

from __future__ import annotations

from google.protobuf.message import DecodeError as ProtobufDecodeError
from libp2p.bitswap.pb.bitswap_pb2 import Message

from boxless.errors import DecodeError

__all__ = ["Message", "decode_message"]


def decode_message(frame: bytes) -> Message:
    """Parse an untrusted Bitswap message; :class:`DecodeError` if malformed."""
    msg = Message()
    try:
        msg.ParseFromString(frame)
    except (ProtobufDecodeError, ValueError) as exc:
        raise DecodeError(f"not a Bitswap message: {exc}") from exc
    return msg
