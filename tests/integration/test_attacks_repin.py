""" "Ask again" for a lost file, played as the attacker (W7): Bob, a contact who got
files from Alice, asks her client to pin them again.

- Before the fix the re-pin ran inside the receive pipeline's follow-up, so one
  ask stalled everything Alice received until every service node answered the
  pin (a node that accepts the connection and never speaks: 10 s per ask;
  a large file: as long as the node's fetch). Now asks are queued and run
  beside the pipeline.
- The one-a-minute limit was per file only (and its table forgot the oldest of
  256 files): a contact could make Alice upload every file she ever sent them,
  over and over. Now a contact gets a burst of re-pins, then one a minute.

Messages over the in-memory Waku network, files over real py-libp2p hosts.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID

from boxless.blobs import PinPolicy
from boxless.chat import envelope as env
from boxless.chat.attachment import AttachmentAsk
from boxless.client.attachment_transfer import AttachmentTransfer, FileInfo
from boxless.client.repin_asks import ASK_BURST, AskLimiter
from tests.blob_fixtures import addr_of, aiter_chunks, blob_node
from tests.memnet_fixtures import befriend, memnet, wait_for


def test_the_limiter_refuses_a_flood_of_distinct_files() -> None:
    asks, bob, carol = AskLimiter(), b"b" * 32, b"c" * 32
    got = [asks.allow(bob, (n.to_bytes(16, "big"), 0), 100.0) for n in range(300)]
    assert sum(why is None for why in got) == ASK_BURST
    assert asks.allow(carol, (bytes(16), 1), 100.0) is None  # another contact: its own
    assert asks.allow(bob, (bytes(16), 0), 110.0) is not None  # that file: a minute
    assert asks.allow(bob, (b"\xff" * 16, 0), 161.0) is None  # one more a minute
    for n in range(5000):  # the tables stay bounded
        asks.allow(n.to_bytes(32, "big"), (n.to_bytes(16, "big"), 0), 200.0)
    assert len(asks._files) <= 256 and len(asks._contacts) <= 1024


@pytest.mark.trio
async def test_asks_neither_stall_receiving_nor_pin_every_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "boxless.client.attachments")
    held: list[trio.SocketStream] = []
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]

    async def blackhole() -> None:  # accepts, never answers (a node stuck mid-handshake)
        while True:
            held.append(await listener.accept())

    async with (
        memnet(tmp_path, ("alice", "bob")) as (_net, (alice, bob)),
        blob_node(tmp_path / "svc", pin_policy=PinPolicy()) as svc,
        blob_node(tmp_path / "ablobs") as ablobs,
        blob_node(tmp_path / "bblobs") as bblobs,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(blackhole)
        await befriend(alice, bob)
        transfer = AttachmentTransfer(ablobs.client, [addr_of(svc)])
        alice.client.attachments.use_transfer(transfer)
        bob.client.attachments.use_transfer(AttachmentTransfer(bblobs.client, [addr_of(svc)]))
        bob.client.attachments.set_auto_download_bytes(0)
        mids = []
        for n in range(ASK_BURST + 2):
            data = os.urandom(1000)
            mids.append(
                await alice.client.attachments.send(
                    bob.me, [(aiter_chunks(data), FileInfo(f"f{n}.bin"))]
                )
            )
        await wait_for(bob, lambda: all(bob.client.attachments.attachments(m) for m in mids))
        port = listener.socket.getsockname()[1]
        stuck = f"/ip4/127.0.0.1/tcp/{port}/p2p/{ID.from_pubkey(create_new_key_pair().public_key)}"
        transfer.service_peers = [*transfer.service_peers, stuck]

        async def ask(mid: bytes) -> None:
            body = env.Attachments((), ask=AttachmentAsk(mid, 0))
            await bob.client.conversations.send_body(alice.me, body)

        # Bob asks once; while Alice's re-pin waits on the stuck node, he writes
        await ask(mids[0])
        with trio.fail_after(30):
            while not held:  # noqa: ASYNC110 (the re-pin dialled the stuck node)
                await trio.sleep(0.05)
        await bob.client.send_text(alice.me, "are you there?")
        with trio.fail_after(8):  # well inside the 10 s the stuck dial takes
            await wait_for(alice, lambda: "are you there?" in alice.texts(bob))
        assert "pinned a sent file again on request" not in caplog.text  # still pinning

        # a flood: every file he got, and the first one again
        for mid in [*mids[1:], mids[0]]:
            await ask(mid)
        await bob.client.send_text(alice.me, "after my asks")
        with trio.fail_after(8):
            await wait_for(alice, lambda: "after my asks" in alice.texts(bob))
        refused = alice.client.attachments.asks.refused
        assert sum(refused.values()) == 3, refused  # 2 over the burst, 1 file again
        nursery.cancel_scope.cancel()
